# Evaluation (design.md §3.9): M-BEIR local/global + MMEB for one model tag.
# `zero_shot` is the base model without adapter; later stages add tags with their adapters.


rule evaluate:
    input:
        built_model(),
        curated=expand(curated("{source}", "queries"), source=EVAL_SOURCES),
    output:
        scores=f"{RUN_DIR}/eval/{{tag}}/scores.parquet",
        csv=f"{RUN_DIR}/eval/{{tag}}/scores.csv",
        tables=f"{RUN_DIR}/eval/{{tag}}/tables.md",
        latex=f"{RUN_DIR}/eval/{{tag}}/tables.tex",
    log:
        f"{LOGS}/evaluate_{{tag}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_{{tag}}.tsv"
    params:
        args=STAGE_ARGS,
        model=lambda wildcards: EVAL_MODELS[wildcards.tag]["model_dir"],
        adapter=lambda wildcards: EVAL_MODELS[wildcards.tag]["adapter_dir"] or "null",
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        curated_dir=lambda wildcards, input: Path(input.curated[0]).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
    wildcard_constraints:
        tag="|".join(EVAL_MODELS),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.evaluate {params.args} stage.tag={wildcards.tag} stage.model_dir={params.model}"
        " stage.adapter_dir={params.adapter} stage.curated_dir={params.curated_dir} stage.cache_dir={params.cache_dir}"
        " stage.out_dir={params.out_dir} > {log} 2>&1"
