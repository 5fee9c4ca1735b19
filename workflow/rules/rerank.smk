# Generative rerankers (U-MARVEL App. C eq. 3 pointwise; UniME-V2-Reranker pairwise + listwise): LoRA on
# the base (instruct) model, vision frozen, trained on the recall model's retrieval over the training
# queries (the mined table), one job per recipe.rerank.rerankers entry -> results/<run>/models/reranker_<name>.


rule train_reranker:
    input:
        model=MODEL_DIR,
        retrieval=rules.mine.output.mined,
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.rerank.rerankers[wildcards.reranker].source, "queries"),
    output:
        model=directory(stage_output("reranker_{reranker}")),
    log:
        f"{LOGS}/reranker_{{reranker}}.log",
    benchmark:
        f"{BENCHMARKS}/reranker_{{reranker}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"recipe.rerank.rerankers.{wildcards.reranker}", "recipe.seed",
                                                 "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/reranker_{wildcards.reranker}",
        log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/reranker_{wildcards.reranker}",
        launcher=launcher("train_reranker"),
    wildcard_constraints:
        reranker="|".join(RERANKERS) or "none",
    resources:
        **rule_resources("train_reranker"),
    conda:
        "../../envs/train.yaml"
    shell:
        "{params.launcher} -m uniembed.stages.train --stage section rerank --stage name {wildcards.reranker:q}"
        " --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage retrieval {input.retrieval:q} --stage out_dir {output.model:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"
