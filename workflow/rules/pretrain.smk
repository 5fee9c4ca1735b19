# Progressive transition (U-MARVEL §3.1.3): recipe.pretrain.order chains the stages; each
# starts from the previous stage's merged model. Checkpoints live outside the output directory
# so a killed or requeued job resumes instead of restarting; the log is appended to, so it keeps
# every execution of a requeued job.


rule pretrain:
    """One stage of the progressive transition (U-MARVEL §3.1.3), from the previous stage's model."""
    input:
        model=lambda wildcards: pretrain_start(wildcards.stage),
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.pretrain.stages[wildcards.stage].source, "queries"),
    output:
        model=directory(stage_output("pretrain_{stage}")),
    log:
        f"{LOGS}/pretrain_{{stage}}.log",
    benchmark:
        f"{BENCHMARKS}/pretrain_{{stage}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"recipe.pretrain.stages.{wildcards.stage}", "recipe.embedding",
                                                 "recipe.seed", "recipe.device",
                                                 base_model="model" if PRETRAIN_STAGES.index(wildcards.stage) == 0 else None),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/pretrain_{wildcards.stage}",
        log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/pretrain_{wildcards.stage}",
        launcher=launcher("pretrain"),
    wildcard_constraints:
        stage="|".join(PRETRAIN_STAGES) or "none",
    resources:
        **rule_resources("pretrain"),
    conda:
        "../../envs/train.yaml"
    shell:
        "{params.launcher} -m uniembed.stages.train --stage section pretrain --stage name {wildcards.stage:q}"
        " --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage out_dir {output.model:q} --stage checkpoint_dir {params.checkpoint_dir:q}"
        " --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"
