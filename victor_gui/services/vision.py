# baseline until att-media merges
"""Whether a model takes images, and which configured models do.

Baseline: asks the provider's capabilities (the table, or the server's
own word where the provider learned it); att-media's module (llama.cpp /props modalities,
Ollama capabilities, the alternatives offered) replaces it whole.
"""

from __future__ import annotations

from victor_gui.errors import ModelTakesNoImagesError, ProviderError
from victor_gui.providers.base import BaseProvider


async def check_images(provider: BaseProvider, model: str) -> None:
    """Return when ``model`` on ``provider`` takes images; else raise
    :class:`ModelTakesNoImagesError` (before any request is sent)."""
    if provider.supports_vision(model):
        return
    show = getattr(provider, "show_model", None)  # Ollama: the server's own capabilities
    if show is not None:
        try:
            await show(model)
        except ProviderError:
            pass
        if provider.supports_vision(model):
            return
    raise ModelTakesNoImagesError(
        f"{model} does not take images; remove them or choose a model that does.", alternatives=())
