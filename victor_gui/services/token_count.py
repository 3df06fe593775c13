"""Token counts of attached text.

# baseline until att-docs merges: the documented estimate of :mod:`.context_trim` (4 characters
# a token, 10 % margin). att-docs owns this module (server tokenizers); its version wins.
"""

from __future__ import annotations

from victor_gui.services.context_trim import estimate_text_tokens


def estimate_document_tokens(text: str) -> int:
    """Estimated tokens of a document's text (an overestimate by design)."""
    return estimate_text_tokens(text)
