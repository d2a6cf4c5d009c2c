"""Which provider an upstream call tries first: drawn by weight (``SMS_PROVIDER_WEIGHTS``), or the
configured order when no weights are set.

The whole failover order is one weighted draw without replacement: the first provider by weight, the next by
weight among the rest, and so on; providers weighing 0 come last, in configured order. Dispatch walks the
order skipping providers without a template code or with an open circuit, so the first one it calls is
drawn by weight among exactly the providers that could take the call, without asking the circuit breaker
anything here (asking it may claim a half-open probe).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Named(Protocol):
    name: str


P = TypeVar("P", bound=Named)


def failover_order(
    providers: Sequence[P], weights: dict[str, int] | None, rng: random.Random | None = None
) -> list[P]:
    """``providers`` in the order one upstream call tries them."""
    if not weights:
        return list(providers)
    draw = rng or random
    pool = [provider for provider in providers if weights.get(provider.name, 0) > 0]
    order: list[P] = []
    while pool:
        [picked] = draw.choices(pool, weights=[weights[provider.name] for provider in pool])
        order.append(picked)
        pool.remove(picked)
    return order + [provider for provider in providers if provider not in order]
