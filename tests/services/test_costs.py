"""Prices and /usage: hand-computed costs from the bundled table, the user file winning, a cloud
reply priced from the usage a real server reported, and totals per chat, provider and day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.openai_sims import running
from tests.servers.base import Script
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import Usage
from victor_gui.services import costs
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.usage import format_usage, usage_report, usage_summary
from victor_gui.storage import open_store


@pytest.fixture
def bundled_only() -> Iterator[costs.PriceTable]:
    """The bundled table alone (the machine's own user file must not change the figures)."""
    yield costs.load_prices_sync(None)
    costs.load_prices_sync(None)


def test_bundled_table_is_dated_and_covers_the_seed_models(bundled_only: costs.PriceTable) -> None:
    table = bundled_only
    assert table.as_of and dt.date.fromisoformat(table.as_of) and not table.errors
    for provider, model in [
        ("anthropic", "claude-opus-4-5-20251101"), ("anthropic", "claude-sonnet-4-20250514"),
        ("anthropic", "claude-3-5-sonnet-20241022"), ("anthropic", "claude-3-5-haiku-20241022"),
        ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("openai", "o1"), ("openai", "o1-mini"),
        ("google", "gemini-2.0-flash"), ("google", "gemini-1.5-pro"), ("google", "gemini-1.5-flash"),
        ("deepseek", "deepseek-chat"), ("deepseek", "deepseek-reasoner"), ("mistral", "mistral-large-latest"),
        ("mistral", "mistral-small-latest"), ("mistral", "codestral-latest"),
        ("groq", "llama-3.3-70b-versatile"), ("xai", "grok-4"), ("moonshot", "kimi-k2-0905-preview"),
    ]:
        assert table.price(provider, model) is not None, (provider, model)


def test_costs_by_hand(bundled_only: costs.PriceTable) -> None:
    # Sonnet 4: $3 in, $15 out, $0.30 cached. 6,000 fresh + 4,000 cached in, 2,000 out:
    # 6000*3 + 4000*0.30 + 2000*15 = 18,000 + 1,200 + 30,000 = 49,200 per million = $0.0492
    usage = Usage(prompt_tokens=10_000, completion_tokens=2_000, cached_tokens=4_000)
    assert costs.cost_of("anthropic", "claude-sonnet-4-20250514", usage) == pytest.approx(0.0492)
    # gpt-4o-mini: 1M in at $0.15 + 0.5M out at $0.60 = $0.45
    big = Usage(prompt_tokens=1_000_000, completion_tokens=500_000)
    assert costs.cost_of("openai", "gpt-4o-mini", big) == pytest.approx(0.45)
    # Groq (an alias) prices Llama 3.3 70B itself: 0.59 + 0.5 * 0.79
    assert costs.cost_of("groq", "llama-3.3-70b-versatile", big) == pytest.approx(0.985)
    # OpenRouter's vendor/model ids match the any-provider section by their last segment.
    assert costs.cost_of("openrouter", "anthropic/claude-3-5-haiku", big) == pytest.approx(0.8 + 2.0)
    # Opus 4.5 is not priced as Opus 4 (the more specific glob wins): 5 + 0.5 * 25
    assert costs.cost_of("anthropic", "claude-opus-4-5", big) == pytest.approx(17.5)
    assert costs.cost_of("ollama", "llama3.2", big) == 0.0  # local
    assert costs.cost_of("openai", "some-future-model", big) is None  # unknown, not 0


def test_user_prices_win(tmp_path: Path) -> None:
    user = tmp_path / "prices.yaml"
    user.write_text('prices:\n  openai:\n    "gpt-4o*": {input: 1.0, output: 2.0}\n'
                    '  "*":\n    "my-model": {input: 10, output: 20, cached_input: 1}\n', encoding="utf-8")
    try:
        table = costs.load_prices_sync(user)
        usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=500_000)
        # The user's broad "gpt-4o*" beats the bundled exact "gpt-4o": 0.5*1 + 0.5*1 (no cached
        # price: input rate) + 1*2
        assert table.cost("openai", "gpt-4o", usage) == pytest.approx(3.0)
        assert table.cost("together", "my-model", usage) == pytest.approx(5 + 0.5 + 20)
        assert table.cost("anthropic", "claude-3-5-haiku", usage) == pytest.approx(0.4 + 0.04 + 4.0)
        user.write_text("prices: [not, a, mapping]", encoding="utf-8")
        broken = costs.load_prices_sync(user)
        assert broken.errors and broken.cost("openai", "gpt-4o", usage) == pytest.approx(1.25 + 0.625 + 10)
    finally:
        costs.load_prices_sync(None)


async def test_cloud_reply_is_priced_and_usage_totals(tmp_path: Path, bundled_only: costs.PriceTable) -> None:
    store, _ = await open_store(tmp_path)
    chat_a = await store.create_conversation("Paris trip")
    chat_b = await store.create_conversation("Code review")
    # An OpenAI-protocol "cloud" provider pointed at a real server that reports usage with cached
    # tokens: 1,200 prompt (200 cached) and 300 completion tokens for gpt-4o ($2.50/$1.25/$10):
    # 1000*2.5 + 200*1.25 + 300*10 = 2,500 + 250 + 3,000 = 5,750 per million = $0.00575
    with running("vllm", cached_tokens=200) as vllm:
        provider = ProviderRegistry.create("openai", base_url=vllm.url + "/v1", api_key="sk-test-123456",
                                           retry_policy=RetryPolicy(max_retries=0))
        session = ChatSession(store, chat_a.id, provider, "gpt-4o", context_window=128_000)
        vllm.script(Script(text="Pack light.", prompt_tokens=1200, completion_tokens=300))
        result = await session.send("What to pack?")
        vllm.script(Script(text="Again.", prompt_tokens=1200, completion_tokens=300))
        untracked = ChatSession(store, chat_b.id, provider, "gpt-4o", track_costs=False,
                                context_window=128_000)
        off = await untracked.send("No costs here")
        await provider.close()
    reply = await store.get_message(result.message_id)
    assert reply is not None and reply.cached_tokens == 200
    assert reply.cost == pytest.approx(0.00575)
    unpriced = await store.get_message(off.message_id)
    assert unpriced is not None and unpriced.cost is None and unpriced.completion_tokens == 300

    # Two more replies on fixed days: yesterday (chat B, anthropic) and today (chat A, ollama).
    today = dt.datetime.now().replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = today - dt.timedelta(days=1)
    await store.add_message(chat_b.id, "assistant", "lgtm", provider="anthropic", model="claude-sonnet-4",
                            usage=Usage(prompt_tokens=1000, completion_tokens=100), cost=0.0045,
                            created=yesterday.timestamp())
    await store.add_message(chat_a.id, "assistant", "local", provider="ollama", model="llama3.2",
                            usage=Usage(prompt_tokens=50, completion_tokens=5), cost=0.0,
                            created=today.timestamp())
    await store.add_message(chat_a.id, "note", "Switched ...", meta={"kind": "switch"})

    by_chat = {r.label: r for r in await usage_summary(store, group_by="chat")}
    assert by_chat["Paris trip"].replies == 2 and by_chat["Paris trip"].cost == pytest.approx(0.00575)
    assert by_chat["Code review"].cost == pytest.approx(0.0045) and by_chat["Code review"].uncosted == 1
    by_provider = {r.key: r for r in await usage_summary(store, group_by="provider")}
    assert set(by_provider) == {"openai", "anthropic", "ollama"}
    assert by_provider["openai"].prompt_tokens == 2400 and by_provider["openai"].completion_tokens == 600
    assert by_provider["openai"].cached_tokens == 400 and by_provider["openai"].uncosted == 1
    assert by_provider["ollama"].cost == 0.0
    by_day = {r.key: r for r in await usage_summary(store, group_by="day")}
    assert by_day[yesterday.date().isoformat()].cost == pytest.approx(0.0045)
    since_today = await usage_summary(store, group_by="all", since=today.date())
    assert since_today[0].replies == 3 and since_today[0].cost == pytest.approx(0.00575)
    one_chat = await usage_summary(store, group_by="provider", conversation_id=chat_b.id)
    assert {r.key for r in one_chat} == {"openai", "anthropic"}
    report = await usage_report(store)
    assert report.total is not None and report.total.replies == 4
    assert report.total.cost == pytest.approx(0.01025)
    text = format_usage(report)
    assert "all: 4 replies, 3450 in (400 cached), 705 out, $0.0102 (+1 without a price)" in text
    assert "Paris trip: 2 replies" in text
    await store.close()


def test_a_user_prices_file_is_read_with_the_config_bounds(tmp_path: Path) -> None:
    """prices.yaml is a config file too: an alias bomb or an oversized file is refused with its
    reason (issue 16), and the bundled prices still apply."""
    from tests.config.test_config_bounds import alias_bomb
    from victor_gui.config.yaml_io import MAX_CONFIG_BYTES

    user = tmp_path / "prices.yaml"
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    try:
        user.write_text("\n".join([*alias_bomb(8), "prices: {}", "junk: *a8"]) + "\n", encoding="utf-8")
        bombed = costs.load_prices_sync(user)
        assert bombed.errors and "aliases" in str(bombed.errors[0])
        assert bombed.cost("openai", "gpt-4o", usage) == pytest.approx(2.5 + 10)
        user.write_text("prices: {}\n" + "#" * (MAX_CONFIG_BYTES + 10), encoding="utf-8")
        huge = costs.load_prices_sync(user)
        assert huge.errors and "larger than" in str(huge.errors[0])
    finally:
        costs.load_prices_sync(None)
