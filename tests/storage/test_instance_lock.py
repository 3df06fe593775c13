"""Several processes on one data folder, started together: one app, safe migrations, no stolen replies.

Real processes (``python -c``) open the store at the same instant (each waits for a shared
start time), repeated over several rounds on a new data folder each time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from victor_gui.storage import open_store
from victor_gui.storage.instance_lock import FileLock

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 5

_CHILD = """
import asyncio, inspect, sys, time
import victor_gui.errors
from victor_gui.storage import open_store

# Runs against the code before the fix too (to watch these tests fail there).
StoreInUseError = getattr(victor_gui.errors, "StoreInUseError", ())  # () catches nothing
HAS_INSTANCE = "instance" in inspect.signature(open_store).parameters

async def main(folder, mode, start_at):
    time.sleep(max(0.0, start_at - time.time()))
    kw = {"instance": True} if mode != "chat" and HAS_INSTANCE else {}
    try:
        store, notice = await open_store(folder, **kw)
    except StoreInUseError as exc:
        print("INUSE", exc, flush=True)
        return
    except Exception as exc:
        print("FAIL", type(exc).__name__, exc, flush=True)
        return
    if mode == "stream":
        conv = await store.create_conversation("live")
        mid = await store.begin_assistant_message(conv.id)
        await store.append_partial(mid, "still coming")
        await store.flush(mid)
        print("BEGUN", mid, flush=True)
    else:
        print("OPEN", flush=True)
    sys.stdin.readline()  # hold the store until told (or killed)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


def _start(folder: Path, mode: str, start_at: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), mode, str(start_at)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.write("\n")
                proc.stdin.flush()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _together(folder: Path, modes: list[str]) -> list[str]:
    start_at = time.time() + 1.5  # every child has imported everything by then
    procs = [_start(folder, mode, start_at) for mode in modes]
    try:
        return [_first_line(p) for p in procs]
    finally:
        _stop(procs)


@pytest.mark.timeout(120)
def test_two_app_launches_together_one_stays(tmp_path: Path) -> None:
    for n in range(ROUNDS):
        lines = _together(tmp_path / f"round{n}", ["gui", "gui"])
        assert sorted(line.split()[0] for line in lines) == ["INUSE", "OPEN"], lines
        [refusal] = [line for line in lines if line.startswith("INUSE")]
        assert "Another copy of Victor GUI" in refusal and str(tmp_path / f"round{n}") in refusal


@pytest.mark.timeout(120)
def test_headless_starts_together_on_a_new_folder_all_migrate_safely(tmp_path: Path) -> None:
    # ``victor-gui chat`` takes no instance lock (it may run beside the app), only the startup
    # lock around migrations: before it, the second start-up failed "Migration 1 failed".
    for n in range(ROUNDS):
        lines = _together(tmp_path / f"round{n}", ["chat", "chat", "chat", "chat"])
        assert lines == ["OPEN"] * 4, lines


async def test_a_start_up_beside_a_live_reply_leaves_it_streaming(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    app = _start(folder, "stream", 0.0)
    try:
        begun = _first_line(app)
        assert begun.startswith("BEGUN"), begun
        mid = int(begun.split()[1])
        store, notice = await open_store(folder)  # as `victor-gui chat` opens it
        try:
            assert notice is None
            live = await store.get_message(mid)
            assert live is not None and live.status == "streaming"  # before: 'interrupted'
            assert live.content == "still coming"
        finally:
            await store.close()
        assert _together(folder, ["gui"])[0].startswith("INUSE")  # a second window is refused
        app.kill()  # the app dies with its reply unfinished: the OS drops its locks
        app.wait(timeout=10)
        store, _ = await open_store(folder)
        try:
            cut = await store.get_message(mid)
            assert cut is not None and cut.status == "interrupted" and cut.content == "still coming"
        finally:
            await store.close()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(timeout=10)


def test_lock_is_exclusive_and_freed_by_release(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.holder().startswith("pid ")
    first.release()
    assert second.try_acquire()
    second.release()
