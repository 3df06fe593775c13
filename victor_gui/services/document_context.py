# baseline until att-rag merges
"""For one question, the text the attached documents add to the request: whole when they fit
the model's real window with room for the reply, else the best chunks retrieved.

Baseline: always the whole text (``mode="whole"``, no sources); att-rag's
module (token counts against the loaded window, retrieval with the user's embedding model,
sources) replaces it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from victor_gui.services.attachment_types import ConvertedDocument, DocumentContext, DocumentMode


async def build(documents: Sequence[ConvertedDocument], question: str, *, mode: DocumentMode = "auto",
                **context: Any) -> DocumentContext:
    """The documents' text for ``question`` (``context``: the provider, model and window, for
    the deciding version)."""
    if not documents:
        return DocumentContext("", "none")
    blocks = [f"<document name=\"{d.name}\">\n{d.text}\n</document>" for d in documents]
    return DocumentContext("\n\n".join(blocks), "whole")
