"""Run the attack run and print its table: ``python bench/attack_run.py [NAME ...] [--out FILE]``.

Attacks run one at a time, each in its own measured child process (see bench/attack/harness.py):
time, peak RSS, how it ended, whether anything was lost, and the verdict. ``--out`` also writes
the table (with the commit and machine) as Markdown, e.g. bench/attack/BEFORE.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.attack.harness import ATTACKS, ROOT, run_attack, table


def main() -> int:
    parser = argparse.ArgumentParser(prog="attack_run")
    parser.add_argument("names", nargs="*", help=f"attacks to run (default all): {', '.join(ATTACKS)}")
    parser.add_argument("--out", type=Path, help="also write the table as Markdown to this file")
    args = parser.parse_args()
    names = args.names or list(ATTACKS)
    results = []
    started = time.perf_counter()
    for name in names:
        result = run_attack(name)
        results.append(result)
        print(f"{name}: {result.wall_s:.2f} s, {result.peak_rss_mb:.0f} MB, "
              f"{result.killed or result.outcome} {result.error[:100]}", flush=True)
    total = time.perf_counter() - started
    text = table(results)
    print()
    print(text)
    print(f"\n{sum(r.passed for r in results)}/{len(results)} pass; total {total:.0f} s")
    if args.out:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        header = (f"# Attack run\n\ncommit {commit}, {platform.python_version()} on {platform.system()}, "
                  f"{os.cpu_count()} CPUs; total {total:.0f} s; "
                  f"{sum(r.passed for r in results)}/{len(results)} pass\n\n")
        args.out.write_text(header + text + "\n", encoding="utf-8")
    return 0 if all(r.passed or r.outcome == "skipped" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
