"""A release feed on 127.0.0.1, as GitHub Releases serves one: ``/latest.json`` (the signed
feed) and ``/download/<installer>`` (the bytes, with ``Range`` → 206 like GitHub's CDN).

Tests make a throw-away Ed25519 key pair (:class:`ReleaseKey`), sign a release with it and hand
the app the public half. Faults: ``drop_after`` (the next installer GET closes the connection
after that many body bytes, once), ``chunk_pause_s`` (a slow network), ``corrupt`` (one byte
of the installer flipped as served), ``down_after_drop`` (after that drop the network stays down:
every later installer GET is cut before a byte),
``lie_version`` (the feed's outer version differs from the signed one), ``bad_signature`` (the
manifest is signed by another key).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass

from tests.servers.base import SimHandler, SimServer

CHUNK = 16 << 10


class ReleaseKey:
    """An Ed25519 key pair made for one test, or (``private_pem``) one kept between runs."""

    def __init__(self, private_pem: bytes | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        if private_pem is None:
            self.private = Ed25519PrivateKey.generate()
        else:
            key = load_pem_private_key(private_pem, password=None)
            assert isinstance(key, Ed25519PrivateKey), "not an Ed25519 key"
            self.private = key

    @property
    def private_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    @property
    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@dataclass
class FeedRelease:
    """One release the feed offers."""

    version: str
    installer: bytes
    name: str = "Victor-GUI-setup.exe"
    notes: str = "Faster start-up.\nUpdates that cannot hurt."

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.installer).hexdigest()


class FeedHandler(SimHandler):
    server: FeedServer  # type: ignore[assignment]

    def unknown_route(self, path: str) -> None:
        srv = self.server
        if path == "/latest.json" and self.command == "GET":
            body = srv.feed_override if srv.feed_override is not None else srv.feed_body()
            self.send_bytes(200, body, "application/json")
        elif (m := re.fullmatch(r"/download/(.+)", path)) and srv.release and m.group(1) == srv.release.name:
            if srv.down:
                self.drop_connection()
                return
            self.send_installer(srv.release.installer)
        else:
            self.send_json(404, {"message": "Not Found"})

    def send_installer(self, data: bytes) -> None:
        srv = self.server
        size = len(data)
        start, status = 0, 200
        if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
            start, status = int(m.group(1)), 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        body = bytearray(data[start:])
        if srv.corrupt and body:
            body[len(body) // 2] ^= 0xFF
        drop = srv.take_drop()
        sent = 0
        while sent < len(body):
            n = min(CHUNK, len(body) - sent)
            if drop is not None and sent + n > drop:
                n = drop - sent
            try:
                self.wfile.write(body[sent : sent + n])
                self.wfile.flush()
            except OSError:
                return
            sent += n
            with srv.lock:
                srv.bytes_served += n
            if srv.chunk_pause_s:
                srv.stop_event.wait(srv.chunk_pause_s)
            if drop is not None and sent >= drop:
                srv.down = srv.down_after_drop
                self.drop_connection()
                return


class FeedServer(SimServer):
    """``FeedServer(key).start()``; ``offer(FeedRelease(...))`` sets what ``/latest.json`` says."""

    def __init__(self, key: ReleaseKey, *, port: int = 0) -> None:
        super().__init__(FeedHandler, port)
        self.key = key
        self.release: FeedRelease | None = None
        self.corrupt = False
        self.lie_version: str | None = None
        self.bad_signature = False
        self.feed_override: bytes | None = None  # served as /latest.json instead of the feed
        self.signed_size: int | None = None  # the size the manifest signs (None: the real one)
        self.bytes_served = 0
        self.chunk_pause_s = 0.0  # a slow network: this pause after every 16 kB
        self.down_after_drop = False  # the drop_next() drop is the network going away for good
        self.down = False
        self.lock = threading.Lock()

    @property
    def feed_url(self) -> str:
        return f"{self.url}/latest.json"

    def offer(self, release: FeedRelease) -> FeedRelease:
        self.release = release
        return release

    def feed_requests(self) -> int:
        return sum(1 for r in self.requests if r.path.startswith("/latest.json"))

    def installer_requests(self) -> list[str | None]:
        """The ``Range`` header of every installer GET (None: the whole file)."""
        return [r.headers.get("range") for r in self.requests if r.path.startswith("/download/")]

    def feed_body(self) -> bytes:
        """The feed as packaging/release_feed.py writes it for a release, with this server's
        faults applied (another signer, an outer version that lies)."""
        from tests.packaging.support import load_packaging_script

        release = self.release
        assert release is not None, "offer() a release first"
        signer = ReleaseKey() if self.bad_signature else self.key
        doc = load_packaging_script("release_feed").feed_document(
            version=release.version, installer_name=release.name,
            size=self.signed_size or len(release.installer), sha256=release.sha256, notes=release.notes,
            release_url=f"{self.url}/releases/tag/v{release.version}",
            installer_url=f"{self.url}/download/{release.name}", sign=signer.sign)
        doc["version"] = self.lie_version or release.version
        return json.dumps(doc).encode()
