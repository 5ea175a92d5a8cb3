"""Joint density of states of optical transitions, J(ω) (states per energy per volume).

    J(ω) = ∫ d^dk/(2π)^d Σ_{n,m} f_nm δ(ε̄_m − ε̄_n − ω),      f_nm = f(ε̄_n − μ) − f(ε̄_m − μ),

the number of vertical transitions from occupied to empty states per unit photon energy and volume
(minus the reverse ones, which sit at negative ω). For an insulator at T → 0, ∫ J dω over ω > 0
is (occupied bands × empty bands) / Ω_cell. It is the band-pair response
(:mod:`~hamdesign.observables.response`) with the integrand 1: this module is the worked example of
docs/extending.md, an observable in one file plus one entry in :data:`hamdesign.observables.REGISTRY`.
Units: 1/(E·L³) in 3D, per transverse measure t_⊥ (layer thickness, chain cross-section) below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend as _backend
from ..backend import follows_inputs
from ..model import TightBinding
from ..spectrum import checked_kmesh
from .response import (
    DEFAULT_INTERBAND,
    InterbandSettings,
    Request,
    check_settings,
    energy_in_ev,
    omega_array,
    spectral_response,
    transverse_measure,
    transverse_unit,
)


def jdos_integrand(terms, components, /):
    """I_nm = 1 for every pair (one row): the engine supplies f_nm and δ(ε̄_m − ε̄_n − ω)."""
    xp = _backend.current().xp
    gaps = xp.expand_dims(terms.levels, axis=-1) - xp.expand_dims(terms.levels, axis=-2)
    return xp.expand_dims(0.0 * gaps + 1.0, axis=0)


@dataclass(frozen=True)
class JointDensityOfStates:
    """J(ω): ``jdos`` a backend array (nomega,), in ``units``; ``omega`` in the model's energy unit."""

    jdos: object
    omega: np.ndarray
    units: str


@follows_inputs
def joint_density_of_states(
    model: TightBinding,
    params,
    kfrac,
    omega,
    /,
    *,
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    eta: float,
    smearing: str = "gaussian",
    transverse: float | None = None,
    interband: InterbandSettings = DEFAULT_INTERBAND,
    chunk: int | None = None,
) -> JointDensityOfStates:
    """J(ω) on the mesh ``kfrac``, per energy unit per length unit³ (bulk); differentiable in ``params``."""
    check_settings(beta, eta, smearing)
    interband.check(model)
    w = omega_array(omega)
    settings = {"beta": beta, "mu": mu, "filling": filling, "eta": eta, "smearing": smearing, "chunk": chunk}
    # order 0: no derivatives of H; one row, (0, 0, 0) only names the (unused) row's component
    total = spectral_response(
        model, params, kfrac, w, integrand=jdos_integrand, order=0, components=[(0, 0, 0)], interband=interband, **settings
    )
    units = f"1/({model.energy_unit} {model.length_unit}^3)"
    return JointDensityOfStates(jdos=total[0] / transverse_measure(model, transverse), omega=w, units=units)


def jdos_report(req: Request) -> dict:
    """The registry's report: J(ω) as a one-row spectrum (the CLI prints ``report[report["spectrum_key"]]``)."""
    be = _backend.current()
    settings = {"beta": req.beta, "mu": req.mu, "filling": req.filling, "eta": req.eta, "smearing": req.smearing}
    res = joint_density_of_states(req.model, req.params, checked_kmesh(req.model, req.nk), req.omega, **settings)
    values = np.asarray(be.to_numpy(res.jdos), dtype=float)
    return {
        "observable": "jdos",
        "model": req.model.name,
        "components": ["J"],
        "omega": res.omega.tolist(),
        "omega_unit": req.model.energy_unit,
        "omega_ev": energy_in_ev(req.model, res.omega),
        "jdos": [values.tolist()],
        "spectrum_key": "jdos",
        "units": {"jdos": res.units, "omega": req.model.energy_unit},
        "transverse_measure": None if req.model.dim == 3 else transverse_measure(req.model),
        "transverse_measure_unit": None if req.model.dim == 3 else transverse_unit(req.model),
        "transverse_measure_meaning": {3: None, 2: "layer thickness", 1: "cross-section area"}[req.model.dim],
        "eta": float(req.eta),
        "smearing": req.smearing,
        "beta": float(req.beta),
        "mu": req.mu,
        "filling": req.filling,
        "backend": be.name,
    }


__all__ = ["JointDensityOfStates", "jdos_integrand", "jdos_report", "joint_density_of_states"]
