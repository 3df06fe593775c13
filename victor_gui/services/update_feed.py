"""The release feed: its strict shape, the signed manifest inside it, and version order.

A feed is one JSON document (``latest.json``, an asset of every GitHub Release)::

    {"version": "0.2.0", "notes": "What is new…", "release_url": "https://…/tag/v0.2.0",
     "installer_url": "https://…/Victor-GUI-0.2.0-setup.exe",
     "manifest": "<base64 of the signed JSON>", "signature": "<base64 Ed25519 signature>"}

The signed manifest (``{"version", "installer", "size", "sha256"}``) is the only source of the
installer's size and checksum; the outer fields are what a release page shows and are trusted
only as far as they agree with it. A feed whose version differs from its signed manifest's is
refused: someone changed the feed without the release key. The public key ships with the app
(``victor_gui/resources/update_key.pub``); without it, or without ``cryptography``, nothing is
offered — an update that cannot be checked is never installed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from victor_gui.errors import UpdateError

# A feed is a few kilobytes of release notes; anything near this is not a feed.
MAX_FEED_BYTES = 256 << 10
# The largest installer an update may be (the bundle is ~100 MB; a lie about size stops here).
MAX_INSTALLER_BYTES = 1 << 30
_SHA256 = r"^[0-9a-f]{64}$"
_VERSION = re.compile(r"^v?(\d+(?:\.\d+){0,3})(?:(a|b|rc)(\d+))?(?:\.post(\d+))?(?:\.dev(\d+))?$")
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
_LAST = 1 << 62


def version_key(text: str) -> tuple[Any, ...]:
    """A sort key for a PEP 440 version of the forms the project releases (``1.2.3``,
    ``1.2.3rc1``, ``1.2.3.post1``, ``1.2.3.dev4``, an optional leading ``v``); raises
    ``ValueError`` for anything else. A small parser rather than ``packaging``: the repository
    has a ``packaging/`` folder of its own, and the app does not otherwise depend on it."""
    m = _VERSION.match(text.strip())
    if m is None:
        raise ValueError(f"not a version: {text[:40]!r}")
    release = tuple(int(p) for p in m.group(1).split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre_kind, pre_n, post, dev = m.group(2), m.group(3), m.group(4), m.group(5)
    if pre_kind:
        pre: tuple[int, int] = (_PRE_RANK[pre_kind], int(pre_n))
    elif dev is not None and post is None:
        pre = (-1, 0)  # 1.0.dev1 comes before 1.0a1
    else:
        pre = (3, 0)  # a final release
    return (release, pre, int(post) if post is not None else -1, int(dev) if dev is not None else _LAST)


def is_newer(candidate: str, current: str) -> bool:
    """Whether ``candidate`` is a later version than ``current``."""
    return version_key(candidate) > version_key(current)


class SignedManifest(BaseModel):
    """What the release key signed: the version and the installer's name, size and sha256."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    version: str = Field(min_length=1, max_length=40)
    installer: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._+ -]+$")
    size: int = Field(gt=0, le=MAX_INSTALLER_BYTES)
    sha256: str = Field(pattern=_SHA256)


class Feed(BaseModel):
    """The feed document. Unknown keys are ignored (a later release may add some, and an old
    app must still read the feed that offers it the update), but every known key is checked
    strictly: type, length, form."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, defer_build=True)

    version: str = Field(min_length=1, max_length=40)
    notes: str = Field(default="", max_length=20_000)
    release_url: str = Field(pattern=r"^https?://", max_length=2000)
    installer_url: str = Field(pattern=r"^https?://", max_length=2000)
    manifest: str = Field(min_length=1, max_length=8000)
    signature: str = Field(min_length=1, max_length=200)


@dataclass(frozen=True)
class Release:
    """An update the feed offers, checked: signature valid, versions agreeing."""

    version: str
    notes: str
    release_url: str
    installer_url: str
    installer_name: str
    size: int
    sha256: str


def shipped_public_key() -> bytes:
    """The release key's public half that ships in ``victor_gui/resources/update_key.pub``."""
    return resources.files("victor_gui.resources").joinpath("update_key.pub").read_bytes()


def verify_signature(public_key_pem: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`UpdateError` unless ``signature`` is the release key's Ed25519 signature
    of ``message``; also when the key cannot be read or ``cryptography`` is missing (an update
    that cannot be checked is refused, never trusted)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        raise UpdateError("Updates cannot be verified in this build (the cryptography package is "
                          "missing), so none is offered.", reason="no_key") from None
    try:
        key = load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        raise UpdateError("The update signing key shipped with this build cannot be read, so no "
                          "update can be verified.", reason="no_key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UpdateError("The update signing key shipped with this build is not an Ed25519 key, so "
                          "no update can be verified.", reason="no_key")
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise UpdateError("The update's signature does not match the release key; it was not "
                          "downloaded.", reason="signature") from None


def parse_feed(body: bytes, public_key_pem: bytes) -> Release:
    """Check a feed document (size, shape, signature, agreeing versions) and return the release
    it offers; raise :class:`UpdateError` with one sentence for whatever is wrong."""
    if len(body) > MAX_FEED_BYTES:
        raise UpdateError("The update feed is far larger than a feed can be; it was ignored.",
                          reason="feed")
    try:
        feed = Feed.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise UpdateError(f"The update feed is not valid ({where}: {first['msg']}).", reason="feed") from None
    try:
        signed = base64.b64decode(feed.manifest, validate=True)
        signature = base64.b64decode(feed.signature, validate=True)
    except (binascii.Error, ValueError):
        raise UpdateError("The update feed's manifest or signature is not base64.", reason="feed") from None
    verify_signature(public_key_pem, signed, signature)
    try:
        manifest = SignedManifest.model_validate(json.loads(signed))
    except (ValueError, ValidationError):
        raise UpdateError("The update's signed manifest is not valid.", reason="feed") from None
    try:
        feed_key, signed_key = version_key(feed.version), version_key(manifest.version)
    except ValueError as exc:
        raise UpdateError(f"The update feed names a version this app cannot read ({exc}).",
                          reason="feed") from None
    if feed_key != signed_key:
        raise UpdateError(f"The update feed says {feed.version} but its signed manifest says "
                          f"{manifest.version}; the feed was changed and is not trusted.", reason="version")
    return Release(version=manifest.version, notes=feed.notes, release_url=feed.release_url,
                   installer_url=feed.installer_url, installer_name=manifest.installer,
                   size=manifest.size, sha256=manifest.sha256)
