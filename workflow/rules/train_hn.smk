# Hard-negative contrastive training (U-MARVEL §3.2.2, UniME-V2 eq. 2-4): one model per objective
# of recipe.train_hn, starting from `from` (the progressive-transition model), on the negatives of
# the filter it names; each is evaluated like every other stage (EVAL_MODELS: hn_<objective>).


rule train_hn:
    """One hard-negative objective trained from `train_hn.from` (U-MARVEL §3.2.2 or UniME-V2 eq. 2-4)."""
    input:
        model=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.train_hn["from"]],
        negatives=lambda wildcards: filter_outputs(STAGE_CONFIG.recipe.train_hn.objectives[wildcards.objective].negatives)["negatives"],
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.train_hn.objectives[wildcards.objective].source, "queries"),
    output:
        model=directory(stage_output("hn_{objective}")),
    log:
        f"{LOGS}/hn_{{objective}}.log",
    benchmark:
        f"{BENCHMARKS}/hn_{{objective}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"recipe.train_hn.objectives.{wildcards.objective}", "recipe.embedding",
                                                 "recipe.seed", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/hn_{wildcards.objective}",
        log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/hn_{wildcards.objective}",
        launcher=launcher("train_hn"),
    wildcard_constraints:
        objective="|".join(HN_OBJECTIVES) or "none",
    resources:
        **rule_resources("train_hn"),
    conda:
        "../../envs/train.yaml"
    shell:
        "{params.launcher} -m uniembed.stages.train --stage section train_hn --stage name {wildcards.objective:q}"
        " --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage hard_negatives {input.negatives:q} --stage out_dir {output.model:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"
