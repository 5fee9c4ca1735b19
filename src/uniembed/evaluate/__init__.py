"""Evaluation: the benchmarks' metric definitions and their aggregation."""
