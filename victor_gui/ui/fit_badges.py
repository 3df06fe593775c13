"""The fit badge's words and colours, and a button sized to its text: the small parts that the
first-run offer shares with the model manager, the Hub browser and the downloads window.

Kept apart so the first-run offer (shown at start when no server answers) does not import those
windows to draw one badge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from victor_gui.ui.theme import current_tokens

if TYPE_CHECKING:
    from PySide6.QtWidgets import QPushButton

    from victor_gui.services.hf_fit import QuantFit
    from victor_gui.sizing.fit import FitResult

BADGE = {  # verdict -> (colour, words)
    "full": ("#187a33", "Full GPU offload"),  # white on it ≥ 4.5:1, as the dashboard badges
    "partial": ("#9a5b00", "Partial offload"),
    "cpu": ("#44546a", "CPU only"),
    "no_fit": ("#b00020", "Won't fit"),
}
BADGE_STYLE = "background: {bg}; color: {fg}; border-radius: 4px; padding: 2px 8px; font-weight: bold;"


def badge_text(fit: FitResult, has_gpu: bool = True) -> str:
    """Full / partial N of M / CPU only / won't fit."""
    words = BADGE[fit.verdict][1]
    if fit.verdict == "partial":
        return f"{words}: {fit.n_gpu_layers} of {fit.n_layers_total} layers on GPU"
    if fit.verdict == "cpu" and not has_gpu:
        return "CPU only (no GPU found)"
    return words


def quant_badge(fit: QuantFit, has_gpu: bool, gated: bool = False) -> tuple[str, str, str]:
    """(text, background, text colour) of a quant's fit badge."""
    t = current_tokens()
    if fit.error:
        return ("Needs token" if gated else "Unreadable"), t.card, t.error_text
    if fit.fit is None:
        return "Reading header…", t.card, t.muted_text
    return badge_text(fit.fit, has_gpu), BADGE[fit.fit.verdict][0], "#ffffff"


def fit_text(button: QPushButton) -> None:
    """Wide enough for its text and icon (a squeezed row cut "Download" to "Downloac")."""
    icon = button.iconSize().width() + 8 if not button.icon().isNull() else 0
    button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + icon + 28)
