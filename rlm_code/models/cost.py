"""What a call cost, in US dollars: reported by the provider, 0 for a local server, or from the
`genai-prices` table — or unknown, never a guessed 0.

`price_usage(usage)` is what `Usage.cost_usd` calls on first access. In order:

1. The provider reported the cost (`usage.reported_cost_usd`, e.g. OpenRouter's
   `usage.cost`): that figure, source "provider".
2. The call went to a local server (its registry row is `is_local`): 0 dollars, source "local".
3. The model is in the `genai-prices` table (the dated price data set pydantic-ai uses) and
   both the input and output counts are known: the bill, source "price-table".
4. Otherwise (None, None): a model without a price, a provider the table does not cover, or a
   count the provider did not send. Aggregates report such calls as `cost_partial`; a
   guessed 0 would silently under-report a run.

Buckets. Our `Usage` keeps cache reads and writes *outside* `input_tokens` (see its
docstring); genai-prices counts them *inside* its `input_tokens` and prices the more specific
units (cache reads, cache writes, 1-hour writes, reasoning output) apart, subtracting them
from their parent. `genai_usage` does the conversion; the tier of a tiered price (Gemini 2.5
Pro and Claude Sonnet 4.5 above 200k prompt tokens) is chosen, as the provider bills it, by
every prompt token, cached or not. A cache write without a stated lifetime is a 5-minute one
(Anthropic's default); `reasoning_tokens` are part of `output_tokens` and priced as output
unless the model has a reasoning rate of its own.

Speed. `import genai_prices` takes about 200 ms and its `calc_price` about 100 µs, so the
package loads on the first cloud price asked for (never at `import rlm_code...`), a model is
looked up once per (provider, model), and its price is turned once into per-token rates
(`_Rates`, worked out with genai-prices' own arithmetic on probe usages): pricing a call after
that is a few multiplications. Prices that change by date or time of day (DeepSeek's off-peak
hours) are looked up for the moment of pricing (`at`, default now).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from rlm_code.models.providers.registry import ProviderRegistry

if TYPE_CHECKING:  # `types` imports this module when a cost is first asked for
    from datetime import datetime
    from decimal import Decimal

    from genai_prices.types import ModelInfo, ModelPrice

    from rlm_code.models.types import Usage

Cost = tuple[float | None, Literal["provider", "price-table", "local"] | None]
UNKNOWN: Cost = (None, None)

# Our registry ids -> genai-prices provider ids. A cloud provider missing here has no table in
# genai-prices (`UNPRICED`); a test keeps both lists in step with the registry and the data.
PRICE_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "xai": "x-ai",
    "perplexity": "perplexity",
    "deepseek": "deepseek",
    "moonshot": "moonshotai",
    "openrouter": "openrouter",
    "groq": "groq",
    "together": "together",
    "fireworks": "fireworks",
    "cerebras": "cerebras",
    "mistral": "mistral",
}
UNPRICED: frozenset[str] = frozenset({"alibaba", "opencode", "siliconflow"})

_PER_MILLION = 1_000_000
_NO_TIERS_PROBE = 1_000_000  # a prompt size for probing an untiered price (any size will do)


class Buckets(NamedTuple):
    """A call's tokens split the way they are billed: each token in exactly one bucket."""

    fresh: int  # prompt tokens at the normal input rate
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    output: int  # output tokens that are not reasoning
    reasoning: int

    @property
    def prompt(self) -> int:
        return self.fresh + self.cache_read + self.cache_write_5m + self.cache_write_1h


def buckets(usage: Usage) -> Buckets | None:
    """`usage` in billing buckets; None when the input or output count is unknown (the bill
    would be a guess) or a count is negative."""
    fresh, output = usage.input_tokens, usage.output_tokens
    if fresh is None or output is None:
        return None
    read = usage.cache_read_tokens or 0
    write_1h = usage.cache_write_1h_tokens or 0
    write = usage.cache_write_tokens
    write = write_1h if write is None else write
    write_1h = min(write_1h, write)
    reasoning = min(usage.reasoning_tokens or 0, output)
    split = Buckets(fresh, read, write - write_1h, write_1h, output - reasoning, reasoning)
    return split if min(split) >= 0 else None


def genai_usage(split: Buckets) -> Any:
    """The same tokens as a `genai_prices.Usage`, whose `input_tokens` holds every prompt token
    and whose cache and reasoning units are parts of their parents."""
    from genai_prices import Usage as GenaiUsage

    return GenaiUsage(
        input_tokens=split.prompt,
        cache_read_tokens=split.cache_read,
        cache_write_tokens=split.cache_write_5m + split.cache_write_1h,
        cache_write_5m_tokens=split.cache_write_5m,
        cache_write_1h_tokens=split.cache_write_1h,
        output_tokens=split.output + split.reasoning,
        output_reasoning_tokens=split.reasoning,
    )


class _Rates:
    """One model price as dollars per token for each bucket, per prompt-size tier.

    A genai-prices bill is linear in the buckets within one tier (a tier is chosen by the
    whole prompt, "cliff" style: above the threshold every token pays the tier's rate), plus
    a per-request fee where the model has one. So the bill of a few probe usages per tier,
    computed by genai-prices itself, gives the rates, and pricing a call is then arithmetic.
    """

    __slots__ = ("_bounds", "_rates")

    def __init__(self, price: ModelPrice) -> None:
        from genai_prices.types import TieredPrices

        starts = sorted(
            {
                tier.start
                for value in vars(price).values()
                if isinstance(value, TieredPrices)
                for tier in value.tiers
            }
        )
        fee = _bill(price, Buckets(0, 0, 0, 0, 0, 0))
        self._bounds = tuple(starts)  # tier i covers prompts up to bounds[i] (the last: any)
        probes = [starts[0] if starts else _NO_TIERS_PROBE] + [start + 1 for start in starts]
        self._rates = tuple(self._tier_rates(price, size, fee) for size in probes)

    @staticmethod
    def _tier_rates(price: ModelPrice, n: int, fee: Decimal) -> tuple[float, ...]:
        """(fee, then dollars per token of each bucket in `Buckets` order) for prompts of `n`
        tokens: `n` tokens in one prompt bucket at a time; output probes add `n` output or
        reasoning tokens to a prompt of `n` fresh ones (the prompt chooses the tier)."""
        fresh = (_bill(price, Buckets(n, 0, 0, 0, 0, 0)) - fee) / n
        prompt_probes = (
            Buckets(0, n, 0, 0, 0, 0),
            Buckets(0, 0, n, 0, 0, 0),
            Buckets(0, 0, 0, n, 0, 0),
        )
        output_probes = (Buckets(n, 0, 0, 0, n, 0), Buckets(n, 0, 0, 0, 0, n))
        rates = [fresh]
        rates += [(_bill(price, split) - fee) / n for split in prompt_probes]
        rates += [(_bill(price, split) - fee) / n - fresh for split in output_probes]
        return (float(fee), *(float(rate) for rate in rates))

    def bill(self, split: Buckets) -> float:
        """The call's cost in dollars."""
        prompt = split.prompt
        tier = 0
        for bound in self._bounds:
            if prompt <= bound:
                break
            tier += 1
        fee, fresh, read, write_5m, write_1h, output, reasoning = self._rates[tier]
        return (
            fee
            + fresh * split.fresh
            + read * split.cache_read
            + write_5m * split.cache_write_5m
            + write_1h * split.cache_write_1h
            + output * split.output
            + reasoning * split.reasoning
        )


def _bill(price: ModelPrice, split: Buckets) -> Decimal:
    total: Decimal = price.calc_price(genai_usage(split))["total_price"]
    return total


def _priced(price: ModelPrice) -> bool:
    """Whether the price covers tokens both ways: a model listed without a token price (some
    entries only have a per-request or audio price) is unknown, not free."""
    return price.input_mtok is not None and price.output_mtok is not None


class _Model:
    """A model found in the table: its price (or dated prices) and their rates, built once."""

    __slots__ = ("_dated", "_info", "_static")

    def __init__(self, info: ModelInfo) -> None:
        from genai_prices.types import ModelPrice

        self._info = info
        self._static: _Rates | None = None
        self._dated: dict[int, tuple[ModelPrice, _Rates | None]] = {}
        if isinstance(info.prices, ModelPrice):
            self._static = _Rates(info.prices) if _priced(info.prices) else None

    def rates(self, at: datetime | None) -> _Rates | None:
        from genai_prices.types import ModelPrice

        if isinstance(self._info.prices, ModelPrice):
            return self._static
        if at is None:
            from datetime import UTC, datetime

            at = datetime.now(tz=UTC)
        price = self._info.get_prices(at)
        known = self._dated.get(id(price))
        if known is None or known[0] is not price:
            known = (price, _Rates(price) if _priced(price) else None)
            self._dated[id(price)] = known
        return known[1]


# (our provider id, model name) -> the model in the table, or None: not in it.
_models: dict[tuple[str, str], _Model | None] = {}


def _find(provider: str, model: str) -> _Model | None:
    """The table's entry for `model` at `provider`: by genai-prices' own matching, on the name
    as sent, then on its last path segment (`deepseek-ai/DeepSeek-R1`, `models/gemini-...`).
    Only that provider's table (and the tables it defers to) is searched."""
    price_provider = PRICE_PROVIDERS.get(provider)
    if price_provider is None or not model:
        return None
    try:
        from genai_prices import data_snapshot
    except ImportError:
        return None
    snapshot = data_snapshot.get_snapshot()
    refs = [model]
    if "/" in model and model.rsplit("/", 1)[1]:
        refs.append(model.rsplit("/", 1)[1])
    for ref in refs:
        try:
            _provider, info = snapshot.find_provider_model(ref, None, price_provider, None)
        except LookupError:
            continue
        try:
            return _Model(info)
        except (ValueError, ArithmeticError):  # a price the arithmetic cannot use: unknown
            return None
    return None


def table_cost(usage: Usage, provider: str, model: str, *, at: datetime | None = None) -> Cost:
    """The bill from the price table, or `UNKNOWN`."""
    split = buckets(usage)
    if split is None:
        return UNKNOWN
    key = (provider, model)
    try:
        entry = _models[key]
    except KeyError:
        entry = _models[key] = _find(provider, model)
    if entry is None:
        return UNKNOWN
    try:
        rates = entry.rates(at)
    except (ValueError, ArithmeticError):
        return UNKNOWN
    if rates is None:
        return UNKNOWN
    return rates.bill(split), "price-table"


def price_usage(usage: Usage, *, at: datetime | None = None) -> Cost:
    """(cost in dollars, its source) for one call's usage (`at`: when the call was made, for
    prices that depend on the date or hour; default now)."""
    if usage.reported_cost_usd is not None:
        return usage.reported_cost_usd, "provider"
    if usage.priced_as is None:
        return UNKNOWN
    provider, model = usage.priced_as
    spec = ProviderRegistry.default().get(provider)
    if spec is not None and spec.is_local:
        return 0.0, "local"
    return table_cost(usage, spec.provider_id if spec else provider, model, at=at)


def price_table_info() -> str:
    """Which price data costs come from (for the CLI and the ledger), without loading it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"genai-prices {version('genai-prices')} (price data bundled with the package)"
    except PackageNotFoundError:
        return "genai-prices is not installed: table costs are unknown"


__all__ = [
    "PRICE_PROVIDERS",
    "UNKNOWN",
    "UNPRICED",
    "Buckets",
    "Cost",
    "buckets",
    "genai_usage",
    "price_table_info",
    "price_usage",
    "table_cost",
]
