"""System RAM: total and available bytes, read without heavy imports.

On Linux the two numbers come straight from ``/proc/meminfo`` (``MemTotal`` and
``MemAvailable``, exactly what psutil reports as ``total`` and ``available``), so a short-lived
``victor-gui fit`` does not import psutil (~15 ms of its start-up) to read two lines. Elsewhere,
or on a kernel without ``MemAvailable``, psutil answers. Plain blocking file I/O: callers on an
event loop run it in a worker thread (:func:`victor_gui.sizing.gpu.read_ram`).
"""

from __future__ import annotations

import sys

from victor_gui.sizing.hardware import RamInfo

MEMINFO = "/proc/meminfo"


def parse_meminfo(text: str) -> RamInfo | None:
    """``MemTotal`` and ``MemAvailable`` (kB) of a ``/proc/meminfo`` text, or None without both."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable"):
            words = rest.split()
            if words and words[0].isdigit():
                values[name] = int(words[0]) * 1024
    if "MemTotal" not in values or "MemAvailable" not in values:
        return None
    return RamInfo(values["MemTotal"], values["MemAvailable"], source="/proc/meminfo")


def ram_info(meminfo: str = MEMINFO) -> RamInfo:
    """This machine's RAM (``available``: free plus reclaimable cache, as psutil defines it)."""
    if sys.platform.startswith("linux"):
        try:
            with open(meminfo, encoding="ascii", errors="replace") as fh:
                found = parse_meminfo(fh.read())
        except OSError:
            found = None
        if found is not None:
            return found
    import psutil  # macOS, Windows, or a Linux without MemAvailable

    vm = psutil.virtual_memory()
    return RamInfo(int(vm.total), int(vm.available))
