# The cost plan (docs/real-data.md "Before launch"): not part of `all`; `snakemake plan` before a real run.
import json


rule plan:
    """What the run will cost before it runs (python -m uniembed.plan): per heavy job its sequences, tokens,
    FLOPs, GPU-hours at `plan.mfu` on `plan.gpu`, memory per GPU and GPUs; sizes from the curated tables where
    they exist, else the data section's declared ones."""
    output:
        table=f"{RUN_DIR}/plan/plan.md",
        values=f"{RUN_DIR}/plan/plan.json",
    log:
        f"{LOGS}/plan.log",
    params:
        config=json.dumps(config, sort_keys=True, default=str),
        gpu=config.get("plan", {}).get("gpu", "H100-SXM"),
        mfu=config.get("plan", {}).get("mfu", 0.4),
        gpus=config.get("plan", {}).get("gpus", 8),
        out_dir=lambda wildcards, output: Path(output.table).parent,
    resources:
        **rule_resources("plan"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.plan --config-json {params.config:q} --gpu {params.gpu:q} --mfu {params.mfu:q}"
        " --gpus {params.gpus:q} --out {params.out_dir:q} > {log:q} 2>&1"
