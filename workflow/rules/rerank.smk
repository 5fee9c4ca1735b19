# Generative rerankers (U-MARVEL App. C eq. 3 pointwise; UniME-V2-Reranker pairwise + listwise): LoRA on the
# instruct model recipe.rerank.base names (the embedded default: the judge's), vision frozen, trained on the
# recall model's retrieval over the training queries (the mined table; U-MARVEL) or on the judge-filtered hard
# negatives of the filter the reranker's `negatives` names (UniME-V2), one job per recipe.rerank.rerankers
# entry -> results/<run>/models/reranker_<name>.


rule train_reranker:
    """A generative reranker: pointwise (U-MARVEL App. C) or pairwise + listwise (UniME-V2 §3.4)."""
    input:
        model=MODEL_DIRS[RERANK_BASE],
        retrieval=lambda wildcards: reranker_retrieval(wildcards.reranker),
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
        model_dir=LOADABLE[RERANK_BASE],
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


RERANK_PARTS = int(STAGE_CONFIG.recipe.rerank.scoring.get("parts") or 1) if RERANK_TAGS else 1


rule rerank:
    """Recall-then-rerank evaluation (U-MARVEL+): the recall model's top-k of every evaluation query scored
    by the reranker's P(Yes) through the judge's backends, fused with the recall score (alpha: configured,
    or chosen on a held-out split with recipe.rerank.choose_alpha); with recipe.rerank.scoring.parts N > 1,
    the gather of the N rerank_part jobs (every part verified, each shard or chunk of lists once)."""
    input:
        recall=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.rerank.recall],
        recall_scores=lambda wildcards: f"{RUN_DIR}/eval/{STAGE_CONFIG.recipe.rerank.recall}/scores.parquet",
        reranker=lambda wildcards: stage_output(f"reranker_{RERANK_TAGS[wildcards.tag]}"),
        curated=expand(curated("{source}", "candidates"), source=EVAL_SOURCES),
        parts=lambda wildcards: expand(f"{RUN_DIR}/eval/{wildcards.tag}/rerank_parts/part-{{part}}-of-{RERANK_PARTS}.parquet",
                                       part=range(RERANK_PARTS)) if RERANK_PARTS > 1 else [],
    output:
        scores=f"{RUN_DIR}/eval/{{tag}}/scores.parquet",
        csv=f"{RUN_DIR}/eval/{{tag}}/scores.csv",
        tables=f"{RUN_DIR}/eval/{{tag}}/tables.md",
        latex=f"{RUN_DIR}/eval/{{tag}}/tables.tex",
        pairs=f"{RUN_DIR}/eval/{{tag}}/rerank_scores.parquet",
        summary=f"{RUN_DIR}/eval/{{tag}}/rerank_summary.json",
    log:
        f"{LOGS}/rerank_{{tag}}.log",
    benchmark:
        f"{BENCHMARKS}/rerank_{{tag}}.tsv"
    params:
        settings=lambda wildcards: rerank_settings(wildcards.tag),
        model_dir=lambda wildcards, input: loadable(input.recall),
        reranker_dir=lambda wildcards, input: loadable(input.reranker),
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        curated_dir=lambda wildcards, input: Path(input.curated[0]).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
        checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/rerank/{wildcards.tag}",
        part_dir=lambda wildcards: f"{RUN_DIR}/eval/{wildcards.tag}/rerank_parts",
        parts=RERANK_PARTS,
    wildcard_constraints:
        tag="|".join(re.escape(t) for t in RERANK_TAGS) or "none",
    resources:
        **rule_resources("rerank" if RERANK_PARTS == 1 else "rerank_gather"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.rerank --stage tag {wildcards.tag:q} --stage model_dir {params.model_dir:q}"
        " --stage reranker_dir {params.reranker_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage cache_dir {params.cache_dir:q} --stage out_dir {params.out_dir:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} --stage parts {params.parts:q}"
        " --stage part_dir {params.part_dir:q} > {log:q} 2>&1"


if RERANK_PARTS > 1:

    rule rerank_part:
        """Part {wildcards.part} of a rerank's pairs or lists (recipe.rerank.scoring.parts): its own engine."""
        input:
            recall=rules.rerank.input.recall,
            recall_scores=rules.rerank.input.recall_scores,
            reranker=rules.rerank.input.reranker,
            curated=rules.rerank.input.curated,
        output:
            part=f"{RUN_DIR}/eval/{{tag}}/rerank_parts/part-{{part}}-of-{RERANK_PARTS}.parquet",
        log:
            f"{LOGS}/rerank_{{tag}}_part{{part}}.log",
        benchmark:
            f"{BENCHMARKS}/rerank_{{tag}}_part{{part}}.tsv"
        params:
            settings=lambda wildcards: rerank_settings(wildcards.tag),
            model_dir=lambda wildcards, input: loadable(input.recall),
            reranker_dir=lambda wildcards, input: loadable(input.reranker),
            out_dir=lambda wildcards: f"{RUN_DIR}/eval/{wildcards.tag}",
            curated_dir=lambda wildcards, input: Path(input.curated[0]).parents[1],
            cache_dir=f"{RUN_DIR}/cache/embeddings",
            checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/rerank/{wildcards.tag}",
            part_dir=lambda wildcards, output: Path(output.part).parent,
            parts=RERANK_PARTS,
        wildcard_constraints:
            tag="|".join(re.escape(t) for t in RERANK_TAGS) or "none",
            part=r"\d+",
        resources:
            **rule_resources("rerank"),
        conda:
            "../../envs/eval.yaml"
        shell:
            "python -m uniembed.stages.rerank --stage tag {wildcards.tag:q} --stage model_dir {params.model_dir:q}"
            " --stage reranker_dir {params.reranker_dir:q} --stage curated_dir {params.curated_dir:q}"
            " --stage cache_dir {params.cache_dir:q} --stage out_dir {params.out_dir:q}"
            " --stage checkpoint_dir {params.checkpoint_dir:q} --stage part {wildcards.part:q}"
            " --stage parts {params.parts:q} --stage part_dir {params.part_dir:q} > {log:q} 2>&1"


rule distill_data:
    """U-MARVEL's distillation teacher (§3.3): a seeded share of the training queries, the recall model's top
    candidates, the reranker's P(Yes) fused with the recall score -> a hard-negative-format table."""
    input:
        recall=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.distill["from"]],
        reranker=lambda wildcards: stage_output(f"reranker_{STAGE_CONFIG.recipe.distill.reranker}"),
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.mine.source, "candidates"),
    output:
        negatives=f"{RUN_DIR}/distill/hard_negatives.parquet",
        summary=f"{RUN_DIR}/distill/distill_summary.json",
        pairs=f"{RUN_DIR}/distill/rerank_scores.parquet",
    log:
        f"{LOGS}/distill_data.log",
    benchmark:
        f"{BENCHMARKS}/distill_data.tsv"
    params:
        settings=lambda wildcards: rule_settings("recipe.distill.fraction", "recipe.distill.seed", "recipe.distill.candidates",
                                                 "recipe.distill.alpha", "recipe.mine", "recipe.rerank.scoring",
                                                 "recipe.embedding", "recipe.evaluate", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.recall),
        reranker_dir=lambda wildcards, input: loadable(input.reranker),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
        out_dir=lambda wildcards, output: Path(output.negatives).parent,
        checkpoint_dir=f"{RUN_DIR}/checkpoints/distill_data",
    resources:
        **rule_resources("distill_data"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.distill_data --stage model_dir {params.model_dir:q}"
        " --stage reranker_dir {params.reranker_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage cache_dir {params.cache_dir:q} --stage out_dir {params.out_dir:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} > {log:q} 2>&1"


rule distill:
    """Continue the recall model on the teacher table with the distill objective (KL, learnable tau)."""
    input:
        model=lambda wildcards: EVAL_MODELS[STAGE_CONFIG.recipe.distill["from"]],
        negatives=rules.distill_data.output.negatives,
        curated=lambda wildcards: curated(STAGE_CONFIG.recipe.distill.train.source, "queries"),
    output:
        model=directory(stage_output("distill")),
    log:
        f"{LOGS}/distill.log",
    benchmark:
        f"{BENCHMARKS}/distill.tsv"
    params:
        settings=lambda wildcards: rule_settings("recipe.distill.train", "recipe.embedding", "recipe.seed", "recipe.device"),
        model_dir=lambda wildcards, input: loadable(input.model),
        curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
        checkpoint_dir=f"{RUN_DIR}/checkpoints/distill",
        log_dir=f"{RUN_DIR}/tensorboard/distill",
        launcher=launcher("distill"),
    resources:
        **rule_resources("distill"),
    conda:
        "../../envs/train.yaml"
    shell:
        "{params.launcher} -m uniembed.stages.train --stage section distill --stage name distill"
        " --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
        " --stage hard_negatives {input.negatives:q} --stage out_dir {output.model:q}"
        " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"
