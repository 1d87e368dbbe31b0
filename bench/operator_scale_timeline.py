"""Pure arithmetic of the operator-scale benchmark: first-seen times to milestones and curves.

Watch threads stamp when each object first reached a state (seconds since the apply);
these functions turn those stamps into "time until N objects" and the cumulative
curves the report plots, and CPU snapshots into per-component CPU seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

# Fractions of the sessions whose time-to-reach is reported (and 1.0: all of them).
MILESTONES = (0.5, 0.9, 0.99, 1.0)


def time_to_count(stamps: Iterable[float], count: int) -> float | None:
    """When the `count`-th object got there; None when fewer than `count` did."""
    if count <= 0:
        return 0.0
    ordered = sorted(stamps)
    return ordered[count - 1] if len(ordered) >= count else None


def milestones(stamps: Iterable[float], total: int,
               fractions: Iterable[float] = MILESTONES) -> dict[str, float | None]:
    """Time until each fraction of `total` objects got there, keyed "50%", "90%", ..."""
    ordered = sorted(stamps)
    out: dict[str, float | None] = {}
    for fraction in fractions:
        # ceil: "90 % of 1,000" means the 900th, not the 899th.
        out[f"{fraction * 100:g}%"] = time_to_count(ordered, math.ceil(fraction * total))
    return out


def cumulative(stamps: Iterable[float], points: int = 200) -> list[tuple[float, int]]:
    """(time, how many by then) as a step curve, thinned to about `points` steps.

    The first and last stamps are always kept, so the curve starts where the first
    object got there and ends at the final count.
    """
    ordered = sorted(stamps)
    if not ordered:
        return []
    stride = max(1, math.ceil(len(ordered) / points))
    keep = list(range(stride - 1, len(ordered), stride))
    if keep[0] != 0:
        keep.insert(0, 0)
    if keep[-1] != len(ordered) - 1:
        keep.append(len(ordered) - 1)
    return [(round(ordered[i], 3), i + 1) for i in keep]


def rate(stamps: Iterable[float], low: float = 0.1, high: float = 0.9) -> float | None:
    """Objects per second between the `low` and `high` fractions: the steady-state speed,
    without the start-up ramp or the stragglers at the end."""
    ordered = sorted(stamps)
    if len(ordered) < 2:
        return None
    first = ordered[math.floor(low * (len(ordered) - 1))]
    last = ordered[math.ceil(high * (len(ordered) - 1))]
    count = math.ceil(high * (len(ordered) - 1)) - math.floor(low * (len(ordered) - 1))
    if last <= first or count <= 0:
        return None
    return count / (last - first)


def cpu_between(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each component used between two snapshots (components in both)."""
    return {name: round(after[name] - before[name], 3) for name in after if name in before}


def busiest(cpu: Mapping[str, float], wall_s: float) -> list[tuple[str, float]]:
    """Components by share of one core over `wall_s` seconds, the busiest first."""
    if wall_s <= 0:
        return []
    shares = [(name, seconds / wall_s) for name, seconds in cpu.items()]
    return sorted(shares, key=lambda item: item[1], reverse=True)
