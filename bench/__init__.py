"""Benchmarks: run as ``python -m bench.bench_launch`` / ``python -m bench.bench_stream_render``."""

# Imported first so every bench process starts as the app does: victor_gui's package init keeps
# httpx from importing its command-line tool (rich, click), which the app never loads.
import victor_gui  # noqa: F401
