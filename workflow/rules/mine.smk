# Hard-negative mining (design.md §3.3-3.5): mine candidates with an embedder, score them with
# an MLLM judge (when the recipe has a `judge` section: UniME-V2), filter false negatives and
# select hard negatives (U-MARVEL filters on the mined similarity, without a judge).


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
        settings=rule_settings("recipe.mine", "recipe.embedding", "recipe.evaluate.cache_dtype", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
        out_dir=lambda wildcards, output: Path(output.mined).parent,
    resources:
        **rule_resources("mine"),
    conda:
        "../../envs/mine.yaml"
    shell:
        "python -m uniembed.stages.mine --stage model_dir {params.model_dir:q}"
        " --stage curated_dir {params.curated_dir:q} --stage cache_dir {params.cache_dir:q}"
        " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"


if JUDGING:

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
            settings=rule_settings("recipe.judge", base_model=True),
            out_dir=lambda wildcards, output: Path(output.scores).parent,
            curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
            shard_dir=f"{RUN_DIR}/checkpoints/judge_shards",
        resources:
            **rule_resources("judge"),
        conda:
            "../../envs/judge.yaml"
        shell:
            "python -m uniembed.stages.judge --stage curated_dir {params.curated_dir:q}"
            " --stage out_dir {params.out_dir:q} --stage checkpoint_dir {params.shard_dir:q} > {log:q} 2>&1"


rule filter:
    input:
        mined=rules.mine.output.mined,
        scores=f"{RUN_DIR}/mining/judge_scores.parquet" if JUDGING else [],
        curated=rules.mine.input.curated,
        truth=synthetic_truth(),
    output:
        **filter_outputs(),
    log:
        f"{LOGS}/filter.log",
    params:
        settings=rule_settings("recipe.filter", "recipe.judge.max_failed_fraction"),
        out_dir=lambda wildcards, output: Path(output.negatives).parent,
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        truth=lambda wildcards, input: f"{input.truth}/truth/mbeir_truth.parquet" if input.truth else "",
    resources:
        **rule_resources("filter"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.filter --stage curated_dir {params.curated_dir:q}"
        " --stage out_dir {params.out_dir:q} --stage truth {params.truth:q} > {log:q} 2>&1"
