# Embedded default: build the tiny model and generate the synthetic data, offline.


if STAGE_CONFIG.model.build is not None:

    rule build_model:
        output:
            directory(MODEL_DIR),
        log:
            f"{LOGS}/build_model.log",
        benchmark:
            f"{BENCHMARKS}/build_model.tsv"
        params:
            settings=rule_settings("model"),
        resources:
            **rule_resources("build_model"),
        conda:
            "../../envs/curate.yaml"
        shell:
            "python -m uniembed.stages.build_model > {log:q} 2>&1"


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
        resources:
            **rule_resources("generate_data"),
        conda:
            "../../envs/curate.yaml"
        shell:
            "python -m uniembed.stages.generate_data > {log:q} 2>&1"
