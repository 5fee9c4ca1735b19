# Embedded default: build the tiny model and generate the synthetic data, offline. Each rule's params
# hold its configuration and the code version of what it runs (uniembed.provenance): a change to the
# world generator or the model builder regenerates them, and everything made from them reruns.


if STAGE_CONFIG.model.build is not None:

    rule build_model:
        output:
            directory(BUILT_MODEL_DIR),
        log:
            f"{LOGS}/build_model.log",
        benchmark:
            f"{BENCHMARKS}/build_model.tsv"
        params:
            settings=rule_settings("model.name", "model.path", "model.build"),
            code=code_version("model.tiny", "model.tokenizer", "model.prompts", "model.processor", "model.saving",
                              "data.synthetic.world", "stages.build_model"),
        resources:
            **rule_resources("build_model"),
        conda:
            "../../envs/curate.yaml"
        shell:
            "python -m uniembed.stages.build_model > {log:q} 2>&1"


if VISION:

    # The tiny tower's CLIP-style pretraining on fresh renderings (uniembed.vision): built once beside the
    # built model, reused by every run; its vision_pretrain.json holds the linear probes before and after.
    rule pretrain_vision:
        input:
            model=BUILT_MODEL_DIR,
        output:
            model=directory(BASE_MODEL_DIR),
        log:
            f"{LOGS}/pretrain_vision.log",
        benchmark:
            f"{BENCHMARKS}/pretrain_vision.tsv"
        params:
            settings=rule_settings("model.vision_pretrain"),
            code=code_version("vision", "data.synthetic.world", "stages.pretrain_vision"),
        resources:
            **rule_resources("pretrain_vision"),
        conda:
            "../../envs/train.yaml"
        shell:
            "python -m uniembed.stages.pretrain_vision --stage model_dir {input.model:q}"
            " --stage out_dir {output.model:q} > {log:q} 2>&1"


if STAGE_CONFIG.data.generator is not None:

    rule generate_data:
        output:
            directory(DATA_ROOT),
        log:
            f"{LOGS}/generate_data.log",
        benchmark:
            f"{BENCHMARKS}/generate_data.tsv"
        params:
            settings=rule_settings("data.generator"),
            code=code_version("data.synthetic", "stages.generate_data"),
        resources:
            **rule_resources("generate_data"),
        conda:
            "../../envs/curate.yaml"
        shell:
            "python -m uniembed.stages.generate_data > {log:q} 2>&1"


if INSTRUCT:

    # The tiny instruct MLLM the judge and the rerankers start from (the embedder keeps the base model): the
    # vision-pretrained tiny model after generative training on the curated train split (design.md §5). One
    # thread: on 2 cores it runs beside another job, and tiny matrices on two contended threads are several
    # times slower than on one.
    rule instruct:
        input:
            model=BASE_MODEL_DIR,
            curated=expand(curated("{source}", "queries"), source=INSTRUCT_SOURCES),
        output:
            model=directory(INSTRUCT_MODEL_DIR),
        log:
            f"{LOGS}/instruct.log",
        benchmark:
            f"{BENCHMARKS}/instruct.tsv"
        params:
            settings=rule_settings("model", "recipe.device", base_model=True),
            curated_dir=lambda wildcards, input: Path(input.curated[0]).parents[1],
            checkpoint_dir=f"{RUN_DIR}/checkpoints/instruct",
            log_dir=f"{RUN_DIR}/tensorboard/instruct",
        threads: 1
        resources:
            **rule_resources("instruct"),
        conda:
            "../../envs/train.yaml"
        shell:
            "OMP_NUM_THREADS={threads} python -m uniembed.stages.instruct --stage model_dir {input.model:q}"
            " --stage curated_dir {params.curated_dir:q} --stage out_dir {output.model:q}"
            " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q} >> {log:q} 2>&1"
