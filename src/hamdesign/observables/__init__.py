"""Observables, registered explicitly: each has a frozen :class:`ObservableSpec`.

The CLI and the generated tests look observables up in :data:`REGISTRY` by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hall import anomalous_hall_conductivity, berry_curvature, chern_numbers, chern_numbers_lattice, hall_report, sigma_xy
from .injection import injection_rate, injection_report
from .photocurrent import photocurrent, photocurrent_on_grid, photocurrent_report
from .shift import shift_conductivity, shift_conductivity_shift_vector, shift_report


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
        units="2D: e²/h per layer (bulk S/cm alongside); 3D: (σ_yz, σ_zx, σ_xy) in S/cm",
        rank=2,
        reference="Wang, Yates, Souza, Vanderbilt, PRB 74, 195118 (2006); Thouless et al., PRL 49, 405 (1982)",
        odd_under_time_reversal=True,
        dims=(2, 3),
    ),
    "shift": ObservableSpec(
        name="shift",
        symbol="σ^{abc}(ω)",
        units="A/V² (bulk; per layer / per chain alongside)",
        rank=3,
        reference="Ibañez-Azpiroz, Tsirkin, Souza, PRB 97, 245143 (2018), Eqs. (2)-(4); PHYSICS.md §3",
        odd_under_time_reversal=False,
        dims=(1, 2, 3),
    ),
    "injection": ObservableSpec(
        name="injection",
        symbol="η^{abc}(ω)",
        units="A V⁻² s⁻¹ (bulk); τη in A/V²",
        rank=3,
        reference="Sipe, Shkrebtii, PRB 61, 5337 (2000), Eq. (52); PHYSICS.md §3b",
        odd_under_time_reversal=True,
        dims=(1, 2, 3),
    ),
    "photocurrent": ObservableSpec(
        name="photocurrent",
        symbol="J^a",
        units="A/m² (bulk)",
        rank=1,
        reference="PHYSICS.md §4",
        odd_under_time_reversal=False,
        dims=(1, 2, 3),
    ),
}

__all__ = [
    "REGISTRY",
    "ObservableSpec",
    "anomalous_hall_conductivity",
    "berry_curvature",
    "chern_numbers",
    "chern_numbers_lattice",
    "hall_report",
    "injection_rate",
    "injection_report",
    "photocurrent",
    "photocurrent_on_grid",
    "photocurrent_report",
    "shift_conductivity",
    "shift_conductivity_shift_vector",
    "shift_report",
    "sigma_xy",
]
