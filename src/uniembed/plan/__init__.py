"""A cost plan before launch: per stage items, tokens, FLOPs, GPU-hours and memory of an experiment
(``python -m uniembed.plan``; docs/real-data.md)."""
