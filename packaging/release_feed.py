"""The release side of updates: the signing key pair and the signed feed (``latest.json``).

The installed app trusts an update only when ``latest.json`` carries a manifest (version,
installer name, size, sha256) signed by the release key whose public half ships as
``resources/update_key.pub`` (see ``victor_gui/services/update_feed.py``). This script is the one
place that writes such a feed, so the Wine tier's feed server and a real release publish the same
document::

    python packaging/release_feed.py keygen --private ~/victor-release-key.pem
        # a new key pair: the private half to that file (mode 600, never into the repository),
        # the public half to resources/update_key.pub (commit it; it ships in the next build)
    python packaging/release_feed.py feed dist/Victor-GUI-0.2.0-win-x64.exe --version 0.2.0 \\
        --base-url https://github.com/OWNER/victor-gui/releases --notes-file NOTES.md -o latest.json
        # the private key from --key FILE or the VICTOR_UPDATE_SIGNING_KEY variable (the PEM
        # text itself: a CI secret)
    python packaging/release_feed.py verify latest.json [--installer FILE]
        # reads it as the app does, with the shipped public key; checks the installer's bytes

Standard library plus ``cryptography`` (a dependency of the app already); run with the project's
Python so ``verify`` can import ``victor_gui``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_KEY = ROOT / "resources" / "update_key.pub"
ENV_KEY = "VICTOR_UPDATE_SIGNING_KEY"


def feed_document(*, version: str, installer_name: str, size: int, sha256: str, notes: str,
                  release_url: str, installer_url: str, sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    """The feed as a dict: the outer fields a release page shows, and the manifest (the only
    source of the installer's size and checksum) with ``sign(manifest bytes)``."""
    manifest = json.dumps({"version": version, "installer": installer_name, "size": size,
                           "sha256": sha256}).encode()
    return {"version": version, "notes": notes, "release_url": release_url,
            "installer_url": installer_url, "manifest": base64.b64encode(manifest).decode(),
            "signature": base64.b64encode(sign(manifest)).decode()}


def load_private_key(pem: bytes) -> Any:
    """An Ed25519 private key from PEM (``ValueError`` when it is anything else)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 private key")
    return key


def public_pem(private_key: Any) -> bytes:
    """The public half of ``private_key`` in PEM (what ``update_key.pub`` holds)."""
    from cryptography.hazmat.primitives import serialization

    return bytes(private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private: Path = args.private.expanduser()
    if private.exists():
        print(f"{private} exists; not overwriting a key (a lost key means no more updates).", file=sys.stderr)
        return 2
    if private.resolve().is_relative_to(ROOT):
        print(f"{private} is inside the repository; keep the private key outside it.", file=sys.stderr)
        return 2
    key = Ed25519PrivateKey.generate()
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    args.public.write_bytes(public_pem(key))
    print(f"private key: {private} (keep it secret and backed up; a CI secret {ENV_KEY} holds its text)")
    print(f"public key:  {args.public} (commit it: builds ship it)")
    return 0


def _signing_key(args: argparse.Namespace) -> Any:
    if args.key is not None:
        return load_private_key(args.key.read_bytes())
    text = os.environ.get(ENV_KEY, "").strip()
    if not text:
        raise SystemExit(f"no signing key: give --key FILE or set {ENV_KEY} to the key's PEM text")
    return load_private_key(text.encode())


def _feed(args: argparse.Namespace) -> int:
    key = _signing_key(args)
    shipped = args.public.read_bytes() if args.public.is_file() else b""
    if public_pem(key).strip() != shipped.strip():
        print(f"the signing key is not the one whose public half is {args.public}: installed apps "
              "would refuse this update", file=sys.stderr)
        return 1
    installer: Path = args.installer
    notes = args.notes_file.read_text(encoding="utf-8") if args.notes_file else (args.notes or "")
    base = args.base_url.rstrip("/")
    doc = feed_document(version=args.version, installer_name=installer.name, size=installer.stat().st_size,
                        sha256=_sha256(installer), notes=notes,
                        release_url=args.release_url or f"{base}/tag/v{args.version}",
                        installer_url=f"{base}/download/v{args.version}/{installer.name}",
                        sign=key.sign)
    args.output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"{args.output}: version {args.version}, {installer.name}, {installer.stat().st_size} bytes")
    return 0


def _verify(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from victor_gui.errors import UpdateError
    from victor_gui.services.update_feed import parse_feed

    try:
        release = parse_feed(args.feed.read_bytes(), args.public.read_bytes())
    except UpdateError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    if args.installer is not None:
        size, sha = args.installer.stat().st_size, _sha256(args.installer)
        if (size, sha) != (release.size, release.sha256):
            print(f"refused: {args.installer} is {size} bytes, sha256 {sha}; the feed signs "
                  f"{release.size} bytes, sha256 {release.sha256}", file=sys.stderr)
            return 1
    print(f"ok: version {release.version}, {release.installer_name}, {release.size} bytes")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("keygen", help="make the release key pair")
    p.add_argument("--private", type=Path, required=True,
                   help="where the private key goes (outside the repo)")
    p.add_argument("--public", type=Path, default=PUBLIC_KEY, help=f"default {PUBLIC_KEY}")
    p.set_defaults(run=_keygen)
    p = sub.add_parser("feed", help="write latest.json for an installer")
    p.add_argument("installer", type=Path)
    p.add_argument("--version", required=True)
    p.add_argument("--base-url", required=True, help="the releases URL: .../releases")
    p.add_argument("--release-url", help="default BASE/tag/vVERSION")
    p.add_argument("--notes", help="what is new (or --notes-file)")
    p.add_argument("--notes-file", type=Path)
    p.add_argument("--key", type=Path, help=f"private key PEM file (default: ${ENV_KEY})")
    p.add_argument("--public", type=Path, default=PUBLIC_KEY, help="the public key builds ship")
    p.add_argument("-o", "--output", type=Path, default=Path("latest.json"))
    p.set_defaults(run=_feed)
    p = sub.add_parser("verify", help="read latest.json as the app does")
    p.add_argument("feed", type=Path)
    p.add_argument("--installer", type=Path, help="also check these bytes against the signed manifest")
    p.add_argument("--public", type=Path, default=PUBLIC_KEY)
    p.set_defaults(run=_verify)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
