"""Slash commands typed in the chat input: ``/provider NAME [--model M]``, ``/model M``, ...

This module only parses and describes them (pure functions, no I/O); the window runs them
through the same paths as its drop-downs (``ui/chat_slash.py``). A line that starts with one
``/`` is a command; ``//text`` sends ``/text`` as a message (a path, a regex). A command that
is unknown or badly formed gives a :class:`SlashProblem`: the window shows its text and keeps
what was typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # the window imports this module at start-up: the store's modules load later
    import datetime as dt

    from victor_gui.storage.usage import UsageRow


# NamedTuples rather than dataclasses: the window imports this module before its first paint.
class CommandInfo(NamedTuple):
    """One command as the completion list and ``/help`` show it."""

    name: str
    usage: str
    summary: str
    needs_arg: bool = False


COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("provider", "/provider NAME [--model M]", "switch the chat to another provider",
                needs_arg=True),
    CommandInfo("model", "/model M", "switch the chat to another model", needs_arg=True),
    CommandInfo("profile", "/profile NAME", "use a saved profile (/profile none leaves it)", needs_arg=True),
    CommandInfo("system", "/system TEXT", "set this chat's system prompt (/system alone clears it)"),
    CommandInfo("usage", "/usage", "tokens and cost: this chat, today, by provider"),
    CommandInfo("clear", "/clear", "start a new, empty chat (this one stays in the list)"),
    CommandInfo("export", "/export [md|json] [PATH]", "export this chat"),
    CommandInfo("help", "/help", "list the commands"),
)
BY_NAME: dict[str, CommandInfo] = {c.name: c for c in COMMANDS}


class SlashCommand(NamedTuple):
    """A parsed command: its name, the rest of the line, and ``--option value`` pairs."""

    name: str
    arg: str = ""
    options: dict[str, str] = {}  # shared default, never mutated: parse() builds a new dict


class SlashProblem(NamedTuple):
    """Why a line is not a command that can run; shown inline, the text is kept."""

    message: str


def is_command(text: str) -> bool:
    """Whether ``text`` is a command line (``//`` escapes a message that starts with ``/``)."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def unescape(text: str) -> str:
    """A message typed as ``//text`` is sent as ``/text``."""
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


def parse(text: str) -> SlashCommand | SlashProblem:
    """Parse one command line (see the module docstring)."""
    line = text.strip()
    head, _, rest = line[1:].partition(" ")
    name = head.strip().lower()
    info = BY_NAME.get(name)
    if info is None:
        near = [c.usage for c in COMMANDS if c.name.startswith(name[:1])] if name else []
        hint = f" Did you mean {' or '.join(near)}?" if near else ""
        return SlashProblem(f"Unknown command /{head}.{hint} /help lists the commands.")
    rest = rest.strip()
    options: dict[str, str] = {}
    if name == "provider":
        import shlex

        try:
            words = shlex.split(rest)
        except ValueError as exc:
            return SlashProblem(f"{info.usage}: {exc}")
        positional: list[str] = []
        index = 0
        while index < len(words):
            word = words[index]
            if word.startswith("--"):
                key = word[2:]
                if key != "model" or index + 1 >= len(words):
                    return SlashProblem(f"Usage: {info.usage}")
                options[key] = words[index + 1]
                index += 2
                continue
            positional.append(word)
            index += 1
        rest = " ".join(positional)
    if info.needs_arg and not rest:
        return SlashProblem(f"Usage: {info.usage}")
    if name == "export" and rest:
        fmt, _, path = rest.partition(" ")
        if fmt.lower() in ("md", "json"):
            options["format"] = fmt.lower()
            rest = path.strip()
    return SlashCommand(name, rest, options)


def completions(text: str) -> list[CommandInfo]:
    """The commands whose name starts with what is typed after ``/`` (before any space)."""
    typed = text.lstrip()
    if not is_command(typed) or " " in typed:  # past the name: the list has done its job
        return []
    typed = typed[1:].lower()
    return [c for c in COMMANDS if c.name.startswith(typed)]


def help_text() -> str:
    """``/help``: one line per command."""
    lines = [f"{c.usage} — {c.summary}" for c in COMMANDS]
    lines.append("//text sends “/text” as a message.")
    return "\n".join(lines)


def _line(title: str, row: UsageRow | None) -> str:
    from victor_gui.services.usage import format_cost

    if row is None:
        return f"{title}: nothing yet"
    return (f"{title}: {row.replies} replies, {row.prompt_tokens:,} tokens in, "
            f"{row.completion_tokens:,} out, {format_cost(row)}")


def usage_lines(chat: UsageRow | None, today: UsageRow | None, by_provider: list[UsageRow],
                day: dt.date | None = None) -> str:
    """``/usage``: this chat, today, and today by provider."""
    import datetime as dt

    when = (day or dt.date.today()).isoformat()
    lines = [_line("This chat", chat), _line(f"Today ({when})", today)]
    lines += [_line(f"  {row.label}", row) for row in by_provider]
    return "\n".join(lines)


__all__ = ["BY_NAME", "COMMANDS", "CommandInfo", "SlashCommand", "SlashProblem", "completions", "help_text",
           "is_command", "parse", "unescape", "usage_lines"]
