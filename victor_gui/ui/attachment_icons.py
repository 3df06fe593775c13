"""Small line icons for attachment chips (document, image, alert), drawn from the app's bundled
SVGs (:mod:`victor_gui.ui.icons`, resources/icons/) so they need no emoji font (a box on many
Linux desktops). Buttons use :func:`victor_gui.ui.icons.set_icon`, which follows the theme; the
chips keep their own fixed colours (a grey readable on both themes, red for an error)."""

from __future__ import annotations

from PySide6.QtGui import QIcon, QPixmap

from victor_gui.ui import icons

# A grey readable on the light and the dark theme alike.
ICON_GREY = "#7d8590"


def icon_pixmap(name: str, size: int = 24, color: str = ICON_GREY) -> QPixmap:
    """The icon ``name`` as a ``size``-pixel pixmap in ``color`` (cached)."""
    return icons.pixmap(name, size, color)


def icon(name: str, size: int = 24, color: str = ICON_GREY) -> QIcon:
    """The icon ``name`` for a button, in a fixed ``color``."""
    return QIcon(icon_pixmap(name, size, color))
