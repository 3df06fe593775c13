"""Which update-signing public key a bundle ships as ``victor_gui/resources/update_key.pub``.

A release build ships the repository's ``resources/update_key.pub``, the public half of the
release key: the installed app then trusts only updates that key signed. A test build (the Wine
tier's, which feeds the installed app updates signed by a throw-away key pair of its own) names
another public key file in ``VICTOR_BUNDLE_UPDATE_KEY``; the build says so loudly, and the tier
keys its bundle cache on that file. Nothing in the app reads the variable: a released app cannot
be told at run time to trust another key.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

ENV = "VICTOR_BUNDLE_UPDATE_KEY"
KEY_NAME = "update_key.pub"
_PEM_HEAD = b"-----BEGIN PUBLIC KEY-----"
_MAX_BYTES = 4096  # an Ed25519 public key in PEM is 113 bytes


class UpdateKeyError(RuntimeError):
    """The file ``VICTOR_BUNDLE_UPDATE_KEY`` names is not a public key in PEM."""


def bundled_update_key(root: Path, scratch: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """The file to ship as ``update_key.pub``: ``root/resources/update_key.pub``, or a copy (named
    ``update_key.pub``, in ``scratch``) of the public key ``VICTOR_BUNDLE_UPDATE_KEY`` names.
    Raises :class:`UpdateKeyError` when that file is missing or holds no PEM public key."""
    named = environ.get(ENV, "").strip()
    if not named:
        return root / "resources" / KEY_NAME
    source = Path(named)
    try:
        data = source.read_bytes()[: _MAX_BYTES + 1]
    except OSError as exc:
        raise UpdateKeyError(f"{ENV}={named}: {exc.strerror or exc}") from None
    if len(data) > _MAX_BYTES or _PEM_HEAD not in data or b"PRIVATE" in data:
        raise UpdateKeyError(f"{ENV}={named} is not a PEM public key")
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / KEY_NAME
    shutil.copyfile(source, target)
    print(f"NOTE: this bundle trusts updates signed by the key in {named} ({ENV}), "
          "not the release key: a test build, never a release", flush=True)
    return target
