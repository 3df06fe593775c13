"""``victor-gui fit MODEL``: will this model fit on this machine? Headless, no Qt.

MODEL is a GGUF path, an http(s) URL of a GGUF or ``hf:OWNER/REPO/FILE.gguf`` (only the header
is fetched, by range requests, from ``HF_ENDPOINT`` or huggingface.co) or ``ollama:NAME``. The
machine is the one detected, or the one described by ``--gpu-mem``/``--gpus``; ``--vllm``
answers for vLLM instead of the llama.cpp family. Prints a short table, or JSON with
``--json``. Headers read once are answered from a cache in the app's cache folder
(``--no-cache`` reads again). Exit codes (the same
meanings as ``victor-gui chat``'s): 0 with an answer; 1 when the file or header is unreadable;
2 for usage errors (argparse: unknown options, a context that is not a positive number);
4 when Ollama does not answer; 5 when Ollama does not have the model. A script can tell "no
answer" from an answer without parsing the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, TextIO

GiB = 1 << 30
MiB = 1 << 20

EXIT_UNREADABLE = 1
EXIT_USAGE = 2
EXIT_NOT_ANSWERING = 4
EXIT_MODEL_NOT_FOUND = 5

GIVEN_NOTE = "GPUs as given by --gpu-mem"

EXIT_HELP = """exit codes:
  0  the estimate was printed
  1  the file or its header could not be read
  2  usage: unknown option, or a value out of range
  4  Ollama does not answer (ollama:NAME)
  5  Ollama does not have that model (ollama:NAME)"""


def _number(kind: type[int] | type[float], text: str, ok: Any, rule: str) -> Any:
    """``text`` as an int or float that passes ``ok``; argparse reports anything else (exit 2)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a {'whole number' if kind is int else 'number'}: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(rule)
    return value


def _positive_int(text: str) -> int:
    return int(_number(int, text, lambda v: v > 0, "must be a positive number of tokens"))


def _count(text: str) -> int:
    return int(_number(int, text, lambda v: v >= 0, "must be 0 or more"))


def _fraction(text: str) -> float:
    return float(_number(float, text, lambda v: 0 < v <= 1, "must be above 0 and at most 1"))


_UNITS = {"": GiB, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": MiB, "mb": 1000**2, "mib": MiB,
          "g": GiB, "gb": 1000**3, "gib": GiB, "t": 1 << 40, "tb": 1000**4, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """``24GiB``, ``24GB``, ``24000MiB``, ``24`` (GiB) as bytes; argparse reports bad ones."""
    t = text.strip().lower().replace(" ", "")
    i = len(t)
    while i and not (t[i - 1].isdigit() or t[i - 1] == "."):
        i -= 1
    try:
        value = float(t[:i])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 24GiB)") from None
    unit = _UNITS.get(t[i:])
    if unit is None or not 0 < value < 1 << 20:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 24GiB)")
    return int(value * unit)


def _sizes(text: str) -> list[int]:
    return [parse_size(part) for part in text.split(",") if part.strip()] or [parse_size(text)]


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r} (e.g. 3,1)") from None
    if not values or any(v < 0 for v in values) or not any(v > 0 for v in values):
        raise argparse.ArgumentTypeError("tensor split weights are numbers ≥ 0, at least one above 0")
    return values


def add_fit_command(subparsers: Any) -> None:
    """Register ``fit`` on the ``victor-gui`` sub-command parser."""
    p = subparsers.add_parser(
        "fit", help="estimate whether a model fits in GPU/RAM",
        description="Estimate VRAM/RAM use of a GGUF model (llama.cpp, Ollama, LM Studio) from its "
                    "header only, against the free memory of this machine's GPUs.",
        epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help="GGUF path, http(s) URL of a GGUF, hf:OWNER/REPO/FILE.gguf, or ollama:NAME")
    p.add_argument("--ctx", type=_positive_int, default=None, metavar="N",
                   help="context length (default: 4096, or the training context if smaller)")
    p.add_argument("--cache-type", choices=["f16", "q8_0", "q4_0"], default="f16",
                   help="KV cache type for K and V (default f16)")
    p.add_argument("--no-flash-attention", action="store_true", help="estimate with flash attention off")
    p.add_argument("--cpu-moe", action="store_true",
                   help="keep MoE expert tensors in RAM (llama.cpp --cpu-moe); the rest offloads")
    machine = p.add_argument_group("the machine (default: the GPUs and RAM detected here)")
    machine.add_argument("--gpu-mem", type=_sizes, action="append", metavar="SIZE[,SIZE...]",
                         help="free memory of each GPU instead of detecting them, e.g. 24GiB or 24GiB,12GiB "
                              "(repeatable)")
    machine.add_argument("--gpus", type=_count, metavar="N",
                         help="number of GPUs: N of --gpu-mem's size, or the first N detected (0: CPU only)")
    machine.add_argument("--tensor-split", type=_weights, metavar="W,W,...",
                         help="share of the layers per GPU, as llama.cpp -ts (default: by free memory)")
    machine.add_argument("--main-gpu", type=_count, metavar="N",
                         help="put everything on GPU N, as llama.cpp -sm none -mg N")
    machine.add_argument("--margin", type=parse_size, metavar="SIZE",
                         help="safety margin kept free on each GPU, besides the backend's reserve "
                              "(default 256MiB)")
    vllm = p.add_argument_group("vLLM instead of llama.cpp")
    vllm.add_argument("--vllm", action="store_true",
                      help="estimate for vLLM (KV token capacity, longest request)")
    vllm.add_argument("--tp", type=_count, default=None, metavar="N",
                      help="tensor parallel size (default: the number of GPUs)")
    vllm.add_argument("--gpu-util", type=_fraction, default=0.9, metavar="F",
                      help="gpu_memory_utilization (default 0.9)")
    p.add_argument("--no-cache", action="store_true",
                   help="read the header again instead of the cached reading")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_fit)


def run_fit(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``victor-gui fit``; returns the exit code.

    A local file with the GPUs given (``--gpu-mem``) is answered without an event loop (asyncio
    alone is a third of a light command's start-up); anything else runs :func:`fit_command`.
    """
    out = out or sys.stdout
    code = _fit_local_given(args, out)
    if code is not None:
        return code
    if _is_local(args.model) and "ssl" not in sys.modules:
        # This process reads a file and runs probe tools: it never opens a connection, so
        # asyncio is loaded without its TLS support (it checks for a Python built without ssl)
        # and the OpenSSL bindings (a quarter of asyncio's import) are never loaded.
        sys.modules["ssl"] = None  # type: ignore[assignment]
    import asyncio

    return asyncio.run(fit_command(args, out))


def _is_local(ref: str) -> bool:
    return not ref.startswith(("http://", "https://", "hf:", "ollama:"))


def _fit_local_given(args: argparse.Namespace, out: TextIO) -> int | None:
    """The answer for a local GGUF on the GPUs of ``--gpu-mem``, all in this thread; None when
    the command needs the async path (a remote model, GPU detection, a split model)."""
    if args.gpu_mem is None or not _is_local(args.model):
        return None
    from victor_gui.errors import GGUFError
    from victor_gui.sizing.hardware import GpuReport
    from victor_gui.sizing.ram import ram_info
    from victor_gui.sizing.sources import ModelSource, load_local_gguf

    try:
        source = load_local_gguf(args.model, _cache(args))
    except GGUFError as exc:
        _say(out, args.json, {"status": "error", "reason": exc.reason, "message": exc.message})
        return EXIT_UNREADABLE
    gpus = _machine(args)
    if not isinstance(source, ModelSource) or gpus is None:
        return None
    return _answer(args, out, source, GpuReport(gpus=gpus, ram=ram_info(), notes=[GIVEN_NOTE]))


def _cache(args: argparse.Namespace) -> Any:
    if args.no_cache:
        return None
    from victor_gui.sizing.header_cache import default_cache

    return default_cache()


def _gib(n: int | float) -> str:
    return f"{n / GiB:.2f} GiB" if abs(n) >= GiB else f"{n / MiB:.0f} MiB"


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _machine(args: argparse.Namespace) -> Any | None:
    """The GPUs described on the command line, or None to detect them."""
    from victor_gui.sizing.hardware import GpuDevice

    if args.gpu_mem is None:
        return None
    sizes = [size for group in args.gpu_mem for size in group]
    if args.gpus is not None and len(sizes) == 1:
        sizes = sizes * args.gpus
    elif args.gpus is not None:
        sizes = sizes[: args.gpus]
    return [GpuDevice("nvidia", f"GPU {i} ({_gib(size)} given)", size, size, index=i, source="--gpu-mem")
            for i, size in enumerate(sizes)]


async def _detect(args: argparse.Namespace) -> Any:
    from victor_gui.sizing.hardware import GpuReport

    given = _machine(args)
    if given is None:
        from victor_gui.sizing.gpu import detect_gpus

        report = await detect_gpus()
        if args.gpus is not None:
            report.gpus = report.gpus[: args.gpus]
        return report
    from victor_gui.sizing.gpu import read_ram  # psutil only: no probe tool is started

    return GpuReport(gpus=given, ram=await read_ram(), notes=[GIVEN_NOTE])


async def fit_command(args: argparse.Namespace, out: TextIO) -> int:
    """``victor-gui fit`` on an event loop: GPU probes run while the model is read."""
    import asyncio

    from victor_gui.errors import GGUFError, ModelNotFoundError, ProviderConnectionError, ProviderError
    from victor_gui.sizing.sources import load_model

    detection = asyncio.create_task(_detect(args))  # probes run while the header is read
    try:
        source = await load_model(args.model, cache=_cache(args))
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
    return _answer(args, out, source, await detection)


def _answer(args: argparse.Namespace, out: TextIO, source: Any, report: Any) -> int:
    """Estimate and print, once the model is read and the machine known."""
    if args.main_gpu is not None and not any(g.index == args.main_gpu for g in report.gpus):
        print(f"victor-gui fit: error: --main-gpu {args.main_gpu}: no such GPU "
              f"(found: {', '.join(str(g.index) for g in report.gpus) or 'none'})", file=sys.stderr)
        return EXIT_USAGE
    arch = source.arch
    model = {"ref": args.model, "kind": source.kind, "arch": arch.arch, "n_layer": arch.n_layer,
             "n_ctx_train": arch.n_ctx_train, "weight_bytes": arch.weight_bytes,
             "file_size": source.file_size}
    if args.vllm:
        return _vllm(args, out, source, report, model)
    from victor_gui.sizing.fit import DEFAULT_MARGIN, FitOptions, estimate_fit

    n_ctx = args.ctx or (min(4096, arch.n_ctx_train) if arch.n_ctx_train else 4096)
    opts = FitOptions(n_ctx=n_ctx, cache_type_k=args.cache_type, cache_type_v=args.cache_type,
                      flash_attention=not args.no_flash_attention, cpu_moe=args.cpu_moe,
                      margin_bytes=DEFAULT_MARGIN if args.margin is None else args.margin,
                      tensor_split=args.tensor_split or (), main_gpu=args.main_gpu)
    result = estimate_fit(arch, report.gpus, report.ram, opts)
    if args.json:
        payload = {"status": "ok", "model": model,
                   "options": _plain(opts), "verdict": result.verdict, "summary": result.summary,
                   "result": _plain(result), "gpus": _plain(report.gpus), "ram": _plain(report.ram),
                   "notes": report.notes}
        out.write(json.dumps(payload, indent=2) + "\n")
        return 0
    _table(out, args.model, source, result, report, opts)
    return 0


def _vllm(args: argparse.Namespace, out: TextIO, source: Any, report: Any, model: dict[str, Any]) -> int:
    """The vLLM answer: per GPU pool, reserves, KV memory, KV token capacity, longest request."""
    from victor_gui.sizing.fit_vllm import VllmOptions, estimate_vllm

    arch = source.arch
    gpus = report.gpus
    tp = args.tp or max(len(gpus), 1)
    if not gpus:  # an answer all the same: vLLM does not run here
        _say(out, args.json, {"status": "ok", "engine": "vllm", "verdict": "no_fit", "model": model,
                              "message": "vLLM needs a GPU: none was found (--gpu-mem asks about one)"})
        return 0
    ranks = gpus[:tp]
    total = min(g.total for g in ranks)
    free = min(g.free for g in ranks)
    opts = VllmOptions(max_model_len=args.ctx or arch.n_ctx_train or 8192, tensor_parallel_size=tp,
                       gpu_memory_utilization=args.gpu_util,
                       kv_cache_dtype="fp8" if args.cache_type in ("q8_0", "q4_0") else "auto")
    fit = estimate_vllm(arch, total, free, opts)
    notes = list(report.notes)
    if tp > len(gpus):
        notes.append(f"--tp {tp} but {len(gpus)} GPU(s): figures are per GPU of {tp} like the first")
    if args.json:
        payload = {"status": "ok", "engine": "vllm", "model": model, "options": _plain(opts),
                   "verdict": "fits" if fit.fits else "no_fit", "vllm": _plain(fit),
                   "gpus": _plain(gpus), "notes": notes}
        out.write(json.dumps(payload, indent=2) + "\n")
        return 0
    w = out.write
    w(f"Model     {args.model}\n")
    w(f"          {arch.arch}, {arch.n_layer} layers, trained context {arch.n_ctx_train or '?'}, "
      f"weights {_gib(arch.weight_bytes)}\n")
    w(f"vLLM      tensor parallel {tp}, gpu_memory_utilization {args.gpu_util:g}, "
      f"max_model_len {opts.max_model_len}\n")
    w(f"Verdict   {'fits' if fit.fits else 'does not fit: ' + fit.reason}\n\n")
    w("Per GPU\n")
    for label, value in (("pool (utilization × total)", fit.pool), ("weights", fit.weights),
                         ("activation peak", fit.activation), ("non-torch memory", fit.non_torch),
                         ("CUDA graphs", fit.cuda_graphs), ("KV cache available", fit.kv_available)):
        w(f"  {label:28}{_gib(value):>12}\n")
    w(f"\nKV cache capacity: {fit.kv_tokens:,} tokens; "
      f"longest single request: {fit.max_model_len:,} tokens\n")
    if fit.kv_needed:
        w(f"Requests of max_model_len at once: {fit.max_concurrency:.2f}\n")
    for note in notes:
        w(f"note      {note}\n")
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
                         ("overhead", "overhead"), ("margin", "margin")):
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
    if len(result.devices) > 1 or result.main_gpu is not None:
        split = ", ".join(f"GPU {u.device.index}: {u.layers} layers{' + output' if u.has_output else ''}"
                          for u in result.devices)
        w(f"Split     {split}\n")
    for g in report.gpus:
        free = _gib(g.free) if g.free_known else "free unknown"
        w(f"GPU {g.index}     {g.name} ({g.vendor}, {g.source}{', unified' if g.unified else ''}): "
          f"{free} free of {_gib(g.total)}\n")
    if report.ram:
        w(f"RAM       {_gib(report.ram.available)} available of {_gib(report.ram.total)}\n")
    for note in result.warnings + report.notes:
        w(f"note      {note}\n")
