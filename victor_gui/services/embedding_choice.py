"""Which embedding model retrieval uses: the setting ``attachments.embedding``, else a local default.

The default, first found wins (local first: the document never leaves the machine):

1. the local servers in catalog order (Ollama, LM Studio, vLLM, llama.cpp) that answer and list
   a model whose name says it embeds (:func:`~victor_gui.providers.embeddings.looks_like_embedding_model`);
   on Ollama ``nomic-embed-text`` is preferred when several are pulled (the most pulled
   embedding model, 768 numbers, 2k context);
2. the chat's own llama-server: the model it serves embeds too when the server was started with
   ``--embeddings`` (if not, the first embedding call says so and how to fix it);
3. nothing: :class:`~victor_gui.errors.EmbeddingServerError` saying what to install.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import EmbeddingServerError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.embeddings import Embedder, embedder_for, looks_like_embedding_model

PREFERRED = ("nomic-embed-text", "nomic-embed-text:latest")
LIST_WAIT_S = 3.0


@dataclass(frozen=True)
class EmbeddingPick:
    """The embedder chosen and why (shown in the transcript's note)."""

    embedder: Embedder
    why: str  # "setting", "local default", "chat's llama-server"


async def _embedding_models(provider: BaseProvider) -> list[str]:
    try:
        async with asyncio.timeout(LIST_WAIT_S):
            listed = await provider.list_models()
    except (TimeoutError, ProviderError, NotImplementedError):
        return []
    names = [m.id for m in listed if looks_like_embedding_model(m.id)]
    return sorted(names, key=lambda n: (n not in PREFERRED, names.index(n)))


async def choose_embedder(setting: tuple[str, str] | None, providers: Sequence[BaseProvider],
                          chat_provider: BaseProvider | None = None) -> EmbeddingPick:
    """The embedder for ``setting`` (``(provider, model)``: one of ``providers`` by name), else
    the default of the module docstring from ``providers`` (the configured ones)."""
    by_name = {p.name: p for p in providers}
    if chat_provider is not None:
        by_name.setdefault(chat_provider.name, chat_provider)
    if setting is not None:
        name, model = setting
        provider = by_name.get(name)
        if provider is None:
            raise EmbeddingServerError(
                f"The embedding provider {name} (attachments.embedding) is not configured. Add it, "
                "or choose another embedding model in Settings.", name,
                fix="Add the provider or choose another embedding model.", model=model)
        return EmbeddingPick(embedder_for(provider, model), "setting")
    for provider in providers:
        spec = find_spec(provider.name)
        if spec is None or not spec.is_local:
            continue
        models = await _embedding_models(provider)
        if models:
            return EmbeddingPick(embedder_for(provider, models[0]), "local default")
    if chat_provider is not None:
        spec = find_spec(chat_provider.name)
        if spec is not None and spec.name == "llamacpp":
            listed: list[str] = []
            try:
                async with asyncio.timeout(LIST_WAIT_S):
                    listed = [m.id for m in await chat_provider.list_models()]
            except (TimeoutError, ProviderError, NotImplementedError):
                pass
            model = listed[0] if listed else "default"
            return EmbeddingPick(embedder_for(chat_provider, model), "chat's llama-server")
    fix = ("Pull an embedding model (ollama pull nomic-embed-text), or start llama-server with "
           "--embeddings, or set one in Settings (attachments.embedding).")
    raise EmbeddingServerError(f"No embedding model found on this machine's servers. {fix}", None, fix=fix)


def setting_of(settings: AttachmentSettings) -> tuple[str, str] | None:
    """``attachments.embedding`` as ``(provider, model)``, or None for the local default."""
    choice = settings.embedding
    return (choice.provider, choice.model) if choice is not None else None


def embedder_source(settings: AttachmentSettings, providers: Sequence[BaseProvider],
                    chat_provider: BaseProvider | None = None) -> Callable[[], Awaitable[Embedder]]:
    """The async function :func:`victor_gui.services.document_context.build` calls when it has
    to retrieve (and only then): the embedder of the setting, else of the local default."""
    async def pick() -> Embedder:
        return (await choose_embedder(setting_of(settings), providers, chat_provider)).embedder
    return pick


__all__ = ["EmbeddingPick", "choose_embedder", "embedder_source", "setting_of"]
