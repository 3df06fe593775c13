"""Every provider the seed names, declared as data.

A provider that speaks the OpenAI protocol is a row here (name, aliases, base URL, key variables,
quirks), not a class. ``protocol`` names the wire-protocol module that serves it; the registry
imports that module lazily on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Category = Literal["local", "cloud", "enterprise", "platform"]


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: how to reach it and what is special about it."""

    name: str
    display_name: str
    protocol: str
    category: Category
    default_base_url: str | None = None
    aliases: tuple[str, ...] = ()
    # Environment variables holding the key, in lookup order (the seed's table first).
    key_env_vars: tuple[str, ...] = ()
    # Environment variables naming the endpoint (local servers, Azure), in lookup order: the
    # first named is tried first. A name ending in ``_ENDPOINTS`` holds a comma list. Local
    # servers' rows are the one list discovery, the chat and the dashboard read these from.
    host_env_vars: tuple[str, ...] = ()
    needs_key: bool = True
    # Named behaviours the protocol module switches on; see victor_gui.providers.quirks.
    quirks: frozenset[str] = field(default_factory=frozenset)
    # Payload size the endpoint accepts, when it is known to be small (bytes).
    max_payload_bytes: int | None = None

    @property
    def is_local(self) -> bool:
        return self.category == "local"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def default_port(self) -> int | None:
        """The port of :attr:`default_base_url` (a local server's default port), if any."""
        if not self.default_base_url:
            return None
        parts = urlsplit(self.default_base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


def local_specs() -> tuple[ProviderSpec, ...]:
    """The local servers' rows, in catalog order (the order discovery and the picker use)."""
    return tuple(s for s in SPECS if s.is_local)


def _q(*names: str) -> frozenset[str]:
    return frozenset(names)


# fmt: off
SPECS: tuple[ProviderSpec, ...] = (
    # -- cloud, own wire protocols ------------------------------------------------------------
    ProviderSpec("anthropic", "Anthropic", "anthropic", "cloud", "https://api.anthropic.com",
                 key_env_vars=("ANTHROPIC_API_KEY",)),
    ProviderSpec("google", "Google AI (Gemini)", "gemini", "cloud",
                 "https://generativelanguage.googleapis.com",
                 key_env_vars=("GOOGLE_API_KEY", "GEMINI_API_KEY")),
    # -- cloud, OpenAI-compatible -------------------------------------------------------------
    ProviderSpec("openai", "OpenAI", "openai", "cloud", "https://api.openai.com/v1",
                 key_env_vars=("OPENAI_API_KEY",), quirks=_q("openai_reasoning_models")),
    ProviderSpec("xai", "xAI (Grok)", "openai", "cloud", "https://api.x.ai/v1", aliases=("grok",),
                 key_env_vars=("XAI_API_KEY",)),
    ProviderSpec("deepseek", "DeepSeek", "openai", "cloud", "https://api.deepseek.com/v1",
                 key_env_vars=("DEEPSEEK_API_KEY",), quirks=_q("deepseek_reasoner")),
    ProviderSpec("mistral", "Mistral", "openai", "cloud", "https://api.mistral.ai/v1",
                 key_env_vars=("MISTRAL_API_KEY",)),
    ProviderSpec("groqcloud", "Groq", "openai", "cloud", "https://api.groq.com/openai/v1",
                 aliases=("groq",), key_env_vars=("GROQ_API_KEY", "GROQCLOUD_API_KEY"),
                 quirks=_q("payload_trim"), max_payload_bytes=4 * 1024 * 1024),
    ProviderSpec("together", "Together AI", "openai", "cloud", "https://api.together.xyz/v1",
                 key_env_vars=("TOGETHER_API_KEY",)),
    ProviderSpec("fireworks", "Fireworks AI", "openai", "cloud", "https://api.fireworks.ai/inference/v1",
                 key_env_vars=("FIREWORKS_API_KEY",)),
    ProviderSpec("openrouter", "OpenRouter", "openai", "cloud", "https://openrouter.ai/api/v1",
                 key_env_vars=("OPENROUTER_API_KEY",)),
    ProviderSpec("cerebras", "Cerebras", "openai", "cloud", "https://api.cerebras.ai/v1",
                 key_env_vars=("CEREBRAS_API_KEY",)),
    ProviderSpec("moonshot", "Moonshot (Kimi)", "openai", "cloud", "https://api.moonshot.ai/v1",
                 aliases=("kimi",), key_env_vars=("MOONSHOT_API_KEY",)),
    ProviderSpec("zai", "Z.ai (ZhipuAI)", "openai", "cloud", "https://api.z.ai/api/paas/v4",
                 aliases=("zhipuai", "zhipu"), key_env_vars=("ZAI_API_KEY", "ZHIPUAI_API_KEY")),
    # -- enterprise ---------------------------------------------------------------------------
    ProviderSpec("azure", "Azure OpenAI", "azure", "enterprise", None, aliases=("azure-openai",),
                 key_env_vars=("AZURE_OPENAI_API_KEY",), host_env_vars=("AZURE_OPENAI_ENDPOINT",)),
    ProviderSpec("bedrock", "AWS Bedrock", "bedrock", "enterprise", None, aliases=("aws",),
                 needs_key=False),
    ProviderSpec("vertex", "Google Vertex AI", "vertex", "enterprise", None, aliases=("vertexai",),
                 needs_key=False),
    # -- platforms ----------------------------------------------------------------------------
    ProviderSpec("huggingface", "Hugging Face", "openai", "platform", "https://router.huggingface.co/v1",
                 aliases=("hf",), key_env_vars=("HF_API_KEY", "HF_TOKEN"), needs_key=False),
    ProviderSpec("replicate", "Replicate", "replicate", "platform", "https://api.replicate.com/v1",
                 key_env_vars=("REPLICATE_API_TOKEN",)),
    # -- local --------------------------------------------------------------------------------
    ProviderSpec("ollama", "Ollama", "ollama", "local", "http://127.0.0.1:11434",
                 host_env_vars=("OLLAMA_ENDPOINTS", "OLLAMA_HOST"), needs_key=False),
    ProviderSpec("lmstudio", "LM Studio", "openai", "local", "http://127.0.0.1:1234/v1",
                 host_env_vars=("VICTOR_LM_STUDIO_HOST", "LMSTUDIO_ENDPOINTS"), needs_key=False,
                 quirks=_q("think_tags", "lmstudio")),
    ProviderSpec("vllm", "vLLM", "openai", "local", "http://127.0.0.1:8000/v1",
                 host_env_vars=("VICTOR_VLLM_HOST",), key_env_vars=("VLLM_API_KEY",), needs_key=False,
                 quirks=_q("think_tags")),
    ProviderSpec("llamacpp", "llama.cpp", "openai", "local", "http://127.0.0.1:8080/v1",
                 aliases=("llama-cpp", "llama.cpp"), host_env_vars=("VICTOR_LLAMACPP_HOST",),
                 key_env_vars=("LLAMA_API_KEY",), needs_key=False, quirks=_q("think_tags", "llamacpp")),
)
# fmt: on

# Wire-protocol modules, imported on first use. A protocol mapped to None is named by the seed
# but not built yet: creating one of its providers raises ProviderUnavailableError.
PROTOCOLS: dict[str, str | None] = {
    "openai": "victor_gui.providers.protocols.openai_compat:OpenAICompatProvider",
    "ollama": "victor_gui.providers.protocols.ollama:OllamaProvider",
    "anthropic": "victor_gui.providers.protocols.anthropic:AnthropicProvider",
    "gemini": "victor_gui.providers.protocols.gemini:GeminiProvider",
    "vertex": "victor_gui.providers.protocols.vertex:VertexProvider",
    "azure": "victor_gui.providers.protocols.azure:AzureOpenAIProvider",
    "bedrock": "victor_gui.providers.protocols.bedrock:BedrockProvider",
    "replicate": "victor_gui.providers.protocols.replicate:ReplicateProvider",
}

SPECS_BY_NAME: dict[str, ProviderSpec] = {s.name: s for s in SPECS}


# What a hand-added endpoint of a gateway kind is called (the four servers' kinds are catalog rows).
GATEWAY_KIND_NAMES: dict[str, str] = {
    "openai-compatible": "OpenAI-compatible",
    "anthropic-compatible": "Anthropic-compatible",
}


def display_name(name: str) -> str:
    """What people call a provider or an endpoint kind ("llama.cpp", "LM Studio",
    "OpenAI-compatible"), never the internal id; a name nobody declared is shown as given."""
    spec = find_spec(name)
    if spec is not None:
        return spec.display_name
    return GATEWAY_KIND_NAMES.get(name, name)


def find_spec(name: str) -> ProviderSpec | None:
    """The spec registered under ``name`` or one of its aliases (case-insensitive)."""
    key = name.strip().lower()
    for spec in SPECS:
        if key in spec.names:
            return spec
    return None
