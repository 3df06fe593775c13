"""Hugging Face Hub: search GGUF repositories and list a repository's GGUF files by quant (Qt-free).

The Hub is reached through ``huggingface_hub`` (the ``hub`` extra). Its client is synchronous, so
every call runs in a worker thread, never on the event loop. The endpoint is the one given, else
``HF_ENDPOINT``, else https://huggingface.co. The token is the "huggingface" provider's key,
resolved like every other key (keyring first, then ``HF_API_KEY``/``HF_TOKEN``; env vars are read,
never written) and handed to each call explicitly, so the library's own token file is not used.

A repository's files become :class:`QuantFile` rows: a split model (``…-00001-of-00003.gguf``) is
ONE row with all its parts and their summed size; ``mmproj`` files are the vision add-on, not a
quant. Failures are typed errors of :mod:`victor_gui.errors` whose message is the sentence the
window and the CLI show (offline, repository not found, gated without a token, wrong replies).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from victor_gui.errors import (
    InvalidResponseError,
    MissingAPIKeyError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from victor_gui.providers.catalog import SPECS_BY_NAME
from victor_gui.providers.keys import resolve_api_key
from victor_gui.sizing.sources import hub_endpoint

PROVIDER = "huggingface"
Sort = Literal["downloads", "likes", "updated"]
SORTS: tuple[Sort, ...] = ("downloads", "likes", "updated")
_LIBRARY_SORT = {"downloads": "downloads", "likes": "likes", "updated": "last_modified"}
KEY_PLACE = "Settings → API keys (Hugging Face)"
MISSING_EXTRA = ("Finding models on Hugging Face needs the 'hub' extra (huggingface_hub): "
                 "pip install 'victor-gui[hub]'.")

# A quant in a file name: Q4_K_M, Q8_0, IQ3_XXS, TQ1_0, BF16, F16, MXFP4, unsloth's UD-Q4_K_XL...
# It stands between separators (- . _ or the ends), so "Qwen3" or "BF16" inside words do not count.
_QUANT = re.compile(r"(?<![A-Za-z0-9])((?:UD-)?(?:I?Q\d+(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|FP16|F16|FP32|F32|"
                    r"MXFP4(?:_MOE)?|FP8))(?![A-Za-z0-9])", re.IGNORECASE)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})(\.gguf)$", re.IGNORECASE)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RepoSummary:
    """One search result, as the Hub lists it."""

    id: str
    author: str
    downloads: int = 0
    likes: int = 0
    last_modified: datetime | None = None
    gated: bool = False


@dataclass(frozen=True, slots=True)
class FilePart:
    """One file of a repo: its path, size and LFS sha256 (the Hub's ETag for the bytes)."""

    path: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class QuantFile:
    """One model file of a repo (a split model's parts together), or a vision projector.

    ``quant`` is upper case (``Q4_K_M``, ``BF16``); ``""`` when the name names none.
    ``complete`` is False when parts of a split model are missing from the listing.
    """

    name: str  # the file name without the shard suffix, e.g. "Qwen3-8B-Q4_K_M.gguf"
    quant: str
    parts: tuple[FilePart, ...]
    vision: bool = False
    complete: bool = True

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def first(self) -> FilePart:
        """The part whose header holds the metadata (the first shard)."""
        return self.parts[0]

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parts]

    @property
    def label(self) -> str:
        return self.quant or self.name


@dataclass(frozen=True, slots=True)
class RepoFiles:
    """A repository's GGUF models by quant (smallest first) and its vision add-ons."""

    repo_id: str
    gated: bool
    quants: tuple[QuantFile, ...] = ()
    vision: tuple[QuantFile, ...] = ()
    notes: tuple[str, ...] = field(default=())


def parse_quant(filename: str) -> str:
    """The quantization named in a GGUF file name (upper case), or ``""``."""
    base = filename.rsplit("/", 1)[-1]
    base = _SHARD.sub(r"\3", base)
    found = _QUANT.findall(base)
    return found[-1].upper() if found else ""


def group_gguf_files(files: Sequence[FilePart]) -> tuple[list[QuantFile], list[QuantFile], list[str]]:
    """(models, vision add-ons, notes) from a repo's file list; non-GGUF files are ignored."""
    groups: dict[str, list[tuple[int, int, FilePart]]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        m = _SHARD.search(f.path)
        key = f.path[: m.start()] + m.group(3) if m else f.path
        index, count = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        groups.setdefault(key, []).append((index, count, f))
    models: list[QuantFile] = []
    vision: list[QuantFile] = []
    notes: list[str] = []
    for key, members in groups.items():
        members.sort(key=lambda t: t[0])
        count = max(t[1] for t in members)
        complete = [t[0] for t in members] == list(range(1, count + 1))
        if not complete:
            notes.append(f"{key.rsplit('/', 1)[-1]}: only {len(members)} of its {count} parts are listed")
        name = key.rsplit("/", 1)[-1]
        entry = QuantFile(name=name, quant=parse_quant(name), parts=tuple(t[2] for t in members),
                          vision="mmproj" in name.lower(), complete=complete)
        (vision if entry.vision else models).append(entry)
    models.sort(key=lambda q: (q.size, q.name))
    vision.sort(key=lambda q: (q.size, q.name))
    return models, vision, notes




def hub_token(env: Mapping[str, str] | None = None) -> str | None:
    """The Hugging Face token from the keyring or HF_API_KEY/HF_TOKEN (blocking: keyring I/O)."""
    key, _source = resolve_api_key(SPECS_BY_NAME[PROVIDER], env=env)
    return key


def gated_sentence(repo_id: str, page: str, *, has_token: bool) -> str:
    """What to do about a gated repository, in one sentence with the page to accept the terms."""
    if has_token:
        return (f"{repo_id} is gated and the Hugging Face token was refused: accept the model's terms "
                f"on {page} with the account of that token, or check the token in {KEY_PLACE}.")
    return (f"{repo_id} is gated: add your Hugging Face token in {KEY_PLACE}, and accept the "
            f"model's terms on {page}.")


def _library_error(exc: BaseException, what: str, repo_id: str | None, page: str | None,
                   has_token: bool) -> ProviderError | None:
    """The typed error for an exception of ``huggingface_hub`` (None: not one of its errors)."""
    # Not imported here: an exception of the library's means its errors module is loaded, and
    # importing it for a failure of our own (offline: the connect probe) cost 2.2 MB of memory
    # for the rest of the run (httpx2 and the library's package), with the first-run offer up.
    hf_errors = sys.modules.get("huggingface_hub.errors")
    if hf_errors is None:
        return None

    status: int | None = None
    response = getattr(exc, "response", None)
    if response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(exc, hf_errors.GatedRepoError) and repo_id and page:
        cls = ProviderAuthError if has_token else MissingAPIKeyError
        return cls(gated_sentence(repo_id, page, has_token=has_token), PROVIDER, status_code=status,
                   model=repo_id)
    if isinstance(exc, hf_errors.RepositoryNotFoundError | hf_errors.RevisionNotFoundError):
        return ModelNotFoundError(f"Hugging Face has no repository {repo_id!r} (or it is private).",
                                  PROVIDER, status_code=status, model=repo_id)
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return ProviderConnectionError("Hugging Face is not reachable: offline mode is on (HF_HUB_OFFLINE).",
                                       PROVIDER)
    if isinstance(exc, hf_errors.HfHubHTTPError):
        if status in (401, 403):
            return ProviderAuthError(f"Hugging Face refused {what} (HTTP {status}): check the token in "
                                     f"{KEY_PLACE}.", PROVIDER, status_code=status, model=repo_id)
        if status == 429:
            return ProviderRateLimitError(f"Hugging Face is rate limiting {what}: try again in a minute.",
                                          PROVIDER, status_code=status)
        if status is not None and status >= 500:
            return ProviderServerError(f"Hugging Face failed {what} (HTTP {status}): try again later.",
                                       PROVIDER, status_code=status)
        return InvalidResponseError(f"Hugging Face answered {what} with HTTP {status}.", PROVIDER,
                                    status_code=status, model=repo_id)
    return None


def _transport_error(exc: BaseException, endpoint: str) -> ProviderError | None:
    """Connection failures of the library's HTTP stack (httpx2) or of httpx."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names:
        return ProviderTimeoutError(f"Hugging Face at {endpoint} did not answer in time: check the "
                                    "connection and try again.", PROVIDER)
    if "TransportError" in names or isinstance(exc, OSError | httpx.TransportError):
        return ProviderConnectionError(f"Hugging Face at {endpoint} is not reachable "
                                       f"({type(exc).__name__}): check the connection.", PROVIDER)
    return None


def _probe_connect(endpoint: str, timeout: float) -> None:
    """Fail fast when nothing listens at the endpoint (blocking; runs in the worker thread).

    The library retries refused connections with back-off for ~25 s before giving up; a TCP
    connect says "offline" at once. Skipped behind a proxy, where only the proxy is reachable."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    if urllib.request.getproxies():
        return
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=timeout):
        pass


class HubClient:
    """Search and repository listings of one Hub endpoint, async (the library runs in a thread).

    ``token``: a string, or None to resolve the "huggingface" key on first use (keyring, then
    environment; ``env`` stands in for ``os.environ`` in tests)."""

    def __init__(self, endpoint: str | None = None, *, token: str | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 20.0) -> None:
        self.endpoint = hub_endpoint(endpoint, env)
        self._token = token
        self._token_resolved = token is not None
        self._env = env
        self.timeout = timeout

    # -- addresses ------------------------------------------------------------------------------

    def page_url(self, repo_id: str) -> str:
        """The repository's page (where gated terms are accepted)."""
        return f"{self.endpoint}/{repo_id}"

    def file_url(self, repo_id: str, path: str, revision: str = "main") -> str:
        """The ``resolve`` URL of a file: the bytes, with range requests."""
        return f"{self.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"

    # -- token ----------------------------------------------------------------------------------

    def token_sync(self) -> str | None:
        """The token (resolved once; blocking: call from a thread)."""
        if not self._token_resolved:
            self._token = hub_token(self._env)
            self._token_resolved = True
        return self._token

    async def token(self) -> str | None:
        """The token, resolved in a worker thread (the keyring may block)."""
        if self._token_resolved:
            return self._token
        return await asyncio.to_thread(self.token_sync)

    # -- calls ----------------------------------------------------------------------------------

    def _api(self, token: str | None) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=token or False, library_name="victor-gui")

    async def _call(self, what: str, fn: Callable[[Any], T], repo_id: str | None = None) -> T:
        if importlib.util.find_spec("huggingface_hub") is None:
            raise ProviderUnavailableError(MISSING_EXTRA, PROVIDER)
        def run() -> tuple[T, bool]:
            _probe_connect(self.endpoint, min(self.timeout, 10.0))
            token = self.token_sync()
            return fn(self._api(token)), bool(token)

        try:
            result, _ = await asyncio.to_thread(run)
            return result
        except ProviderError:
            raise
        except Exception as exc:
            has_token = bool(self._token)
            page = self.page_url(repo_id) if repo_id else None
            typed = (_library_error(exc, what, repo_id, page, has_token)
                     or _transport_error(exc, self.endpoint))
            if typed is None:  # the library could not read the reply: not the Hub's shapes
                typed = InvalidResponseError(f"Hugging Face at {self.endpoint} sent an unexpected reply to "
                                             f"{what} ({type(exc).__name__}).", PROVIDER, model=repo_id,
                                             raw_error=exc)
            raise typed from exc

    async def search(self, text: str = "", *, author: str | None = None, sort: Sort = "downloads",
                     limit: int = 30) -> list[RepoSummary]:
        """GGUF repositories matching ``text`` (and ``author``), best first by ``sort``."""
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {SORTS}")

        def run(api: Any) -> list[RepoSummary]:
            found = api.list_models(search=text or None, author=author or None, filter="gguf",
                                    sort=_LIBRARY_SORT[sort], limit=limit)
            return [_summary(m) for m in found]

        return await self._call("the search", run)

    async def repo_files(self, repo_id: str) -> RepoFiles:
        """The repository's GGUF models grouped by quant, vision add-ons apart, gated flagged."""
        def run(api: Any) -> Any:
            return api.model_info(repo_id, files_metadata=True, timeout=self.timeout)

        info = await self._call(f"the file list of {repo_id}", run, repo_id)
        try:
            parts = [FilePart(str(s.rfilename), int(s.size or 0),
                              str(s.lfs.sha256) if s.lfs is not None and s.lfs.sha256 else None)
                     for s in info.siblings or []]
        except (AttributeError, TypeError, ValueError) as exc:
            raise InvalidResponseError(f"Hugging Face sent a file list of {repo_id} in an unexpected shape.",
                                       PROVIDER, model=repo_id, raw_error=exc) from exc
        models, vision, notes = group_gguf_files(parts)
        return RepoFiles(repo_id, bool(info.gated), tuple(models), tuple(vision), tuple(notes))

    async def check_access(self, repo: RepoFiles, client: httpx.AsyncClient) -> None:
        """For a gated repo: raise the gated sentence unless a token opens its first file.

        One HEAD of the resolve URL, redirects not followed: no file bytes are fetched."""
        if not repo.gated or not repo.quants:
            return
        token = await self.token()
        page = self.page_url(repo.repo_id)
        if not token:
            raise MissingAPIKeyError(gated_sentence(repo.repo_id, page, has_token=False), PROVIDER,
                                     status_code=401, model=repo.repo_id)
        url = self.file_url(repo.repo_id, repo.quants[0].first.path)
        try:
            resp = await client.head(url, headers={"Authorization": f"Bearer {token}"},
                                     follow_redirects=False)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.endpoint) or ProviderConnectionError(
                f"Hugging Face at {self.endpoint} is not reachable.", PROVIDER) from exc
        if resp.status_code in (401, 403):
            raise ProviderAuthError(gated_sentence(repo.repo_id, page, has_token=True), PROVIDER,
                                    status_code=resp.status_code, model=repo.repo_id)


def _summary(m: Any) -> RepoSummary:
    repo_id = str(m.id)
    modified = m.last_modified if isinstance(m.last_modified, datetime) else None
    return RepoSummary(id=repo_id, author=str(m.author or repo_id.split("/", 1)[0]),
                       downloads=int(m.downloads or 0), likes=int(m.likes or 0), last_modified=modified,
                       gated=bool(m.gated))
