# Ablation studies (recipe.ablations, e.g. UniME-V2 Tables 4 and 6, U-MARVEL Table 13): every hard-negative
# variant trained from the hard-negative stage's starting model once per seed, every distillation variant
# continued from another variant's model of the same seed (its own teacher table), a model variant (the
# shared start) evaluated once; summarised as mean ± sd. Not part of `all`: run `snakemake ablation_<study>`
# (e.g. ablation_unime_v2) or `snakemake ablations` for every study.


rule ablation_train:
    """One ablation variant trained for one seed (a hard-negative objective with the variant's changes)."""
    input:
        model=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.train_hn["from"]],
        negatives=ablation_negatives,
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.mine.source, "queries"),
    output:
        model=directory(stage_output("ablations/{study}/{variant}/seed{seed}")),
    log:
        f"{LOGS}/ablation_{{study}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ablation_{{study}}_{{variant}}_seed{{seed}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"recipe.ablations.{wildcards.study}.variants."
                                                 f"{split_judged_variant(wildcards.variant)[0]}",
                                                 f"recipe.train_hn.objectives.{ablation_variant(wildcards.study, wildcards.variant).base}",
                                                 "recipe.embedding", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/ablations/{wildcards.study}/{wildcards.variant}/seed{wildcards.seed}",
        log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/ablations/{wildcards.study}/{wildcards.variant}/seed{wildcards.seed}",
        launcher=launcher("train_hn"),
    wildcard_constraints:
        study="|".join(ABLATIONS) or "none",
        variant=ablation_variants("train_hn"),
        seed=r"\d+",
    resources:
        **rule_resources("train_hn"),
    conda:
        "../../envs/train.yaml"
    shell:
        "{params.launcher} -m uniembed.stages.train --stage section ablations --stage name {wildcards.study:q}/{wildcards.variant:q}"
        " --stage seed {wildcards.seed:q} --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage hard_negatives {input.negatives:q} --stage out_dir {output.model:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"


rule ablation_distill_data:
    """U-MARVEL §3.3's teacher table for one seed: that seed's `distill_from` model recalls, the run's reranker rescores."""
    input:
        recall=lambda wildcards: ablation_model(wildcards, ablation_variant(wildcards.study, wildcards.variant).distill_from),
        reranker=lambda wildcards: stage_output(f"reranker_{STAGE_CONFIG.recipe.distill.reranker}"),
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.mine.source, "candidates"),
    output:
        negatives=f"{RUN_DIR}/ablations/{{study}}/{{variant}}/teacher_seed{{seed}}/hard_negatives.parquet",
        summary=f"{RUN_DIR}/ablations/{{study}}/{{variant}}/teacher_seed{{seed}}/distill_summary.json",
        pairs=f"{RUN_DIR}/ablations/{{study}}/{{variant}}/teacher_seed{{seed}}/rerank_scores.parquet",
    log:
        f"{LOGS}/ablation_{{study}}_{{variant}}_teacher_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ablation_{{study}}_{{variant}}_teacher_seed{{seed}}.tsv"
    params:
        settings=lambda wildcards: rule_settings("recipe.distill.fraction", "recipe.distill.candidates",
                                                 "recipe.distill.alpha", "recipe.mine", "recipe.rerank.scoring",
                                                 "recipe.embedding", "recipe.evaluate", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.recall),
        reranker_dir=lambda wildcards, input: loadable(input.reranker),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
        out_dir=lambda wildcards, output: Path(output.negatives).parent,
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/ablations/{wildcards.study}/{wildcards.variant}/teacher_seed{wildcards.seed}",
    wildcard_constraints:
        study="|".join(ABLATIONS) or "none",
        variant=ablation_variants("distill"),
        seed=r"\d+",
    resources:
        **rule_resources("distill_data"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.distill_data --stage seed {wildcards.seed:q} --stage model_dir {params.model_dir:q}"
        " --stage reranker_dir {params.reranker_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage cache_dir {params.cache_dir:q} --stage out_dir {params.out_dir:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} > {log:q} 2>&1"


rule ablation_distill:
    """A distillation variant for one seed: the seed's `distill_from` model continued on its teacher table."""
    input:
        model=lambda wildcards: ablation_model(wildcards, ablation_variant(wildcards.study, wildcards.variant).distill_from),
        negatives=rules.ablation_distill_data.output.negatives,
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.distill.train.source, "queries"),
    output:
        model=directory(stage_output("ablations/{study}/{variant}/seed{seed}")),
    log:
        f"{LOGS}/ablation_{{study}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ablation_{{study}}_{{variant}}_seed{{seed}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"recipe.ablations.{wildcards.study}.variants."
                                                 f"{split_judged_variant(wildcards.variant)[0]}",
                                                 "recipe.distill.train", "recipe.embedding", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/ablations/{wildcards.study}/{wildcards.variant}/seed{wildcards.seed}",
        log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/ablations/{wildcards.study}/{wildcards.variant}/seed{wildcards.seed}",
        launcher=launcher("distill"),
    wildcard_constraints:
        study="|".join(ABLATIONS) or "none",
        variant=ablation_variants("distill"),
        seed=r"\d+",
    resources:
        **rule_resources("distill"),
    conda:
        "../../envs/train.yaml"
    shell:
        "{params.launcher} -m uniembed.stages.train --stage section ablations --stage name {wildcards.study:q}/{wildcards.variant:q}"
        " --stage seed {wildcards.seed:q} --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage hard_negatives {input.negatives:q} --stage out_dir {output.model:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"


rule ablation_table:
    """A study's tables (mean ± sd over seeds), values.json and figures."""
    input:
        scores=lambda wildcards: ablation_scores(wildcards.study)[0],
        shared=lambda wildcards: list(ablation_scores(wildcards.study)[1].values()),
        quality=lambda wildcards: [f"{d}/{f}" for dirs in judge_study_quality(wildcards.study).values() for d in dirs
                                   for f in ("judge_quality.json", "filter_summary.json")],
    output:
        values=f"{RUN_DIR}/ablations/{{study}}/values.json",
        figure=report(f"{RUN_DIR}/ablations/{{study}}/figure.png", caption="../report/ablation.rst",
                      category="Figures", subcategory="Ablations"),
        curves=report(f"{RUN_DIR}/ablations/{{study}}/training_curves.png", caption="../report/ablation_curves.rst",
                      category="Figures", subcategory="Ablations"),
    log:
        f"{LOGS}/ablation_table_{{study}}.log",
    params:
        settings=lambda wildcards: rule_settings(f"recipe.ablations.{wildcards.study}"),
        scores=lambda wildcards, input: json.dumps(list(input.scores)),
        shared=lambda wildcards: json.dumps(ablation_scores(wildcards.study)[1]),
        quality=lambda wildcards: json.dumps(judge_study_quality(wildcards.study)),
        summaries=lambda wildcards: json.dumps([f"{ABLATION_MODELS[ablation_tag(wildcards.study, v, seed)]}/training_summary.json"
                                                for v in STUDY_VARIANTS[wildcards.study] for seed in ABLATIONS[wildcards.study].seeds
                                                if ABLATION_KINDS[wildcards.study, v] != "model"]),
        out_dir=lambda wildcards, output: Path(output.values).parent,
    wildcard_constraints:
        study="|".join(ABLATIONS) or "none",
    resources:
        **rule_resources("tables"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.ablation_table --stage name {wildcards.study:q} --stage scores {params.scores:q}"
        " --stage shared {params.shared:q} --stage quality {params.quality:q} --stage summaries {params.summaries:q}"
        " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"


for _study in ABLATIONS:

    rule:
        """One study's target: its tables and every run they need."""
        name:
            f"ablation_{_study}"
        input:
            f"{RUN_DIR}/ablations/{_study}/values.json",


rule ablations:
    """Every ablation study of the recipe (U-MARVEL Table 13, UniME-V2 Tables 4 and 6 on the embedded default)."""
    input:
        [f"{RUN_DIR}/ablations/{study}/values.json" for study in ABLATIONS],
