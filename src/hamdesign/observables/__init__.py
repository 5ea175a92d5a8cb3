"""Observables, registered explicitly: each has a frozen :class:`ObservableSpec` in :data:`REGISTRY`.

``hamdesign evaluate`` looks the observable up here by name: its ``--observable`` choices, the
options it accepts and the function that computes its report all come from the entry, so a new
observable is one module plus one registry line (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .hall import anomalous_hall_conductivity, berry_curvature, chern_numbers, chern_numbers_lattice, hall_report, sigma_xy
from .injection import injection_rate, injection_report
from .jdos import jdos_report, joint_density_of_states
from .photocurrent import photocurrent, photocurrent_on_grid, photocurrent_report
from .response import Request
from .shift import shift_conductivity, shift_conductivity_shift_vector, shift_report


def _hall(req: Request) -> dict:
    return hall_report(
        req.model,
        req.params,
        req.nk,
        beta=req.beta,
        mu=req.mu,
        filling=req.filling,
        thickness=req.thickness,
        position_matrix=req.interband.position_matrix,
        degen_thresh=req.interband.degen_thresh,
    )


def _spectrum_settings(req: Request) -> dict:
    return {
        "components": req.components,
        "beta": req.beta,
        "mu": req.mu,
        "filling": req.filling,
        "eta": req.eta,
        "smearing": req.smearing,
        "interband": req.interband,
    }


def _shift(req: Request) -> dict:
    return shift_report(req.model, req.params, req.nk, req.omega, **_spectrum_settings(req))


def _injection(req: Request) -> dict:
    return injection_report(req.model, req.params, req.nk, req.omega, tau=req.tau, **_spectrum_settings(req))


def _photocurrent(req: Request) -> dict:
    return photocurrent_report(
        req.model,
        req.params,
        req.nk,
        spectrum=req.spectrum,
        direction=req.direction,
        polarisation=req.polarisation,
        parts=req.parts,
        tau=req.tau,
        beta=req.beta,
        mu=req.mu,
        filling=req.filling,
        interband=req.interband,
    )


@dataclass(frozen=True)
class ObservableSpec:
    """What an observable is (name, symbol, units, tensor rank, reference, time-reversal parity, dimensions)
    and how ``hamdesign evaluate`` runs it.

    ``report`` computes the JSON-ready report of a :class:`Request`; ``display`` names the table the
    CLI prints it as (``"hall"``, ``"spectrum"``: σ(ω) per component, or ``"current"``); ``spectral``:
    it takes ``--omega``/``--component``; ``mu_scan``: it accepts a ``--mu`` START:STOP:COUNT scan;
    ``interband``: it takes ``--sc-eta`` and ``--scissor``.
    """

    name: str
    symbol: str
    units: str
    rank: int
    reference: str
    odd_under_time_reversal: bool
    dims: tuple[int, ...]
    report: Callable[[Request], dict]
    display: str
    spectral: bool = False
    mu_scan: bool = False
    interband: bool = False


REGISTRY: dict[str, ObservableSpec] = {
    "hall": ObservableSpec(
        name="hall",
        symbol="σ_xy",
        units="2D: e²/h per layer (bulk S/cm alongside); 3D: (σ_yz, σ_zx, σ_xy) in S/cm",
        rank=2,
        reference="Wang, Yates, Souza, Vanderbilt, PRB 74, 195118 (2006); Thouless et al., PRL 49, 405 (1982)",
        odd_under_time_reversal=True,
        dims=(2, 3),
        report=_hall,
        display="hall",
        mu_scan=True,
    ),
    "shift": ObservableSpec(
        name="shift",
        symbol="σ^{abc}(ω)",
        units="A/V² (bulk; per layer / per chain alongside)",
        rank=3,
        reference="Ibañez-Azpiroz, Tsirkin, Souza, PRB 97, 245143 (2018), Eqs. (2)-(4); PHYSICS.md §3",
        odd_under_time_reversal=False,
        dims=(1, 2, 3),
        report=_shift,
        display="spectrum",
        spectral=True,
        interband=True,
    ),
    "injection": ObservableSpec(
        name="injection",
        symbol="η^{abc}(ω)",
        units="A V⁻² s⁻¹ (bulk); τη in A/V²",
        rank=3,
        reference="Sipe, Shkrebtii, PRB 61, 5337 (2000), Eq. (52); PHYSICS.md §3b",
        odd_under_time_reversal=True,
        dims=(1, 2, 3),
        report=_injection,
        display="spectrum",
        spectral=True,
        interband=True,
    ),
    "photocurrent": ObservableSpec(
        name="photocurrent",
        symbol="J^a",
        units="A/m² (bulk)",
        rank=1,
        reference="PHYSICS.md §4",
        odd_under_time_reversal=False,
        dims=(1, 2, 3),
        report=_photocurrent,
        display="current",
        interband=True,
    ),
    "jdos": ObservableSpec(
        name="jdos",
        symbol="J(ω)",
        units="1/(E L³): states per energy per volume (bulk)",
        rank=0,
        reference="the band-pair response with integrand 1 (docs/extending.md)",
        odd_under_time_reversal=False,
        dims=(1, 2, 3),
        report=jdos_report,
        display="spectrum",
        spectral=True,
    ),
}

__all__ = [
    "REGISTRY",
    "ObservableSpec",
    "Request",
    "anomalous_hall_conductivity",
    "berry_curvature",
    "chern_numbers",
    "chern_numbers_lattice",
    "hall_report",
    "injection_rate",
    "injection_report",
    "jdos_report",
    "joint_density_of_states",
    "photocurrent",
    "photocurrent_on_grid",
    "photocurrent_report",
    "shift_conductivity",
    "shift_conductivity_shift_vector",
    "shift_report",
    "sigma_xy",
]
