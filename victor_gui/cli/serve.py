"""``victor-gui serve PATH``: run a local GGUF with ``llama-server`` at the flags its fit plan
gives, print the URL, and stop it on Ctrl+C (headless, no Qt).

``victor-gui serve --router [--models-dir D]...``: run ``llama-server`` in router mode over every
GGUF in the model folders (Settings' folders and the libraries found, or the ``--models-dir``
folders), each with its own fit-plan flags in a ``--models-preset`` file
(:mod:`victor_gui.services.engine_router`); a request naming a model loads it.

The same :class:`~victor_gui.services.engine_runner.EngineRunner` the window uses: the binary
from Settings (``llama_server_path``), PATH, the build cache or LM Studio/Jan; the context that
fully offloads unless ``--ctx`` says otherwise; a free port unless ``--port``. The server's log
goes to ``<log dir>/engines/``. Exit codes: 0 stopped by Ctrl+C (or SIGTERM); 1 the file cannot
be read, no binary was found, or the server did not start or stopped on its own (the last lines
of its log are printed); 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from victor_gui.cli.fit import _number  # one number parser for the CLI's flags
from victor_gui.cli.fit import _positive_int as positive_int

EXIT_FAILED = 1
EXIT_USAGE = 2


def _port(text: str) -> int:
    return int(_number(int, text, lambda v: 0 < v < 65536, "a port is between 1 and 65535"))


def add_serve_command(subparsers: Any) -> None:
    """Register ``serve`` on the ``victor-gui`` sub-command parser."""
    p = subparsers.add_parser(
        "serve", help="run a local GGUF with llama-server at the settings that fit",
        description="Start llama-server for a GGUF file with flags derived from the fit estimate "
                    "(-ngl, -c, -fa, cache types, tensor split, mmproj), print its URL, and stop it "
                    "on Ctrl+C.")
    p.add_argument("model", metavar="PATH", nargs="?", help="a .gguf file (not with --router)")
    p.add_argument("--router", action="store_true",
                   help="serve every GGUF of the model folders with one llama-server in router mode "
                        "(each model loads on request, at the flags its own fit plan gives)")
    p.add_argument("--models-dir", action="append", default=None, metavar="DIR",
                   help="with --router: serve the GGUFs under DIR instead of the model folders of "
                        "Settings (repeatable)")
    p.add_argument("--models-max", type=positive_int, default=None, metavar="N",
                   help="with --router: models loaded at once (default 1; each is planned on 1/N of "
                        "the GPU and RAM)")
    p.add_argument("--ctx", type=positive_int, default=None, metavar="N",
                   help="context length (default: the largest that fully offloads, capped by the "
                        "trained context; 8192 without a GPU)")
    p.add_argument("--port", type=_port, default=None, metavar="P", help="port (default: a free one)")
    p.add_argument("--llama-server", default=None, metavar="BIN",
                   help="the llama-server binary (default: Settings, then PATH, the build cache, "
                        "LM Studio, Jan)")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of ``victor-gui serve``; returns the exit code."""
    if bool(args.router) == bool(args.model) or ((args.models_dir or args.models_max) and not args.router):
        (err or sys.stderr).write("victor-gui serve: give either a .gguf PATH, or --router "
                                  "(--models-dir and --models-max go with --router)\n")
        return EXIT_USAGE
    try:
        return asyncio.run(serve_command(args, out or sys.stdout, err or sys.stderr))
    except KeyboardInterrupt:  # a second Ctrl+C while stopping
        return 0


async def serve_command(args: argparse.Namespace, out: TextIO, err: TextIO,
                        stop: asyncio.Event | None = None) -> int:
    """Plan, start, print the URL, wait for ``stop`` (Ctrl+C / SIGTERM) or the server's end."""
    import httpx

    from victor_gui.core.app_dirs import log_dir
    from victor_gui.errors import EngineError
    from victor_gui.services.engine_runner import EngineRunner
    from victor_gui.services.settings_service import SettingsService
    from victor_gui.sizing.gpu import detect_gpus

    settings = SettingsService()
    try:
        current = await settings.load()
    finally:
        settings.close()
    chosen = args.llama_server or current.llama_server_path
    report = await detect_gpus()
    stop = stop or _stop_on_signals()
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=log_dir() / "engines", binary_setting=lambda: chosen,
                              gpu_report=lambda: report)
        try:
            if args.router:
                plan: Any = await _plan_router(runner, settings, args, out)
            else:
                plan = await runner.plan(Path(args.model), args.ctx)
                out.write(f"Model     {plan.model}\nFit       {plan.fit.summary} at {plan.n_ctx:,} tokens\n")
            out.flush()
            engine = await runner.start(plan, port=args.port)
        except EngineError as exc:
            err.write(exc.message + "\n")
            await runner.close()
            return EXIT_FAILED
        out.write(f"Command   {engine.command}\nLog       {engine.log_path}\n"
                  f"Serving   {engine.url}/v1  (OpenAI-compatible; Ctrl+C stops it)\n")
        if args.router:
            out.write(f"Models    {engine.url}/models lists them; a request naming one loads it\n")
        out.flush()
        assert engine.process is not None
        ended = asyncio.ensure_future(engine.process.wait())
        asked = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({ended, asked}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Ctrl+C where the loop takes no signal handlers (Windows): asyncio.run cancels this
            # task. The server runs in its own process group and outlives us unless stopped
            # here (under Wine it was left running, holding its port, after the CLI had exited).
            await runner.close()
            out.write("Stopped.\n")
            out.flush()
            raise
        finally:
            asked.cancel()
        crashed = ended.done() and not engine.stopping
        if crashed:
            await asyncio.sleep(0.1)  # the last log lines
            err.write(f"llama-server stopped on its own (exit code {engine.process.returncode}). "
                      f"Last lines of its log:\n{engine.log_tail(15)}\n")
        await runner.close()
        if not crashed:
            out.write("Stopped.\n")
        return EXIT_FAILED if crashed else 0


async def _plan_router(runner: Any, settings: Any, args: argparse.Namespace, out: TextIO) -> Any:
    """Scan the folders, plan each model, print the list (and what was left out)."""
    from victor_gui.services.engine_router import ROUTER_MODELS_MAX, plan_router
    from victor_gui.services.model_folders import FOLDER, Library, ModelFolders, scan_libraries

    if args.models_dir:
        dirs = list(args.models_dir)
        found = await asyncio.to_thread(
            lambda: scan_libraries([Library(FOLDER, Path(d).expanduser()) for d in dirs]))
    else:
        found = await ModelFolders(settings).scan()
    plan = await plan_router(runner, found, models_max=args.models_max or ROUTER_MODELS_MAX)
    out.write(f"Router    {plan.count_text}, at most {plan.models_max} loaded at once\n")
    for m in plan.models:
        p = m.plan
        out.write(f"  {m.name:40} {p.fit.summary} at {p.n_ctx:,} tokens  {p.model}\n")
    for skipped in plan.skipped:
        out.write(f"  left out {skipped.path}: {skipped.reason}\n")
    return plan


def _stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl+C or SIGTERM (where the loop can take signal handlers)."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError, ValueError):
            loop.add_signal_handler(sig, event.set)
    return event


__all__ = ["add_serve_command", "run_serve", "serve_command"]
