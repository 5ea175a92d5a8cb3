"""Scalar design objectives built from observables: ``objective(θ, β) -> (loss, aux)``.

Every factory returns a pure function of the design variables θ (a backend array) and the inverse
temperature β (a backend scalar, so a changing β does not retrigger compilation). ``loss`` is
minimised; ``aux`` holds the observables recorded in the design history.
"""

from __future__ import annotations

import numpy as np

from . import backend as _backend
from .backend import follows_inputs
from .errors import ParameterError
from .model import TightBinding
from .observables.hall import curvature_on_mesh, hall_prefactor, resolve_mu, sigma_xy_from_curvature
from .parametrize import Parametrization

GOALS = ("maximize", "minimize", "maximize_abs", "target")


def gap_at_filling(energies, filling: float, *, xp):
    """Global gap min_k ε_{N}(k) − max_k ε_{N−1}(k) above the N = filling·nband lowest bands."""
    nband = energies.shape[1]
    nocc = int(round(filling * nband))
    if not 0 < nocc < nband:
        return 0.0 * xp.sum(energies)
    return xp.min(energies[:, nocc]) - xp.max(energies[:, nocc - 1])


def _goal_loss(value, goal: str, target: float | None):
    if goal == "maximize":
        return -value
    if goal == "minimize":
        return value
    if goal == "maximize_abs":
        xp = _backend.current().xp
        return -xp.sqrt(value * value + 1e-30)
    if goal == "target":
        if target is None:
            raise ParameterError("goal 'target' needs a target value")
        return (value - target) ** 2
    raise ParameterError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")


def hall_objective(
    model: TightBinding,
    parametrization: Parametrization,
    kfrac: np.ndarray,
    *,
    mu: float | None = None,
    filling: float | None = None,
    goal: str = "maximize",
    target: float | None = None,
    gap_weight: float = 0.0,
    gap_min: float = 0.0,
):
    """σ_xy (e²/h per layer) as a design objective.

    loss = −σ_xy (maximize), σ_xy (minimize) or (σ_xy − target)², plus
    ``gap_weight · max(0, gap_min − gap)²`` when a filling is given (a penalty that keeps the
    occupied bands separated). aux: ``sigma_xy``, ``mu``, ``chern`` (Kubo, per band), ``gap``.
    """
    if goal not in GOALS:
        raise ParameterError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    prefactor = hall_prefactor(model)

    @follows_inputs
    def objective(theta, beta):
        be = _backend.current()
        xp = be.xp
        params = parametrization.physical(theta)
        energies, omega = curvature_on_mesh(model, params, kfrac)
        mu_value = resolve_mu(energies, beta=beta, mu=mu, filling=filling)
        nk = energies.shape[0]
        sigma = sigma_xy_from_curvature(model, energies, omega, mu=mu_value, beta=beta)
        chern = prefactor * xp.sum(omega, axis=0) / nk
        loss = _goal_loss(sigma, goal, target)
        gap = gap_at_filling(energies, filling, xp=xp) if filling is not None else 0.0 * sigma
        if gap_weight and filling is not None:
            short = xp.where(gap < gap_min, gap_min - gap, 0.0 * gap)
            loss = loss + gap_weight * short * short
        aux = {"sigma_xy": sigma, "chern": chern}
        if filling is not None:
            aux.update(mu=mu_value, gap=gap)
        return loss, aux

    return objective


def photocurrent_objective(
    model: TightBinding,
    parametrization: Parametrization,
    kfrac: np.ndarray,
    *,
    spectrum: str = "blackbody5500",
    direction: str = "x",
    polarisation: str = "along",
    parts: str = "both",
    tau: float = 1e-13,
    mu: float | None = None,
    filling: float | None = None,
    goal: str = "maximize_abs",
    target: float | None = None,
    **interband: float,
):
    """Solar DC photocurrent density J^a (A/m², grid-free form) as a design objective.

    ``parts`` picks what the loss uses: shift + injection (``"both"``), or one part; both parts are
    recorded in aux (``j_shift``, ``j_injection``, ``j_total``) with ``mu`` and the ``gap`` at the
    filling. The loss is scaled by 1/1000 (kA/m²) so that learning rates of order 0.1 suit it.
    ``interband`` passes ``sc_eta`` and ``degen_thresh`` on to :func:`~hamdesign.photocurrent`.
    """
    from .observables.photocurrent import PARTS, photocurrent
    from .solar import get_spectrum

    if goal not in GOALS:
        raise ParameterError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    unknown = sorted(set(interband) - {"sc_eta", "degen_thresh"})
    if unknown:
        raise ParameterError(f"photocurrent_objective takes sc_eta and degen_thresh, not {', '.join(unknown)}")
    if parts not in PARTS:
        raise ParameterError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
    spec = get_spectrum(spectrum)
    key = {"both": "total", "shift": "shift", "injection": "injection"}[parts]

    @follows_inputs
    def objective(theta, beta):
        params = parametrization.physical(theta)
        out = photocurrent(
            model,
            params,
            kfrac,
            spectrum=spec,
            direction=direction,
            polarisation=polarisation,
            tau=tau,
            beta=beta,
            mu=mu,
            filling=filling,
            **interband,
        )
        loss = _goal_loss(out[key] / 1000.0, goal, None if target is None else target / 1000.0)
        aux = {
            "j_total": out["total"],
            "j_shift": out["shift"],
            "j_injection": out["injection"],
            "mu": out["mu"] + 0.0 * out["total"],
        }
        return loss, aux

    return objective
