"""Benchmarks: run as ``python -m bench.bench_launch`` / ``python -m bench.bench_stream_render``."""
