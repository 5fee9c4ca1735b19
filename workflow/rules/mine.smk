# Hard-negative mining (design.md §3.3-3.5): mine candidates with an embedder, score them with
# an MLLM judge, filter false negatives and select hard negatives.


rule mine:
    input:
        model=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.mine["from"]],
        curated=curated(STAGE_CONFIG.recipe.mine.source, "queries") if MINING else [],
    output:
        mined=f"{RUN_DIR}/mining/mined.parquet",
        summary=f"{RUN_DIR}/mining/mined_summary.json",
    log:
        f"{LOGS}/mine.log",
    benchmark:
        f"{BENCHMARKS}/mine.tsv"
    params:
        args=STAGE_ARGS,
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
        out_dir=lambda wildcards, output: Path(output.mined).parent,
    resources:
        **rule_resources("mine"),
    conda:
        "../../envs/mine.yaml"
    shell:
        "python -m uniembed.stages.mine {params.args} stage.model_dir={params.model_dir}"
        " stage.curated_dir={params.curated_dir} stage.cache_dir={params.cache_dir} stage.out_dir={params.out_dir}"
        " > {log} 2>&1"


rule judge:
    input:
        mined=rules.mine.output.mined,
        curated=rules.mine.input.curated,
    output:
        scores=f"{RUN_DIR}/mining/judge_scores.parquet",
    log:
        f"{LOGS}/judge.log",
    benchmark:
        f"{BENCHMARKS}/judge.tsv"
    params:
        args=STAGE_ARGS,
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        shard_dir=f"{RUN_DIR}/checkpoints/judge_shards",
    resources:
        **rule_resources("judge"),
    conda:
        "../../envs/judge.yaml"
    shell:
        "python -m uniembed.stages.judge {params.args} stage.curated_dir={params.curated_dir}"
        " stage.out_dir={params.out_dir} stage.checkpoint_dir={params.shard_dir} > {log} 2>&1"


rule filter:
    input:
        mined=rules.mine.output.mined,
        scores=rules.judge.output.scores,
        curated=rules.mine.input.curated,
        truth=synthetic_truth(),
    output:
        **filter_outputs(),
    log:
        f"{LOGS}/filter.log",
    params:
        args=STAGE_ARGS,
        out_dir=lambda wildcards, output: Path(output.negatives).parent,
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        truth=lambda wildcards, input: f"{input.truth}/truth/mbeir_truth.parquet" if input.truth else "null",
    resources:
        **rule_resources("filter"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.filter {params.args} stage.curated_dir={params.curated_dir}"
        " stage.out_dir={params.out_dir} stage.truth={params.truth} > {log} 2>&1"
