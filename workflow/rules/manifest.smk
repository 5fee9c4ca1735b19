# What made this run directory: base model, data, recipe and code version, for people reading it
# later. Its params are a digest of the whole identity, so it is rewritten whenever any of them changes.
import hashlib


rule run_manifest:
    """What the run is: its configuration, code version and environment."""
    output:
        f"{RUN_DIR}/run_manifest.json",
    log:
        f"{LOGS}/run_manifest.log",
    params:
        identity=hashlib.sha256(rule_settings("model", "judge_model", "data", "recipe", base_model="model").encode()).hexdigest(),
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    resources:
        **rule_resources("run_manifest"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.run_manifest --stage out_dir {params.out_dir:q} > {log:q} 2>&1"
