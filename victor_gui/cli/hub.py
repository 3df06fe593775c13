"""``victor-gui hub``: search Hugging Face for GGUF models and see how each quant would fit here.

    victor-gui hub search TEXT [--author A] [--sort downloads|likes|updated] [--limit N] [--json]
    victor-gui hub show REPO [--ctx N] [--json]

``show`` lists the repository's quants with their size and the fit verdict at ``--ctx`` on this
machine's GPUs, read from each file's GGUF header over range requests (nothing is downloaded).
The Hub is ``HF_ENDPOINT`` or https://huggingface.co; the token is the Hugging Face key
(keyring, then HF_API_KEY/HF_TOKEN). Exit codes are ``victor-gui chat``'s (see ``--help``).
Headless, no Qt; heavy imports wait for the handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from victor_gui.cli.fit import _positive_int

EXIT_HELP = """exit codes:
  0  the answer was printed
  1  an unexpected reply, or a server error
  3  a gated repository without a (valid) Hugging Face token
  4  Hugging Face is not reachable
  5  no such repository
  6  rate limited"""


def add_hub_command(subparsers: Any) -> None:
    """Register ``hub search`` and ``hub show`` on the ``victor-gui`` sub-command parser."""
    hub = subparsers.add_parser("hub", help="find GGUF models on Hugging Face and see what fits",
                                description="Search Hugging Face for GGUF models; show a repository's "
                                            "quants with a fit verdict for this machine.",
                                epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = hub.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    search = sub.add_parser("search", help="search GGUF repositories", epilog=EXIT_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    search.add_argument("text", metavar="TEXT", nargs="?", default="", help="words in the repository name")
    search.add_argument("--author", default=None, help="only this user or organisation")
    search.add_argument("--sort", choices=["downloads", "likes", "updated"], default="downloads")
    search.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="at most N results")
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(handler=_run(search_command))
    show = sub.add_parser("show", help="a repository's quants with size and fit verdict", epilog=EXIT_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("repo", metavar="REPO", help="owner/name, e.g. bartowski/Qwen3-8B-GGUF")
    show.add_argument("--ctx", type=_positive_int, default=8192, metavar="N",
                      help="context length to estimate at (default 8192)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_run(show_command))


def _run(command: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        return int(asyncio.run(command(args, sys.stdout)))
    return handler


async def _client() -> Any:
    """A Hub client whose token comes from the keyring like the app's (then HF_API_KEY/HF_TOKEN)."""
    from victor_gui.cli.servers import _install_keyring
    from victor_gui.services.hf_hub import HubClient

    await asyncio.to_thread(_install_keyring)
    return HubClient()


def _fail(out: TextIO, as_json: bool, exc: Any) -> int:
    from victor_gui.services.exit_codes import exit_code_for

    if as_json:
        out.write(json.dumps({"status": "error", "reason": getattr(exc, "kind", "error"),
                              "message": exc.message}) + "\n")
    else:
        sys.stderr.write(exc.message + "\n")
    return exit_code_for(exc)


async def search_command(args: argparse.Namespace, out: TextIO) -> int:
    """``hub search``: one line per repository (or a JSON list)."""
    from victor_gui.errors import VictorGuiError

    try:
        hub = await _client()
        found = await hub.search(args.text, author=args.author, sort=args.sort, limit=args.limit)
    except VictorGuiError as exc:
        return _fail(out, args.json, exc)
    if args.json:
        out.write(json.dumps([{"id": r.id, "author": r.author, "downloads": r.downloads, "likes": r.likes,
                               "last_modified": r.last_modified.isoformat() if r.last_modified else None,
                               "gated": r.gated} for r in found], indent=2) + "\n")
        return 0
    if not found:
        out.write("No GGUF repository matches.\n")
        return 0
    width = max(len(r.id) for r in found)
    out.write(f"{'REPOSITORY':{width}}  {'DOWNLOADS':>10}  {'LIKES':>6}  UPDATED\n")
    for r in found:
        updated = r.last_modified.strftime("%Y-%m-%d") if r.last_modified else ""
        gated = "  (gated)" if r.gated else ""
        out.write(f"{r.id:{width}}  {r.downloads:>10,}  {r.likes:>6,}  {updated}{gated}\n")
    return 0


async def show_command(args: argparse.Namespace, out: TextIO) -> int:
    """``hub show``: the repo's quants with size, fit verdict and largest full-offload context."""
    from victor_gui.errors import VictorGuiError
    from victor_gui.services.hf_fit import HubFitter
    from victor_gui.sizing.gpu import detect_gpus

    hub = await _client()
    fitter = HubFitter(hub)
    detection = asyncio.create_task(detect_gpus())  # probes run while the Hub answers
    try:
        repo = await hub.repo_files(args.repo)
        report = await detection
        fits = await fitter.fit_repo(repo, report, args.ctx)
    except VictorGuiError as exc:
        if not detection.done():
            detection.cancel()
        return _fail(out, args.json, exc)
    finally:
        await fitter.aclose()
    has_gpu = bool(report.gpus)
    if args.json:
        out.write(json.dumps({
            "status": "ok", "repo": repo.repo_id, "gated": repo.gated, "n_ctx": args.ctx,
            "page": hub.page_url(repo.repo_id),
            "quants": [{"quant": f.quant.quant, "name": f.quant.name, "files": f.quant.paths,
                        "size": f.quant.size, "verdict": f.fit.verdict if f.fit else None,
                        "summary": f.fit.summary if f.fit else None,
                        "gpu_layers": f.fit.n_gpu_layers if f.fit else None,
                        "layers": f.fit.n_layers_total if f.fit else None,
                        "max_full_offload_ctx": f.max_full_ctx, "error": f.error} for f in fits],
            "vision": [{"name": v.name, "files": v.paths, "size": v.size} for v in repo.vision],
            "gpus": [{"name": g.name, "free": g.free, "total": g.total} for g in report.gpus],
            "notes": list(repo.notes)}, indent=2) + "\n")
        return 0
    _table(out, repo, fits, args.ctx, has_gpu, report)
    return 0


def _table(out: TextIO, repo: Any, fits: list[Any], n_ctx: int, has_gpu: bool, report: Any) -> None:
    from victor_gui.cli.fit import _gib

    w = out.write
    w(f"{repo.repo_id}{'  (gated)' if repo.gated else ''}: fit at {n_ctx:,} tokens on "
      f"{', '.join(g.name for g in report.gpus) or 'no GPU (CPU and RAM only)'}\n")
    if not fits:
        w("No GGUF model file in this repository.\n")
    rows = [(f.quant.label, _gib(f.quant.size), f.fit.summary if f.fit else f"unreadable: {f.error}",
             ("n/a" if not has_gpu else f"{f.max_full_ctx:,}" if f.max_full_ctx else "none") if f.fit else "",
             f.quant.name + (f" ({len(f.quant.parts)} parts)" if len(f.quant.parts) > 1 else ""))
            for f in fits]
    head = ("QUANT", "SIZE", "FIT", "FULL OFFLOAD UP TO", "FILE")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        w("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n")
    for v in repo.vision:
        w(f"vision add-on: {v.name} ({_gib(v.size)})\n")
    for note in repo.notes:
        w(f"note: {note}\n")
