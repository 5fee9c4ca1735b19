# Universal multimodal embedding training (U-MARVEL, UniME-V2) as a Snakemake workflow.
# Thin by design: load + validate config, include one rule file per stage, define `all`.
from snakemake.utils import min_version, validate

# 9.20: earlier 9.x run more local jobs at once than --cores and --resources allow (pyproject.toml)
min_version("9.20")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/build.smk"
include: "workflow/rules/curate.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/mine.smk"
include: "workflow/rules/train_hn.smk"
include: "workflow/rules/rerank.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/judge_study.smk"
include: "workflow/rules/identity.smk"
include: "workflow/rules/objembed.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/plan.smk"


rule all:
    """Every artifact of the run (ablations are separate targets)."""
    input:
        all_targets(),
    default_target: True
