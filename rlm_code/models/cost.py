"""What a call cost, in US dollars: reported by the provider, 0 for a local server, or from the
`genai-prices` table — or unknown, never a guessed 0.

`price_usage(usage)` is what `Usage.cost_usd` calls on first access. The price table loads the
first time a cloud call is priced, not at import, so start-up stays as fast as without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # `types` imports this module when a cost is first asked for
    from rlm_code.models.types import Usage

Cost = tuple[float | None, Literal["provider", "price-table", "local"] | None]
UNKNOWN: Cost = (None, None)


def price_usage(usage: Usage) -> Cost:
    """(cost in dollars, its source) for one call's usage."""
    if usage.reported_cost_usd is not None:
        return usage.reported_cost_usd, "provider"
    if usage.priced_as is None:
        return UNKNOWN
    provider, _model = usage.priced_as
    from rlm_code.models.providers.registry import ProviderRegistry

    spec = ProviderRegistry.default().get(provider)
    if spec is not None and spec.is_local:
        return 0.0, "local"
    return UNKNOWN  # the price table: see the cost helper's work
