# Ablation studies (recipe.ablations, e.g. UniME-V2 Tables 4 and 6): every variant trained from the
# hard-negative stage's starting model once per seed, evaluated like every stage, and summarised as
# mean ± sd. Not part of `all`: run `snakemake ablation_<study>` (e.g. ablation_unime_v2).


rule ablation_train:
    input:
        model=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.train_hn["from"]],
        negatives=lambda wildcards: filter_outputs(
            STAGE_CONFIG.recipe.train_hn.objectives[ablation_variant(wildcards.study, wildcards.variant).base].negatives
        )["negatives"],
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.mine.source, "queries"),
    output:
        model=directory(stage_output("ablations/{study}/{variant}/seed{seed}")),
    log:
        f"{LOGS}/ablation_{{study}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ablation_{{study}}_{{variant}}_seed{{seed}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"recipe.ablations.{wildcards.study}.variants.{wildcards.variant}",
                                                 f"recipe.train_hn.objectives.{ablation_variant(wildcards.study, wildcards.variant).base}",
                                                 "recipe.embedding", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/ablations/{wildcards.study}/{wildcards.variant}/seed{wildcards.seed}",
        log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/ablations/{wildcards.study}/{wildcards.variant}/seed{wildcards.seed}",
        launcher=launcher("train_hn"),
    wildcard_constraints:
        study="|".join(ABLATIONS) or "none",
        variant="[A-Za-z0-9_]+",
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


rule ablation_table:
    input:
        scores=lambda wildcards: [f"{RUN_DIR}/eval/{ablation_tag(wildcards.study, v, seed)}/scores.parquet"
                                  for v in ABLATIONS[wildcards.study].variants for seed in ABLATIONS[wildcards.study].seeds],
    output:
        values=f"{RUN_DIR}/ablations/{{study}}/values.json",
        figure=report(f"{RUN_DIR}/ablations/{{study}}/figure.png", caption="../report/ablation.rst",
                      category="Figures", subcategory="Ablations"),
    log:
        f"{LOGS}/ablation_table_{{study}}.log",
    params:
        settings=lambda wildcards: rule_settings(f"recipe.ablations.{wildcards.study}"),
        scores=lambda wildcards, input: json.dumps(list(input.scores)),
        out_dir=lambda wildcards, output: Path(output.values).parent,
    wildcard_constraints:
        study="|".join(ABLATIONS) or "none",
    resources:
        **rule_resources("tables"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.ablation_table --stage name {wildcards.study:q} --stage scores {params.scores:q}"
        " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"


for _study in ABLATIONS:

    rule:
        name:
            f"ablation_{_study}"
        input:
            f"{RUN_DIR}/ablations/{_study}/values.json",
