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
    def backend(self) -> str:
        """The llama.cpp backend that usually drives this device: ``cuda``, ``rocm``, ``metal`` or
        ``vulkan`` (Intel GPUs: SYCL or Vulkan, sized alike)."""
        return {"nvidia": "cuda", "amd": "rocm", "apple": "metal"}.get(self.vendor, "vulkan")

    @property
    def runtime_overhead(self) -> int:
        """Bytes the backend takes on this device before any llama.cpp buffer (vram.md §1.5)."""
        return backend_reserve(self.backend)


# What a backend's runtime takes on a device before any buffer, measured where a figure exists:
# * cuda: the primary context costs 107 MiB on an RTX 4060 Ti (34 SMs) and 555 MiB on an RTX PRO
#   6000 Blackwell (188 SMs), growing with the SM count (ggml-org/llama.cpp#23604, cudaMemGetInfo
#   after forcing the context, against NVML's contextless free). 448 MiB covers cards up to
#   ~150 SMs (RTX 4090: 128, H100: 132); ``FitOptions.runtime_reserve_bytes`` overrides it.
# * rocm, vulkan: Ollama's MinimumMemory, 457 MiB for every non-Metal library (ollama ``ml/device.go``);
#   no finer published measurement.
# * metal: 512 MiB, Ollama's Metal MinimumMemory; ``free`` is already Metal's working set.
BACKEND_RESERVE_MIB = {"cuda": 448, "rocm": 457, "vulkan": 457, "metal": 512}


def backend_reserve(backend: str) -> int:
    """Runtime reserve in bytes of a llama.cpp backend (457 MiB for one not in the table)."""
    return BACKEND_RESERVE_MIB.get(backend, 457) << 20


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
