"""Wait estimates: about k * AHT / N for the caller at position k, with N the logged-in agents who can
take them and AHT their smoothed handle time. docs/routing.md explains the formula."""

from __future__ import annotations

from collections.abc import Iterable


def smoothed(previous: float | None, sample: float, weight: float) -> float:
    """Exponentially weighted handle time: the newest call counts `weight`, the history the rest."""
    if previous is None:
        return sample
    return weight * sample + (1.0 - weight) * previous


def wait_estimate(position: int, handle_times: Iterable[float]) -> float | None:
    """Seconds until `position` callers (this one included) have been taken by the agents whose
    smoothed handle times are given, one per agent; None when no agent can take the caller."""
    times = list(handle_times)
    if not times or position < 1:
        return None
    aht = sum(times) / len(times)
    return position * aht / len(times)
