"""AWS Signature Version 4 for httpx requests, and where AWS credentials come from.

Hand-written (about sixty lines of the published algorithm) so Bedrock needs neither boto3 nor a
thread to iterate botocore's synchronous event stream; checked against AWS's own test vectors in
``tests/providers/test_bedrock.py``. Credentials are explicit, from the standard environment
variables, or (optional) from botocore's full chain (profiles, SSO, web identity) run in an
executor when botocore is installed.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    """An access key pair, with the session token of temporary credentials."""

    access_key: str
    secret_key: str
    session_token: str | None = None


def env_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``."""
    env = os.environ if env is None else env
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
    return None


def botocore_credentials(profile: str | None = None) -> Credentials | None:
    """Credentials from botocore's provider chain (blocking: run it in an executor).

    None when botocore is not installed or finds nothing.
    """
    try:
        import botocore.session
    except ImportError:
        return None
    session = botocore.session.Session(profile=profile)
    found = session.get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _canonical_query(url: httpx.URL) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in url.params.multi_items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign(
    request: httpx.Request,
    creds: Credentials,
    *,
    region: str,
    service: str,
    now: datetime.datetime | None = None,
) -> None:
    """Add ``x-amz-date``, the session token (temporary credentials) and ``Authorization``.

    The canonical URI is the path as sent, URI-encoded once more (every AWS service but S3
    signs the doubly-encoded path, so ``/model/a%3A0`` is signed as ``/model/a%253A0``).
    """
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    day = when[:8]
    body = request.content
    payload_hash = hashlib.sha256(body).hexdigest()
    request.headers["x-amz-date"] = when
    if creds.session_token:
        request.headers["x-amz-security-token"] = creds.session_token
    signed = {"host": request.url.netloc.decode("ascii")}
    for name, value in request.headers.items():
        low = name.lower()
        if low.startswith("x-amz-") or low == "content-type":
            signed[low] = " ".join(value.strip().split())
    names = sorted(signed)
    canonical = "\n".join(
        [
            request.method.upper(),
            quote(request.url.raw_path.split(b"?", 1)[0].decode("ascii") or "/", safe="/-_.~"),
            _canonical_query(request.url),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, when, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds.secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    request.headers["authorization"] = (
        f"{ALGORITHM} Credential={creds.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
