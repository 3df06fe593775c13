#!/usr/bin/env bash
# Issue 14 item 6: a baseline checkout and this one, alternated, same machine, one run (the
# machine is shared and noisy: compare medians of the rounds, never one figure).
#   bench/bench_compare.sh BASE_CHECKOUT [ROUNDS]
set -u
PY=${PY:-/work/main/.venv/bin/python}
BASE=$(cd "$1" && pwd); HEAD=$(cd "$(dirname "$0")/.." && pwd); ROUNDS=${2:-3}
unset PYTHONDONTWRITEBYTECODE
for t in "$BASE" "$HEAD"; do (cd "$t" && $PY -m compileall -q victor_gui bench tests/servers >/dev/null 2>&1); done
for round in $(seq "$ROUNDS"); do
  for t in "$BASE" "$HEAD"; do
    name=$([ "$t" = "$HEAD" ] && echo head || echo base)
    # The launch and idle figures come from this checkout's bench code, launching $t's app.
    echo "== $name round $round launch+idle"; (cd "$HEAD" && timeout 600 $PY -m bench.bench_launch --runs 5 --idle --root "$t" 2>&1 | tail -6)
    echo "== $name round $round rich"; (cd "$t" && timeout 300 $PY -m bench.bench_stream_render --rich 2>&1 | tail -8)
  done
done
echo "== head scroll"; (cd "$HEAD" && timeout 300 $PY -m bench.bench_scroll 2>&1 | tail -4)
echo "== head stream_many"; (cd "$HEAD" && timeout 900 $PY -m bench.bench_stream_many 2>&1 | tail -4)
