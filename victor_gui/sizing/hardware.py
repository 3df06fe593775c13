"""What the machine offers: GPU devices and system RAM, as detected by :mod:`.gpu`.

Plain data so the estimator can be fed hand-made machines in tests and "what if" questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One accelerator. ``free`` is what a new model can use now (Apple: Metal's working set).

    ``unified``: the device shares system RAM (Apple Silicon, AMD APUs, Intel iGPUs).
    ``source`` names the probe (``nvml``, ``nvidia-smi``, ``sysfs``, ``rocm-smi``, ``metal``...).
    """

    vendor: str
    name: str
    total: int
    free: int
    index: int = 0
    unified: bool = False
    source: str = ""
    free_known: bool = True  # False: the OS exposes no usage figure, ``free`` is the total

    @property
    def runtime_overhead(self) -> int:
        """Bytes a runtime reserves on this device before any buffer (vram.md §1.5).

        457 MiB CUDA/ROCm and 512 MiB Metal are Ollama's ``MinimumMemory`` (``ml/device.go``).
        """
        return (512 if self.vendor == "apple" else 457) << 20


@dataclass(frozen=True, slots=True)
class RamInfo:
    """System memory in bytes (``available`` as psutil reports it: free + reclaimable cache)."""

    total: int
    available: int
    source: str = "psutil"


@dataclass(slots=True)
class GpuReport:
    """Everything detection found, and why any probe found nothing (``notes``)."""

    gpus: list[GpuDevice] = field(default_factory=list)
    ram: RamInfo | None = None
    notes: list[str] = field(default_factory=list)
