"""Observables, registered explicitly: each has a frozen :class:`ObservableSpec`.

The CLI and the generated tests look observables up in :data:`REGISTRY` by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hall import berry_curvature, chern_numbers, chern_numbers_lattice, hall_report, sigma_xy


@dataclass(frozen=True)
class ObservableSpec:
    """What an observable is: name, symbol, units, tensor rank, reference, time-reversal parity."""

    name: str
    symbol: str
    units: str
    rank: int
    reference: str
    odd_under_time_reversal: bool
    dims: tuple[int, ...]


REGISTRY: dict[str, ObservableSpec] = {
    "hall": ObservableSpec(
        name="hall",
        symbol="σ_xy",
        units="e²/h per layer (bulk S/cm alongside)",
        rank=2,
        reference="Thouless, Kohmoto, Nightingale, den Nijs, PRL 49, 405 (1982); PHYSICS.md §2",
        odd_under_time_reversal=True,
        dims=(2, 3),
    ),
}

__all__ = [
    "REGISTRY",
    "ObservableSpec",
    "berry_curvature",
    "chern_numbers",
    "chern_numbers_lattice",
    "hall_report",
    "sigma_xy",
]
