"""``victor-gui fit MODEL``: will this model fit on this machine? Headless, no Qt.

MODEL is a GGUF path, an http(s) URL of a GGUF (only the header is fetched, by range requests)
or ``ollama:NAME``. Prints a short table, or JSON with ``--json``. Exit codes (the same
meanings as ``victor-gui chat``'s): 0 with an answer; 1 when the file or header is unreadable;
2 for usage errors (argparse: unknown options, a context that is not a positive number);
4 when Ollama does not answer; 5 when Ollama does not have the model. A script can tell "no
answer" from an answer without parsing the output.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from typing import Any, TextIO

GiB = 1 << 30
MiB = 1 << 20

EXIT_UNREADABLE = 1
EXIT_NOT_ANSWERING = 4
EXIT_MODEL_NOT_FOUND = 5

EXIT_HELP = """exit codes:
  0  the estimate was printed
  1  the file or its header could not be read
  2  usage: unknown option, or a value out of range
  4  Ollama does not answer (ollama:NAME)
  5  Ollama does not have that model (ollama:NAME)"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of tokens")
    return value


def add_fit_command(subparsers: Any) -> None:
    """Register ``fit`` on the ``victor-gui`` sub-command parser."""
    p = subparsers.add_parser(
        "fit", help="estimate whether a model fits in GPU/RAM",
        description="Estimate VRAM/RAM use of a GGUF model (llama.cpp, Ollama, LM Studio) from its "
                    "header only, against the free memory of this machine's GPUs.",
        epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="GGUF path, http(s) URL of a GGUF, or ollama:NAME")
    p.add_argument("--ctx", type=_positive_int, default=None, metavar="N",
                   help="context length (default: 4096, or the training context if smaller)")
    p.add_argument("--cache-type", choices=["f16", "q8_0", "q4_0"], default="f16",
                   help="KV cache type for K and V (default f16)")
    p.add_argument("--no-flash-attention", action="store_true", help="estimate with flash attention off")
    p.add_argument("--cpu-moe", action="store_true",
                   help="keep MoE expert tensors in RAM (llama.cpp --cpu-moe); the rest offloads")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_fit)


def run_fit(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``victor-gui fit``; returns the exit code."""
    return asyncio.run(fit_command(args, out or sys.stdout))


def _gib(n: int | float) -> str:
    return f"{n / GiB:.2f} GiB" if abs(n) >= GiB else f"{n / MiB:.0f} MiB"


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


async def fit_command(args: argparse.Namespace, out: TextIO) -> int:
    from victor_gui.errors import GGUFError, ModelNotFoundError, ProviderConnectionError, ProviderError
    from victor_gui.sizing.fit import FitOptions, estimate_fit
    from victor_gui.sizing.gpu import detect_gpus
    from victor_gui.sizing.sources import load_model

    detection = asyncio.create_task(detect_gpus())  # probes run while the header is read
    try:
        source = await load_model(args.model)
    except (ProviderConnectionError, ModelNotFoundError) as exc:
        await detection
        _say(out, args.json, {"status": "not_found", "reason": exc.kind, "message": exc.message})
        return EXIT_NOT_ANSWERING if isinstance(exc, ProviderConnectionError) else EXIT_MODEL_NOT_FOUND
    except GGUFError as exc:
        await detection
        _say(out, args.json, {"status": "error", "reason": exc.reason, "message": exc.message})
        return EXIT_UNREADABLE
    except ProviderError as exc:  # Ollama answered, but not with something usable
        await detection
        _say(out, args.json, {"status": "error", "reason": exc.kind, "message": exc.message})
        return EXIT_UNREADABLE
    report = await detection
    arch = source.arch
    n_ctx = args.ctx or (min(4096, arch.n_ctx_train) if arch.n_ctx_train else 4096)
    opts = FitOptions(n_ctx=n_ctx, cache_type_k=args.cache_type, cache_type_v=args.cache_type,
                      flash_attention=not args.no_flash_attention, cpu_moe=args.cpu_moe)
    result = estimate_fit(arch, report.gpus, report.ram, opts)
    if args.json:
        model = {"ref": args.model, "kind": source.kind, "arch": arch.arch, "n_layer": arch.n_layer,
                 "n_ctx_train": arch.n_ctx_train, "weight_bytes": arch.weight_bytes,
                 "file_size": source.file_size}
        payload = {"status": "ok", "model": model,
                   "options": _plain(opts), "verdict": result.verdict, "summary": result.summary,
                   "result": _plain(result), "gpus": _plain(report.gpus), "ram": _plain(report.ram),
                   "notes": report.notes}
        out.write(json.dumps(payload, indent=2) + "\n")
        return 0
    _table(out, args.model, source, result, report, opts)
    return 0


def _say(out: TextIO, as_json: bool, payload: dict[str, Any]) -> None:
    out.write((json.dumps(payload) if as_json else payload["message"]) + "\n")


def _table(out: TextIO, ref: str, source: Any, result: Any, report: Any, opts: Any) -> None:
    arch = source.arch
    w = out.write
    w(f"Model     {ref}\n")
    w(f"          {arch.arch}, {arch.n_layer} layers, trained context {arch.n_ctx_train or '?'}, "
      f"weights {_gib(arch.weight_bytes)}{'' if arch.weights_exact else ' (from file size)'}\n")
    w(f"Context   {opts.n_ctx} ({opts.cache_type_k} KV cache, flash attention "
      f"{'on' if opts.flash_attention else 'off'})\n")
    w(f"Verdict   {result.summary}\n\n")
    w(f"{'':12}{'GPU':>12}{'RAM':>12}\n")
    for label, field in (("weights", "weights"), ("KV cache", "kv"), ("compute", "compute"),
                         ("overhead", "overhead")):
        w(f"{label:12}{_gib(getattr(result.gpu, field)):>12}{_gib(getattr(result.host, field)):>12}\n")
    w(f"{'total':12}{_gib(result.gpu.total):>12}{_gib(result.host.total):>12}\n\n")
    best = result.max_full_offload_ctx
    if not report.gpus:
        best_text = "n/a (no GPU)"
    else:
        best_text = str(best) if best else "none (the weights alone do not fit)"
    w(f"Largest context with full GPU offload: {best_text}\n")
    if not report.gpus:
        w("GPUs      none found\n")
    for g in report.gpus:
        free = _gib(g.free) if g.free_known else "free unknown"
        w(f"GPU {g.index}     {g.name} ({g.vendor}, {g.source}{', unified' if g.unified else ''}): "
          f"{free} free of {_gib(g.total)}\n")
    if report.ram:
        w(f"RAM       {_gib(report.ram.available)} available of {_gib(report.ram.total)}\n")
    for note in result.warnings + report.notes:
        w(f"note      {note}\n")
