"""Bedrock's AWS side through botocore: the simulator checks real SigV4 signatures, credentials come
from the environment or a shared-credentials profile, the region from the AWS config, temporary
credentials refresh off the event loop, and a missing botocore is a typed, actionable error."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.providers.cloud_sims import clear_ambient_aws, posts
from tests.servers.base import SimServer
from tests.servers.bedrock import AwsKeys, expected_signature, make_server
from victor_gui.errors import MissingAPIKeyError, ProviderAuthError, ProviderUnavailableError
from victor_gui.providers.protocols.bedrock import BedrockProvider
from victor_gui.providers.protocols.bedrock_auth import AwsAuth
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message

KEYS = AwsKeys("AKIASIMULATOR0000002", "auth/test/secret/key/000000000000000000")
MODEL = "anthropic.claude-sim-v1:0"
HI = [Message(role="user", content="Hi")]


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_ambient_aws(monkeypatch)


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(credentials=KEYS) as srv:
        yield srv


def test_simulator_verifier_matches_aws_published_vector() -> None:
    # AWS's SigV4 test suite, "post-vanilla": the simulator's check computes real SigV4.
    sig = expected_signature(
        AwsKeys("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        method="POST",
        url="https://example.amazonaws.com/",
        headers={"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
        body=b"",
        amz_date="20150830T123600Z",
        region="us-east-1",
        service="service",
    )
    assert sig == "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"


async def test_signed_request_passes_and_a_tampered_copy_fails(server: SimServer) -> None:
    auth = AwsAuth("bedrock", region="eu-west-3", access_key=KEYS.access_key, secret_key=KEYS.secret_key)
    url = f"{server.url}/model/{MODEL.replace(':', '%3A')}/converse"
    body = b'{"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}'
    async with httpx.AsyncClient() as client:
        request = client.build_request(
            "POST", url, content=body, headers={"content-type": "application/json"}
        )
        await auth.sign(request)
        assert request.headers["authorization"].startswith(
            "AWS4-HMAC-SHA256 Credential=AKIASIMULATOR0000002/"
        )
        assert "/eu-west-3/bedrock/aws4_request" in request.headers["authorization"]
        assert (await client.send(request)).status_code == 200
        tampered = client.build_request(
            "POST", url, content=body.replace(b"Hi", b"Yo"), headers=dict(request.headers)
        )
        reply = await client.send(tampered)
        assert reply.status_code == 403
        assert reply.headers["x-amzn-errortype"].startswith("InvalidSignatureException")


async def test_env_credentials_go_through_botocore_chain(
    server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ca-central-1")
    provider = ProviderRegistry.create("bedrock", base_url=server.url)
    reply = await provider.chat(HI, model=MODEL)
    assert reply.content == "Hello from the simulator."
    assert "/ca-central-1/bedrock/" in posts(server)[0].headers["authorization"]
    await provider.close()


def _write_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: AwsKeys) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(
        "[default]\naws_access_key_id = AKIAWRONGDEFAULT0000\n"
        "aws_secret_access_key = wrong/default/secret\n\n"
        f"[dev]\naws_access_key_id = {keys.access_key}\naws_secret_access_key = {keys.secret_key}\n"
    )
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-west-2\n\n[profile dev]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))


@pytest.mark.parametrize("how", ["profile_name", "AWS_PROFILE"])
async def test_shared_credentials_profile_and_its_region(
    server: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    _write_profile(tmp_path, monkeypatch, KEYS)
    if how == "AWS_PROFILE":
        monkeypatch.setenv("AWS_PROFILE", "dev")
        provider = ProviderRegistry.create("bedrock", base_url=server.url)
    else:
        provider = ProviderRegistry.create("bedrock", base_url=server.url, profile_name="dev")
    await provider.chat(HI, model=MODEL)
    auth = posts(server)[0].headers["authorization"]
    assert f"Credential={KEYS.access_key}/" in auth and "/eu-central-1/bedrock/" in auth
    await provider.close()


async def test_region_precedence(server: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _write_profile(tmp_path, monkeypatch, KEYS)
    assert await AwsAuth("bedrock").region() == "us-west-2"  # the default profile's config
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert await AwsAuth("bedrock").region() == "sa-east-1"
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")
    assert await AwsAuth("bedrock").region() == "ap-northeast-1"
    assert await AwsAuth("bedrock", region="me-south-1").region() == "me-south-1"
    provider = ProviderRegistry.create("bedrock", region="eu-north-1")
    assert isinstance(provider, BedrockProvider)
    assert await provider.runtime_url() == "https://bedrock-runtime.eu-north-1.amazonaws.com"


async def test_unknown_profile_is_a_typed_auth_error(server: SimServer) -> None:
    provider = ProviderRegistry.create("bedrock", base_url=server.url, profile_name="nope")
    with pytest.raises(ProviderAuthError, match="nope"):
        await provider.chat(HI, model=MODEL)
    assert server.requests == []


async def test_credentials_resolve_and_refresh_off_the_event_loop() -> None:
    from botocore.credentials import RefreshableCredentials

    loop_thread = threading.get_ident()
    calls: list[int] = []

    def refresh() -> dict[str, str]:
        calls.append(threading.get_ident())
        n = len(calls)
        return {
            "access_key": f"AKIAREFRESH{n:09d}",
            "secret_key": f"refreshed/secret/{n:020d}",
            "token": f"token-{n:010d}",
            # Already inside the mandatory-refresh window: every use refreshes.
            "expiry_time": (datetime.now(UTC) + timedelta(seconds=30)).isoformat(),
        }

    auth = AwsAuth("bedrock", region="us-east-1")
    auth._credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    calls.clear()
    first = await auth.frozen_credentials()
    second = await auth.frozen_credentials()
    assert calls and loop_thread not in calls
    assert first.access_key != second.access_key and second.token is not None


async def test_missing_botocore_is_a_typed_error(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    provider = ProviderRegistry.create(
        "bedrock",
        base_url=server.url,
        aws_access_key_id=KEYS.access_key,
        aws_secret_access_key=KEYS.secret_key,
    )
    with pytest.raises(ProviderUnavailableError) as info:
        await provider.chat(HI, model=MODEL)
    assert 'pip install "victor_gui[bedrock]"' in info.value.message
    assert info.value.provider == "bedrock" and not info.value.retryable
    assert server.requests == []
    await provider.close()


async def test_bearer_key_needs_no_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    with make_server(credentials=KEYS, bearer="ABSKbedrockapikey0002") as server:
        provider = ProviderRegistry.create("bedrock", base_url=server.url, api_key="ABSKbedrockapikey0002")
        await provider.chat(HI, model=MODEL)
        assert posts(server)[0].headers["authorization"] == "Bearer ABSKbedrockapikey0002"
        await provider.close()


async def test_no_credentials_anywhere(server: SimServer) -> None:
    provider = ProviderRegistry.create("bedrock", base_url=server.url)
    with pytest.raises(MissingAPIKeyError, match="AWS_BEARER_TOKEN_BEDROCK"):
        await provider.chat(HI, model=MODEL)
    assert server.requests == []
