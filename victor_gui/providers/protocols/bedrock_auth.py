"""Where Bedrock's region and AWS credentials come from, and SigV4 signing, all through botocore.

botocore is the optional ``bedrock`` extra and is imported lazily: without it, a SigV4 request
fails with :class:`ProviderUnavailableError` naming ``pip install "victor_gui[bedrock]"`` (a
Bedrock API key, sent as a bearer token, needs no signing and works without it).

Credentials come from botocore's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, the shared credentials and config files with ``profile_name`` or
``AWS_PROFILE``, SSO, web identity, the container and instance metadata endpoints) unless a key
pair is given explicitly. The chain reads files and may call STS, SSO or IMDS, so resolving it, and
refreshing temporary credentials (botocore's ``RefreshableCredentials`` decides when), runs in a
worker thread; the credentials object is cached per provider. Signing itself is pure computation
(botocore's ``SigV4Auth`` over an ``AWSRequest`` copy of the httpx request) and runs on the loop.

Region, first found: the explicit ``region``, ``AWS_REGION``, the session's ``region`` setting
(``AWS_DEFAULT_REGION``, then the profile's ``region`` in the config file), else ``us-east-1``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from victor_gui.core.redact import register_secret
from victor_gui.errors import MissingAPIKeyError, ProviderAuthError, ProviderUnavailableError

DEFAULT_REGION = "us-east-1"
SIGNING_NAME = "bedrock"  # the runtime and control-plane APIs both sign as "bedrock"
INSTALL_HINT = 'pip install "victor_gui[bedrock]"'
# Only these request headers are signed: a proxy may rewrite the others (connection,
# accept-encoding, user-agent) without breaking the signature.
_SIGNED = ("content-type", "accept")


def _require_botocore(provider: str) -> Any:
    """The ``botocore`` package, or the typed error that says how to install it."""
    try:
        import botocore  # the package itself first, so a blocked import fails here
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.exceptions
        import botocore.session
    except ImportError as exc:
        raise ProviderUnavailableError(
            "AWS Bedrock with AWS credentials (access keys, profiles, SSO) needs botocore for SigV4 "
            f"signing: {INSTALL_HINT}. A Bedrock API key in AWS_BEARER_TOKEN_BEDROCK works without it.",
            provider,
            raw_error=exc,
        ) from exc
    return botocore


def _have_botocore() -> bool:
    try:
        import botocore.session  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


class AwsAuth:
    """Region, credentials and signing for one provider instance (see the module docstring)."""

    def __init__(
        self,
        provider: str,
        *,
        region: str | None = None,
        profile_name: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
    ) -> None:
        self.provider = provider
        self.profile_name = profile_name
        self._region = region
        self._explicit = (access_key, secret_key, session_token) if access_key and secret_key else None
        for secret in (secret_key, session_token):
            register_secret(secret)
        self._session: Any = None
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    # -- blocking parts, always run in a worker thread ------------------------------------------

    def _make_session(self) -> Any:
        if self._session is None:
            botocore = _require_botocore(self.provider)
            self._session = botocore.session.Session(profile=self.profile_name)
        return self._session

    def _find_region(self) -> str:
        found = os.environ.get("AWS_REGION")
        if not found and _have_botocore():
            found = self._guard(lambda: self._make_session().get_config_variable("region"))
        return found or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION

    def _find_credentials(self) -> Any:
        botocore = _require_botocore(self.provider)
        if self._explicit is not None:
            return botocore.credentials.Credentials(*self._explicit, method="explicit")
        found = self._guard(lambda: self._make_session().get_credentials())
        if found is None:
            raise MissingAPIKeyError(
                "No AWS credentials for Bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "configure a profile (AWS_PROFILE, ~/.aws/credentials, SSO), or set "
                "AWS_BEARER_TOKEN_BEDROCK to a Bedrock API key",
                self.provider,
            )
        return found

    def _guard(self, call: Any) -> Any:
        """Run a botocore call, turning its failures (unknown profile, expired SSO token, a
        refresh that STS refused) into a typed auth error."""
        botocore = _require_botocore(self.provider)
        try:
            return call()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise ProviderAuthError(
                f"AWS credentials could not be loaded: {exc}", self.provider, raw_error=exc
            ) from exc

    # -- the async API --------------------------------------------------------------------------

    async def region(self) -> str:
        """The region requests go to (resolved once, off the event loop)."""
        if self._region is None:
            self._region = await asyncio.to_thread(self._find_region)
        return self._region

    async def frozen_credentials(self) -> Any:
        """A consistent (access_key, secret_key, token) snapshot, refreshed when botocore says the
        temporary credentials are about to expire. Both steps may block, so both run in a thread."""
        async with self._lock:
            if self._credentials is None:
                self._credentials = await asyncio.to_thread(self._find_credentials)
            creds = self._credentials
        frozen = await asyncio.to_thread(self._guard, creds.get_frozen_credentials)
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return frozen

    async def require(self) -> None:
        """Fail before any I/O when SigV4 cannot be used (no botocore, no credentials)."""
        await self.frozen_credentials()

    async def sign(self, request: httpx.Request) -> None:
        """Add ``X-Amz-Date``, the session token of temporary credentials and ``Authorization``
        (botocore's SigV4) to a finished httpx request."""
        frozen = await self.frozen_credentials()  # first, so botocore is imported off the loop
        region = await self.region()
        botocore = _require_botocore(self.provider)
        headers = {name: request.headers[name] for name in _SIGNED if name in request.headers}
        # str(url) keeps the path exactly as httpx sends it (``%3A`` inside a model id); botocore
        # encodes it once more for the canonical request, as every AWS service but S3 expects.
        aws = botocore.awsrequest.AWSRequest(
            method=request.method, url=str(request.url), headers=headers, data=request.content
        )
        botocore.auth.SigV4Auth(frozen, SIGNING_NAME, region).add_auth(aws)
        for name, value in aws.headers.items():
            if name.lower() not in _SIGNED:
                request.headers[name] = value


__all__ = ["DEFAULT_REGION", "INSTALL_HINT", "SIGNING_NAME", "AwsAuth"]
