"""The app's line icons: small bundled SVGs (resources/icons/, 24×24, stroke 2, round caps) drawn
in the colours of the theme in force.

``icon(name, role)`` gives a :class:`QIcon` in the role's colour (``button``: the button text;
``muted``: the captions' grey, for the small icon-only actions on messages and the chrome;
``primary``: the text on the accent colour) with a Disabled pixmap in the disabled text colour,
so a disabled Stop reads as disabled in both themes. :func:`set_icon` puts one on a button or an
action and remembers its name and role (as Qt properties), so :func:`retint`, which the theme
calls on every switch (``theme.THEME_HOOKS``), repaints every icon in the new colours.

Why bundled SVGs and not qtawesome: importing qtawesome took 250-390 ms here, more than a bare
window's whole launch. An SVG source is a few hundred bytes, read once when first needed and
drawn by Qt's own svg image plugin (already loaded for the paper clip); each (name, role,
theme, scale) is drawn once and cached.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractButton, QApplication, QMenu, QWidget

from victor_gui.ui.theme import THEME_HOOKS, Tokens, current_tokens, resources_folder

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from PySide6.QtWidgets import QLineEdit

# The role's colour token, and the surfaces an icon of that role is drawn on (tests/ui/
# test_icons.py holds every pair to WCAG's 3:1 for non-text contrast).
ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "button": ("button_text", ("button", "button_hover", "window", "base")),
    "muted": ("muted_text", ("transcript", "user_bubble", "assistant_bubble", "window", "sidebar",
                             "base", "button")),
    "primary": ("accent_text", ("accent",)),
}
# The size drawn unless a button asks for another (logical px): buttons' and menus' icon size.
DEFAULT_SIZE = 16
# The Qt properties that say which icon a widget or action shows (read by retint).
NAME_PROPERTY, ROLE_PROPERTY = "victorIcon", "victorIconRole"


@cache
def icons_folder() -> Path:
    """Where the bundled SVG sources are (resources/icons/, shipped as victor_gui.resources)."""
    return resources_folder() / "icons"


def icon_names() -> tuple[str, ...]:
    """Every bundled icon's name, sorted."""
    return tuple(sorted(p.stem for p in icons_folder().glob("*.svg")))


@cache
def svg_source(name: str) -> str:
    """The SVG text of icon ``name`` (``stroke="currentColor"``, 24×24). Read once: a few hundred
    bytes from the package, the way Qt reads an image file."""
    text = (icons_folder() / f"{name}.svg").read_text(encoding="utf-8")
    if 'stroke="currentColor"' not in text or 'width="24" height="24"' not in text:
        raise ValueError(f"icon {name!r}: not a 24×24 currentColor line icon")
    return text


def colour_for(role: str, tokens: Tokens | None = None) -> str:
    """The colour of a ``role`` icon in ``tokens`` (the theme in force by default)."""
    t = tokens if tokens is not None else current_tokens()
    return str(getattr(t, ROLES[role][0]))


@cache
def pixmap(name: str, size: int, colour: str, scale: float = 1.0) -> QPixmap:
    """Icon ``name`` as a ``size``-pixel (logical) pixmap drawn in ``colour`` at ``scale`` device
    pixels per logical pixel."""
    px = max(1, round(size * scale))
    svg = svg_source(name).replace('width="24" height="24"', f'width="{px}" height="{px}"', 1)
    svg = svg.replace("currentColor", colour)
    result = QPixmap()
    if not result.loadFromData(svg.encode(), "SVG"):
        raise ValueError(f"icon {name!r}: Qt could not draw it")
    result.setDevicePixelRatio(scale)
    return result


def _scale() -> float:
    screen = QGuiApplication.primaryScreen()
    return float(screen.devicePixelRatio()) if screen is not None else 1.0


@cache
def _icon(name: str, colour: str, disabled: str, size: int, scale: float) -> QIcon:
    # One size, the one the button draws (two renders, ~0.3 ms each): Qt scales a QIcon's
    # pixmap for other sizes, and a button that shows another size asks for it (set_icon).
    result = QIcon()
    result.addPixmap(pixmap(name, size, colour, scale), QIcon.Mode.Normal)
    result.addPixmap(pixmap(name, size, disabled, scale), QIcon.Mode.Disabled)
    return result


def icon(name: str, role: str = "button", tokens: Tokens | None = None, size: int = DEFAULT_SIZE) -> QIcon:
    """Icon ``name`` in the colour of ``role`` for ``tokens`` (the theme in force by default),
    ``size`` logical pixels, with its disabled look. Cached: asking again is a look-up."""
    t = tokens if tokens is not None else current_tokens()
    return _icon(name, colour_for(role, t), t.disabled_text, size, _scale())


def _size(target: QAbstractButton | QAction) -> int:
    return target.iconSize().width() if isinstance(target, QAbstractButton) else DEFAULT_SIZE


def set_icon(target: QAbstractButton | QAction, name: str, role: str = "button", *,
             later: bool = False) -> None:
    """Show icon ``name`` on ``target`` (at the button's icon size) and remember it, so a theme
    switch repaints it. ``later``: only remember it; a menu's icons are drawn when it first opens
    (:func:`follow_menu`), not at first paint."""
    if role not in ROLES:
        raise KeyError(role)
    target.setProperty(NAME_PROPERTY, name)
    target.setProperty(ROLE_PROPERTY, role)
    if not later:
        target.setIcon(icon(name, role, size=_size(target)))


def follow_menu(menu: QMenu) -> None:
    """Draw the remembered icons of ``menu``'s actions each time it opens (cached icons: a
    look-up each after the first)."""
    menu.aboutToShow.connect(lambda: _draw(menu.actions()))


def _draw(targets: Iterable[QAbstractButton | QAction]) -> int:
    count = 0
    for target in targets:
        name = target.property(NAME_PROPERTY)
        if name:
            target.setIcon(icon(str(name), str(target.property(ROLE_PROPERTY)), size=_size(target)))
            count += 1
    return count


def add_field_icon(field: QLineEdit, name: str, role: str = "muted") -> QAction:
    """A leading icon inside a line edit (the search field's magnifier), themed like the others."""
    from PySide6.QtWidgets import QLineEdit  # its enums are not built before the first paint

    action = field.addAction(icon(name, role), QLineEdit.ActionPosition.LeadingPosition)
    action.setProperty(NAME_PROPERTY, name)
    action.setProperty(ROLE_PROPERTY, role)
    return action


def _themed(app: QApplication) -> Iterator[QAbstractButton | QAction]:
    # An action sits in a menu and in the window: held here, so ids are not reused meanwhile.
    seen: dict[int, QWidget | QAction] = {}
    for widget in app.allWidgets():
        targets: list[QWidget | QAction] = [widget, *widget.actions()]
        for target in targets:
            if id(target) in seen or not isinstance(target, (QAbstractButton, QAction)):
                continue
            seen[id(target)] = target
            yield target


def retint(app: QApplication | None = None) -> int:
    """Repaint every remembered icon (buttons, menu and field actions) in the theme in force;
    returns how many. The theme calls it on every switch."""
    app = app if app is not None else QApplication.instance()  # type: ignore[assignment]
    if not isinstance(app, QApplication):
        return 0
    return _draw(_themed(app))


THEME_HOOKS.append(retint)


__all__ = [
    "DEFAULT_SIZE",
    "NAME_PROPERTY",
    "ROLES",
    "ROLE_PROPERTY",
    "add_field_icon",
    "colour_for",
    "follow_menu",
    "icon",
    "icon_names",
    "icons_folder",
    "pixmap",
    "retint",
    "set_icon",
    "svg_source",
]
