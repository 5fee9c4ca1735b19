# Evaluation (docs/evaluation.md): M-BEIR local/global + MMEB for one model tag.
# `zero_shot` is the base model; every training stage adds a tag (EVAL_MODELS in common.smk).


rule evaluate:
    """One model's scores: M-BEIR local / global Recall@k and MMEB P@1 (U-MARVEL Tables 7/14, UniME-V2 Table 1)."""
    input:
        model=lambda wildcards: model_of_tag(wildcards.tag),
        curated=expand(curated("{source}", "queries"), source=EVAL_SOURCES + ZEROSHOT_SOURCES),
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
        settings=lambda wildcards: rule_settings("recipe.embedding", "recipe.evaluate", "recipe.device",
                                                 base_model="model" if wildcards.tag == "zero_shot" else None,
                                                 ignore=("mieb",)),
        model_dir=lambda wildcards, input: loadable(input.model),
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        curated_dir=lambda wildcards, input: Path(input.curated[0]).parents[1],
        cache_dir=f"{RUN_DIR}/cache/embeddings",
    wildcard_constraints:
        tag="|".join([*EVAL_MODELS, *VISME_TRAINED, *ABLATION_MODELS]),
    resources:
        **rule_resources("evaluate"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.evaluate --stage tag {wildcards.tag:q} --stage model_dir {params.model_dir:q}"
        " --stage curated_dir {params.curated_dir:q} --stage cache_dir {params.cache_dir:q}"
        " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"


rule evaluate_mieb:
    """One model on the MIEB-style categories of the synthetic world (MIEB Table 2 layout; docs/evaluation.md):
    retrieval, clustering, zero-shot, linear probe, compositionality, multiple choice, visual STS."""
    input:
        model=lambda wildcards: model_of_tag(wildcards.tag),
    output:
        scores=f"{RUN_DIR}/eval/{{tag}}/mieb.parquet",
        csv=f"{RUN_DIR}/eval/{{tag}}/mieb.csv",
        tables=f"{RUN_DIR}/eval/{{tag}}/mieb.md",
        latex=f"{RUN_DIR}/eval/{{tag}}/mieb.tex",
    log:
        f"{LOGS}/evaluate_mieb_{{tag}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_mieb_{{tag}}.tsv"
    params:
        settings=lambda wildcards: rule_settings("recipe.embedding", "recipe.device",
                                                 base_model="model" if wildcards.tag == "zero_shot" else None),
        code=code_version("evaluate.mieb", "evaluate.tables", "data.synthetic.world", "stages.evaluate_world",
                          "stages.evaluate"),
        model_dir=lambda wildcards, input: loadable(input.model),
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        suite="mieb",
    wildcard_constraints:
        tag="|".join([*EVAL_MODELS, *VISME_TRAINED, *ABLATION_MODELS]),
    resources:
        **rule_resources("evaluate_mieb"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.evaluate_world --stage suite {params.suite:q} --stage tag {wildcards.tag:q}"
        " --stage model_dir {params.model_dir:q}"
        " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"


rule tables:
    """The per-stage tables (U-MARVEL Table 13 layout: one column per evaluated model, DAG order; then the
    recall-then-rerank columns, U-MARVEL+) and the report's figures."""
    input:
        scores=expand(f"{RUN_DIR}/eval/{{tag}}/scores.parquet", tag=[*EVAL_MODELS, *RERANK_TAGS]) + MIEB_SCORES,
        models=TRAINED_MODELS,
        rerankers=[stage_output(f"reranker_{r}") for r in RERANKERS],
        published=PUBLISHED,
    output:
        markdown=f"{RUN_DIR}/tables/per_stage.md",
        latex=f"{RUN_DIR}/tables/per_stage.tex",
        papers=report(f"{RUN_DIR}/tables/papers.md", caption="../report/papers.rst", category="Tables"),
        papers_latex=f"{RUN_DIR}/tables/papers.tex",
        csv=report(f"{RUN_DIR}/tables/per_stage.csv", caption="../report/per_stage_table.rst", category="Tables"),
        figure=report(f"{RUN_DIR}/tables/per_stage.png", caption="../report/per_stage_figure.rst", category="Figures"),
        temperature=report(f"{RUN_DIR}/tables/temperature.png", caption="../report/temperature.rst",
                           category="Figures"),
        curves=report(f"{RUN_DIR}/tables/training_curves.png", caption="../report/training_curves.rst",
                      category="Figures"),
    log:
        f"{LOGS}/tables.log",
    params:
        out_dir=lambda wildcards, output: Path(output.markdown).parent,
        published=lambda wildcards, input: json.dumps(list(input.published)),
        scores=lambda wildcards, input: json.dumps(list(input.scores)),
        summaries=lambda wildcards, input: json.dumps([f"{m}/training_summary.json"
                                                       for m in [*input.models, *input.rerankers]]),
    resources:
        **rule_resources("tables"),
    conda:
        "../../envs/eval.yaml"
    shell:
        "python -m uniembed.stages.tables --stage scores {params.scores:q} --stage summaries {params.summaries:q}"
        " --stage published {params.published:q}"
        " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"
