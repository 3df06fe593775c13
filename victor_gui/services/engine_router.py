"""``llama-server`` in router mode over the user's model folders (Qt-free).

Started without ``-m``, llama-server is a *router* (servers.md §4.5): it lists several models
(``GET /models`` with ``status.value`` ``unloaded|loading|loaded|sleeping``), loads one in a child
process on ``POST /models/load`` or on the first request naming it (auto-load), and evicts the
least recently used one past ``--models-max``.

:func:`plan_router` turns the GGUFs found by :mod:`.model_folders` into a :class:`RouterPlan`:
each runnable model (:func:`~.model_folders.is_runnable`) gets a name and its own fit plan from
:meth:`EngineRunner.plan <victor_gui.services.engine_runner.EngineRunner.plan>`, and
:meth:`RouterPlan.preset_text` writes them into one ``--models-preset`` INI file, one section per
model with ``model = <path>`` and the plan's flags (``ctx-size``, ``n-gpu-layers``, ``flash-attn``,
cache types, split, ``mmproj``, ``jinja``), so each model loads at settings that fit. The router
gets only ``--host``, ``--port``, ``--models-preset`` and ``--models-max``: llama-server lays its
own command-line flags over every preset, so a flag there would override the per-model plans.
Its ``LLAMA_CACHE`` is an empty folder of ours, so that it lists no model twice (see
:meth:`RouterPlan.environment`).

Why one preset file rather than ``--models-dir``: the user's folders are several and laid out in
different ways (LM Studio's ``author/repo/file``, the Hugging Face cache's snapshots), which
``--models-dir`` (one folder, one level deep) does not read; and a preset is where per-model flags
go anyway. Models are named like ``--models-dir`` names them: the file name without ``.gguf``
(and without ``-00001-of-0000N`` for a split model).

With ``--models-max`` N above 1, each model is planned on 1/N of every GPU's free memory and of
the RAM, so that N loaded at once still fit.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from victor_gui.errors import EngineError
from victor_gui.services.download_jobs import SPLIT
from victor_gui.services.engine_binary import BinarySearch
from victor_gui.services.engine_flags import HOST, command_text
from victor_gui.services.engine_runner import PORT_PLACEHOLDER, EnginePlan, EngineRunner
from victor_gui.services.model_folders import LocalModel, is_runnable
from victor_gui.sizing.hardware import GpuReport

ROUTER_MODELS_MAX = 1  # one model in memory at a time: each plan may use the whole machine
PRESET_NAME = "router-preset-{digest}.ini"
ROUTER_CACHE = "router-cache"
# llama-server's INI values end at ";" or "#" (comments) and at a line break; there is no quoting.
_INI_UNSAFE = re.compile(r"[;#\r\n]")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Our flags' short names, written long in the preset (both are accepted; long ones read better).
_LONG_KEYS = {"m": "model", "c": "ctx-size", "np": "parallel", "ngl": "n-gpu-layers", "fa": "flash-attn",
              "sm": "split-mode", "mg": "main-gpu"}
_ROUTER_OWNED = {"host", "port"}  # the router gives each child its own
_FLAG = re.compile(r"^--?[A-Za-z]")


@dataclass(frozen=True)
class RouterModel:
    """One model the router offers: its name in ``/models`` and its fit plan."""

    name: str
    plan: EnginePlan

    @property
    def options(self) -> dict[str, str]:
        """The preset keys of this model (the plan's flags, without host and port)."""
        return preset_options(self.plan.args())


@dataclass(frozen=True)
class SkippedModel:
    """A GGUF the router will not offer, and why."""

    path: str
    reason: str


@dataclass
class RouterPlan:
    """What :meth:`EngineRunner.start <victor_gui.services.engine_runner.EngineRunner.start>`
    runs for router mode: the models with their plans, and the router's own flags."""

    models: list[RouterModel]
    skipped: list[SkippedModel] = field(default_factory=list)
    models_max: int = ROUTER_MODELS_MAX
    binary: BinarySearch | None = None
    preset_path: Path | None = None  # set by prepare()
    cache_dir: Path | None = None  # the router's (empty) LLAMA_CACHE, set by prepare()

    @property
    def model(self) -> str:
        """The label the engines list shows."""
        return f"llama-server router ({self.count_text})"

    @property
    def count_text(self) -> str:
        """``1 model``, ``3 models``."""
        n = len(self.models)
        return f"{n} model" if n == 1 else f"{n} models"

    @property
    def estimate_bytes(self) -> int:
        """The most the router should take: its ``models_max`` largest plans loaded at once."""
        sizes = sorted((int(m.plan.fit.total.total) for m in self.models), reverse=True)
        return sum(sizes[: max(1, self.models_max)])

    def model_named(self, name: str) -> RouterModel | None:
        return next((m for m in self.models if m.name == name), None)

    def preset_text(self) -> str:
        """The ``--models-preset`` INI: one section per model, its path and its plan's flags."""
        lines = ["; Written by Victor GUI: one section per model, flags from its fit plan.",
                 "version = 1", ""]
        for m in self.models:
            lines.append(f"[{m.name}]")
            lines += [f"{key} = {value}" for key, value in m.options.items()]
            lines.append("")
        return "\n".join(lines)

    def args(self, port: int = PORT_PLACEHOLDER) -> list[str]:
        """The router's flags: no ``-m`` (router mode), the preset, the cap on loaded models."""
        preset = str(self.preset_path) if self.preset_path is not None else "router-preset.ini"
        return ["--host", HOST, "--port", str(port), "--models-preset", preset,
                "--models-max", str(self.models_max)]

    def command(self, port: int | None = None) -> str:
        """The router's command line, as the window shows it before the start."""
        binary = str(self.binary.path) if self.binary is not None and self.binary.path else "llama-server"
        text = command_text(binary, self.args(port or PORT_PLACEHOLDER))
        return text if port else text.replace("--port 0", "--port (free port)")

    async def prepare(self, folder: Path) -> None:
        """Write the preset file under ``folder`` (in a thread); the flags then name it."""
        if not self.models:
            raise EngineError("There is no model to serve: no GGUF in the model folders could be planned.")
        text = self.preset_text()
        # Named by its content: starting the same router again reuses the file, a router with
        # other models or flags (kept running from an earlier session) keeps its own.
        path = folder / PRESET_NAME.format(digest=hashlib.sha256(text.encode()).hexdigest()[:12])
        cache = folder / ROUTER_CACHE

        def write() -> None:
            cache.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")

        await asyncio.to_thread(write)
        self.preset_path, self.cache_dir = path, cache

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """``LLAMA_CACHE`` pointed at an empty folder: the router lists exactly the planned
        models (it would add every Hugging Face cache file again, under another name and with
        no plan; those files are in the model folders' scan already)."""
        return {**env, "LLAMA_CACHE": str(self.cache_dir)} if self.cache_dir is not None else env


def preset_options(args: list[str]) -> dict[str, str]:
    """``llama_server_args`` output as preset keys: ``-c 4096`` → ``ctx-size = 4096``, a flag with
    no value (``--jinja``) → ``true``; host and port dropped (the router sets them)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        key = args[i].lstrip("-")
        key = _LONG_KEYS.get(key, key)
        if i + 1 < len(args) and not _FLAG.match(args[i + 1]):
            value, i = args[i + 1], i + 2
        else:
            value, i = "true", i + 1
        if key not in _ROUTER_OWNED:
            out[key] = value
    return out


def router_name(path: Path) -> str:
    """The model's name in the router's list: its file name without ``.gguf`` (and without the
    part number of a split model), as ``--models-dir`` names files."""
    split = SPLIT.match(path.name)
    stem = split["stem"] if split else (path.name[:-5] if path.name.lower().endswith(".gguf") else path.stem)
    return _NAME_UNSAFE.sub("-", stem).strip("-.") or "model"


def _unsafe_path(path: Path) -> bool:
    text = str(path)
    return bool(_INI_UNSAFE.search(text)) or text != text.strip()


def shared_report(report: GpuReport, share: int) -> GpuReport:
    """``report`` with 1/``share`` of every GPU's free memory and of the available RAM: the room
    of one model when ``share`` are loaded at once."""
    if share <= 1:
        return report
    gpus = [replace(g, free=g.free // share) for g in report.gpus]
    ram = replace(report.ram, available=report.ram.available // share) if report.ram is not None else None
    return GpuReport(gpus=gpus, ram=ram, notes=list(report.notes))


async def plan_router(runner: EngineRunner, models: Iterable[LocalModel], *,
                      models_max: int = ROUTER_MODELS_MAX) -> RouterPlan:
    """Plan every runnable GGUF of ``models`` for one router (see the module doc). A file that
    cannot be read, or whose path a preset file cannot hold, is listed in ``skipped``."""
    runnable = sorted((m for m in models if is_runnable(m.path)), key=lambda m: str(m.path))
    per_folder = Counter(m.path.parent for m in runnable)
    report = shared_report(runner.gpu_report(), models_max)
    plan = RouterPlan([], models_max=max(0, models_max), binary=await runner.find_binary())
    taken: set[str] = set()
    for local in runnable:
        if _unsafe_path(local.path):
            plan.skipped.append(SkippedModel(str(local.path), "its path holds a character llama-server's "
                                             "preset files cannot (; # or a line break)"))
            continue
        try:
            one = await runner.plan(local.path, report=report, binary=plan.binary)
        except EngineError as exc:
            plan.skipped.append(SkippedModel(str(local.path), exc.message))
            continue
        if per_folder[local.path.parent] > 1:
            # A projector beside several models belongs to one of them, which one is unknown
            # (llama-server's --models-dir too takes one only from a model's own sub-folder).
            one = replace(one, mmproj=None)
        name = base = router_name(local.path)
        n = 1
        while name.lower() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        plan.models.append(RouterModel(name, one))
    return plan


__all__ = ["ROUTER_MODELS_MAX", "RouterModel", "RouterPlan", "SkippedModel", "plan_router", "preset_options",
           "router_name", "shared_report"]
