"""Benchmark code behind the ``tools/analysis/benchmark_*.py`` scripts.

The scripts import it as ``benchmarks`` (their own folder is first on
``sys.path`` when Python runs them); nothing in ``dinov3_mm`` imports it.
"""
