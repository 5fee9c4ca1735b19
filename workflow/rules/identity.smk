# Visual identity (VisME supplement; docs/evaluation.md "Visual identity"): the identity meta-tasks for every model
# tag (Table 6 layout), the t-SNE of identities (Figure 7) and the candidate-pool scaling study (Table 7). Not part of
# `all`: run `snakemake visme` (recipe.visme names the models compared and the pool sizes).

VISME = STAGE_CONFIG.recipe.get("visme")
if VISME and (unknown := [tag for tag in VISME.models if tag not in EVAL_MODELS]):
    raise ValueError(f"recipe.visme.models: {unknown} are not model tags of this run; expected some of "
                     f"{list(EVAL_MODELS)}")
VISME_MODELS = {tag: model_of_tag(tag) for tag in VISME.models} if VISME else {}


use rule evaluate_mieb as evaluate_identity with:
    output:
        scores=f"{RUN_DIR}/eval/{{tag}}/identity.parquet",
        csv=f"{RUN_DIR}/eval/{{tag}}/identity.csv",
        tables=f"{RUN_DIR}/eval/{{tag}}/identity.md",
        latex=f"{RUN_DIR}/eval/{{tag}}/identity.tex",
    log:
        f"{LOGS}/evaluate_identity_{{tag}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_identity_{{tag}}.tsv"
    params:
        settings=lambda wildcards: rule_settings("recipe.embedding", "recipe.device",
                                                 base_model="model" if wildcards.tag == "zero_shot" else None),
        code=code_version("evaluate.identity", "evaluate.tables", "data.synthetic.identity",
                          "data.synthetic.identity_tasks", "data.synthetic.world", "stages.evaluate_world",
                          "stages.evaluate"),
        model_dir=lambda wildcards, input: loadable(input.model),
        out_dir=lambda wildcards, output: Path(output.scores).parent,
        suite="identity",
    resources:
        **rule_resources("evaluate_identity"),


if VISME:

    rule identity_report:
        """VisME Table 6 layout for every model tag, and the t-SNE of identities before and after training (Figure 7)
        with the silhouette and k-means NMI of each model's clusters."""
        input:
            scores=expand(f"{RUN_DIR}/eval/{{tag}}/identity.parquet", tag=EVAL_MODELS),
            models=list(VISME_MODELS.values()),
        output:
            markdown=f"{RUN_DIR}/tables/identity.md",
            latex=f"{RUN_DIR}/tables/identity.tex",
            figure=report(f"{RUN_DIR}/tables/identity_tsne.png", caption="../report/identity_tsne.rst",
                          category="Visual identity"),
            quality=f"{RUN_DIR}/tables/identity_tsne.json",
        log:
            f"{LOGS}/identity_report.log",
        benchmark:
            f"{BENCHMARKS}/identity_report.tsv"
        params:
            settings=rule_settings("recipe.embedding", "recipe.device", "recipe.visme", "recipe.seed"),
            code=code_version("evaluate.identity_figures", "data.synthetic.identity", "data.synthetic.identity_tasks",
                              "stages.identity_report"),
            scores=lambda wildcards, input: json.dumps(list(input.scores)),
            models=json.dumps({tag: loadable(path) for tag, path in VISME_MODELS.items()}),
            out_dir=lambda wildcards, output: Path(output.markdown).parent,
        resources:
            **rule_resources("identity_report"),
        conda:
            "../../envs/eval.yaml"
        shell:
            "python -m uniembed.stages.identity_report --stage scores {params.scores:q} --stage models {params.models:q}"
            " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"

    rule pool_scaling:
        """The identity meta-tasks against candidate pools grown with generated distractors (VisME Table 7): Recall@1
        and its relative drop per task and model, search rate and peak memory per size."""
        input:
            models=list(VISME_MODELS.values()),
        output:
            scores=f"{RUN_DIR}/tables/pool_scaling.parquet",
            markdown=f"{RUN_DIR}/tables/pool_scaling.md",
            latex=f"{RUN_DIR}/tables/pool_scaling.tex",
            figure=report(f"{RUN_DIR}/tables/pool_scaling.png", caption="../report/pool_scaling.rst",
                          category="Visual identity"),
        log:
            f"{LOGS}/pool_scaling.log",
        benchmark:
            f"{BENCHMARKS}/pool_scaling.tsv"
        params:
            settings=rule_settings("recipe.embedding", "recipe.device", "recipe.visme", "recipe.evaluate.cache_dtype"),
            code=code_version("evaluate.pool_scaling", "data.synthetic.identity", "data.synthetic.identity_tasks",
                              "stages.pool_scaling"),
            models=json.dumps({tag: loadable(path) for tag, path in VISME_MODELS.items()}),
            cache_dir=f"{RUN_DIR}/cache/embeddings",
            out_dir=lambda wildcards, output: Path(output.scores).parent,
        resources:
            **rule_resources("pool_scaling"),
        conda:
            "../../envs/eval.yaml"
        shell:
            "python -m uniembed.stages.pool_scaling --stage models {params.models:q} --stage cache_dir {params.cache_dir:q}"
            " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"

    rule visme:
        """Every output of the visual-identity study."""
        input:
            rules.identity_report.output,
            rules.pool_scaling.output,
