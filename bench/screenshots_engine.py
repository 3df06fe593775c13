"""Screenshots of running a local GGUF from the model manager, with the REAL llama-server of the
test cache and a tiny model, under Xvfb.

    python -m bench.screenshots_engine --out /tmp/shots

Saves ``engine-run-dialog.png`` ("Run with llama-server": the plan's verdict, the exact command,
the editable context) and ``engine-running.png`` (the model manager with the server started
from it in "Servers started here": address, state, estimated / measured memory).
Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.xvfb import run_shots, until


async def shoot(out: Path) -> list[Path]:
    from tests.support.llama_build import find_binary, missing_reason
    from tests.support.tiny_gguf import make_tiny_gguf
    from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
    from victor_gui.services.engine_runner import EngineRunner
    from victor_gui.services.model_library import ModelLibraryService
    from victor_gui.sizing.hardware import GpuReport, RamInfo
    from victor_gui.ui.model_library_view import ModelLibraryView

    binary = find_binary()
    if binary is None:
        raise SystemExit(missing_reason())
    model = make_tiny_gguf(out / "Tiny-Chat-0.1B-F16.gguf", n_ctx_train=16384)
    client = make_client(PROBE_TIMEOUTS)
    report = GpuReport(ram=RamInfo(32 << 30, 21 << 30))
    runner = EngineRunner(client, log_dir=out / "engine-logs", binary_setting=lambda: str(binary),
                          gpu_report=lambda: report)
    models = ModelLibraryService(client, gpu_report=report)
    view = ModelLibraryView(models, None, engines=runner)
    view.resize(980, 720)
    view.show()
    await models.use_gguf(model)
    dialog = view.run_file()
    assert dialog is not None
    await until(lambda: dialog.start_button.isEnabled(), 20)
    dialog.ctx_spin.setValue(8192)
    await asyncio.sleep(0.3)
    saved = [out / "engine-run-dialog.png"]
    dialog.grab().save(str(saved[0]))
    dialog.start_button.click()
    await until(lambda: dialog.engine is not None, 60)
    await asyncio.sleep(0.5)
    saved.append(out / "engine-running.png")
    view.grab().save(str(saved[1]))
    view.close()
    await runner.close()
    await models.close()
    await client.aclose()
    return saved


def main() -> int:
    return run_shots("bench.screenshots_engine", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
