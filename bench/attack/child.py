"""One attack, run in its own process: ``python -m bench.attack.child NAME WORKDIR [URL ...]``.

Drives the app's real public code paths against what the parent set up (hostile servers at the
URLs) or what this process sets up itself in WORKDIR (databases, config files; the database
attacks run inside ``unshare -rm`` so they can mount a small tmpfs: a real full disk, a real
read-only file system). Prints exactly one line ``ATTACK-RESULT {json}`` with:

* ``outcome``: ``ok`` (the call returned), ``typed`` (a :mod:`victor_gui.errors` error, or a
  result that carries one, like a settings load error), ``raw`` (any other exception);
* ``error``: the error's type and first words;
* ``lost``: None when nothing could be lost, else whether text that reached the screen (or the
  history on disk) is missing from the store afterwards;
* ``checks``: named facts the verdict looks at, and ``detail`` for the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from victor_gui.errors import VictorGuiError

Result = dict[str, Any]
Scenario = Callable[..., Coroutine[Any, Any, Result]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = fn
        return fn
    return register


def _error(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:160]}"


# ---------------------------------------------------------------------------------------------
# HTTP: a provider for a hand-added endpoint, as the chat builds it
# ---------------------------------------------------------------------------------------------

def hostile_provider(url: str, deadline_s: float) -> Any:
    """(provider, client) for an OpenAI-compatible endpoint at ``url`` with small timeouts:
    connect 1 s, read 2 s, and the per-endpoint idle timeout / deadline where the settings have
    them (issue 16's http work adds ``idle_timeout_s`` and ``deadline_s``)."""
    from victor_gui.config.settings import Endpoint
    from victor_gui.services.endpoint_providers import provider_for_endpoint

    fields: dict[str, Any] = {"name": "hostile", "kind": "openai-compatible", "url": url,
                              "connect_timeout_s": 1.0, "read_timeout_s": 2.0}
    if "idle_timeout_s" in Endpoint.model_fields:
        fields["idle_timeout_s"] = 2.0
    if "deadline_s" in Endpoint.model_fields:
        fields["deadline_s"] = deadline_s
    return provider_for_endpoint(Endpoint(**fields), max_retries=0)


async def _chat(url: str, deadline_s: float) -> Result:
    from victor_gui.providers.types import Message

    provider, client = hostile_provider(url, deadline_s)
    try:
        reply = await provider.chat([Message(role="user", content="hi")], model="m", max_tokens=16)
        return {"detail": f"reply of {len(reply.content or '')} chars"}
    finally:
        await provider.close()
        await client.aclose()


async def _stream(url: str, deadline_s: float) -> Result:
    from victor_gui.providers.types import Message

    provider, client = hostile_provider(url, deadline_s)
    received = 0
    try:
        async for chunk in provider.stream([Message(role="user", content="hi")], model="m", max_tokens=16):
            received += len(chunk.content or "")
        return {"detail": f"stream ended with {received} chars"}
    finally:
        await provider.close()
        await client.aclose()


@scenario("gzip_bomb")
async def gzip_bomb(urls: list[str], work: Path, deadline: float) -> Result:
    return await _chat(urls[0], deadline)


@scenario("endless_error_body")
async def endless_error_body(urls: list[str], work: Path, deadline: float) -> Result:
    return await _stream(urls[0], deadline)


@scenario("huge_line")
async def huge_line(urls: list[str], work: Path, deadline: float) -> Result:
    return await _stream(urls[0], deadline)


@scenario("silent_server")
async def silent_server(urls: list[str], work: Path, deadline: float) -> Result:
    return await _chat(urls[0], deadline)


@scenario("slow_loris")
async def slow_loris(urls: list[str], work: Path, deadline: float) -> Result:
    return await _stream(urls[0], deadline)


@scenario("wrong_shape_chat")
async def wrong_shape_chat(urls: list[str], work: Path, deadline: float) -> Result:
    """A whole reply, a stream and a model list of the wrong shape: each must end typed or ok."""
    outcomes = []
    first_raw: BaseException | None = None
    for step in (_chat, _stream):
        try:
            await step(urls[0], deadline)
            outcomes.append(f"{step.__name__[1:]}: ok")
        except VictorGuiError as exc:
            outcomes.append(f"{step.__name__[1:]}: {type(exc).__name__}")
        except Exception as exc:
            outcomes.append(f"{step.__name__[1:]}: RAW {type(exc).__name__}")
            first_raw = first_raw or exc
    provider, client = hostile_provider(urls[1], deadline)
    try:
        await provider.list_models()
        outcomes.append("models: ok")
    except VictorGuiError as exc:
        outcomes.append(f"models: {type(exc).__name__}")
    except Exception as exc:
        outcomes.append(f"models: RAW {type(exc).__name__}")
        first_raw = first_raw or exc
    finally:
        await provider.close()
        await client.aclose()
    if first_raw is not None:
        raise first_raw
    return {"detail": "; ".join(outcomes)}


@scenario("wrong_shape_discovery")
async def wrong_shape_discovery(urls: list[str], work: Path, deadline: float) -> Result:
    """Discovery over two wrong-shape servers and a healthy Ollama simulator beside them."""
    from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
    from victor_gui.servers import discover

    healthy = urls[-1]
    client = make_client(PROBE_TIMEOUTS)
    try:
        statuses = await discover(client, urls, env={}, include_defaults=False, scan_processes=False)
    finally:
        await client.aclose()
    by_url = {s.base_url: s for s in statuses}
    good = by_url.get(healthy)
    # Ollama lists loaded models (/api/ps: none in the simulator) and counts the installed ones.
    up = (good is not None and good.state.value == "up" and good.kind.value == "ollama"
          and int(dict(good.details).get("available_models", 0)) >= 1)
    return {"checks": {"all_statuses": len(statuses) == len(urls), "healthy_up_with_models": up},
            "lost": not up,
            "detail": ", ".join(f"{s.kind.value}/{s.state.value}" for s in statuses)}


# ---------------------------------------------------------------------------------------------
# Chat sessions into a real store
# ---------------------------------------------------------------------------------------------

def _canonical(text: str) -> str:
    """What a person sees: UTF-16 halves that meet form their character, a lone half is U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def stored_text(db: Path, message_id: int) -> str | None:
    """The reply's text as it is on disk, read by a fresh connection."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        conn.text_factory = lambda b: b.decode("utf-8", "surrogatepass")
        row = conn.execute("SELECT content FROM messages WHERE id=?", (message_id,)).fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


async def run_chat(url: str, db_dir: Path, deadline: float,
                   on_delta: Callable[[int], None] | None = None) -> Result:
    """Send one message through a ChatSession on a real store; report whether everything the
    stream delivered (what reached the screen) is in the store afterwards."""
    from victor_gui.services.chat_session import ChatSession
    from victor_gui.storage import open_store

    store, _ = await open_store(db_dir)
    conv = await store.create_conversation("attack")
    provider, client = hostile_provider(url, deadline)
    shown: list[str] = []
    ids: list[int] = []

    def on_event(event: Any) -> None:
        if event.kind == "delta":
            shown.append(event.text)
            if not ids:
                ids.append(event.message_id)
            if on_delta is not None:
                on_delta(len(shown))

    session = ChatSession(store, conv.id, provider, "m", on_event=on_event, track_costs=False,
                          context_window=8192)
    outcome: Result = {}
    raised: BaseException | None = None
    try:
        result = await session.send("hi")
        ids[:] = [result.message_id]
        why = f" ({type(result.error).__name__})" if result.error else ""
        outcome["detail"] = f"reply {result.status}{why}"
        if result.error is not None:
            outcome["typed_error"] = _error(result.error)
    except BaseException as exc:
        raised = exc
    finally:
        with contextlib.suppress(BaseException):
            await session.close()
        with contextlib.suppress(BaseException):
            await client.aclose()
        with contextlib.suppress(BaseException):
            await store.close()
    outcome["shown"] = "".join(shown)
    outcome["message_id"] = ids[0] if ids else None
    outcome["raised"] = raised
    return outcome


def lost_check(db: Path, run: Result) -> Result:
    shown = _canonical(run["shown"])
    stored = stored_text(db, run["message_id"]) if run["message_id"] is not None else ""
    stored = _canonical(stored or "")
    lost = not stored.startswith(shown) if shown else False
    same = next((i for i, (a, b) in enumerate(zip(shown, stored, strict=False)) if a != b),
                min(len(shown), len(stored)))
    missing = len(shown) - same
    return {"lost": lost, "checks": {"shown_chars": len(shown), "stored_chars": len(stored),
                                     "missing_chars": missing}}


def finish(run: Result, checked: Result) -> Result:
    out = {**checked, "detail": run.get("detail", "")}
    if run.get("typed_error"):
        out["typed_error"] = run["typed_error"]
    if run["raised"] is not None:
        out["raise"] = run["raised"]
    return out


@scenario("split_surrogates")
async def split_surrogates(urls: list[str], work: Path, deadline: float) -> Result:
    db_dir = work / "data"
    run = await run_chat(urls[0], db_dir, deadline)
    return finish(run, lost_check(db_dir / "conversations.sqlite3", run))


# ---------------------------------------------------------------------------------------------
# Databases: locked, full, read-only; at start and mid-stream (inside unshare -rm)
# ---------------------------------------------------------------------------------------------

HISTORY = [("user", "first question"), ("assistant", "first answer"), ("user", "second question")]

# Another program holding the database: ``exclusive`` (locking_mode=EXCLUSIVE, nobody else may
# even read; it can only be taken while no other connection is open) or ``write`` (a write
# transaction held open, as another instance mid-write: WAL readers go on, writers wait).
LOCKER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
if sys.argv[3] == "exclusive":
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("CREATE TABLE IF NOT EXISTS attack_lock(x)")
else:
    conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
conn.close()
"""


def run_command(cmd: list[str], *, check: bool = True) -> None:
    """Set-up commands (mount, umount) of the scene, not of the app: blocking is fine here."""
    subprocess.run(cmd, check=check, timeout=30)


def start_locker(db: Path, seconds: float, mode: str) -> subprocess.Popen[str]:
    """Another process holding ``db`` (see :data:`LOCKER`) for ``seconds``."""
    return subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(seconds), mode],
                            stdout=subprocess.PIPE, text=True)


def mount_tmpfs(where: Path, size: str = "8m") -> None:
    where.mkdir(parents=True, exist_ok=True)
    run_command(["mount", "-t", "tmpfs", "-o", f"size={size}", "none", str(where)])


def fill(where: Path) -> Path:
    """Fill the file system of ``where`` until it is full (ENOSPC); returns the filler file."""
    filler = where / "filler.bin"
    block = b"\0" * 65536
    with contextlib.suppress(OSError), open(filler, "wb") as fh:
        for _ in range(100_000):  # bounded: 6 GB at most, the tmpfs is a few MB
            fh.write(block)
            fh.flush()
    # Small writes fill the last pages too.
    with contextlib.suppress(OSError), open(where / "filler2.bin", "wb", buffering=0) as fh:
        for _ in range(100_000):
            fh.write(b"\0" * 512)
    return filler


def unfill(where: Path) -> None:
    for name in ("filler.bin", "filler2.bin"):
        (where / name).unlink(missing_ok=True)


async def seed(db_dir: Path, *, streaming_row: bool = False) -> int:
    """A store with a conversation and its history; returns the conversation id."""
    from victor_gui.storage import open_store

    store, _ = await open_store(db_dir)
    conv = await store.create_conversation("history")
    for role, text in HISTORY:
        await store.add_message(conv.id, role, text)
    if streaming_row:  # a reply a crash left streaming: the next open must write to recover it
        mid = await store.begin_assistant_message(conv.id)
        await store.append_partial(mid, "partial answer")
        await store.flush(mid)
    await store.close()
    return conv.id


def history_check(db_dir: Path, conv_id: int) -> Result:
    """The history on disk after the attack: still at its path, no file moved aside."""
    moved = sorted(p.name for p in db_dir.iterdir() if ".corrupt-" in p.name)
    db = db_dir / "conversations.sqlite3"
    texts: list[str] = []
    error = ""
    try:
        conn = sqlite3.connect(db, timeout=30)
        try:
            texts = [r[0] for r in conn.execute(
                "SELECT content FROM messages WHERE conversation_id=? ORDER BY position", (conv_id,))]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        error = str(exc)
    readable = texts[: len(HISTORY)] == [t for _r, t in HISTORY]
    return {"lost": bool(moved) or not readable,
            "checks": {"moved_aside": moved, "history_readable": readable, "read_error": error}}


async def _open_at_start(db_dir: Path) -> Result:
    from victor_gui.storage import open_store

    store, notice = await open_store(db_dir)
    try:
        messages = await store.get_messages(1)
    finally:
        await store.close()
    return {"detail": f"opened; notice={'yes' if notice else 'no'}; {len(messages)} messages"}


async def _guarded(coro: Awaitable[Result]) -> tuple[Result, BaseException | None]:
    try:
        return await coro, None
    except BaseException as exc:
        return {}, exc


@scenario("db_locked_start")
async def db_locked_start(urls: list[str], work: Path, deadline: float) -> Result:
    db_dir = work / "data"
    conv = await seed(db_dir)
    locker = start_locker(db_dir / "conversations.sqlite3", 30, "exclusive")
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        result, exc = await _guarded(_open_at_start(db_dir))
    finally:
        locker.kill()
        locker.wait()
    return {**result, **history_check(db_dir, conv), **({"raise": exc} if exc else {})}


@scenario("db_full_start")
async def db_full_start(urls: list[str], work: Path, deadline: float) -> Result:
    mount_tmpfs(work / "disk")
    db_dir = work / "disk" / "data"
    conv = await seed(db_dir, streaming_row=True)
    fill(work / "disk")
    try:
        result, exc = await _guarded(_open_at_start(db_dir))
    finally:
        unfill(work / "disk")
    return {**result, **history_check(db_dir, conv), **({"raise": exc} if exc else {})}


@scenario("db_readonly_start")
async def db_readonly_start(urls: list[str], work: Path, deadline: float) -> Result:
    mount_tmpfs(work / "disk")
    db_dir = work / "disk" / "data"
    conv = await seed(db_dir, streaming_row=True)
    run_command(["mount", "--bind", str(db_dir), str(db_dir)])
    run_command(["mount", "-o", "remount,bind,ro", str(db_dir)])
    try:
        result, exc = await _guarded(_open_at_start(db_dir))
    finally:
        # Lazily: a connection the failed open left behind must not turn into a harness error.
        run_command(["umount", "-l", str(db_dir)], check=False)
    return {**result, **history_check(db_dir, conv), **({"raise": exc} if exc else {})}


@scenario("db_locked_midstream")
async def db_locked_midstream(urls: list[str], work: Path, deadline: float) -> Result:
    """Another program holds a write transaction for 12 s (past the store's 10 s busy timeout)
    while a reply streams; afterwards everything shown must be in the store."""
    db_dir = work / "data"
    await seed(db_dir)
    lockers: list[asyncio.subprocess.Process] = []
    holding = asyncio.Event()

    async def lock() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(db_dir / "conversations.sqlite3"), "12", "write",
            stdout=asyncio.subprocess.PIPE)
        lockers.append(proc)
        assert proc.stdout is not None
        await proc.stdout.readline()  # the lock is held from here
        holding.set()

    started: list[asyncio.Task[None]] = []

    def on_delta(n: int) -> None:
        if n == 10 and not started:
            started.append(asyncio.get_running_loop().create_task(lock()))

    try:
        run = await run_chat(urls[0], db_dir, deadline, on_delta)
        run["detail"] = run.get("detail", "") + ("; lock held" if holding.is_set() else "; lock never held")
    finally:
        for p in lockers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.wait(), 15)
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            await p.wait()
    return finish(run, lost_check(db_dir / "conversations.sqlite3", run))


@scenario("db_full_midstream")
async def db_full_midstream(urls: list[str], work: Path, deadline: float) -> Result:
    """The disk fills up for 1.5 s while a reply streams, then space is freed; afterwards
    everything shown must be in the store."""
    disk = work / "disk"
    mount_tmpfs(disk)
    db_dir = disk / "data"
    await seed(db_dir)
    loop = asyncio.get_running_loop()
    freed: list[asyncio.TimerHandle] = []

    def on_delta(n: int) -> None:
        if n == 10 and not freed:
            fill(disk)
            freed.append(loop.call_later(1.5, unfill, disk))

    try:
        run = await run_chat(urls[0], db_dir, deadline, on_delta)
    finally:
        unfill(disk)
    return finish(run, lost_check(db_dir / "conversations.sqlite3", run))


# ---------------------------------------------------------------------------------------------
# Configuration files
# ---------------------------------------------------------------------------------------------

def write_big_settings(path: Path) -> int:
    """A valid settings.yaml of 100 MB (a theme and a huge hidden_endpoints list); its size."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("config_version: 3\ntheme: dark\nhidden_endpoints:\n")
        batch = "".join(f"- http://10.0.0.1:{i:07d}\n" for i in range(10_000))
        while fh.tell() < 100 * 1024 * 1024:
            fh.write(batch)
    return path.stat().st_size


@scenario("config_100mb")
async def config_100mb(urls: list[str], work: Path, deadline: float) -> Result:
    """A 100 MB settings.yaml (a valid document: a theme and a huge hidden_endpoints list)."""
    from victor_gui.services.settings_service import SettingsService

    path = work / "settings.yaml"
    size = write_big_settings(path)
    service = SettingsService(path)
    started = time.perf_counter()
    await service.load()
    took = time.perf_counter() - started
    unchanged = path.stat().st_size == size
    error = type(service.load_error).__name__ if service.load_error else None
    out: Result = {"lost": not unchanged, "checks": {"file_unchanged": unchanged, "load_s": round(took, 2)},
                   "detail": f"load_error={error}"}
    if service.load_error is not None:
        out["typed_error"] = _error(service.load_error)
    return out


BOMB = """\
bombs:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
profiles:
  bomb:
    provider: ollama
    model: m
    api_key: *i
    description: *i
"""


@scenario("yaml_bomb")
async def yaml_bomb(urls: list[str], work: Path, deadline: float) -> Result:
    """A billion-laughs alias bomb in the app's profiles.yaml; Victor's file beside it is sound."""
    from victor_gui.config.profiles import load_profiles

    victor = work / "victor-profiles.yaml"
    victor.write_text("profiles:\n  good:\n    provider: ollama\n    model: llama3\n", encoding="utf-8")
    app = work / "profiles.yaml"
    app.write_text(BOMB, encoding="utf-8")
    found = await load_profiles(victor, app)
    kept = "good" in found.profiles
    out: Result = {"lost": not kept, "checks": {"good_profile_kept": kept, "errors": len(found.errors)},
                   "detail": f"{len(found.profiles)} profiles, {len(found.errors)} errors"}
    if found.errors:
        out["typed_error"] = _error(found.errors[0])
    return out


@scenario("_sleeper")
async def sleeper(urls: list[str], work: Path, deadline: float) -> Result:
    """Not an attack: the harness's own test (a child that outlives its cap is killed)."""
    await asyncio.sleep(60)
    return {}


# ---------------------------------------------------------------------------------------------

def main() -> None:
    name, work = sys.argv[1], Path(sys.argv[2])
    deadline = float(sys.argv[3])
    urls = sys.argv[4:]
    work.mkdir(parents=True, exist_ok=True)
    report: Result = {"name": name}
    try:
        result = asyncio.run(SCENARIOS[name](urls, work, deadline))
        raised: BaseException | None = result.pop("raise", None)
        typed = result.pop("typed_error", "")
        report.update(result)
    except BaseException as exc:
        raised, typed = exc, ""
    if raised is None:
        report.update(outcome="typed" if typed else "ok", error=typed)
    elif isinstance(raised, VictorGuiError):
        report.update(outcome="typed", error=_error(raised))
    else:
        report.update(outcome="raw", error=_error(raised),
                      traceback="".join(traceback.format_exception(raised)[-6:])[-2000:])
    sys.stdout.write("ATTACK-RESULT " + json.dumps(report, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
