"""ProviderRegistry against the seed's provider table, and API key lookup order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from victor_gui.errors import ProviderError, ProviderNotFoundError, ProviderUnavailableError
from victor_gui.providers import keys
from victor_gui.providers.base import BaseProvider, CompletionResponse, Message, StreamChunk
from victor_gui.providers.catalog import PROTOCOLS, SPECS, find_spec
from victor_gui.providers.keys import resolve_api_key, set_secret_store
from victor_gui.providers.registry import ProviderRegistry

# The seed's "Supported Providers" table: primary name, then aliases.
SEED_TABLE: dict[str, tuple[str, ...]] = {
    "anthropic": (),
    "openai": (),
    "google": (),
    "xai": ("grok",),
    "azure": ("azure-openai",),
    "bedrock": ("aws",),
    "vertex": ("vertexai",),
    "deepseek": (),
    "mistral": (),
    "groqcloud": (),
    "together": (),
    "fireworks": (),
    "openrouter": (),
    "cerebras": (),
    "moonshot": ("kimi",),
    "zai": ("zhipuai", "zhipu"),
    "huggingface": ("hf",),
    "replicate": (),
    "ollama": (),
    "lmstudio": (),
    "vllm": (),
    "llamacpp": ("llama-cpp", "llama.cpp"),
}
ALL_NAMES = [(primary, name) for primary, aliases in SEED_TABLE.items() for name in (primary, *aliases)]


def test_list_providers_is_the_seed_table() -> None:
    assert ProviderRegistry.list_providers() == sorted(SEED_TABLE)
    for primary, aliases in SEED_TABLE.items():
        # Extra aliases (e.g. "groq") are allowed; the seed's must all be there.
        assert set(aliases) <= set(ProviderRegistry.aliases(primary)), primary


@pytest.mark.parametrize(("primary", "name"), ALL_NAMES, ids=[n for _, n in ALL_NAMES])
async def test_create_every_seed_name_and_alias(primary: str, name: str) -> None:
    spec = find_spec(name)
    assert spec is not None and spec.name == primary
    assert ProviderRegistry.canonical_name(name) == primary
    if PROTOCOLS[spec.protocol] is None:
        with pytest.raises(ProviderUnavailableError) as info:
            ProviderRegistry.create(name, api_key="sk-test-0123456789abcdef")
        assert spec.protocol in str(info.value) and "not available" in str(info.value)
        assert "yet" in str(info.value) and info.value.provider == primary
        return
    provider = ProviderRegistry.create(name, api_key="sk-test-0123456789abcdef")
    try:
        assert isinstance(provider, BaseProvider)
        assert provider.name == primary
    finally:
        await provider.close()


def test_unknown_name_is_typed() -> None:
    with pytest.raises(ProviderNotFoundError) as info:
        ProviderRegistry.create("no-such-provider")
    assert info.value.provider == "no-such-provider" and "anthropic" in str(info.value)
    assert not ProviderRegistry.is_registered("no-such-provider")
    with pytest.raises(ProviderNotFoundError):
        ProviderRegistry.get("")


class _EchoProvider(BaseProvider):
    """A minimal provider of one's own (no network: the registry is what is under test)."""

    @property
    def name(self) -> str:
        return "echo"

    async def chat(self, messages: list[Message], *, model: str, temperature: float = 0.7,
                   max_tokens: int = 4096, tools: Any = None, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(content=messages[-1].text, model=model)

    async def stream(self, messages: list[Message], *, model: str, temperature: float = 0.7,
                     max_tokens: int = 4096, tools: Any = None, **kwargs: Any) -> AsyncIterator[StreamChunk]:
        yield StreamChunk(content=messages[-1].text, is_final=True, stop_reason="stop")


@pytest.fixture
def echo_registered() -> Iterator[None]:
    ProviderRegistry.register("Echo", _EchoProvider, aliases=("parrot", "ECHO-2"))
    yield
    ProviderRegistry.unregister("echo")


@pytest.mark.usefixtures("echo_registered")
async def test_register_with_aliases_case_insensitive() -> None:
    assert "echo" in ProviderRegistry.list_providers()
    for name in ("echo", "ECHO", " Echo ", "parrot", "Parrot", "echo-2"):
        provider = ProviderRegistry.create(name, api_key="k")
        assert isinstance(provider, _EchoProvider)
        reply = await provider.chat([Message(role="user", content="hi")], model="m")
        assert reply.content == "hi"
    assert ProviderRegistry.canonical_name("PARROT") == "echo"
    assert set(ProviderRegistry.aliases("echo")) == {"parrot", "echo-2"}
    assert ProviderRegistry.get("parrot") is _EchoProvider
    assert ProviderRegistry.spec("echo") is None


def test_unregister_removes_name_and_aliases() -> None:
    ProviderRegistry.register("temp", _EchoProvider, aliases=("tmp",))
    ProviderRegistry.unregister("TEMP")
    assert not ProviderRegistry.is_registered("temp") and not ProviderRegistry.is_registered("tmp")
    assert ProviderRegistry.list_providers() == sorted(SEED_TABLE)


def test_registered_class_overrides_a_builtin_name() -> None:
    ProviderRegistry.register("ollama", _EchoProvider)
    try:
        assert isinstance(ProviderRegistry.create("OLLAMA"), _EchoProvider)
    finally:
        ProviderRegistry.unregister("ollama")
    assert ProviderRegistry.spec("ollama") is find_spec("ollama")


def test_builtin_names_are_case_insensitive() -> None:
    assert ProviderRegistry.canonical_name("GroqCloud") == "groqcloud"
    assert ProviderRegistry.canonical_name("Llama.CPP") == "llamacpp"
    assert ProviderRegistry.canonical_name("groq") == "groqcloud"  # an extra alias


# -- API keys ------------------------------------------------------------------------------------


class _Store:
    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.asked: list[str] = []

    def get_key(self, provider: str) -> str | None:
        self.asked.append(provider)
        return self.keys.get(provider)


@pytest.fixture
def store() -> Iterator[_Store]:
    s = _Store({"groqcloud": "stored-groq-key-1"})
    set_secret_store(s)
    yield s
    set_secret_store(None)


def _spec(name: str) -> Any:
    spec = find_spec(name)
    assert spec is not None
    return spec


def test_key_order_explicit_store_profile_env_seed_env(store: _Store) -> None:
    groq = _spec("groq")
    env = {"MY_GROQ": "profile-env-key-2", "GROQ_API_KEY": "seed-env-key-3", "GROQCLOUD_API_KEY": "k4-other"}
    assert resolve_api_key(groq, "explicit-key-0", api_key_env="MY_GROQ", env=env) == (
        "explicit-key-0", "explicit")
    assert resolve_api_key(groq, None, api_key_env="MY_GROQ", env=env) == ("stored-groq-key-1", "keyring")
    assert store.asked == ["groqcloud"]  # asked under the canonical name
    store.keys.clear()
    assert resolve_api_key(groq, None, api_key_env="MY_GROQ", env=env) == (
        "profile-env-key-2", "env:MY_GROQ")
    assert resolve_api_key(groq, None, env=env) == ("seed-env-key-3", "env:GROQ_API_KEY")
    assert resolve_api_key(groq, None, env={"GROQCLOUD_API_KEY": "k4-other"}) == (
        "k4-other", "env:GROQCLOUD_API_KEY")
    assert resolve_api_key(groq, None, api_key_env="UNSET_VAR", env={}) == (None, None)


def test_seed_env_var_pairs() -> None:
    hf = _spec("hf")
    assert resolve_api_key(hf, env={"HF_API_KEY": "hf-a-123456", "HF_TOKEN": "hf-b-123456"})[0] == (
        "hf-a-123456")
    assert resolve_api_key(hf, env={"HF_TOKEN": "hf-b-123456"}) == ("hf-b-123456", "env:HF_TOKEN")
    assert resolve_api_key(_spec("zhipu"), env={"ZHIPUAI_API_KEY": "zz-123456"})[0] == "zz-123456"
    assert resolve_api_key(_spec("anthropic"), env={"ANTHROPIC_API_KEY": "a-123456"})[0] == "a-123456"
    # Empty values count as unset.
    assert resolve_api_key(_spec("openai"), env={"OPENAI_API_KEY": ""}) == (None, None)


def test_found_keys_are_redacted_from_errors(store: _Store) -> None:
    # Shapes no pattern knows: only registration can hide them.
    store.keys["openai"] = "plainstoredsecret77"
    key, _ = resolve_api_key(_spec("openai"))
    env_key, _ = resolve_api_key(_spec("mistral"), env={"MISTRAL_API_KEY": "plainenvsecret88"})
    error = ProviderError(f"upstream said: bad key {key} / {env_key}", "openai")
    assert key not in str(error) and env_key not in str(error)
    assert str(error).count("***") == 2


def test_key_hint_names_the_variables() -> None:
    assert "GROQ_API_KEY or GROQCLOUD_API_KEY" in keys.key_hint(_spec("groqcloud"))


def test_every_catalog_spec_is_in_the_seed_table() -> None:
    assert {s.name for s in SPECS} == set(SEED_TABLE)


def test_protocol_module_that_cannot_be_imported_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Data, not code, is swapped: the catalog row points at a module that does not exist.
    monkeypatch.setitem(PROTOCOLS, "anthropic", "victor_gui.providers.protocols.no_such_module:Nope")
    with pytest.raises(ProviderUnavailableError) as info:
        ProviderRegistry.create("anthropic")
    assert "no_such_module" in str(info.value) and info.value.provider == "anthropic"
    assert isinstance(info.value.raw_error, ImportError)
