"""Cross builds of llama-server: a Windows ``llama-server.exe`` compiled on Linux with mingw-w64.

The Windows bundle ships a CPU llama-server built from the same vendored llama.cpp as every other
build (:func:`victor_gui.services.engine_install.build_from_sdist` with ``target="win64"``). This
module adds only what differs from a native build:

- the tools: Debian's mingw-w64 cross compilers, POSIX-threads variant (llama.cpp uses
  ``std::thread`` and ``std::mutex``, which the win32-threads variant lacks), and ``windres``;
- a cmake toolchain file, generated here (nothing prebuilt is committed);
- the flags: ``GGML_NATIVE=OFF`` and every x86 extension off, so the binary runs on any x86-64
  CPU (SSE2, the architecture's baseline: it ships to machines we never see), OpenMP off (ggml's
  own thread pool instead of ``libgomp-1.dll``), and a fully static link (``-static``) so the exe
  needs no ``libstdc++-6.dll``, ``libgcc_s_seh-1.dll`` or ``libwinpthread-1.dll`` beside it;
- :func:`pe_imports`: the DLLs a PE file imports, to check that only Windows' own remain.

Blocking helpers here run in worker threads (the recipe calls them through ``asyncio.to_thread``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from victor_gui.errors import EngineToolsMissingError

WIN64 = "win64"
TARGETS = (WIN64,)
MINGW_TRIPLE = "x86_64-w64-mingw32"

#: Each target's binary suffix.
_SUFFIX = {WIN64: ".exe"}

#: The x86 extensions ggml would otherwise pick from the build machine or its defaults; all off
#: gives the x86-64 baseline (cmake already turns them off when cross-compiling: saying so keeps
#: the stamp honest and the build the same whatever llama.cpp's defaults become).
_BASELINE_OFF = ("GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_BMI2", "GGML_FMA", "GGML_F16C",
                 "GGML_AVX512", "GGML_AVX_VNNI", "GGML_OPENMP")

#: DLLs of the mingw runtime: none of them may be imported by a shipped exe.
MINGW_RUNTIME_DLLS = ("libstdc++-6.dll", "libgcc_s_seh-1.dll", "libwinpthread-1.dll", "libgomp-1.dll",
                      "libatomic-1.dll", "libssp-0.dll")

#: Debian/Ubuntu packages that give the cross tools.
MINGW_PACKAGES = ("gcc-mingw-w64-x86-64-posix", "g++-mingw-w64-x86-64-posix")


def build_cache_root() -> Path:
    """Where builds made for the test tier and for packaging are cached, outside any checkout:
    ``${VICTOR_LLAMA_CACHE:-${XDG_CACHE_HOME:-~/.cache}/victor_gui/llama-server}``, one
    sub-folder per version and flavour (``0.3.36-O0``, ``0.3.36-win64-O2``). Not the user's
    engines, which ``engine install`` puts in the data folder."""
    explicit = os.environ.get("VICTOR_LLAMA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "victor_gui" / "llama-server"


def check_target(target: str) -> str:
    """``target`` when it is a cross target this module knows, else ValueError."""
    if target not in TARGETS:
        raise ValueError(f"cross target must be one of {TARGETS}, not {target!r}")
    return target


def binary_name(target: str, name: str = "llama-server") -> str:
    """``name`` as the ``target`` system spells an executable (``llama-server.exe`` on win64)."""
    return name + _SUFFIX[check_target(target)]


def find_cross_tools(target: str, path: str | None = None) -> dict[str, str | None]:
    """Where cmake, make and the ``target`` cross compilers are on ``path`` (default ``$PATH``);
    None for each one missing."""
    check_target(target)
    which = {
        "cmake": ("cmake",),
        "make": ("make", "gmake"),
        "C cross compiler": (f"{MINGW_TRIPLE}-gcc-posix",),
        "C++ cross compiler": (f"{MINGW_TRIPLE}-g++-posix",),
        "resource compiler": (f"{MINGW_TRIPLE}-windres",),
    }
    return {role: next((hit for n in names if (hit := shutil.which(n, path=path))), None)
            for role, names in which.items()}


def cross_tools_hint() -> str:
    """The sentence that says which packages give the mingw-w64 tools."""
    return (f"Install the mingw-w64 cross compilers (Debian/Ubuntu: `sudo apt install cmake make "
            f"{' '.join(MINGW_PACKAGES)}`), then run the build again.")


def check_cross_tools(target: str, path: str | None = None) -> dict[str, str]:
    """The tools, or :class:`EngineToolsMissingError` naming the missing ones with the hint."""
    tools = find_cross_tools(target, path)
    missing = tuple(role for role, where in tools.items() if where is None)
    if missing:
        hint = cross_tools_hint()
        raise EngineToolsMissingError(f"Cross-building llama-server for {target} needs "
                                      f"{', '.join(missing)}. {hint}", missing=missing, hint=hint)
    return {role: where for role, where in tools.items() if where is not None}


def _cmake_path(path: str) -> str:
    # A cmake quoted argument: backslashes and quotes escaped (paths here are POSIX, but a
    # space or quote in one must not break the file).
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lacks_power_throttling(include_dir: Path) -> bool:
    """True when the mingw headers in ``include_dir`` predate ``SetThreadInformation``'s power
    throttling (mingw-w64 10, Debian 12's, has neither the function nor the struct), which ggml's
    CPU backend uses when ``_WIN32_WINNT >= 0x0602`` (blocking: reads a header)."""
    try:
        text = (include_dir / "processthreadsapi.h").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # no header to judge by: assume a current mingw
    return "THREAD_POWER_THROTTLING_CURRENT_VERSION" not in text


def toolchain_text(target: str, tools: dict[str, str], *, c_win7_api: bool = False) -> str:
    """The cmake toolchain file of ``target`` for the ``tools`` :func:`check_cross_tools` found.

    ``c_win7_api`` compiles C sources against the Windows 7 API (``_WIN32_WINNT=0x0601``) for
    headers that :func:`lacks_power_throttling`: ggml then skips its Windows 11 thread
    power-throttling hint, the only newer call it makes from C. C++ keeps mingw's default
    (Windows 10: cpp-httplib refuses anything older)."""
    check_target(target)
    sysroot = f"/usr/{MINGW_TRIPLE}"
    lines = [
        f"# Generated by victor_gui.services.engine_cross for {target}; do not edit.",
        "set(CMAKE_SYSTEM_NAME Windows)",
        "set(CMAKE_SYSTEM_PROCESSOR x86_64)",
        f"set(CMAKE_C_COMPILER {_cmake_path(tools['C cross compiler'])})",
        f"set(CMAKE_CXX_COMPILER {_cmake_path(tools['C++ cross compiler'])})",
        f"set(CMAKE_RC_COMPILER {_cmake_path(tools['resource compiler'])})",
        f"set(CMAKE_FIND_ROOT_PATH {_cmake_path(sysroot)})",
        # Programs (the build's own helpers) come from the host; libraries and headers only from
        # the mingw sysroot, so nothing of the Linux system leaks into the exe.
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
        # -static: libstdc++, libgcc and winpthread linked in; the exe imports Windows DLLs only.
        'set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc -static-libstdc++")',
    ]
    if c_win7_api:
        lines.append('set(CMAKE_C_FLAGS_INIT "-D_WIN32_WINNT=0x0601")')
    return "\n".join([*lines, ""])


def write_toolchain(target: str, dest: Path, tools: dict[str, str]) -> bool:
    """Write :func:`toolchain_text` to ``dest`` for these ``tools`` and their headers (blocking:
    call it from a worker thread). True when the file is new or changed: a build folder that
    was configured with the old one must start afresh, since cmake reads a toolchain's
    ``*_INIT`` flags only on the first configure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    include = Path(f"/usr/{MINGW_TRIPLE}/include")
    text = toolchain_text(target, tools, c_win7_api=lacks_power_throttling(include))
    try:
        if dest.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    dest.write_text(text, encoding="utf-8")
    return True


def cross_flags(native_flags: Sequence[str], target: str, toolchain: Path) -> tuple[str, ...]:
    """A native build's cmake flags (``cmake_flags(opt, native=False)``) turned into the
    ``target`` cross build's: the toolchain file first, then the portable-baseline flags."""
    check_target(target)
    if "-DGGML_NATIVE=OFF" not in native_flags:
        raise ValueError("a cross build cannot be tuned for the build machine's CPU (GGML_NATIVE=ON)")
    return (f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", *native_flags,
            *(f"-D{option}=OFF" for option in _BASELINE_OFF))


_DLL_LINE = re.compile(r"^\s*DLL Name:\s*(\S+)\s*$", re.MULTILINE)


def pe_imports(exe: Path, objdump: str | None = None, timeout_s: float = 60.0) -> list[str]:
    """The DLL names ``exe`` imports, as ``x86_64-w64-mingw32-objdump -p`` lists them (blocking).

    Raises FileNotFoundError when objdump is missing, OSError when it fails."""
    tool = objdump or shutil.which(f"{MINGW_TRIPLE}-objdump")
    if tool is None:
        raise FileNotFoundError(f"{MINGW_TRIPLE}-objdump (binutils-mingw-w64-x86-64) is not installed")
    proc = subprocess.run([tool, "-p", os.fspath(exe)], capture_output=True, text=True,
                          errors="replace", timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise OSError(f"objdump -p {exe} exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    return _DLL_LINE.findall(proc.stdout)


def runtime_dlls(imports: Sequence[str]) -> list[str]:
    """The mingw runtime DLLs among ``imports`` (case-insensitive): a shipped exe must have none."""
    bad = {name.lower() for name in MINGW_RUNTIME_DLLS}
    return [name for name in imports if name.lower() in bad]


__all__ = [
    "MINGW_PACKAGES",
    "MINGW_RUNTIME_DLLS",
    "MINGW_TRIPLE",
    "TARGETS",
    "WIN64",
    "binary_name",
    "build_cache_root",
    "check_cross_tools",
    "check_target",
    "cross_flags",
    "cross_tools_hint",
    "find_cross_tools",
    "lacks_power_throttling",
    "pe_imports",
    "runtime_dlls",
    "toolchain_text",
    "write_toolchain",
]
