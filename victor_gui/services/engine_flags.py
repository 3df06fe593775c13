"""The ``llama-server`` command line for a local GGUF, derived from the fit plan (Qt-free, pure).

One function, :func:`llama_server_args`, turns a :class:`~victor_gui.sizing.fit.FitResult` and
the :class:`~victor_gui.sizing.fit.FitOptions` it was computed with into flags, so that what the
window shows ("the flags it will use") is exactly what :mod:`.engine_runner` starts:

* ``-m PATH``, ``--host 127.0.0.1``, ``--port P`` (never another interface: the app's own engine
  is for this machine only);
* ``-c`` the planned context, ``-np`` the plan's sequences (llama-server would otherwise split
  the context over 4 slots), ``-ngl`` the plan's ``n_gpu_layers`` (0 without a GPU);
* ``-fa on|off`` and ``--cache-type-k/v`` as the estimate assumed them (a quantized V cache
  needs flash attention, so the two always agree with the estimate);
* ``--tensor-split`` with the plan's layers per GPU when more than one GPU holds layers (the
  estimate's split, whatever weights or free memory it came from), or ``-sm none -mg N`` when
  the plan puts everything on GPU ``main_gpu``; ``--cpu-moe`` when experts stay in RAM;
* ``--mmproj`` when a projector file sits beside the model (:func:`find_mmproj`);
* ``--jinja`` (tools and reasoning need the model's own template).

Only the public plan fields are read (``n_gpu_layers``, ``n_ctx``, ``devices[].layers``,
``devices[].device.index``), so changes inside the estimator do not reach this file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from victor_gui.sizing.fit import FitOptions, FitResult

HOST = "127.0.0.1"
# Projector files as Hugging Face repos name them: "mmproj-model-f16.gguf", "foo.mmproj-Q8_0.gguf".
_MMPROJ = re.compile(r"mmproj", re.IGNORECASE)


@dataclass(frozen=True)
class LaunchFlags:
    """What a start needs besides the plan: where, and what the user changed by hand."""

    model: str
    port: int
    n_ctx: int | None = None  # None: the plan's context
    mmproj: str | None = None
    extra: tuple[str, ...] = ()


def find_mmproj(model: str | Path, names: Sequence[str] | None = None) -> str | None:
    """The multimodal projector beside ``model`` (a ``*mmproj*.gguf`` in the same folder), or
    None. ``names`` lists the folder (the caller reads it in a thread); None reads it here."""
    path = Path(model)
    if _MMPROJ.search(path.name):
        return None  # the projector itself is not a chat model
    if names is None:
        try:
            names = [p.name for p in path.parent.iterdir()]
        except OSError:
            return None
    found = sorted(n for n in names if n.lower().endswith(".gguf") and _MMPROJ.search(n))
    return str(path.parent / found[0]) if found else None


def tensor_split(fit: FitResult) -> str | None:
    """``--tensor-split`` value: the plan's layers per GPU, by device index, when more than one
    GPU holds layers; None otherwise."""
    used = [u for u in fit.devices if u.layers > 0 or u.has_output]
    if len(used) < 2:
        return None
    by_index: dict[int, int] = {}
    for u in fit.devices:
        by_index[u.device.index] = by_index.get(u.device.index, 0) + u.layers + (1 if u.has_output else 0)
    width = max(by_index) + 1
    return ",".join(str(by_index.get(i, 0)) for i in range(width))


def llama_server_args(fit: FitResult, options: FitOptions, launch: LaunchFlags) -> list[str]:
    """The arguments after the binary for ``launch.model`` run as ``fit`` planned it."""
    n_ctx = launch.n_ctx or fit.n_ctx
    args = ["-m", launch.model, "--host", HOST, "--port", str(launch.port),
            "-c", str(n_ctx), "-np", str(options.n_seq),
            "-ngl", str(fit.n_gpu_layers if fit.devices else 0),
            "-fa", "on" if options.flash_attention else "off",
            "--cache-type-k", options.cache_type_k, "--cache-type-v", options.cache_type_v]
    if options.main_gpu is not None:  # the whole model on one GPU, as the plan placed it
        args += ["-sm", "none", "-mg", str(options.main_gpu)]
    elif (split := tensor_split(fit)) is not None:
        args += ["--tensor-split", split]
    if options.cpu_moe:
        args.append("--cpu-moe")
    if launch.mmproj:
        args += ["--mmproj", launch.mmproj]
    args.append("--jinja")
    return args + list(launch.extra)


def command_text(binary: str, args: Sequence[str]) -> str:
    """The command line as a person reads it (quoted where a part has spaces)."""
    return " ".join(f'"{a}"' if (" " in a or not a) else a for a in (binary, *args))


__all__ = ["HOST", "LaunchFlags", "command_text", "find_mmproj", "llama_server_args", "tensor_split"]
