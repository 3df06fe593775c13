"""Build Victor GUI's distributables: ``python packaging/build.py COMMAND``.

Commands (each runs on Windows and Linux; a Windows bundle can only be built on Windows):

- ``bundle``    PyInstaller one-folder bundle from ``packaging/victor_gui.spec`` -> ``dist/victor-gui/``
- ``smoke``     run the frozen executables: ``--version``, then ``--self-test`` offscreen
- ``installer`` NSIS per-user installer (``makensis``) around the bundle
- ``zip``       portable zip of the bundle (reproducible: sorted entries, fixed timestamps)
- ``installcheck`` (Windows) install the installer silently, run the app, uninstall, check
- ``sign``      Authenticode-sign files through a signing service; skipped without its secrets

Signing (``sign FILE...``) picks the first backend whose settings are all present:

- Azure Trusted Signing / any signtool dlib (Windows): ``SIGN_SIGNTOOL_DLIB``,
  ``SIGN_SIGNTOOL_METADATA`` (the dlib's JSON), plus the service's own auth variables.
- A PKCS#11 key (cloud HSM or token) with osslsigncode: ``SIGN_PKCS11_MODULE``,
  ``SIGN_PKCS11_KEY`` (a ``pkcs11:`` URI), ``SIGN_CERT_FILE`` (PEM chain).
- A key file with osslsigncode (``SIGN_KEY_FILE``, ``SIGN_CERT_FILE``): for tests and
  self-signed development builds only; certificates issued for release keep keys in hardware.

``SIGN_TIMESTAMP_URL`` overrides the RFC 3161 timestamp server.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from version_info import CLI_EXE_NAME, EXE_NAME, ROOT, app_version, version_quad  # noqa: E402

IS_WIN = sys.platform == "win32"
EXE_SUFFIX = ".exe" if IS_WIN else ""
DIST = ROOT / "dist"
DEFAULT_BUNDLE = DIST / EXE_NAME
SELF_TEST_MARK = "FIRST_PAINT"  # what victor_gui.ui.app prints once the window has painted
DEFAULT_TIMESTAMP_URL = "http://timestamp.acs.microsoft.com"
NSIS_DIRS = (r"C:\Program Files (x86)\NSIS", r"C:\Program Files\NSIS")


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


def platform_tag() -> str:
    """``win-x64``, ``linux-x86_64``, ...: the suffix of the artifact names."""
    machine = platform.machine().lower()
    if IS_WIN:
        return "win-arm64" if machine in ("arm64", "aarch64") else "win-x64"
    return f"{sys.platform}-{machine}"


def run(
    cmd: list[str], *, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``, echoing it; raise :class:`BuildError` with its output when it fails."""
    print("+", subprocess.list2cmdline(cmd), flush=True)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, encoding="utf-8", errors="replace"
    )
    if proc.returncode != 0:
        raise BuildError(f"{Path(cmd[0]).name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def bundle(dist: Path = DIST, work: Path = ROOT / "build" / "pyinstaller") -> Path:
    """Build the one-folder bundle into ``dist/victor-gui``; returns that folder."""
    # -P: no current folder on sys.path, so the repo's packaging/ folder can never shadow the
    # PyPI `packaging` library that PyInstaller imports.
    run(
        [
            sys.executable,
            "-P",
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work),
            str(HERE / "victor_gui.spec"),
        ],
        # Under Wine on a loaded two-core machine the analysis alone passed 15 min.
        timeout=1800,
    )
    out = dist / EXE_NAME
    if not (out / f"{EXE_NAME}{EXE_SUFFIX}").is_file():
        raise BuildError(f"PyInstaller finished but {out} has no {EXE_NAME}{EXE_SUFFIX}")
    return out


def _smoke_env(home: Path) -> dict[str, str]:
    """The environment of a smoke run: offscreen Qt, and (on Linux) throwaway data folders so
    the run leaves nothing in the builder's home."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if not IS_WIN:
        for var, sub in (
            ("XDG_DATA_HOME", "data"),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_STATE_HOME", "state"),
        ):
            env[var] = str(home / sub)
    return env


def smoke(
    bundle_dir: Path = DEFAULT_BUNDLE, *, require_self_test: bool = False, timeout: float = 120
) -> list[str]:
    """Run the frozen app: ``--version`` must print the version, ``--self-test`` must open the
    window offscreen, paint, and exit 0. Returns the checks that ran.

    The windowed exe has no console on Windows, so the output checks use ``victor-gui-cli``; the
    windowed one must still exit 0 from ``--self-test``. When the app has no ``--self-test``
    (``--help`` does not list it), that part is skipped with a message, or fails when
    ``require_self_test``.
    """
    cli = bundle_dir / f"{CLI_EXE_NAME}{EXE_SUFFIX}"
    gui = bundle_dir / f"{EXE_NAME}{EXE_SUFFIX}"
    for exe in (cli, gui):
        if not exe.is_file():
            raise BuildError(f"{exe} is missing: build the bundle first")
    bundled = bundle_dir / "_internal" / "victor_gui" / "resources" / "model_capabilities.yaml"
    if not bundled.is_file():
        raise BuildError(f"{bundled} is missing: the spec did not bundle resources/")
    done = ["resources"]
    with tempfile.TemporaryDirectory(prefix="victor-smoke-") as home:
        env = _smoke_env(Path(home))
        version = app_version()
        out = run([str(cli), "--version"], timeout=timeout, env=env).stdout.strip()
        if out != f"victor-gui {version}":
            raise BuildError(f"--version printed {out!r}, expected 'victor-gui {version}'")
        done.append("version")
        help_text = run([str(cli), "--help"], timeout=timeout, env=env).stdout
        done += _headless_parity(cli, help_text, env, timeout)
        if "--self-test" not in help_text:
            msg = "the app has no --self-test yet (victor-gui --help does not list it)"
            if require_self_test:
                raise BuildError(msg)
            print(f"SKIP self-test: {msg}", flush=True)
            return done
        proc = run([str(cli), "--self-test"], timeout=timeout, env=env)
        if SELF_TEST_MARK not in proc.stdout:
            raise BuildError(
                f"--self-test exited 0 without {SELF_TEST_MARK!r}:\n{proc.stdout}\n{proc.stderr}"
            )
        done.append("self-test (cli)")
        run([str(gui), "--self-test"], timeout=timeout, env=env)
        done.append("self-test (gui)")
    print("smoke ok:", ", ".join(done), flush=True)
    return done


# Headless commands whose JSON must come out the same frozen and from source: they load every
# provider row, the keyring backends, the model manager and psutil, which is where a bundle
# missing a module (found only by name at run time) or package metadata shows it.
PARITY_COMMANDS = {
    "providers": (["providers", "--json"], lambda d: d),
    "doctor": (
        ["doctor", "--no-scan", "--no-defaults", "--json"],
        lambda d: {
            "gpus": d["hardware"]["gpus"],
            "notes": d["hardware"]["notes"],
            "ram": sorted(d["hardware"]["ram"]),
            "endpoints": d["endpoints"],
        },
    ),
}


def _headless_parity(cli: Path, help_text: str, env: dict[str, str], timeout: float) -> list[str]:
    """Run each parity command the app has, frozen and with this Python, and compare."""
    import json

    done = []
    for name, (argv, view) in PARITY_COMMANDS.items():
        if f"    {name}" not in help_text:
            print(f"SKIP {name}: the app has no `{name}` command", flush=True)
            continue
        frozen = view(json.loads(run([str(cli), *argv], timeout=timeout, env=env).stdout))
        source = view(
            json.loads(run([sys.executable, "-m", "victor_gui", *argv], timeout=timeout, env=env).stdout)
        )
        if frozen != source:
            raise BuildError(f"`{name}` differs frozen vs source:\nfrozen: {frozen}\nsource: {source}")
        done.append(name)
    return done


def find_makensis() -> str:
    """``makensis`` on PATH, or in NSIS's usual Windows folders."""
    found = shutil.which("makensis")
    if found:
        return found
    for folder in NSIS_DIRS if IS_WIN else ():
        candidate = Path(folder) / "makensis.exe"
        if candidate.is_file():
            return str(candidate)
    raise BuildError("makensis not found: install NSIS (apt-get install nsis / choco install nsis)")


def installer_name(version: str) -> str:
    """The installer's file name. No 'setup'/'install' in it: such names make Windows apply
    compatibility shims (makensis warning 9000)."""
    return f"{EXE_NAME}-{version}-win-x64.exe"


def installer(
    bundle_dir: Path = DEFAULT_BUNDLE,
    out: Path | None = None,
    *,
    version: str | None = None,
    compressor: str | None = None,
) -> Path:
    """Compile ``packaging/installer.nsi`` around ``bundle_dir``; returns the installer path.

    ``compressor`` (``zlib``, ``bzip2``) overrides the script's solid LZMA, for test builds
    that only need to install (a few times faster to compile, a larger file)."""
    version = version or app_version()
    out = (out or DIST / installer_name(version)).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not bundle_dir.is_dir():
        raise BuildError(f"{bundle_dir} is not a folder: build the bundle first")
    quad = ".".join(str(n) for n in version_quad(version))
    run(
        [
            find_makensis(),
            "-V2",
            "-INPUTCHARSET",
            "UTF8",
            f"-DVERSION={version}",
            f"-DVERSION_QUAD={quad}",
            f"-DPAYLOAD_DIR={bundle_dir.resolve()}",
            f"-DOUT_FILE={out}",
            f"-DICON={ROOT / 'resources' / 'icon.ico'}",
            *([f"-XSetCompressor /FINAL {compressor}"] if compressor else []),
            str(HERE / "installer.nsi"),
        ]
    )
    if not out.is_file():
        raise BuildError(f"makensis finished but wrote no {out}")
    print(f"installer: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return out


def make_zip(
    bundle_dir: Path = DEFAULT_BUNDLE, out: Path | None = None, *, version: str | None = None
) -> Path:
    """Zip the bundle as ``victor-gui-<version>/...``. Entries are sorted and dated
    ``SOURCE_DATE_EPOCH`` (default 1980-01-01) so the same bundle gives the same bytes."""
    version = version or app_version()
    out = (out or DIST / f"{EXE_NAME}-{version}-{platform_tag()}-portable.zip").resolve()
    if not bundle_dir.is_dir():
        raise BuildError(f"{bundle_dir} is not a folder: build the bundle first")
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    import time

    stamp = time.gmtime(max(epoch, 315532800))[:6]
    top = f"{EXE_NAME}-{version}"
    files = sorted(p for p in bundle_dir.rglob("*") if p.is_file())
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{top}/{path.relative_to(bundle_dir).as_posix()}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            zf.writestr(info, path.read_bytes())
    print(f"zip: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return out


def find_signtool(env: dict[str, str]) -> str:
    """``SIGNTOOL``, signtool on PATH, or the newest x64 one in the Windows 10/11 SDK."""
    found = env.get("SIGNTOOL") or shutil.which("signtool")
    if found:
        return found
    kits = Path(env.get("ProgramFiles(x86)", r"C:\Program Files (x86)")) / "Windows Kits" / "10" / "bin"
    candidates = sorted(kits.glob("10.*/x64/signtool.exe"))
    if not candidates:
        raise BuildError("signtool.exe not found: install the Windows SDK or set SIGNTOOL")
    return str(candidates[-1])


def _sign_command(path: Path, env: dict[str, str]) -> list[str] | None:
    """The command that signs ``path`` in place, or ``None`` when no backend is configured."""
    ts = env.get("SIGN_TIMESTAMP_URL") or DEFAULT_TIMESTAMP_URL
    desc = ["-n", "Victor GUI", "-i", "https://github.com/victor-gui"]
    if IS_WIN and env.get("SIGN_SIGNTOOL_DLIB") and env.get("SIGN_SIGNTOOL_METADATA"):
        return [
            "signtool",
            "sign",
            "/v",
            "/fd",
            "SHA256",
            "/tr",
            ts,
            "/td",
            "SHA256",
            "/dlib",
            env["SIGN_SIGNTOOL_DLIB"],
            "/dmdf",
            env["SIGN_SIGNTOOL_METADATA"],
            str(path),
        ]
    cert = env.get("SIGN_CERT_FILE")
    if cert and env.get("SIGN_PKCS11_MODULE") and env.get("SIGN_PKCS11_KEY"):
        key = ["-pkcs11module", env["SIGN_PKCS11_MODULE"], "-key", env["SIGN_PKCS11_KEY"]]
    elif cert and env.get("SIGN_KEY_FILE"):
        key = ["-key", env["SIGN_KEY_FILE"]]
    else:
        return None
    stamp = [] if env.get("SIGN_NO_TIMESTAMP") else ["-ts", ts]
    return [
        "osslsigncode",
        "sign",
        "-h",
        "sha256",
        "-certs",
        cert,
        *key,
        *desc,
        *stamp,
        "-in",
        str(path),
        "-out",
        str(path) + ".signed",
    ]


def sign(paths: list[Path], env: dict[str, str] | None = None) -> list[Path]:
    """Sign each PE file in ``paths`` in place; returns those signed (none when no signing
    backend is configured: that is a message, not an error, so forks and local builds work)."""
    env = dict(os.environ if env is None else env)
    signed = []
    for path in paths:
        cmd = _sign_command(path, env)
        if cmd is None:
            print(
                "signing skipped: no signing secrets (SIGN_SIGNTOOL_DLIB+SIGN_SIGNTOOL_METADATA, "
                "SIGN_PKCS11_MODULE+SIGN_PKCS11_KEY+SIGN_CERT_FILE, or SIGN_KEY_FILE+SIGN_CERT_FILE)"
            )
            return []
        run(cmd, timeout=300)
        if cmd[0] == "osslsigncode":
            os.replace(str(path) + ".signed", path)
        signed.append(path)
    return signed


def make_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per build step."""
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("bundle", help="PyInstaller one-folder bundle", allow_abbrev=False)
    p.add_argument("--dist", type=Path, default=DIST)
    p.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    p = sub.add_parser("smoke", help="run the frozen app's --version and --self-test", allow_abbrev=False)
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    p.add_argument("--require-self-test", action="store_true", help="fail when the app lacks --self-test")
    for name in ("installer", "zip"):
        p = sub.add_parser(name, help=f"build the {name}", allow_abbrev=False)
        p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
        p.add_argument("--out", type=Path)
    p = sub.add_parser(
        "installcheck", help="(Windows) silent install, run, silent uninstall, checked", allow_abbrev=False
    )
    p.add_argument("installer", type=Path, nargs="?")
    p.add_argument("--require-self-test", action="store_true", help="also run the installed --self-test")
    p = sub.add_parser("sign", help="sign PE files when signing secrets are set", allow_abbrev=False)
    p.add_argument("files", type=Path, nargs="+")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        if args.cmd == "bundle":
            print(bundle(args.dist, args.work))
        elif args.cmd == "smoke":
            smoke(args.bundle, require_self_test=args.require_self_test)
        elif args.cmd == "installer":
            installer(args.bundle, args.out)
        elif args.cmd == "zip":
            make_zip(args.bundle, args.out)
        elif args.cmd == "installcheck":
            from installcheck import install_check

            version = app_version()
            path = args.installer or DIST / installer_name(version)
            done = install_check(path, version, self_test=args.require_self_test)
            print("installcheck ok:", ", ".join(done))
        else:
            sign(args.files)
    except (BuildError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"build.py {args.cmd}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
