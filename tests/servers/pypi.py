"""A simulator of PyPI's JSON API and file host, enough for ``victor-gui engine install``.

- ``GET /pypi/{project}/json`` → ``{"info": {...}, "releases": {version: [file, ...]}}`` with
  each file's ``filename``, ``packagetype`` (``sdist``), ``size``, ``url`` and
  ``digests.sha256``, the shape pypi.org sends;
- ``GET /packages/{filename}`` → the bytes (pypi.org answers from files.pythonhosted.org; the
  simulator serves them itself, behind a 302 like a CDN redirect when ``redirect=True``).

``PyPIRelease.declared_sha256`` lets a test announce a digest the served bytes do not have;
``relative_urls`` writes file URLs relative to the JSON's, as some mirrors do; ``bytes_sent``
counts body bytes served per file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.servers.base import SimHandler, SimServer


@dataclass
class PyPIRelease:
    """One sdist: its version, its bytes, and the sha256 the JSON API announces (default: the real one)."""

    version: str
    data: bytes
    declared_sha256: str | None = None

    @property
    def filename(self) -> str:
        return f"llama_cpp_python-{self.version}.tar.gz"

    @property
    def sha256(self) -> str:
        return self.declared_sha256 or hashlib.sha256(self.data).hexdigest()


class PyPIHandler(SimHandler):
    server: PyPIServer  # type: ignore[assignment]

    def unknown_route(self, path: str) -> None:
        path = unquote(path)
        if path == f"/pypi/{self.server.project}/json":
            self.send_json(200, self.server.project_json())
        elif path.startswith("/_cdn/"):
            self.serve_file(path.removeprefix("/_cdn/"))
        elif path.startswith("/packages/"):
            name = path.removeprefix("/packages/")
            if self.server.redirect:
                self.send_bytes(302, b"", "text/plain", {"Location": f"{self.server.url}/_cdn/{name}"})
            else:
                self.serve_file(name)
        else:
            self.send_json(404, {"message": "Not Found"})

    def serve_file(self, name: str) -> None:
        release = next((r for r in self.server.releases if r.filename == name), None)
        if release is None:
            self.send_json(404, {"message": "Not Found"})
            return
        self.server.bytes_sent[name] = self.server.bytes_sent.get(name, 0) + len(release.data)
        self.send_bytes(200, release.data, "application/octet-stream")


class PyPIServer(SimServer):
    """PyPI on 127.0.0.1 serving ``releases`` of one project."""

    def __init__(self, releases: list[PyPIRelease], *, project: str = "llama-cpp-python",
                 redirect: bool = True, relative_urls: bool = False) -> None:
        super().__init__(PyPIHandler)
        self.releases = releases
        self.project = project
        self.redirect = redirect
        self.relative_urls = relative_urls  # as some mirrors write them: "../../packages/<file>"
        self.bytes_sent: dict[str, int] = {}

    def project_json(self) -> dict[str, Any]:
        return {
            "info": {"name": self.project, "version": self.releases[-1].version if self.releases else None},
            "releases": {r.version: [{
                "filename": r.filename, "packagetype": "sdist", "size": len(r.data),
                "url": f"{'../..' if self.relative_urls else self.url}/packages/{r.filename}",
                "digests": {"sha256": r.sha256},
                "yanked": False,
            }] for r in self.releases},
        }
