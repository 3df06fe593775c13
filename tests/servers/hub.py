"""A simulator of the Hugging Face Hub's HTTP API, enough for the model browser and downloads.

It answers the routes ``huggingface_hub`` (2.x) calls and the file route every client downloads
from, with the shapes the Hub really sends (checked against ``huggingface_hub``'s ``ModelInfo`` /
``RepoFile`` parsing and its download metadata):

- ``GET /api/models?search=&author=&sort=&direction=&limit=&filter=gguf`` → a list of model
  summaries (``id``, ``author``, ``downloads``, ``likes``, ``lastModified``, ``tags``, ``gated``…);
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (``?blobs=true`` adds
  ``size`` and ``lfs.sha256`` to each sibling);
- ``GET /api/models/{repo}/tree/{rev}`` → ``[{type, path, size, oid, lfs: {oid, size,
  pointerSize}}]``;
- ``HEAD/GET /{repo}/resolve/{rev}/{path}`` → the bytes, with ``ETag``, ``X-Repo-Commit``,
  ``X-Linked-Etag`` (the LFS sha256), ``X-Linked-Size``, ``Accept-Ranges: bytes``; ``Range:
  bytes=a-b`` gives 206 with ``Content-Range`` (416 past the end). Like the real Hub, LFS files
  answer with a 302 to a CDN path (``/_cdn/...``) that serves the bytes, unless
  ``redirect_lfs=False``.

Gated repos (``HubRepo.gated``) list their metadata to anyone but answer 401 with
``X-Error-Code: GatedRepo`` on ``resolve`` without ``Authorization: Bearer <token>`` (the token
the simulator was started with). Faults for downloads: ``throttle_bps`` (bytes per second),
``drop_after`` (the next GET of a file closes the connection after that many bytes, once),
``corrupt`` (paths whose served bytes differ from their declared sha256).

Files are real files on disk (GGUFs written by ``tests/sizing/gguf_factory.py`` are sparse, so a
"4 GB" quant costs nothing) or bytes. ``bytes_sent[path]`` counts the body bytes served per file,
so a test can prove that a fit badge read only the header.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers.base import SimHandler, SimServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Above this size a file's sha256 is not computed unless a test asks (sparse "big" quants exist to
# have their headers read; downloading one would fail its checksum, which is what they are for).
HASH_LIMIT = 256 << 20
CHUNK = 64 << 10


@dataclass
class HubFile:
    """One file in a repo: its bytes come from ``source`` (a path or bytes)."""

    path: str
    source: Path | bytes
    sha256: str | None = None  # declared LFS sha256; computed when None and the file is small
    lfs: bool = True

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    def digest(self) -> str:
        if self.sha256 is None:
            h = hashlib.sha256()
            if self.size > HASH_LIMIT:
                h.update(self.path.encode())  # a stand-in: see HASH_LIMIT
            elif isinstance(self.source, bytes):
                h.update(self.source)
            else:
                with self.source.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            self.sha256 = h.hexdigest()
        return self.sha256

    def read(self, start: int, length: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[start : start + length]
        with self.source.open("rb") as f:
            f.seek(start)
            return f.read(length)


@dataclass
class HubRepo:
    """A model repository as the Hub lists it."""

    id: str
    files: list[HubFile] = field(default_factory=list)
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2026-11-01T12:00:00.000Z"
    gated: bool | str = False  # False, "auto" or "manual" like the Hub
    tags: list[str] = field(default_factory=lambda: ["gguf"])

    @property
    def author(self) -> str:
        return self.id.split("/", 1)[0]

    def file(self, path: str) -> HubFile | None:
        return next((f for f in self.files if f.path == path), None)


class HubHandler(SimHandler):
    """Routes by pattern (repo ids contain a slash, so the exact-path table does not fit)."""

    server: HubServer  # type: ignore[assignment]

    _INFO = re.compile(r"^/api/models/([^/]+/[^/]+?)(?:/revision/([^/]+))?$")
    _TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?$")
    _RESOLVE = re.compile(r"^/(_cdn/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")

    def unknown_route(self, path: str) -> None:
        path = unquote(path)
        query = parse_qs(urlsplit(self.path).query)
        if path == "/api/models" and self.command == "GET":
            self.search(query)
        elif (m := self._TREE.match(path)) and self.command == "GET":
            self.tree(m.group(1))
        elif (m := self._INFO.match(path)) and self.command == "GET":
            self.info(m.group(1), query)
        elif m := self._RESOLVE.match(path):
            self.resolve(m.group(2), m.group(4), cdn=bool(m.group(1)))
        else:
            self.send_json(404, {"error": "Not Found"})

    # -- API ---------------------------------------------------------------------------------------

    def _repo_or_404(self, repo_id: str) -> HubRepo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            self.send_json(404, {"error": "Repository not found"},
                           {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        return repo

    @staticmethod
    def _summary(repo: HubRepo) -> dict[str, Any]:
        return {"_id": repo.id.replace("/", "-"), "id": repo.id, "modelId": repo.id, "author": repo.author,
                "downloads": repo.downloads, "likes": repo.likes, "lastModified": repo.last_modified,
                "createdAt": repo.last_modified, "private": False, "gated": repo.gated,
                "tags": repo.tags, "library_name": "gguf", "sha": COMMIT}

    def search(self, query: dict[str, list[str]]) -> None:
        repos = list(self.server.repos.values())
        if text := (query.get("search") or [""])[0].lower():
            repos = [r for r in repos if text in r.id.lower()]
        if author := (query.get("author") or [""])[0]:
            repos = [r for r in repos if r.author == author]
        for tag in query.get("filter", []):
            repos = [r for r in repos if tag in r.tags]
        sort = (query.get("sort") or [""])[0]
        key = {"downloads": lambda r: r.downloads, "likes": lambda r: r.likes,
               "lastModified": lambda r: r.last_modified}.get(sort)
        if key is not None:
            descending = (query.get("direction") or ["-1"])[0] == "-1"
            repos.sort(key=key, reverse=descending)  # type: ignore[arg-type]
        limit = int((query.get("limit") or ["1000"])[0])
        self.send_json(200, [self._summary(r) for r in repos[:limit]])

    def info(self, repo_id: str, query: dict[str, list[str]]) -> None:
        repo = self._repo_or_404(repo_id)
        if repo is None:
            return
        blobs = (query.get("blobs") or [""])[0].lower() == "true"
        siblings: list[dict[str, Any]] = []
        for f in repo.files:
            entry: dict[str, Any] = {"rfilename": f.path}
            if blobs:
                entry["size"] = f.size
                entry["blobId"] = hashlib.sha1(f.path.encode()).hexdigest()
                if f.lfs:
                    entry["lfs"] = {"sha256": f.digest(), "size": f.size, "pointerSize": 135}
            siblings.append(entry)
        self.send_json(200, {**self._summary(repo), "siblings": siblings, "disabled": False,
                             "cardData": {}, "spaces": []})

    def tree(self, repo_id: str) -> None:
        repo = self._repo_or_404(repo_id)
        if repo is None:
            return
        out = []
        for f in repo.files:
            entry: dict[str, Any] = {"type": "file", "path": f.path, "size": f.size,
                                     "oid": hashlib.sha1(f.path.encode()).hexdigest()}
            if f.lfs:
                entry["lfs"] = {"oid": f.digest(), "size": f.size, "pointerSize": 135}
            out.append(entry)
        self.send_json(200, out)

    # -- files -------------------------------------------------------------------------------------

    def resolve(self, repo_id: str, path: str, *, cdn: bool) -> None:
        repo = self._repo_or_404(repo_id)
        if repo is None:
            return
        hub_file = repo.file(path)
        if hub_file is None:
            self.send_json(404, {"error": "Entry not found"},
                           {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
            return
        if repo.gated and self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.send_json(401, {"error": "Access to this model is restricted."},
                           {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"})
            return
        meta = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes",
                "ETag": f'"{hub_file.digest() if hub_file.lfs else COMMIT}"'}
        if hub_file.lfs:
            meta["X-Linked-Etag"] = f'"{hub_file.digest()}"'
            meta["X-Linked-Size"] = str(hub_file.size)
        if hub_file.lfs and self.server.redirect_lfs and not cdn:
            self.send_response(302)
            self.send_header("Location", f"/_cdn/{repo_id}/resolve/{COMMIT}/{path}")
            self.send_header("Content-Length", "0")
            for key, value in meta.items():
                self.send_header(key, value)
            self.end_headers()
            return
        self.send_file(hub_file, meta)

    def send_file(self, hub_file: HubFile, meta: dict[str, str]) -> None:
        size = hub_file.size
        start, end = 0, size - 1
        status = 200
        if m := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        for key, value in meta.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        self.stream_body(hub_file, start, end + 1)

    def stream_body(self, hub_file: HubFile, start: int, stop: int) -> None:
        srv = self.server
        drop_at = srv.take_drop()
        sent = 0
        pos = start
        began = time.monotonic()
        while pos < stop:
            if srv.stop_event.is_set():
                return
            n = min(CHUNK, stop - pos)
            if drop_at is not None and sent + n > drop_at:
                n = drop_at - sent
            data = hub_file.read(pos, n)
            if hub_file.path in srv.corrupt and pos == start and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            try:
                self.wfile.write(data)
            except OSError:
                return
            srv.count(hub_file.path, len(data))
            sent += len(data)
            pos += len(data)
            if drop_at is not None and sent >= drop_at:
                self.close_connection = True
                self.drop_connection()
                return
            if srv.throttle_bps:
                ahead = sent / srv.throttle_bps - (time.monotonic() - began)
                if ahead > 0:
                    srv.stop_event.wait(ahead)


class HubServer(SimServer):
    """The Hub simulator: ``HubServer(repos).start()``; ``url`` goes in ``HF_ENDPOINT``."""

    def __init__(self, repos: list[HubRepo] | None = None, *, token: str = "hf_simulated_token",
                 redirect_lfs: bool = True, port: int = 0) -> None:
        super().__init__(HubHandler, port)
        self.repos: dict[str, HubRepo] = {r.id: r for r in repos or []}
        self.token = token
        self.redirect_lfs = redirect_lfs
        self.throttle_bps = 0
        self.corrupt: set[str] = set()
        self.bytes_sent: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def add(self, repo: HubRepo) -> HubRepo:
        self.repos[repo.id] = repo
        return repo

    def count(self, path: str, n: int) -> None:
        with self._count_lock:
            self.bytes_sent[path] = self.bytes_sent.get(path, 0) + n
