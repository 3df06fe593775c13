"""Launch to first paint: our window ÷ a bare PySide6 + qasync window (target ≤ 1.5).

Both run as fresh subprocesses in one run, alternating, and the parent clocks from spawn to
the child's ``FIRST_PAINT`` line, so interpreter start and imports count for both. Uses the
offscreen platform unless ``QT_QPA_PLATFORM`` says otherwise (under Xvfb: ``xcb``).

    python -m bench.bench_launch [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import asyncio, sys
import qasync
from PySide6.QtWidgets import QApplication, QMainWindow

class W(QMainWindow):
    done = False
    def paintEvent(self, e):
        super().paintEvent(e)
        if not self.done:
            self.done = True
            print("FIRST_PAINT", flush=True)
            loop.call_soon(app.quit)

app = QApplication(sys.argv)
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
w = W(); w.resize(1100, 720); w.show()
loop.run_forever()
"""


def time_to_first_paint(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to the child's FIRST_PAINT line (the child then exits by itself)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    elapsed = None
    for line in proc.stdout:
        if line.startswith("FIRST_PAINT") and elapsed is None:
            elapsed = time.perf_counter() - start
    proc.wait(timeout=60)
    if elapsed is None or proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode} without painting")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_STATE_HOME=tmp, XDG_CACHE_HOME=tmp)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        bare_cmd = [sys.executable, "-c", BARE]
        ours_cmd = [sys.executable, "-m", "victor_gui", "--self-test"]
        time_to_first_paint(bare_cmd, env)  # warm the OS file cache for both
        time_to_first_paint(ours_cmd, env)
        bare, ours = [], []
        for _ in range(args.runs):
            bare.append(time_to_first_paint(bare_cmd, env))
            ours.append(time_to_first_paint(ours_cmd, env))
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"platform            {env['QT_QPA_PLATFORM']}")
    print(f"bare PySide6+qasync {b * 1000:7.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in bare)})")
    print(f"victor-gui          {o * 1000:7.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in ours)})")
    ratio = o / b
    print(f"ratio               {ratio:7.2f}   (target ≤ 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
