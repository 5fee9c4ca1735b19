# The judge-quality study (a study of recipe.ablations with `judge_aucs`): per ROC-AUC and seed, a simulated judge
# (uniembed.judge.simulated: the synthetic world's truth + seeded noise of that AUC) scores the run's mined pairs,
# the study's filter selects hard negatives from its scores, judge_quality measures the filter against the truth;
# ablation.smk trains each judged variant on that table ("<variant>@auc<AUC>") and ablation_table draws the curve.


JUDGE_STUDIES = "|".join(s for s in ABLATIONS if ABLATIONS[s].get("judge_aucs")) or "none"   # wildcard constraint


rule ablation_judge:
    """A simulated judge of ROC-AUC {auc}, noise seed {seed}, over the queries the run's judge judges."""
    input:
        mined=rules.mine.output.mined,
        curated=rules.mine.input.curated,
        truth=generated_data(),
    output:
        scores=f"{RUN_DIR}/ablations/{{study}}/judges/auc{{auc}}_seed{{seed}}/judge_scores.parquet",
    log:
        f"{LOGS}/ablation_{{study}}_judge_auc{{auc}}_seed{{seed}}.log",
    params:
        settings=rule_settings("recipe.judge.max_queries", "recipe.judge.seed", "recipe.judge.queries_per_shard",
                               "recipe.judge.max_failed_fraction"),
        simulated=lambda wildcards: f"recipe.judge.simulated={{auc: {float(wildcards.auc)!r}, seed: {int(wildcards.seed)}}}",
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        shard_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/ablations/{wildcards.study}/judges/auc{wildcards.auc}_seed{wildcards.seed}",
    wildcard_constraints:
        study=JUDGE_STUDIES,
        auc=r"[01](\.\d+)?",
        seed=r"\d+",
    resources:
        **rule_resources("judge_quality"),
    conda:
        "../../envs/judge.yaml"
    shell:
        "python -m uniembed.stages.judge --stage curated_dir {params.curated_dir:q} --stage mined {input.mined:q}"
        " --stage out_dir {params.out_dir:q} --stage checkpoint_dir {params.shard_dir:q}"
        " recipe.judge.backend=simulated {params.simulated:q} > {log:q} 2>&1"


rule ablation_filter:
    """The study's filter over one simulated judge's scores (UniME-V2's alpha rule), and its quality against the truth."""
    input:
        mined=rules.mine.output.mined,
        scores=rules.ablation_judge.output.scores,
        curated=rules.mine.input.curated,
        truth=generated_data(),
    output:
        negatives=f"{RUN_DIR}/ablations/{{study}}/judges/auc{{auc}}_seed{{seed}}/{{filter}}/hard_negatives.parquet",
        summary=f"{RUN_DIR}/ablations/{{study}}/judges/auc{{auc}}_seed{{seed}}/{{filter}}/filter_summary.json",
        quality=f"{RUN_DIR}/ablations/{{study}}/judges/auc{{auc}}_seed{{seed}}/{{filter}}/judge_quality.json",
    log:
        f"{LOGS}/ablation_{{study}}_filter_{{filter}}_auc{{auc}}_seed{{seed}}.log",
    params:
        settings=lambda wildcards: rule_settings(f"recipe.filters.{wildcards.filter}", "recipe.judge.max_failed_fraction"),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        mining_dir=lambda wildcards, input: Path(input.scores).parent,
        out_dir=lambda wildcards, output: Path(output.negatives).parent,
        truth=lambda wildcards, input: f"{input.truth}/truth/mbeir_truth.parquet",
    wildcard_constraints:
        study=JUDGE_STUDIES,
        filter="|".join(FILTERS) or "none",
        auc=r"[01](\.\d+)?",
        seed=r"\d+",
    resources:
        **rule_resources("filter"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "(python -m uniembed.stages.filter --stage name {wildcards.filter:q} --stage curated_dir {params.curated_dir:q}"
        " --stage mining_dir {params.mining_dir:q} --stage mined {input.mined:q} --stage out_dir {params.out_dir:q}"
        " && python -m uniembed.stages.judge_quality --stage name {wildcards.filter:q} --stage mining_dir {params.mining_dir:q}"
        " --stage mined {input.mined:q} --stage truth {params.truth:q} --stage out_dir {params.out_dir:q}) > {log:q} 2>&1"
