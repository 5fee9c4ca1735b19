"""One thin entry point per Snakemake rule: read config, call the library, write artifacts."""
