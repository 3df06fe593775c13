"""What the Hugging Face Hub says about a repo's files, for
:class:`~victor_gui.services.downloads.DownloadManager` (a mixin: same object, kept apart so each
file holds one responsibility): the repo's files with
their size and LFS sha256 (``/api/models/{repo}/revision/{rev}?blobs=true``), the request
headers, and the token for gated repos (the keyring's ``huggingface`` key, else ``HF_API_KEY`` /
``HF_TOKEN``, read never written; without one a refusal says to add it in Settings → API keys).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from urllib.parse import quote

import httpx

from victor_gui.errors import DownloadError
from victor_gui.providers.bounded import read_bounded

log = logging.getLogger(__name__)


def default_token() -> str | None:
    """The Hugging Face token: the keyring's ``huggingface`` key, else ``HF_API_KEY``/``HF_TOKEN``
    (blocking: the keyring; call it in a thread)."""
    from victor_gui.providers.catalog import find_spec
    from victor_gui.providers.keys import resolve_api_key

    spec = find_spec("huggingface")
    return resolve_api_key(spec)[0] if spec is not None else None



class HubMetadataMixin:
    """The Hub half of the download manager; see the module doc. The attributes below are the
    manager's (set in ``DownloadManager.__init__``)."""

    client: httpx.AsyncClient
    endpoint: str
    _token_source: Callable[[], str | None] | None

    def _headers(self, token: str | None) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity", "User-Agent": "victor-gui"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _token(self) -> str | None:
        if self._token_source is None:
            return None
        try:
            return await asyncio.to_thread(self._token_source)
        except Exception as exc:  # no keyring: go on without a token
            log.info("downloads: no Hugging Face token (%s)", type(exc).__name__)
            return None

    async def _siblings(self, repo_id: str, revision: str) -> dict[str, tuple[int | None, str | None]]:
        """``{file: (size, sha256)}`` of the repo at ``revision`` from the Hub's API."""
        url = f"{self.endpoint}/api/models/{repo_id}/revision/{quote(revision, safe='')}"
        token = await self._token()
        try:
            async with self.client.stream("GET", url, params={"blobs": "true"},
                                          headers=self._headers(token), follow_redirects=True) as resp:
                body = await read_bounded(resp)
        except httpx.HTTPError as exc:
            raise DownloadError(f"The Hugging Face Hub at {self.endpoint} did not answer "
                                f"({type(exc).__name__}); check the connection and try again",
                                reason="network") from None
        if resp.status_code in (401, 403):
            raise DownloadError(gated_text(repo_id, token), reason="gated")
        if resp.status_code == 404:
            raise DownloadError(f"{repo_id} (revision {revision}) is not on the Hugging Face Hub",
                                reason="not_found")
        if resp.status_code >= 400:
            raise DownloadError(f"The Hub answered {resp.status_code} for {repo_id}", reason="http")
        try:
            data = json.loads(body)
            out: dict[str, tuple[int | None, str | None]] = {}
            for s in data.get("siblings") or []:
                lfs = s.get("lfs") or {}
                size = lfs.get("size", s.get("size"))
                out[str(s["rfilename"])] = (int(size) if size is not None else None, lfs.get("sha256"))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise DownloadError(f"The Hub's description of {repo_id} could not be read",
                                reason="http") from None
        return out


def gated_text(repo_id: str, token: str | None) -> str:
    """Why the Hub refused a gated repo: no token, or a token it did not take."""
    if token:
        return (f"{repo_id} is gated and the Hugging Face token was refused: accept the model's terms "
                "on its Hub page, or check the token in Settings → API keys")
    return (f"{repo_id} is gated: add your Hugging Face token in Settings → API keys (or set HF_TOKEN) "
            "and accept the model's terms on its Hub page")
