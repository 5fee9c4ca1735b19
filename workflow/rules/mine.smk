# Hard-negative mining (docs/hard-negatives.md): mine candidates with an embedder, score them with
# an MLLM judge (when the recipe has a `judge` section: UniME-V2), filter false negatives and
# select hard negatives (U-MARVEL filters on the mined similarity, without a judge).


MINE_PARTS = int(STAGE_CONFIG.recipe.mine.get("parts") or 1) if MINING else 1


rule mine:
    """Every training query's top_k candidates below delta, positives removed (UniME-V2 eq. 1); with
    recipe.mine.parts N > 1, mined from the cache shards the N mine_encode_part jobs encoded (each verified)."""
    input:
        model=lambda wildcards: STAGE_CONFIG.recipe.mine.get("checkpoint") or EVAL_MODELS[STAGE_CONFIG.recipe.mine["from"]],
        curated=curated(STAGE_CONFIG.recipe.mine.source, "queries") if MINING else [],
        parts=expand(f"{RUN_DIR}/mining/encode_parts/part-{{part}}-of-{MINE_PARTS}.json",
                     part=range(MINE_PARTS)) if MINE_PARTS > 1 else [],
    output:
        mined=f"{RUN_DIR}/mining/mined.parquet",
        summary=f"{RUN_DIR}/mining/mined_summary.json",
    log:
        f"{LOGS}/mine.log",
    benchmark:
        f"{BENCHMARKS}/mine.tsv"
    params:
        settings=rule_settings("recipe.mine", "recipe.embedding", "recipe.evaluate.cache_dtype", "recipe.device"),
        # an external miner (recipe.mine.checkpoint): its files' sizes and times, so new weights at the path rerun it
        miner=json.dumps(model_identity(OmegaConf.create({"path": STAGE_CONFIG.recipe.mine.checkpoint})), sort_keys=True)
        if MINING and STAGE_CONFIG.recipe.mine.get("checkpoint") else "",
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
        out_dir=lambda wildcards, output: Path(output.mined).parent,
        part_dir=f"{RUN_DIR}/mining/encode_parts",
        parts=MINE_PARTS,
    resources:
        **rule_resources("mine"),
    conda:
        "../../envs/mine.yaml"
    shell:
        "python -m uniembed.stages.mine --stage model_dir {params.model_dir:q}"
        " --stage curated_dir {params.curated_dir:q} --stage cache_dir {params.cache_dir:q}"
        " --stage out_dir {params.out_dir:q} --stage parts {params.parts:q} --stage part_dir {params.part_dir:q}"
        " > {log:q} 2>&1"


if MINE_PARTS > 1:

    rule mine_encode_part:
        """Part {wildcards.part} of the mine's encoding (recipe.mine.parts): whole shards of every cache entry."""
        input:
            model=rules.mine.input.model,
            curated=rules.mine.input.curated,
        output:
            part=f"{RUN_DIR}/mining/encode_parts/part-{{part}}-of-{MINE_PARTS}.json",
        log:
            f"{LOGS}/mine_encode_part{{part}}.log",
        benchmark:
            f"{BENCHMARKS}/mine_encode_part{{part}}.tsv"
        params:
            settings=rules.mine.params.settings,
            miner=rules.mine.params.miner,
            model_dir=lambda wildcards, input: loadable(input.model),
            curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
            cache_dir=rules.mine.params.cache_dir,
            out_dir=f"{RUN_DIR}/mining",
            part_dir=lambda wildcards, output: Path(output.part).parent,
            parts=MINE_PARTS,
        wildcard_constraints:
            part=r"\d+",
        resources:
            **rule_resources("mine_encode"),
        conda:
            "../../envs/mine.yaml"
        shell:
            "python -m uniembed.stages.mine --stage model_dir {params.model_dir:q}"
            " --stage curated_dir {params.curated_dir:q} --stage cache_dir {params.cache_dir:q}"
            " --stage out_dir {params.out_dir:q} --stage part {wildcards.part:q} --stage parts {params.parts:q}"
            " --stage part_dir {params.part_dir:q} > {log:q} 2>&1"


if JUDGING:
    JUDGE_PARTS = int(STAGE_CONFIG.recipe.judge.get("parts") or 1)

    rule judge:
        """The judge's P(Yes) for every mined candidate and positive (UniME-V2 §3.2), sharded and resumable; with
        recipe.judge.parts N > 1, the gather of the N judge_part jobs (every part verified, each shard once)."""
        input:
            mined=rules.mine.output.mined,
            curated=rules.mine.input.curated,
            parts=expand(f"{RUN_DIR}/mining/judge_parts/part-{{part}}-of-{JUDGE_PARTS}.parquet",
                         part=range(JUDGE_PARTS)) if JUDGE_PARTS > 1 else [],
            **JUDGE_INPUT,
        output:
            scores=f"{RUN_DIR}/mining/judge_scores.parquet",
        log:
            f"{LOGS}/judge.log",
        benchmark:
            f"{BENCHMARKS}/judge.tsv"
        params:
            settings=rule_settings("recipe.judge", base_model=None if SIMULATED_JUDGE else "judge_model"),
            out_dir=lambda wildcards, output: Path(output.scores).parent,
            curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
            shard_dir=f"{RUN_DIR}/checkpoints/judge_shards",
            part_dir=f"{RUN_DIR}/mining/judge_parts",
            parts=JUDGE_PARTS,
        resources:
            **rule_resources("judge" if JUDGE_PARTS == 1 else "judge_gather"),
        conda:
            "../../envs/judge.yaml"
        shell:
            "python -m uniembed.stages.judge --stage curated_dir {params.curated_dir:q}"
            " --stage out_dir {params.out_dir:q} --stage checkpoint_dir {params.shard_dir:q}"
            " --stage parts {params.parts:q} --stage part_dir {params.part_dir:q} > {log:q} 2>&1"

    if JUDGE_PARTS > 1:

        rule judge_part:
            """Part {wildcards.part} of the judge's pairs (recipe.judge.parts): whole shards, its own engine."""
            input:
                mined=rules.mine.output.mined,
                curated=rules.mine.input.curated,
                **JUDGE_INPUT,
            output:
                part=f"{RUN_DIR}/mining/judge_parts/part-{{part}}-of-{JUDGE_PARTS}.parquet",
            log:
                f"{LOGS}/judge_part{{part}}.log",
            benchmark:
                f"{BENCHMARKS}/judge_part{{part}}.tsv"
            params:
                settings=rules.judge.params.settings,
                out_dir=lambda wildcards, input: Path(input.mined).parent,
                curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
                shard_dir=f"{RUN_DIR}/checkpoints/judge_shards",
                part_dir=lambda wildcards, output: Path(output.part).parent,
                parts=JUDGE_PARTS,
            wildcard_constraints:
                part=r"\d+",
            resources:
                **rule_resources("judge"),
            conda:
                "../../envs/judge.yaml"
            shell:
                "python -m uniembed.stages.judge --stage curated_dir {params.curated_dir:q}"
                " --stage out_dir {params.out_dir:q} --stage checkpoint_dir {params.shard_dir:q}"
                " --stage part {wildcards.part:q} --stage parts {params.parts:q} --stage part_dir {params.part_dir:q}"
                " > {log:q} 2>&1"


rule filter:
    """One named filter of recipe.filters (UniME-V2 on judge scores, U-MARVEL on similarity)."""
    input:
        mined=rules.mine.output.mined,
        scores=lambda wildcards: [f"{RUN_DIR}/mining/judge_scores.parquet"]
        if needs_judge_scores(STAGE_CONFIG.recipe.filters[wildcards.filter]) else [],
        curated=rules.mine.input.curated,
    output:
        negatives=f"{RUN_DIR}/mining/filters/{{filter}}/hard_negatives.parquet",
        summary=f"{RUN_DIR}/mining/filters/{{filter}}/filter_summary.json",
    log:
        f"{LOGS}/filter_{{filter}}.log",
    params:
        settings=lambda wildcards: rule_settings(f"recipe.filters.{wildcards.filter}", "recipe.judge.max_failed_fraction"),
        out_dir=lambda wildcards, output: Path(output.negatives).parent,
        mining_dir=lambda wildcards, input: Path(input.mined).parent,
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
    wildcard_constraints:
        filter="|".join(FILTERS) or "none",
    resources:
        **rule_resources("filter"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.filter --stage name {wildcards.filter:q} --stage curated_dir {params.curated_dir:q}"
        " --stage mining_dir {params.mining_dir:q} --stage out_dir {params.out_dir:q} > {log:q} 2>&1"


rule judge_quality:
    """The synthetic world's truth against the judge's scores and a judge-based filter's removals."""
    input:
        negatives=f"{RUN_DIR}/mining/filters/{{filter}}/hard_negatives.parquet",
        scores=f"{RUN_DIR}/mining/judge_scores.parquet",
        truth=generated_data(),
    output:
        quality=f"{RUN_DIR}/mining/filters/{{filter}}/judge_quality.json",
        report=f"{RUN_DIR}/mining/filters/{{filter}}/judge_quality.md",
        figure=report(f"{RUN_DIR}/mining/filters/{{filter}}/judge_scores.png", caption="../report/judge_scores.rst",
                      category="Figures", subcategory="Judge"),
    log:
        f"{LOGS}/judge_quality_{{filter}}.log",
    params:
        settings=lambda wildcards: rule_settings(f"recipe.filters.{wildcards.filter}"),
        mining_dir=lambda wildcards, input: Path(input.scores).parent,
        out_dir=lambda wildcards, output: Path(output.quality).parent,
        truth=lambda wildcards, input: f"{input.truth}/truth/mbeir_truth.parquet",
    wildcard_constraints:
        filter="|".join(FILTERS) or "none",
    resources:
        **rule_resources("judge_quality"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.judge_quality --stage name {wildcards.filter:q} --stage mining_dir {params.mining_dir:q}"
        " --stage truth {params.truth:q} --stage out_dir {params.out_dir:q} > {log:q} 2>&1"
