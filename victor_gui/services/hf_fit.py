"""Will each quant of a Hub repository fit on this machine? Read from GGUF headers only (Qt-free).

For every quant the header of its file (each part's header for a split model: the metadata and
the tensor table, never the weights) is read over HTTP range requests with
:func:`victor_gui.sizing.sources.load_model`, and the existing estimator plans it at the chosen
context on this machine's GPUs: full / partial N of M / CPU only / won't fit, plus the largest
context that still offloads fully. Headers are read a few at a time (``limit``) and kept for the
session per URL + ETag (the Hub's LFS sha256, which changes whenever the bytes do), so a new
context is pure arithmetic: no request at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import httpx

from victor_gui.errors import GGUFError, VictorGuiError
from victor_gui.services.hf_hub import HubClient, QuantFile, RepoFiles
from victor_gui.sizing.architecture import ModelArchitecture
from victor_gui.sizing.fit import FitOptions, FitResult, estimate_fit
from victor_gui.sizing.gguf_reader import header_client
from victor_gui.sizing.hardware import GpuReport
from victor_gui.sizing.sources import load_model

DEFAULT_LIMIT = 3  # headers read at once: the Hub's CDN is fast, and a repo lists ~20 quants


@dataclass(frozen=True, slots=True)
class QuantFit:
    """One quant's answer: the plan at ``n_ctx`` (None with ``error``) and its header's model."""

    quant: QuantFile
    n_ctx: int
    fit: FitResult | None = None
    arch: ModelArchitecture | None = None
    error: str | None = None

    @property
    def max_full_ctx(self) -> int | None:
        """Largest context that fully offloads (None: none, or no GPU)."""
        return self.fit.max_full_offload_ctx if self.fit is not None else None


def plan(arch: ModelArchitecture, report: GpuReport, n_ctx: int,
         options: FitOptions | None = None) -> FitResult:
    """The estimator's plan of ``arch`` at ``n_ctx`` on the machine in ``report``."""
    opts = replace(options or FitOptions(), n_ctx=n_ctx)
    return estimate_fit(arch, report.gpus, report.ram, opts)


class HubFitter:
    """Fit verdicts of a repo's quants, with the headers cached for the session."""

    def __init__(self, hub: HubClient, *, limit: int = DEFAULT_LIMIT,
                 client: httpx.AsyncClient | None = None) -> None:
        self.hub = hub
        self._limit = asyncio.Semaphore(limit)
        self._client = client
        self._own_client = client is None
        self._archs: dict[tuple[str, str], ModelArchitecture] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[ModelArchitecture]] = {}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = header_client()
        return self._client

    def cache_key(self, repo_id: str, quant: QuantFile) -> tuple[str, str]:
        """URL + ETag of the quant's first part (its LFS sha256; the size when there is none)."""
        first = quant.first
        return self.hub.file_url(repo_id, first.path), first.sha256 or f"size:{first.size}"

    def cached(self, repo_id: str, quant: QuantFile) -> ModelArchitecture | None:
        """The header already read this session, if any."""
        return self._archs.get(self.cache_key(repo_id, quant))

    async def architecture(self, repo_id: str, quant: QuantFile) -> ModelArchitecture:
        """The model a quant's header describes (read once per URL + ETag; concurrent asks share
        one read). Raises :class:`~victor_gui.errors.GGUFError` or a typed provider error."""
        key = self.cache_key(repo_id, quant)
        if (arch := self._archs.get(key)) is not None:
            return arch
        if (pending := self._pending.get(key)) is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ModelArchitecture] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            arch = await self._read(key[0])
        except BaseException as exc:
            if not future.cancelled():
                future.set_exception(exc)
                future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._pending.pop(key, None)
        self._archs[key] = arch
        future.set_result(arch)
        return arch

    async def _read(self, url: str) -> ModelArchitecture:
        async with self._limit:
            http = self._http()
            token = await self.hub.token()
            if token:
                http.headers["Authorization"] = f"Bearer {token}"
            source = await load_model(url, client=http)
            return source.arch

    async def fit_quant(self, repo_id: str, quant: QuantFile, report: GpuReport, n_ctx: int,
                        options: FitOptions | None = None) -> QuantFit:
        """One quant's verdict; a header that cannot be read gives ``error`` (a sentence)."""
        if not quant.complete:
            return QuantFit(quant, n_ctx, error="some parts of this split model are missing from the repo")
        try:
            arch = await self.architecture(repo_id, quant)
        except GGUFError as exc:
            return QuantFit(quant, n_ctx, error=f"header unreadable: {exc.message}")
        except VictorGuiError as exc:
            return QuantFit(quant, n_ctx, error=exc.message)
        return QuantFit(quant, n_ctx, plan(arch, report, n_ctx, options), arch)

    async def fit_repo(self, repo: RepoFiles, report: GpuReport, n_ctx: int,
                       options: FitOptions | None = None, *,
                       quants: Sequence[QuantFile] | None = None) -> list[QuantFit]:
        """Every quant's verdict at ``n_ctx`` (headers read ``limit`` at a time). A gated repo
        without access raises its sentence once instead of one error per quant."""
        chosen = list(repo.quants if quants is None else quants)
        if repo.gated and any(self.cached(repo.repo_id, q) is None for q in chosen):
            await self.hub.check_access(repo, self._http())
        return list(await asyncio.gather(*(self.fit_quant(repo.repo_id, q, report, n_ctx, options)
                                           for q in chosen)))

    def refit(self, fits: Iterable[QuantFit], report: GpuReport, n_ctx: int,
              options: FitOptions | None = None) -> list[QuantFit]:
        """The same quants at another context: arithmetic on the cached headers, no request."""
        out = []
        for f in fits:
            if f.arch is None:
                out.append(replace(f, n_ctx=n_ctx))
            else:
                out.append(QuantFit(f.quant, n_ctx, plan(f.arch, report, n_ctx, options), f.arch))
        return out

    async def aclose(self) -> None:
        """Close the header client (when this fitter made it)."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None


