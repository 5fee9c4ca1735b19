# Visual identity (VisME supplement; docs/evaluation.md "Visual identity"): training for identity on the world's
# identity split (recipe.visme.train, one model per seed), the identity meta-tasks for every model tag (Table 6
# layout), the t-SNE of identities (Figure 7) and the candidate-pool scaling study (Table 7). Not part of `all`: run
# `snakemake visme` (recipe.visme names the models compared, the pool sizes and the training).

VISME = STAGE_CONFIG.recipe.get("visme")   # its model keys are checked by uniembed.workflow_checks.run_model_tags
VISME_MODELS = {tag: model_of_tag(tag) for tag in VISME.models} if VISME else {}
IDENTITY_TAGS = [*EVAL_MODELS, *VISME_TRAINED]   # every model the identity tables show


if _VISME_TRAIN:

    rule train_visme:
        """Training for identity (VisME): `recipe.visme.train.from` continued on the identity split, one model per seed,
        with each query's look-alikes as its hard negatives."""
        input:
            model=lambda wildcards: EVAL_MODELS[_VISME_TRAIN["from"]],
            curated=lambda wildcards: curated(_VISME_TRAIN.source, "queries"),
        output:
            model=directory(stage_output("visme/seed{seed}")),
        log:
            f"{LOGS}/visme_seed{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/visme_seed{{seed}}.tsv"
        params:
            settings=rule_settings("recipe.visme.train", "recipe.embedding", "recipe.device", ignore={"seeds"}),
            model_dir=lambda wildcards, input: loadable(input.model),
            curated_dir=lambda wildcards, input: Path(input.curated).parents[1],
            checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/visme/seed{wildcards.seed}",
            log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/visme/seed{wildcards.seed}",
            launcher=launcher("train_hn"),
        wildcard_constraints:
            seed="|".join(str(seed) for seed in _VISME_TRAIN.seeds),
        resources:
            **rule_resources("train_hn"),
        conda:
            "../../envs/train.yaml"
        shell:
            "{params.launcher} -m uniembed.stages.train --stage section visme --stage name identity"
            " --stage seed {wildcards.seed:q} --stage model_dir {params.model_dir:q} --stage curated_dir {params.curated_dir:q}"
            " --stage out_dir {output.model:q} --stage checkpoint_dir {params.checkpoint_dir:q}"
            " --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"


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
            scores=expand(f"{RUN_DIR}/eval/{{tag}}/identity.parquet", tag=IDENTITY_TAGS),
            models=list(VISME_MODELS.values()),
        output:
            markdown=f"{RUN_DIR}/tables/identity.md",
            latex=f"{RUN_DIR}/tables/identity.tex",
            figure=report(f"{RUN_DIR}/tables/identity_tsne.png", caption="../report/identity_tsne.rst",
                          category="Visual identity"),
            quality=f"{RUN_DIR}/tables/identity_tsne.json",
            training=f"{RUN_DIR}/tables/identity_training.json",
        log:
            f"{LOGS}/identity_report.log",
        benchmark:
            f"{BENCHMARKS}/identity_report.tsv"
        params:
            settings=rule_settings("recipe.embedding", "recipe.device", "recipe.visme", "recipe.seed", ignore={"train"}),
            code=code_version("evaluate.identity_training", "evaluate.identity_figures", "data.synthetic.identity",
                              "data.synthetic.identity_tasks", "stages.identity_report"),
            scores=lambda wildcards, input: json.dumps(list(input.scores)),
            training=json.dumps({"from": _VISME_TRAIN["from"], "trained": list(VISME_TRAINED)} if _VISME_TRAIN else None),
            models=json.dumps({tag: loadable(path) for tag, path in VISME_MODELS.items()}),
            out_dir=lambda wildcards, output: Path(output.markdown).parent,
        resources:
            **rule_resources("identity_report"),
        conda:
            "../../envs/eval.yaml"
        shell:
            "python -m uniembed.stages.identity_report --stage scores {params.scores:q} --stage models {params.models:q}"
            " --stage training {params.training:q}"
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
            settings=rule_settings("recipe.embedding", "recipe.device", "recipe.visme", "recipe.evaluate.cache_dtype",
                                   ignore={"train"}),
            code=code_version("evaluate.pool_scaling", "evaluate.identity", "data.synthetic.identity",
                              "data.synthetic.identity_tasks", "stages.pool_scaling"),
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
        """Every output of the visual-identity study, and the first identity-trained model's scores on the run's
        benchmarks (what training for identity costs the rest)."""
        input:
            rules.identity_report.output,
            rules.pool_scaling.output,
            [f"{RUN_DIR}/eval/{tag}/scores.parquet" for tag in list(VISME_TRAINED)[:1]] if EVAL_SOURCES else [],
