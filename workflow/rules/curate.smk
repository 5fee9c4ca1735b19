# Curation (docs/curation.md): one job per source -> canonical Parquet tables + quarantine + summary.


rule curate:
    """One source's curated tables (queries, candidates, pools, datasets, quarantine) and summary."""
    input:
        generated_data(),
    output:
        **{t: curated("{source}", t) for t in CURATED_TABLES},
        summary=f"{RUN_DIR}/curated/{{source}}/summary.json",
    log:
        f"{LOGS}/curate_{{source}}.log",
    benchmark:
        f"{BENCHMARKS}/curate_{{source}}.tsv"
    params:
        # a source's declared sizes feed the cost plan only: changing them reruns no curation
        settings=lambda wildcards: rule_settings(f"data.sources.{wildcards.source}", "data.validate_images",
                                                 ignore={"declared"}),
        out_dir=lambda wildcards, output: Path(output.summary).parent,
    wildcard_constraints:
        source="|".join(SOURCES),
    resources:
        **rule_resources("curate"),
    conda:
        "../../envs/curate.yaml"
    shell:
        "python -m uniembed.stages.curate --stage source {wildcards.source:q} --stage out_dir {params.out_dir:q}"
        " > {log:q} 2>&1"
