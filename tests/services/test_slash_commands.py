"""Parsing of the chat input's slash commands (the window's part is tests/ui/test_chat_slash.py)."""

from __future__ import annotations

import datetime as dt

from victor_gui.services.slash_commands import (
    COMMANDS,
    SlashCommand,
    SlashProblem,
    completions,
    help_text,
    is_command,
    parse,
    unescape,
    usage_lines,
)
from victor_gui.storage.usage import UsageRow


def test_each_command_parses() -> None:
    assert parse("/provider openai --model gpt-4o") == SlashCommand("provider", "openai", {"model": "gpt-4o"})
    assert parse("/provider --model m lmstudio") == SlashCommand("provider", "lmstudio", {"model": "m"})
    assert parse("/provider 'Desk box'") == SlashCommand("provider", "Desk box")
    assert parse("/model  qwen3:8b ") == SlashCommand("model", "qwen3:8b")
    assert parse("/profile fast") == SlashCommand("profile", "fast")
    assert parse("/system Be brief.  Very.") == SlashCommand("system", "Be brief.  Very.")
    assert parse("/system") == SlashCommand("system", "")
    assert parse("/USAGE") == SlashCommand("usage")
    assert parse("/clear") == SlashCommand("clear")
    assert parse("/export json /tmp/a b.json") == SlashCommand("export", "/tmp/a b.json", {"format": "json"})
    assert parse("/export") == SlashCommand("export")
    assert parse("/help") == SlashCommand("help")


def test_problems_are_told_not_raised() -> None:
    unknown = parse("/frob x")
    assert isinstance(unknown, SlashProblem) and "Unknown command /frob" in unknown.message
    assert "/help" in unknown.message
    assert isinstance(parse("/model"), SlashProblem)
    assert parse("/provider x --model") == SlashProblem("Usage: /provider NAME [--model M]")
    assert parse("/provider x --temp 1") == SlashProblem("Usage: /provider NAME [--model M]")
    assert isinstance(parse("/provider 'open"), SlashProblem)


def test_what_is_a_command_and_the_escape() -> None:
    assert is_command("/model x") and is_command("  /help")
    assert not is_command("//etc/hosts") and not is_command("hello /model")
    assert unescape("//etc/hosts") == "/etc/hosts" and unescape("plain") == "plain"


def test_completions_follow_the_typed_name() -> None:
    assert [c.name for c in completions("/")] == [c.name for c in COMMANDS]
    assert [c.name for c in completions("/p")] == ["provider", "profile"]
    assert completions("/model ") == [] and completions("hello") == [] and completions("//x") == []
    assert all(c.usage in help_text() for c in COMMANDS)


def test_usage_lines_name_this_chat_today_and_each_provider() -> None:
    chat = UsageRow("1", "Chat", 2, 1200, 300, 0, 0.0123, 0)
    ollama = UsageRow("ollama", "ollama", 3, 50, 60, 0, None, 0)
    text = usage_lines(chat, chat, [ollama], dt.date(2026, 12, 7))
    assert text.splitlines() == [
        "This chat: 2 replies, 1,200 tokens in, 300 out, $0.0123",
        "Today (2026-12-07): 2 replies, 1,200 tokens in, 300 out, $0.0123",
        "  ollama: 3 replies, 50 tokens in, 60 out, $0",
    ]
    assert usage_lines(None, None, []).startswith("This chat: nothing yet")
