"""Whether a model takes images, asked before anything is sent.

# baseline until att-media merges: the provider's own answer (the capability table, what
# Ollama's ``/api/show`` said), after asking a llama-server its ``/props`` modalities (the
# server's word beats the table: a GGUF with a projector takes images whatever its name).
# att-media owns this module (and which models do); its version wins at merge.
"""

from __future__ import annotations

import base64

from victor_gui.providers.base import BaseProvider
from victor_gui.providers.types import ImagePart, Message

# The smallest PNG (1×1): only to make a llama-server provider ask ``/props`` (never sent).
_PROBE = ImagePart(data=base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")).decode())


async def takes_images(provider: BaseProvider, model: str) -> bool:
    """Whether ``model`` on ``provider`` takes images (a llama-server is asked first)."""
    learn = getattr(provider, "_learn_server_vision", None)
    if learn is not None:
        await learn([Message(role="user", content=[_PROBE])])
    return provider.supports_vision(model)
