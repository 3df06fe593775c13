"""Vertex AI: Gemini payloads at
``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}``.

Auth is an OAuth access token from Application Default Credentials (``gcloud auth
application-default login``, a service account, or the metadata server), via the optional
``google-auth`` package (``pip install "victor_gui[vertex]"``), imported only when first needed.
The token is cached until shortly before it expires, and the refresh (blocking HTTP inside
google-auth) runs in an executor, never on the event loop. ``VERTEX_API_KEY`` (or ``api_key=``)
is the alternative: sent as ``x-goog-api-key``.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from typing import Any, Protocol
from urllib.parse import quote

from victor_gui.core.redact import register_secret
from victor_gui.errors import ProviderAuthError, ProviderUnavailableError
from victor_gui.providers.protocols.gemini import GeminiProvider

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Refresh this long before the token's expiry, so a request never leaves with a dying token.
REFRESH_MARGIN_S = 300.0


class TokenSource(Protocol):
    """Where access tokens come from. ``fetch`` may block (it runs in an executor)."""

    def fetch(self) -> tuple[str, float | None]:
        """(access token, expiry as a Unix time or None when unknown)."""
        ...


class ADCTokenSource:
    """Application Default Credentials through google-auth."""

    def __init__(self) -> None:
        self._credentials: Any = None
        self.project: str | None = None

    def fetch(self) -> tuple[str, float | None]:
        try:
            import google.auth
            import google.auth.exceptions
            import google.auth.transport.requests
        except ImportError as exc:
            raise ProviderUnavailableError(
                'Vertex AI needs the google-auth package: pip install "victor_gui[vertex]" '
                "(or set VERTEX_API_KEY)",
                "vertex",
            ) from exc
        try:
            if self._credentials is None:
                self._credentials, self.project = google.auth.default(scopes=list(SCOPES))
            self._credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ProviderAuthError(
                "No Google Cloud credentials: run `gcloud auth application-default login` "
                "or set GOOGLE_APPLICATION_CREDENTIALS",
                "vertex",
                raw_error=exc,
            ) from exc
        except google.auth.exceptions.RefreshError as exc:
            raise ProviderAuthError(
                f"Refreshing Google Cloud credentials failed: {exc}", "vertex", raw_error=exc
            ) from exc
        expiry = getattr(self._credentials, "expiry", None)
        # google-auth keeps expiry as a naive UTC datetime.
        when = expiry.replace(tzinfo=datetime.UTC).timestamp() if expiry else None
        return str(self._credentials.token), when


class TokenCache:
    """One token shared by concurrent requests; refreshed off the loop, once, when near expiry."""

    def __init__(
        self, source: TokenSource, *, margin: float = REFRESH_MARGIN_S, clock: Any = time.time
    ) -> None:
        self.source = source
        self.margin = margin
        self.clock = clock
        self._token: str | None = None
        self._expiry: float | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        return self._expiry is None or self.clock() < self._expiry - self.margin

    async def token(self) -> str:
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh():  # another request may have refreshed while this one waited
                loop = asyncio.get_running_loop()
                self._token, self._expiry = await loop.run_in_executor(None, self.source.fetch)
                register_secret(self._token)  # a bearer token must never reach a log or an error
                self.refreshes += 1
        assert self._token is not None
        return self._token


class VertexProvider(GeminiProvider):
    """Gemini on Vertex AI.

    Extra keywords: ``project`` (else ``GOOGLE_CLOUD_PROJECT``), ``location`` (else
    ``GOOGLE_CLOUD_LOCATION``, default ``us-central1``), ``token_source`` (a :class:`TokenSource`;
    ADC by default), ``safety_level`` as for Gemini.
    """

    def __init__(
        self,
        *args: Any,
        project: str | None = None,
        location: str | None = None,
        token_source: TokenSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        env = os.environ
        self.project = project or env.get("GOOGLE_CLOUD_PROJECT") or env.get("CLOUDSDK_CORE_PROJECT")
        self.location = (
            location or env.get("GOOGLE_CLOUD_LOCATION") or env.get("GOOGLE_CLOUD_REGION") or "us-central1"
        )
        if not self.api_key:
            self.api_key = env.get("VERTEX_API_KEY") or None
        self._source = token_source
        self._tokens: TokenCache | None = None

    def endpoint(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = (
            "aiplatform.googleapis.com"
            if self.location == "global"
            else f"{self.location}-aiplatform.googleapis.com"
        )
        return f"https://{host}"

    def model_url(self, model: str, method: str) -> str:
        project = self.project or getattr(self._source, "project", None)
        if not project:
            raise ProviderUnavailableError(
                "Vertex AI needs a project: pass project= or set GOOGLE_CLOUD_PROJECT", self.name
            )
        name = model.rsplit("/", 1)[-1]
        where = f"projects/{quote(project, safe='')}/locations/{quote(self.location, safe='')}"
        return f"{self.endpoint()}/v1/{where}/publishers/google/models/{quote(name, safe='-._@')}:{method}"

    async def auth_headers(self) -> dict[str, str]:
        if self.api_key:
            return {"x-goog-api-key": self.api_key}
        if self._tokens is None:
            self._tokens = TokenCache(self._source or ADCTokenSource())
        token = await self._tokens.token()
        if self.project is None:
            self.project = getattr(self._tokens.source, "project", None)
        return {"authorization": f"Bearer {token}"}

    async def list_models(self) -> list[Any]:
        raise ProviderUnavailableError(
            "Vertex AI does not list its publisher models through this API; "
            "name a Gemini model (e.g. gemini-2.5-flash)",
            self.name,
        )


__all__ = ["ADCTokenSource", "TokenCache", "TokenSource", "VertexProvider"]
