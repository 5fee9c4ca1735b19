# Object embeddings (ObjEmbed, seed 002; docs/evaluation.md "Object embeddings"): the region set curated from its
# public formats, one object embedder trained per seed from recipe.objembed.train.from, and the evaluation against the
# same model before training and the run's whole-image embedders. Not part of `all`: run `snakemake objembed`.

OBJEMBED = STAGE_CONFIG.recipe.get("objembed")   # its model keys are checked by uniembed.workflow_checks.run_model_tags
REGION_SETS = list(STAGE_CONFIG.data.get("regions") or {})


rule curate_regions:
    """One region set's canonical tables (training images and objects, the evaluation gallery, expressions and
    local-retrieval queries, quarantine) read from its public formats."""
    input:
        generated_data(),
    output:
        summary=f"{RUN_DIR}/regions/{{regions}}/summary.json",
    log:
        f"{LOGS}/curate_regions_{{regions}}.log",
    benchmark:
        f"{BENCHMARKS}/curate_regions_{{regions}}.tsv"
    params:
        settings=lambda wildcards: rule_settings(f"data.regions.{wildcards.regions}"),
        code=code_version("data.readers.regions", "data.readers.region_tables", "stages.curate_regions"),
        out_dir=lambda wildcards: f"{RUN_DIR}/regions/{wildcards.regions}",
    wildcard_constraints:
        regions="|".join(REGION_SETS) or "^$",
    resources:
        **rule_resources("curate"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.curate_regions --stage name {wildcards.regions:q} --stage out_dir {params.out_dir:q}"
        " > {log:q} 2>&1"


if OBJEMBED:
    OBJEMBED_TRAINED = {f"objembed_seed{seed}": stage_output(f"objembed/seed{seed}") for seed in OBJEMBED.train.seeds}

    rule train_objembed:
        """An object embedder (ObjEmbed §3): made on `recipe.objembed.train.from`, trained on the region set's scenes
        with eq. 4 (LoRA on the decoder, the new heads in full, the tower frozen), one model per seed."""
        input:
            model=lambda wildcards: EVAL_MODELS[OBJEMBED.train["from"]],
            regions=f"{RUN_DIR}/regions/{OBJEMBED.regions}/summary.json",
        output:
            model=directory(stage_output("objembed/seed{seed}")),
        log:
            f"{LOGS}/objembed_seed{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/objembed_seed{{seed}}.tsv"
        params:
            settings=rule_settings("recipe.objembed.train", "recipe.device", ignore={"seeds"}),
            code=code_version("train", "embed", "model", "stages.train"),
            model_dir=lambda wildcards, input: loadable(input.model),
            region_dir=lambda wildcards, input: f"{Path(input.regions).parent}/train",
            checkpoint_dir=lambda wildcards: f"{RUN_DIR}/checkpoints/objembed/seed{wildcards.seed}",
            log_dir=lambda wildcards: f"{RUN_DIR}/tensorboard/objembed/seed{wildcards.seed}",
            launcher=launcher("train_hn"),
        wildcard_constraints:
            seed="|".join(str(seed) for seed in OBJEMBED.train.seeds),
        resources:
            **rule_resources("train_hn"),
        conda:
            "../../envs/train.yaml"
        shell:
            "{params.launcher} -m uniembed.stages.train --stage section objembed --stage name objects"
            " --stage seed {wildcards.seed:q} --stage model_dir {params.model_dir:q}"
            " --stage curated_dir {params.region_dir:q} --stage out_dir {output.model:q}"
            " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"

    rule evaluate_objects:
        """ObjEmbed's tables: grounding, local and global retrieval of the object embedders before and after training,
        the whole-image embedders on the same local-retrieval queries, and the time per image by proposal count."""
        input:
            regions=f"{RUN_DIR}/regions/{OBJEMBED.regions}/summary.json",
            start=EVAL_MODELS[OBJEMBED.train["from"]],
            trained=list(OBJEMBED_TRAINED.values()),
            baselines=[EVAL_MODELS[tag] for tag in OBJEMBED.baselines],
        output:
            scores=f"{RUN_DIR}/tables/objects_scores.parquet",
            grounding=f"{RUN_DIR}/tables/objects_grounding.parquet",
            markdown=report(f"{RUN_DIR}/tables/objects.md", caption="../report/objects.rst", category="Object embeddings"),
            latex=f"{RUN_DIR}/tables/objects.tex",
            summary=f"{RUN_DIR}/tables/objects.json",
        log:
            f"{LOGS}/evaluate_objects.log",
        benchmark:
            f"{BENCHMARKS}/evaluate_objects.tsv"
        params:
            settings=rule_settings("recipe.objembed", "recipe.embedding", "recipe.evaluate", "recipe.device"),
            code=code_version("evaluate.objects", "evaluate.object_tables", "embed", "model", "stages.evaluate_objects"),
            regions_dir=lambda wildcards, input: Path(input.regions).parent,
            start=lambda wildcards, input: loadable(input.start),
            trained=lambda wildcards, input: json.dumps(dict(zip(OBJEMBED_TRAINED, input.trained))),
            baselines=lambda wildcards, input: json.dumps({tag: loadable(path) for tag, path
                                                           in zip(OBJEMBED.baselines, input.baselines)}),
            out_dir=lambda wildcards, output: Path(output.summary).parent,
        resources:
            **rule_resources("evaluate"),
        conda:
            "../../envs/train.yaml"
        shell:
            "python -m uniembed.stages.evaluate_objects --stage regions_dir {params.regions_dir:q}"
            " --stage model_dir {params.start:q} --stage models {params.trained:q} --stage baselines {params.baselines:q}"
            " --stage out_dir {params.out_dir:q} > {log:q} 2>&1"

    rule objembed:
        """Every output of the object-embedding study."""
        input:
            rules.evaluate_objects.output,
