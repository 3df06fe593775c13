"""``victor-gui chat [PROMPT]``: one turn from the command line, no window, no Qt.

The answer streams to stdout as it arrives (flushed per piece), reasoning to stderr (or to
stdout, marked, with ``--show-reasoning``); ``--json`` prints one JSON object at the end and
nothing else on stdout. Errors print the same sentence the window shows, on stderr, and exit
with a code per kind of failure (see :data:`~victor_gui.services.headless_chat.EXIT_CODE_HELP`).
The work itself is :mod:`victor_gui.services.headless_chat`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from victor_gui.errors import AttachmentError, ModelTakesNoImagesError, VictorGuiError
from victor_gui.services.exit_codes import (
    EXIT_CODE_HELP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    exit_code_for,
)

if TYPE_CHECKING:
    from victor_gui.services.headless_chat import ChatOutcome

REASONING_MARK = "[reasoning] "
ANSWER_MARK = "[answer] "


def add_chat_command(commands: Any) -> None:
    """Register ``chat`` on the ``victor-gui`` subparsers."""
    p = commands.add_parser(
        "chat", help="send one prompt and print the answer (no window)",
        description="Send one prompt to a provider, profile or endpoint and stream the answer to "
                    "stdout. The exchange is saved in the app's conversation history unless "
                    "--no-save.",
        epilog=EXIT_CODE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt", nargs="?", default=None, metavar="PROMPT",
                   help="the prompt; read from standard input when left out or '-'")
    who = p.add_argument_group("what answers (one of)")
    who.add_argument("--provider", metavar="NAME", help="a provider by any seed name or alias")
    who.add_argument("--profile", metavar="NAME",
                     help="a profile from ~/.victor/profiles.yaml or the app's, with its fallback chain")
    who.add_argument("--endpoint", metavar="NAME|URL",
                     help="an endpoint from settings.yaml by name or URL, or any OpenAI-compatible URL")
    p.add_argument("--model", metavar="M", help="the model (a local server's loaded model when left out)")
    p.add_argument("--assistant", metavar="NAME",
                   help="an assistant saved in the window: its provider, model, system prompt, parameters "
                        "and tools fill what the other options leave out")
    p.add_argument("--system", metavar="TEXT", help="system prompt")
    p.add_argument("--attach", action="append", type=Path, default=[], metavar="FILE",
                   help="attach a file (repeatable): an image goes to the model as an image, a "
                        "document's text goes before the prompt; a file that cannot be read or "
                        "converted exits 8")
    p.add_argument("--temperature", type=_temperature, metavar="T", help="0 to 2")
    p.add_argument("--max-tokens", type=_positive_int, metavar="N", help="longest answer in tokens")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="give up after this many seconds overall (exit 4)")
    p.add_argument("--no-scan", action="store_true",
                   help="with nothing named to answer, do not look for server processes on other ports")
    p.add_argument("--retries", type=_non_negative_int, metavar="N",
                   help="retries on 429/5xx per provider (0: none; default: the provider's)")
    p.add_argument("--no-save", action="store_true", help="do not store the exchange in the history")
    p.add_argument("--tools", type=_names, metavar="NAME[,NAME]", default=[],
                   help="let the model call the tools of these MCP servers (from mcp.json); only "
                        "tools already allowed in Settings → Tools run, unless --approve-tools")
    p.add_argument("--approve-tools", action="store_true",
                   help="with --tools: run every tool call the model makes, without asking")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object at the end (text, reasoning, provider, model, endpoint, "
                        "usage, timings, cost, fallback, conversation_id, tool_calls with --tools) "
                        "and nothing else on stdout")
    p.add_argument("--show-reasoning", action="store_true",
                   help="print reasoning on stdout, marked, instead of on stderr")
    p.add_argument("--settings", type=Path, metavar="PATH", help="settings.yaml to use (default: the app's)")
    p.add_argument("--data-dir", type=Path, metavar="PATH",
                   help="conversation data folder (default: the one in settings, else the app's)")
    p.set_defaults(handler=run_chat)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more server names, separated by commas")
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError("must be between 0 and 2")
    return value


class _Printer:
    """Streams pieces: the answer to ``out``, reasoning to ``err`` or marked on ``out``."""

    def __init__(self, out: TextIO, err: TextIO, *, quiet: bool, show_reasoning: bool) -> None:
        self.out, self.err = out, err
        self.quiet = quiet
        self.show_reasoning = show_reasoning
        self.in_reasoning = False
        self.wrote_text = False
        self.last = ""

    def text(self, piece: str) -> None:
        if self.quiet:
            return
        if self.in_reasoning:
            self.in_reasoning = False
            where = self.out if self.show_reasoning else self.err
            where.write("\n" + (ANSWER_MARK if self.show_reasoning else ""))
            where.flush()
        self.out.write(piece)
        self.out.flush()
        self.wrote_text = True
        self.last = piece

    def reasoning(self, piece: str) -> None:
        if self.quiet:
            return
        where = self.out if self.show_reasoning else self.err
        if not self.in_reasoning:
            self.in_reasoning = True
            if self.show_reasoning:
                where.write(REASONING_MARK)
        where.write(piece)
        where.flush()

    def end(self) -> None:
        if self.wrote_text and not self.last.endswith("\n"):
            self.out.write("\n")
            self.out.flush()


def read_prompt(arg: str | None, stdin: TextIO) -> str:
    """The prompt from the argument, or standard input when it is left out or ``-``."""
    if arg is not None and arg != "-":
        return arg
    return stdin.read()


def run_chat(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None,
             stdin: TextIO | None = None) -> int:
    """Entry point of ``victor-gui chat``; returns the exit code."""
    # The chat machinery (providers, store, profiles) is imported only when a chat runs, so
    # `victor-gui providers`/`fit` do not pay for it.
    from victor_gui.services.headless_chat import ChatOutcome, ChatRequest, HeadlessChat

    out, err = out or sys.stdout, err or sys.stderr
    try:
        prompt = read_prompt(args.prompt, stdin or sys.stdin)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    request = ChatRequest(
        prompt=prompt, provider=args.provider, model=args.model, profile=args.profile,
        endpoint=args.endpoint, system=args.system, temperature=args.temperature,
        max_tokens=args.max_tokens, timeout=args.timeout, retries=args.retries,
        scan_processes=not args.no_scan, save=not args.no_save,
        settings_path=args.settings, data_dir=args.data_dir,
        tools=list(getattr(args, "tools", None) or []), approve_tools=getattr(args, "approve_tools", False),
        assistant=getattr(args, "assistant", None),
        attachments=list(getattr(args, "attach", None) or []))
    if request.approve_tools and not request.tools:
        err.write("--approve-tools needs --tools NAME[,NAME].\n(see `victor-gui chat --help`)\n")
        return EXIT_USAGE
    printer = _Printer(out, err, quiet=args.json, show_reasoning=args.show_reasoning)
    chat = HeadlessChat(request, on_text=printer.text, on_reasoning=printer.reasoning)
    try:
        outcome = asyncio.run(chat.run())
    except KeyboardInterrupt:
        printer.end()
        err.write("Interrupted.\n")
        return EXIT_INTERRUPTED
    except VictorGuiError as exc:
        printer.end()
        return _fail(exc, ChatOutcome(warnings=chat.warnings, status="error"), out, err, as_json=args.json)
    printer.end()
    if outcome.error is not None:
        return _fail(outcome.error, outcome, out, err, as_json=args.json)
    for warning in outcome.warnings:
        err.write(f"warning: {warning}\n")
    if args.json:
        out.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
    else:
        for source in outcome.sources or []:
            where = " · ".join(str(source[k]) for k in ("name", "locator") if source.get(k))
            err.write(f"source: {where}: {_quote(str(source.get('text', '')))}\n")
    return EXIT_OK


def _quote(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _fail(error: VictorGuiError, outcome: ChatOutcome, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    from victor_gui.services.error_text import describe_error

    code = exit_code_for(error)
    for warning in outcome.warnings:
        err.write(f"warning: {warning}\n")
    # A usage problem, or a file that cannot be attached, is its own sentence (naming the file);
    # the rest say what the window would say.
    if isinstance(error, UsageError | AttachmentError):
        sentence = error.message
    elif isinstance(error, ModelTakesNoImagesError):
        sentence = error.message + (f" Models that do: {', '.join(error.alternatives)}."
                                    if error.alternatives else "")
    else:
        sentence = describe_error(error)
    err.write(sentence + "\n")
    if code == EXIT_USAGE:
        err.write("(see `victor-gui chat --help`)\n")
    if as_json:
        payload = outcome.to_json()
        payload["error"] = {"kind": getattr(error, "kind", type(error).__name__), "message": error.message,
                            "sentence": sentence, "exit_code": code}
        out.write(json.dumps(payload, ensure_ascii=False) + "\n")
    return code


__all__ = ["add_chat_command", "read_prompt", "run_chat"]
