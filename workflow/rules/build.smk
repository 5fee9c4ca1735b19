# Embedded default: build the tiny model and generate the synthetic data, offline. Each rule's params
# hold its configuration and the code version of what it runs (uniembed.provenance): a change to the
# world generator or the model builder regenerates them, and everything made from them reruns.


# The model steps of each role (MODEL_STEPS in common.smk): rules build_model, pretrain_vision for the
# embedder's model; build_judge_model, pretrain_judge_vision, instruct_judge_model for the judge's. Each passes
# its role to the stage (--stage role), which reads that model section. The judge's steps go first among ready jobs
# (priority): its tower pretraining then instruct training is the first run's longest path.
for _role, _prefix in MODEL_ROLES.items():
    _steps = dict(MODEL_STEPS[_role])
    _priority = 1 if _role == "judge_model" else 0

    if "build" in _steps:

        rule:
            """The tiny model of the section (its build settings), built offline with its tokenizer and processor."""
            name:
                f"build_{_prefix}model"
            output:
                directory(_steps["build"]),
            log:
                f"{LOGS}/build_{_prefix}model.log",
            benchmark:
                f"{BENCHMARKS}/build_{_prefix}model.tsv"
            params:
                settings=rule_settings(f"{_role}.name", f"{_role}.family", f"{_role}.path", f"{_role}.build"),
                code=code_version("model.tiny", "model.families", "model.tokenizer", "model.prompts",
                                  "model.processor", "model.saving",
                                  "data.synthetic.world", "stages.build_model"),
                role=_role,
            priority: _priority
            resources:
                **rule_resources(f"build_{_prefix}model"),
            conda:
                "../../envs/curate.yaml"
            shell:
                "python -m uniembed.stages.build_model --stage role {params.role:q} > {log:q} 2>&1"

    if "vision" in _steps:

        # The tiny tower's CLIP-style pretraining on fresh renderings (uniembed.vision): built once beside the
        # built model, reused by every run; its vision_pretrain.json holds the linear probes before and after.
        rule:
            """The tiny tower and merger pretrained CLIP-style on fresh renderings; its linear probes before and after."""
            name:
                f"pretrain_{_prefix}vision"
            input:
                model=model_step_input(_role, "vision"),
            output:
                model=directory(_steps["vision"]),
            log:
                f"{LOGS}/pretrain_{_prefix}vision.log",
            benchmark:
                f"{BENCHMARKS}/pretrain_{_prefix}vision.tsv"
            params:
                settings=rule_settings(f"{_role}.vision_pretrain"),
                code=code_version("vision", "model.families", "data.synthetic.world", "stages.pretrain_vision"),
                role=_role,
            priority: _priority
            resources:
                **rule_resources(f"pretrain_{_prefix}vision"),
            conda:
                "../../envs/train.yaml"
            shell:
                "python -m uniembed.stages.pretrain_vision --stage role {params.role:q} --stage model_dir {input.model:q}"
                " --stage out_dir {output.model:q} > {log:q} 2>&1"

    if "instruct" in _steps:

        # The tiny instruct MLLM (docs/hard-negatives.md, the judge's model): the model before it after generative training on the TRAIN split
        # of the world's sources, which the stage curates itself (a resource: it reads no run's data). One
        # thread: on 2 cores it runs beside another job, and tiny matrices on two contended threads are several
        # times slower than on one. One loader worker prepares its batches (prompts, images, processor: a third of
        # a step, ~0.3 of a core) beside the step: 1.3x faster when a core is free, as at the first run's tail
        # when the embedder's stages are done (same weights; benchmarks in docs/benchmark-results.md).
        rule:
            """The tiny instruct MLLM: generative training on the world's train split (the judge and rerankers start here)."""
            name:
                f"instruct_{_prefix}model"
            input:
                model=model_step_input(_role, "instruct"),
                data=generated_data(),
            output:
                model=directory(_steps["instruct"]),
            log:
                f"{LOGS}/instruct_{_prefix}model.log",
            benchmark:
                f"{BENCHMARKS}/instruct_{_prefix}model.tsv"
            params:
                # the world (the generator's settings, through the input too) and the sources it curates
                settings=rule_settings(f"{_role}.instruct", "data.generator", "data.validate_images", "recipe.device",
                                       *(f"data.sources.{source}" for source in INSTRUCT_SOURCES[_role]),
                                       ignore={"declared"}),   # a source's declared sizes: the cost plan's only
                code=code_version("instruct", "train", "model", "data", "stages.curate", "stages.instruct"),
                role=_role,
                checkpoint_dir=f"{RESOURCES}/checkpoints/{Path(_steps['instruct']).name}",
                log_dir=f"{RESOURCES}/tensorboard/{Path(_steps['instruct']).name}",
            threads: 1
            priority: _priority
            resources:
                **rule_resources(f"instruct_{_prefix}model"),
            conda:
                "../../envs/train.yaml"
            shell:
                "OMP_NUM_THREADS={threads} python -m uniembed.stages.instruct --stage role {params.role:q}"
                " --stage model_dir {input.model:q} --stage out_dir {output.model:q}"
                " --stage checkpoint_dir {params.checkpoint_dir:q} --stage log_dir {params.log_dir:q}"
                " --stage loader_workers 1 >> {log:q} 2>&1"


if STAGE_CONFIG.data.generator is not None:

    rule generate_data:
        """The synthetic world (data.generator): M-BEIR layout, MMEB rows, NLI CSV, caption TSV and the truth."""
        output:
            directory(DATA_ROOT),
        log:
            f"{LOGS}/generate_data.log",
        benchmark:
            f"{BENCHMARKS}/generate_data.tsv"
        params:
            settings=rule_settings("data.generator"),
            code=code_version("data.synthetic.generate", "data.synthetic.world", "data.synthetic.mbeir",
                              "data.synthetic.mmeb", "data.synthetic.pairs", "data.synthetic.zeroshot",
                              "data.synthetic.identity", "data.synthetic.identity_tasks",
                              "data.synthetic.identity_train", "data.synthetic.scenes",
                              "data.synthetic.scene_files", "stages.generate_data"),
        resources:
            **rule_resources("generate_data"),
        conda:
            "../../envs/curate.yaml"
        shell:
            "python -m uniembed.stages.generate_data > {log:q} 2>&1"
