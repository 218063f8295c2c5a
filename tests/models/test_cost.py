"""Cost per call: hand-computed bills from the providers' per-million prices (as genai-prices
0.2.3 states them), each `Usage` built by our own adapter parser from a real usage object.

Every bill is written out as arithmetic: tokens x dollars per million tokens / 1e6. A price
that depends on the date or hour (DeepSeek's off-peak hours, a dated price change) is priced
at a fixed moment (`AT` and friends), so the tests do not depend on the clock.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from cli_process import run_python

from rlm_code.models import cost
from rlm_code.models.adapters._anthropic_wire import anthropic_usage
from rlm_code.models.adapters._gemini_wire import gemini_usage
from rlm_code.models.adapters.openai_compatible import usage_counts
from rlm_code.models.cost import price_usage
from rlm_code.models.providers.registry import PROVIDERS
from rlm_code.models.types import Usage

M = 1_000_000  # prices are dollars per million tokens
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # DeepSeek peak hours (00:30-16:30 UTC)
OFF_PEAK = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
EARLY_2026 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def openai(prompt: int, completion: int, cached: int | None = None, **extra: Any) -> Usage:
    """Usage from a chat-completions `usage` object (OpenAI, xAI, Fireworks, OpenRouter, ...):
    cached tokens inside `prompt_tokens`, reasoning inside `completion_tokens`."""
    body: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    if "reasoning" in extra:
        body["completion_tokens_details"] = {"reasoning_tokens": extra.pop("reasoning")}
    body["total_tokens"] = extra.pop("total", prompt + completion)
    body.update(extra)
    return usage_counts(body)


def deepseek(hit: int, miss: int, completion: int, reasoning: int | None = None) -> Usage:
    """Usage from DeepSeek's `usage`: cache hits and misses both inside `prompt_tokens`."""
    body: dict[str, Any] = {
        "prompt_tokens": hit + miss,
        "completion_tokens": completion,
        "total_tokens": hit + miss + completion,
        "prompt_tokens_details": {"cached_tokens": hit},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": miss,
    }
    if reasoning is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage_counts(body)


def anthropic(
    input_tokens: int,
    output: int,
    read: int = 0,
    write_5m: int = 0,
    write_1h: int | None = 0,
) -> Usage:
    """Usage from a Messages `usage` object: cache reads and writes outside `input_tokens`;
    `write_1h=None`: an older reply without the `cache_creation` breakdown."""
    body: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write_5m + (write_1h or 0),
    }
    if write_1h is not None:
        body["cache_creation"] = {
            "ephemeral_5m_input_tokens": write_5m,
            "ephemeral_1h_input_tokens": write_1h,
        }
    usage = anthropic_usage(body)
    assert usage is not None
    return usage


def gemini(prompt: int, candidates: int, cached: int | None = None, thoughts: int | None = None):
    """Usage from Gemini's `usage_metadata`: implicit cache hits inside `prompt_token_count`,
    thoughts apart from `candidates_token_count` (both billed as output)."""
    meta = SimpleNamespace(
        prompt_token_count=prompt,
        candidates_token_count=candidates,
        cached_content_token_count=cached,
        thoughts_token_count=thoughts,
        total_token_count=prompt + candidates + (thoughts or 0),
    )
    usage = gemini_usage(meta)
    assert usage is not None
    return usage


# (id, provider, model, usage, expected dollars, when)
BILLS: list[tuple[str, str, str, Usage, float, datetime]] = [
    # -- OpenAI: cached tokens are inside prompt_tokens; the adapter moves them out --------------
    ("gpt-4o cached", "openai", "gpt-4o", openai(1200, 300, cached=1024),
     (176 * 2.5 + 1024 * 1.25 + 300 * 10) / M, AT),
    ("gpt-4o-mini no details", "openai", "gpt-4o-mini", openai(10_000, 500),
     (10_000 * 0.15 + 500 * 0.6) / M, AT),
    ("gpt-5 reasoning", "openai", "gpt-5", openai(50_000, 8_000, cached=40_000, reasoning=6_000),
     (10_000 * 1.25 + 40_000 * 0.125 + 8_000 * 10) / M, AT),
    ("o4-mini reasoning", "openai", "o4-mini", openai(2_000, 3_000, cached=0, reasoning=2_500),
     (2_000 * 1.1 + 3_000 * 4.4) / M, AT),
    ("gpt-4.1 long prompt, untiered", "openai", "gpt-4.1", openai(300_000, 1_000, cached=200_000),
     (100_000 * 2 + 200_000 * 0.5 + 1_000 * 8) / M, AT),
    ("o3 after its 2025-06 price cut", "openai", "o3", openai(5_000, 2_000, cached=4_096),
     (904 * 2 + 4_096 * 0.5 + 2_000 * 8) / M, AT),
    # -- Anthropic: cache reads and writes outside input; 5-minute and 1-hour writes -------------
    ("sonnet-4.5 read + 5m write", "anthropic", "claude-sonnet-4-5-20250929",
     anthropic(1_000, 800, read=20_000, write_5m=5_000),
     (1_000 * 3 + 20_000 * 0.3 + 5_000 * 3.75 + 800 * 15) / M, AT),
    ("sonnet-4.5 1h write", "anthropic", "claude-sonnet-4-5", anthropic(500, 200, write_1h=10_000),
     (500 * 3 + 10_000 * 6 + 200 * 15) / M, AT),
    ("sonnet-4.5 5m and 1h writes", "anthropic", "claude-sonnet-4-5",
     anthropic(2_000, 1_000, write_5m=3_000, write_1h=5_000),
     (2_000 * 3 + 3_000 * 3.75 + 5_000 * 6 + 1_000 * 15) / M, AT),
    ("sonnet-4.5 over 200k with cache", "anthropic", "claude-sonnet-4-5",
     anthropic(50_000, 2_000, read=150_001),  # 200,001 prompt tokens: all at the long rate
     (50_000 * 6 + 150_001 * 0.6 + 2_000 * 22.5) / M, AT),
    ("haiku-4.5 every bucket", "anthropic", "claude-haiku-4-5",
     anthropic(3_000, 1_500, read=100_000, write_5m=1_000, write_1h=2_000),
     (3_000 * 1 + 100_000 * 0.1 + 1_000 * 1.25 + 2_000 * 2 + 1_500 * 5) / M, AT),
    ("opus-4.5 thinking in output", "anthropic", "claude-opus-4-5-20251101",
     anthropic(10_000, 4_000), (10_000 * 5 + 4_000 * 25) / M, AT),
    ("opus-4.6 flat since 2026-03-13", "anthropic", "claude-opus-4-6",
     anthropic(250_000, 1_000), (250_000 * 5 + 1_000 * 25) / M, AT),
    ("opus-4.6 long rate before", "anthropic", "claude-opus-4-6",
     anthropic(250_000, 1_000), (250_000 * 10 + 1_000 * 37.5) / M, EARLY_2026),
    ("sonnet-4 write without lifetime = 5m", "anthropic", "claude-sonnet-4-20250514",
     anthropic(100, 50, write_5m=4_000, write_1h=None), (100 * 3 + 4_000 * 3.75 + 50 * 15) / M, AT),
    # -- Gemini: thoughts billed as output, implicit cache reads, the >200k tier of 2.5 Pro ------
    ("2.5-flash thoughts + implicit cache", "gemini", "gemini-2.5-flash",
     gemini(10_000, 500, cached=6_000, thoughts=1_500),
     (4_000 * 0.3 + 6_000 * 0.03 + 2_000 * 2.5) / M, AT),
    ("2.5-pro under 200k", "gemini", "gemini-2.5-pro", gemini(100_000, 2_000, thoughts=3_000),
     (100_000 * 1.25 + 5_000 * 10) / M, AT),
    ("2.5-pro at exactly 200k: base", "gemini", "gemini-2.5-pro", gemini(200_000, 100),
     (200_000 * 1.25 + 100 * 10) / M, AT),
    ("2.5-pro over 200k", "gemini", "gemini-2.5-pro",
     gemini(250_000, 1_000, cached=50_000, thoughts=1_000),
     (200_000 * 2.5 + 50_000 * 0.25 + 2_000 * 15) / M, AT),
    ("3-pro-preview", "gemini", "gemini-3-pro-preview",
     gemini(20_000, 1_000, cached=10_000, thoughts=4_000),
     (10_000 * 2 + 10_000 * 0.2 + 5_000 * 12) / M, AT),
    ("2.0-flash, model path", "gemini", "models/gemini-2.0-flash", gemini(1_000, 100),
     (1_000 * 0.1 + 100 * 0.4) / M, AT),
    # -- DeepSeek: cache hit / miss, peak and off-peak hours ------------------------------------
    ("chat peak", "deepseek", "deepseek-chat", deepseek(8_000, 2_000, 1_000),
     (2_000 * 0.27 + 8_000 * 0.07 + 1_000 * 1.1) / M, AT),
    ("chat off-peak", "deepseek", "deepseek-chat", deepseek(8_000, 2_000, 1_000),
     (2_000 * 0.135 + 8_000 * 0.035 + 1_000 * 0.55) / M, OFF_PEAK),
    ("reasoner peak", "deepseek", "deepseek-reasoner", deepseek(0, 5_000, 4_000, reasoning=3_000),
     (5_000 * 0.55 + 4_000 * 2.19) / M, AT),
    ("R1 by hub name, off-peak", "deepseek", "deepseek-ai/DeepSeek-R1",
     deepseek(0, 1_000, 1_000), (1_000 * 0.135 + 1_000 * 0.55) / M, OFF_PEAK),
    # -- xAI: reasoning counted apart from completion_tokens (its total says so) ----------------
    ("grok-4 reasoning apart", "xai", "grok-4",
     openai(10_120, 1_499, cached=128, reasoning=2_809, total=14_428),
     (9_992 * 3 + 128 * 0.75 + (1_499 + 2_809) * 15) / M, AT),
    ("grok-3-mini reasoning apart", "xai", "grok-3-mini",
     openai(32, 9, reasoning=300, total=341), (32 * 0.3 + 309 * 0.5) / M, AT),
    ("grok-4.3 over its 199,999 tier", "xai", "grok-4.3",
     openai(250_000, 1_000, cached=100_000), (150_000 * 2.5 + 100_000 * 0.4 + 1_000 * 5) / M, AT),
    # -- Fireworks --------------------------------------------------------------------------------
    ("deepseek-v3p2 cached", "fireworks", "accounts/fireworks/models/deepseek-v3p2",
     openai(8_000, 700, cached=6_000), (2_000 * 0.56 + 6_000 * 0.28 + 700 * 1.68) / M, AT),
    ("llama-v3p1-8b", "fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct",
     openai(1_500, 500), (1_500 * 0.2 + 500 * 0.2) / M, AT),
    ("gpt-oss-120b after 2026-10-19", "fireworks", "accounts/fireworks/models/gpt-oss-120b",
     openai(10_000, 2_000, cached=8_000, reasoning=1_500),
     (2_000 * 0.15 + 8_000 * 0.015 + 2_000 * 0.6) / M, AT),
    ("kimi-k2p5", "fireworks", "accounts/fireworks/models/kimi-k2p5", openai(1_000, 100),
     (1_000 * 0.6 + 100 * 3) / M, AT),
    # -- OpenRouter without a reported cost: its own table ---------------------------------------
    ("openrouter gpt-4o", "openrouter", "openai/gpt-4o", openai(2_000, 100, cached=1_000),
     (1_000 * 2.5 + 1_000 * 1.25 + 100 * 10) / M, AT),
    ("openrouter BYOK fee only: table", "openrouter", "anthropic/claude-sonnet-4",
     openai(1_000, 100, cost=0.0002, is_byok=True), (1_000 * 3 + 100 * 15) / M, AT),
    # -- the other clouds -----------------------------------------------------------------------
    ("groq", "groq", "llama-3.3-70b-versatile", openai(1_000, 1_000), (590 + 790) / M, AT),
    ("mistral", "mistral", "mistral-large-2411", openai(1_000, 1_000), (2_000 + 6_000) / M, AT),
    ("perplexity + request fee", "perplexity", "sonar-pro", openai(1_000, 500),
     (1_000 * 3 + 500 * 15) / M + 14 / 1_000, AT),
    ("together", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", openai(1_000, 1_000),
     (880 + 880) / M, AT),
    ("moonshot", "moonshot", "moonshot-v1-8k", openai(1_000, 1_000), (200 + 2_000) / M, AT),
    ("cerebras", "cerebras", "llama-3.3-70b", openai(1_000, 1_000), (850 + 1_200) / M, AT),
]  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "model", "usage", "expected", "when"),
    [case[1:] for case in BILLS],
    ids=[case[0] for case in BILLS],
)
def test_hand_computed_bill(provider, model, usage, expected, when):
    usage = usage.for_call(provider, model)
    dollars, source = price_usage(usage, at=when)
    assert source == "price-table"
    assert dollars == pytest.approx(expected, rel=1e-3)


def test_there_are_at_least_thirty_bills_over_the_required_providers():
    assert len(BILLS) >= 30
    providers = {case[1] for case in BILLS}
    assert {"openai", "anthropic", "gemini", "deepseek", "xai", "fireworks"} <= providers


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a real OpenRouter usage object: `cost` is what the account was charged
        ({"prompt_tokens": 10_427, "completion_tokens": 264, "total_tokens": 10_691,
          "cost": 0.0033789, "is_byok": False,
          "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
          "cost_details": {"upstream_inference_cost": 0.0033789}}, 0.0033789),
        # a key of your own: OpenRouter's fee plus the provider's own charge
        ({"prompt_tokens": 1_000, "completion_tokens": 100, "cost": 0.0002, "is_byok": True,
          "cost_details": {"upstream_inference_cost": 0.0045}}, 0.0047),
        # xAI reports the cost in ticks of 1e-10 dollars
        ({"prompt_tokens": 10_120, "completion_tokens": 1_499, "total_tokens": 14_428,
          "completion_tokens_details": {"reasoning_tokens": 2_809},
          "cost_in_usd_ticks": 232_856_000}, 0.0232856),
    ],
)  # fmt: skip
def test_a_reported_cost_wins_over_the_table(body, expected):
    usage = usage_counts(body).for_call("openrouter", "anthropic/claude-sonnet-4")
    assert usage.cost == (pytest.approx(expected, rel=1e-9), "provider")


def test_a_reported_cost_wins_even_for_an_unpriced_or_local_call():
    for provider in ("vllm", "alibaba"):
        usage = Usage(10, 5, reported_cost_usd=0.25).for_call(provider, "any")
        assert usage.cost == (0.25, "provider")


@pytest.mark.parametrize("provider", ["vllm", "ollama", "llama-cpp", "lmstudio"])
def test_a_local_server_costs_zero_and_says_so(provider):
    assert Usage(100, 20).for_call(provider, "llama3.2").cost == (0.0, "local")
    # local is free whatever was counted, even nothing
    assert Usage().for_call(provider, "llama3.2").cost == (0.0, "local")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-nonexistent-9"),  # not in the table
        ("alibaba", "qwen-max"),  # a provider the table does not cover
        ("opencode", "grok-code"),
        ("cerebras", "qwen-3-coder-480b"),  # listed, but without a token price
        ("fireworks", "accounts/fireworks/models/no-such-model"),
        ("no-such-provider", "gpt-4o"),
        ("openai", ""),
    ],
)
def test_an_unknown_price_is_unknown_never_zero(provider, model):
    usage = Usage(1_000, 100).for_call(provider, model)
    assert usage.cost == (None, None)
    assert usage.cost_usd is None and usage.cost_source is None


@pytest.mark.parametrize(
    "usage",
    [
        Usage(None, 100),  # Ollama with a cached prompt: no prompt count
        Usage(1_000, None),  # a stream cut before the output count
        Usage(),  # the no_usage fault: nothing at all
        Usage(-5, 10),  # nonsense counts are not billed
    ],
)
def test_unknown_token_counts_are_unknown_cost(usage):
    assert usage.for_call("openai", "gpt-4o").cost == (None, None)


def test_an_unbound_usage_has_no_cost():
    assert Usage(1_000, 100).cost == (None, None)


def test_usage_prices_itself_now_and_once():
    usage = Usage(1_000, 100, 500).for_call("openai", "gpt-4o-mini")
    assert usage.cost_usd == pytest.approx((1_000 * 0.15 + 500 * 0.075 + 100 * 0.6) / M, rel=1e-3)
    assert usage.cost_source == "price-table"
    assert usage.cost is usage.cost  # worked out on first access, then kept


def test_the_model_lookup_is_cached(monkeypatch):
    from genai_prices import data_snapshot

    first = Usage(1_000, 100).for_call("mistral", "mistral-nemo")
    assert first.cost_source == "price-table"

    def no_more_lookups() -> None:
        raise AssertionError("the table was searched again")

    monkeypatch.setattr(data_snapshot, "get_snapshot", no_more_lookups)
    again = Usage(2_000, 300).for_call("mistral", "mistral-nemo")
    assert again.cost_usd == pytest.approx((2_000 * 0.15 + 300 * 0.15) / M, rel=1e-3)


def test_rates_agree_with_genai_prices_on_every_price_of_the_covered_providers():
    """The fast path (per-token rates) against genai-prices' own `calc_price`, for every price
    of every model of the providers we map, at random usages in every bucket and tier."""
    from genai_prices import data_snapshot

    rng = random.Random(13)
    compared = 0
    for price_provider in sorted(set(cost.PRICE_PROVIDERS.values())):
        provider = next(p for p in data_snapshot.get_snapshot().providers if p.id == price_provider)
        for model in provider.models:
            dated = isinstance(model.prices, list)  # ConditionalPrice: a price and its dates
            prices = [c.prices for c in model.prices] if dated else [model.prices]
            for price in prices:
                if not cost._priced(price):
                    continue
                rates = cost._Rates(price)
                for _ in range(4):
                    scale = rng.choice([3_000, 190_000, 450_000])
                    split = cost.Buckets(*(rng.randint(0, scale) for _ in range(4)),
                                         rng.randint(0, 9_000), rng.randint(0, 4_000))  # fmt: skip
                    ours = rates.bill(split)
                    theirs = float(price.calc_price(cost.genai_usage(split))["total_price"])
                    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), (model.id, split)
                    compared += 1
    assert compared > 1_000


def test_every_cloud_provider_is_mapped_or_declared_unpriced():
    from genai_prices import data_snapshot

    table_ids = {p.id for p in data_snapshot.get_snapshot().providers}
    clouds = {spec.provider_id for spec in PROVIDERS if not spec.is_local}
    assert clouds == set(cost.PRICE_PROVIDERS) | cost.UNPRICED
    assert not set(cost.PRICE_PROVIDERS) & cost.UNPRICED
    assert set(cost.PRICE_PROVIDERS.values()) <= table_ids
    locals_ = {spec.provider_id for spec in PROVIDERS if spec.is_local}
    assert not locals_ & (set(cost.PRICE_PROVIDERS) | cost.UNPRICED)


def test_price_table_info_names_the_data_without_loading_it():
    from importlib.metadata import version

    probe = (
        "import json, sys\n"
        "from rlm_code.models.cost import price_table_info\n"
        "print(json.dumps([price_table_info(), 'genai_prices' in sys.modules]))\n"
    )
    info, loaded = json.loads(run_python(probe))
    assert f"genai-prices {version('genai-prices')}" in info
    assert loaded is False


def test_the_price_table_loads_only_when_a_cloud_call_is_priced():
    probe = (
        "import json, sys\n"
        "import rlm_code.models.cost\n"
        "from rlm_code.models.types import Response, Usage\n"
        "seen = ['genai_prices' in sys.modules]\n"
        "local = Response('hi', Usage(3, 2), provider='vllm', model='m').usage\n"
        "seen.append(local.cost)\n"
        "seen.append('genai_prices' in sys.modules)\n"
        "cloud = Response('hi', Usage(3, 2), provider='openai', model='gpt-4o').usage\n"
        "seen.append(cloud.cost_source)\n"
        "seen.append('genai_prices' in sys.modules)\n"
        "print(json.dumps(seen))\n"
    )
    assert json.loads(run_python(probe)) == [False, [0.0, "local"], False, "price-table", True]
