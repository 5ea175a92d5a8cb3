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


def _mu_shifted(model: TightBinding, *, mu, filling) -> bool:
    """Whether the model has a ``mu_shift`` perturbation (which needs μ given, not a filling)."""
    from .perturbations import perturbed_blocks_of

    blocks = perturbed_blocks_of(model)
    shifted = blocks is not None and blocks.index("mu_shift") is not None
    if shifted and mu is None:
        raise ParameterError("a mu_shift perturbation moves a given mu; it cannot be combined with a filling")
    return shifted


#: AHC components by the plane of the Hall response: σ_yz, σ_zx, σ_xy (the pseudovector's x, y, z).
AHC_COMPONENTS = {"yz": 0, "zx": 1, "xy": 2}


def ahc_objective(
    model: TightBinding,
    parametrization: Parametrization,
    kfrac: np.ndarray,
    *,
    component: str = "xy",
    mu: float | None = None,
    filling: float | None = None,
    goal: str = "maximize",
    target: float | None = None,
    penalty_weight: float = 0.0,
    position_matrix: str = "diagonal",
    degen_thresh: float | None = None,
):
    """One component of the bulk anomalous Hall conductivity of a 3D model (S/cm) as a design objective.

    σ_ab from :func:`~hamdesign.anomalous_hall_conductivity` (physical sign), at μ (plus the
    ``mu_shift`` perturbation when the model has one) or at a filling; under a ``strain``
    perturbation the pseudovector is transformed into the strained crystal
    (:func:`~hamdesign.perturbations.strained_pseudovector`). The loss is the goal applied to σ in
    kS/cm (so learning rates of order 0.1 suit it) plus ``penalty_weight``·‖ΔH‖² (eV²), the squared
    root-mean-square change per orbital of the hoppings from the DFT model
    (:func:`~hamdesign.perturbations.perturbation_norm_squared`). aux: ``sigma`` (S/cm, the chosen
    component), ``sigma_yz``/``sigma_zx``/``sigma_xy`` when all are computed, ``mu``,
    ``perturbation_norm`` (eV).
    """
    from .observables.hall import HALL_DEGEN_THRESH, PLANES, bulk_hall_factor, hall_sums
    from .perturbations import mu_shift_of, perturbation_norm_squared, perturbed_blocks_of, strained_pseudovector

    if goal not in GOALS:
        raise ParameterError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    if component not in AHC_COMPONENTS:
        raise ParameterError(f"component must be one of {', '.join(AHC_COMPONENTS)}, got {component!r}")
    if model.dim != 3:
        raise ParameterError(f"the AHC objective needs a 3D model; {model.name} is {model.dim}D (use sigma_xy)")
    if (mu is None) == (filling is None):
        raise ParameterError("give exactly one of mu (energy) or filling (fraction of bands occupied)")
    blocks = perturbed_blocks_of(model)
    shifted = _mu_shifted(model, mu=mu, filling=filling)
    strained = blocks is not None and blocks.perturbations.strain is not None
    planes = tuple(PLANES) if strained else (component,)
    factor = bulk_hall_factor(model)
    thresh = HALL_DEGEN_THRESH if degen_thresh is None else degen_thresh

    @follows_inputs
    def objective(theta, beta):
        xp = _backend.current().xp
        params = parametrization.physical(theta)
        mu_value = mu + mu_shift_of(model, params) if shifted else mu
        sums = hall_sums(
            model,
            params,
            kfrac,
            beta=beta,
            mu=mu_value,
            filling=filling,
            planes=planes,
            position_matrix=position_matrix,
            degen_thresh=thresh,
        )
        sigma_planes = factor * sums.occupied[0]
        if strained:
            sigma_planes = strained_pseudovector(model, params, sigma_planes)
            sigma = sigma_planes[AHC_COMPONENTS[component]]
        else:
            sigma = sigma_planes[0]
        loss = _goal_loss(sigma / 1000.0, goal, None if target is None else target / 1000.0)
        norm2 = perturbation_norm_squared(model, params)
        if penalty_weight:
            loss = loss + penalty_weight * norm2
        aux = {"sigma": sigma, "mu": sums.mu[0] + 0.0 * sigma, "perturbation_norm": xp.sqrt(norm2 + 1e-300) + 0.0 * sigma}
        if strained:
            aux.update({f"sigma_{p}": sigma_planes[i] for i, p in enumerate(AHC_COMPONENTS)})
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
    from .perturbations import mu_shift_of, perturbed_blocks_of
    from .solar import get_spectrum

    blocks = perturbed_blocks_of(model)
    if blocks is not None and blocks.perturbations.strain is not None:
        raise ParameterError(
            "a strain perturbation is supported with the AHC objective only: the photocurrent's rank-3 tensor is not "
            "transformed into the strained crystal"
        )

    if goal not in GOALS:
        raise ParameterError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    unknown = sorted(set(interband) - {"sc_eta", "degen_thresh"})
    if unknown:
        raise ParameterError(f"photocurrent_objective takes sc_eta and degen_thresh, not {', '.join(unknown)}")
    if parts not in PARTS:
        raise ParameterError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
    spec = get_spectrum(spectrum)
    key = {"both": "total", "shift": "shift", "injection": "injection"}[parts]
    shifted = _mu_shifted(model, mu=mu, filling=filling)

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
            mu=mu + mu_shift_of(model, params) if shifted else mu,
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
