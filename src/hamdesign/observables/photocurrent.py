"""DC photocurrent density under sunlight, J^a (A/m²): shift + injection (PHYSICS.md §4).

For a spectral irradiance I(ω) (W m⁻² per rad/s) of light linearly polarised along b,
E0(ω)² = 2I(ω)/(cε0) and |E(ω)|² = E0²/4, and with J^a = 2σ^{abb}|E|² and dJ^a/dt = 2η^{abb}|E|²
(:mod:`~hamdesign.observables.shift`, :mod:`~hamdesign.observables.injection`)::

    J^a_shift = ∫ dω σ^{abb}(ω) I(ω)/(cε0),       J^a_inj = τ ∫ dω η^{abb}(ω) I(ω)/(cε0),
    J^a = J^a_shift + J^a_inj.

**Grid-free form** (the design objective): since ∫dω δ(ω_mn − ω) g(ω) = g(ω_mn), each transition
n → m is weighted by the spectrum at its own energy,

    J^a_shift = (π e³/2ħ²)/(cε0) ∫d^dk/(2π)^d Σ_nm f_nm Im[r^b_mn r^b_{nm;a} + r^b_mn r^b_{nm;a}] I(ω_mn),

and likewise for the injection part: no ω-grid, no broadening, smooth in the parameters (the
spectrum is interpolated linearly between its table points). With ``eta > 0`` the spectrum is first
convolved with the same δ_η as the ω-grid form, so both forms agree as the grid is refined.

**Polarisation.** ``"along"`` (default, as in the original work): b = a, light polarised along the
current. ``"unpolarised"``: light propagating along z, averaged over its two transverse
polarisations, J^a = ½ Σ_{b∈{x,y}} (σ^{abb} + τη^{abb}) I/(cε0).

**Original normalisation.** The original work used ∫σ(ω)|E(ω)|²dω with ∫|E|²dω = 2·1366 W m⁻²/(cε0),
i.e. |E(ω)|² = 2I(ω)/(cε0): twice the value above. :func:`photocurrent_report` gives it as a second,
labelled number.

**Bulk density.** For a chain (layer) the current per chain (layer) is divided by the cross-section
area (thickness) ``transverse`` (default ``lattice.transverse_measure``), which every report states.
"""

from __future__ import annotations

import numpy as np

from .. import backend as _backend
from ..backend import follows_inputs
from ..errors import ParameterError
from ..model import TightBinding
from ..solar import Spectrum, field_factor_per_irradiance, get_spectrum, irradiance_at
from ..spectrum import checked_kmesh, chunk_size
from ..units import ELEMENTARY_CHARGE, HBAR, energy_in_j
from .injection import DEFAULT_TAU_S, INJECTION_SI_FACTOR, injection_integrand, injection_rate
from .interband import DEFAULT_DEGEN_THRESH, DEFAULT_SC_ETA
from .response import (
    AXES,
    DEFAULT_INTERBAND,
    InterbandSettings,
    cartesian_indices,
    check_current_direction,
    check_kfrac,
    chemical_potential_on_mesh,
    pair_chunks,
    pair_difference,
    smearing_function,
    transverse_measure,
)
from .shift import shift_conductivity, shift_si_factor, shift_tensor_integrand

POLARISATIONS = ("along", "unpolarised")
PARTS = ("both", "shift", "injection")


def polarisation_components(direction: int, polarisation: str) -> list[tuple[tuple[int, int, int], float]]:
    """[(component (a, b, b), weight)] for the current direction a and the polarisation."""
    if polarisation == "along":
        return [((direction, direction, direction), 1.0)]
    if polarisation == "unpolarised":
        return [((direction, 0, 0), 0.5), ((direction, 1, 1), 0.5)]
    raise ParameterError(f"polarisation must be one of {', '.join(POLARISATIONS)}, got {polarisation!r}")


def parse_direction(direction) -> int:
    if isinstance(direction, str) and direction.lower() in AXES:
        return AXES.index(direction.lower())
    if isinstance(direction, int) and 0 <= direction <= 2:
        return direction
    raise ParameterError(f"current direction must be x, y or z, got {direction!r}")


def smoothed_spectrum(spectrum: Spectrum, *, eta_ev: float, smearing: str) -> np.ndarray:
    """I_η(E_j) = ∫ du δ_η(u) I(E_j − u) on the table's energies (``eta_ev`` 0: the table itself).

    The integral runs over u ∈ ±8η (Gaussian) or ±200η (Lorentzian, 99.7 % of its weight) with a
    step of a quarter of min(η, table spacing), the table interpolated linearly, so it is accurate
    for any η, also below the table's resolution.
    """
    if eta_ev <= 0:
        return spectrum.irradiance
    from ..backend import use_backend

    e = spectrum.energy_ev
    step = min(eta_ev, float(np.min(np.diff(e)))) / 4
    half = (8.0 if smearing == "gaussian" else 200.0) * eta_ev
    u = np.arange(-half, half + 0.5 * step, step)
    with use_backend("numpy"):
        weights = np.asarray(smearing_function(u, eta=eta_ev, kind=smearing)) * step
    out = np.zeros_like(e)
    for start in range(0, len(u), 256):  # bounded memory: 256 shifts × table length at a time
        shifts = u[start : start + 256]
        sampled = np.interp(e[None, :] - shifts[:, None], e, spectrum.irradiance, left=0.0, right=0.0)
        out += weights[start : start + 256] @ sampled
    return out


def interpolate(x, xs: np.ndarray, ys: np.ndarray, /):
    """Piecewise-linear y(x) through (xs, ys), 0 outside [xs[0], xs[-1]]; differentiable in x."""
    be = _backend.current()
    xp = be.xp
    shape = x.shape
    flat = xp.reshape(x, (-1,))
    grid = be.asarray(xs)
    idx = xp.searchsorted(grid, be.stop_gradient(flat))
    idx = xp.clip(idx, 1, len(xs) - 1)
    x0, x1 = xp.take(grid, idx - 1, axis=0), xp.take(grid, idx, axis=0)
    y0, y1 = xp.take(be.asarray(ys), idx - 1, axis=0), xp.take(be.asarray(ys), idx, axis=0)
    y = y0 + (y1 - y0) * (flat - x0) / (x1 - x0)
    inside = (flat >= float(xs[0])) & (flat <= float(xs[-1]))
    return xp.reshape(xp.where(inside, y, 0.0 * y), shape)


def _energy_joules(model: TightBinding) -> float:
    joules = energy_in_j(model.energy_unit)
    if joules is None:
        raise ParameterError(
            f"the solar photocurrent needs a physical energy unit (eV); model {model.name} uses {model.energy_unit!r}"
        )
    return joules


@follows_inputs
def photocurrent(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    spectrum: Spectrum | str = "blackbody5500",
    direction: int | str = "x",
    polarisation: str = "along",
    tau: float = DEFAULT_TAU_S,
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    transverse: float | None = None,
    eta: float = 0.0,
    smearing: str = "gaussian",
    sc_eta: float = DEFAULT_SC_ETA,
    degen_thresh: float = DEFAULT_DEGEN_THRESH,
    position_matrix: str = "diagonal",
    scissor: float = 0.0,
    chunk: int | None = None,
) -> dict:
    """Grid-free DC photocurrent density (A/m², bulk): ``{"shift", "injection", "total"}`` backend scalars.

    ``tau`` is the relaxation time in seconds; ``eta`` (energy unit, default 0) optionally smooths
    the spectrum with the ω-grid broadening; ``sc_eta``, ``degen_thresh``, ``position_matrix`` and
    ``scissor`` (:class:`~hamdesign.observables.response.InterbandSettings`) and everything else as for
    :func:`~hamdesign.observables.shift.shift_conductivity`. Differentiable in ``params``.
    """
    be = _backend.current()
    xp = be.xp
    joules = _energy_joules(model)
    interband = InterbandSettings(sc_eta, degen_thresh, position_matrix, scissor)
    interband.check(model)
    spec = get_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    a = parse_direction(direction)
    check_current_direction(model, a)
    comps = polarisation_components(a, polarisation)
    if not tau >= 0:
        raise ParameterError(f"tau must be non-negative (seconds), got {tau}")
    kfrac = check_kfrac(model, kfrac)
    nk = len(kfrac)
    triples = [c for c, _ in comps]
    size = chunk or max(1, chunk_size(model.norb, order=2) // 2)
    mu_value = chemical_potential_on_mesh(model, params, kfrac, beta=beta, mu=mu, filling=filling)
    table = smoothed_spectrum(spec, eta_ev=eta * joules / ELEMENTARY_CHARGE, smearing=smearing)
    comp_weights = be.asarray(np.array([w for _, w in comps]))
    shift_sum = inj_sum = None
    chunks = pair_chunks(
        model,
        params,
        kfrac,
        mu_value,
        beta=beta,
        interband=interband,
        order=2,
        carts=cartesian_indices(triples),
        size=size,
        after=mu_value if filling is not None else None,
    )
    for part in chunks:
        e_mn_ev = -pair_difference(part.levels) * (joules / ELEMENTARY_CHARGE)  # ε̄_m − ε̄_n in eV at [k, n, m]
        weight = part.f_nm * interpolate(e_mn_ev, spec.energy_ev, table)  # f_nm I(ω_mn), W m⁻² s
        s_part = _weighted_sum(shift_tensor_integrand(part.terms, triples), weight, comp_weights, xp)
        i_part = _weighted_sum(injection_integrand(part.terms, triples, part="real"), weight, comp_weights, xp)
        shift_sum = s_part if shift_sum is None else shift_sum + s_part
        inj_sum = i_part if inj_sum is None else inj_sum + i_part
    t_perp = transverse_measure(model, transverse)
    common = (joules / HBAR) * field_factor_per_irradiance() / float(nk * model.lattice.cell_measure * t_perp)
    j_shift = shift_sum * float(0.5 * np.pi * shift_si_factor(model) * common)
    j_inj = inj_sum * float(-np.pi * INJECTION_SI_FACTOR * common * tau)
    return {"shift": j_shift, "injection": j_inj, "total": j_shift + j_inj, "mu": mu_value + 0.0 * j_shift}


def _weighted_sum(values, weight, comp_weights, xp):
    """Σ_c w_c Σ_{k,n,m} values[c,k,n,m] weight[k,n,m]."""
    per_comp = xp.sum(xp.reshape(values * weight, (values.shape[0], -1)), axis=1)
    return xp.sum(comp_weights * per_comp)


@follows_inputs
def photocurrent_on_grid(
    model: TightBinding,
    params,
    kfrac,
    omega,
    /,
    *,
    spectrum: Spectrum | str = "blackbody5500",
    direction: int | str = "x",
    polarisation: str = "along",
    tau: float = DEFAULT_TAU_S,
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    transverse: float | None = None,
    eta: float,
    smearing: str = "gaussian",
    interband: InterbandSettings = DEFAULT_INTERBAND,
) -> dict:
    """The same current from σ(ω) and η(ω) on an ω-grid (energy unit), trapezoid rule: A/m² (NumPy)."""
    be = _backend.current()
    joules = _energy_joules(model)
    spec = get_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    a = parse_direction(direction)
    comps = polarisation_components(a, polarisation)
    triples = [c for c, _ in comps]
    weights = np.array([w for _, w in comps])
    omega = np.asarray(omega, dtype=float)
    settings = {
        "beta": beta,
        "mu": mu,
        "filling": filling,
        "eta": eta,
        "smearing": smearing,
        "transverse": transverse,
        **interband.describe(),
    }
    sigma = weights @ be.to_numpy(shift_conductivity(model, params, kfrac, omega, components=triples, **settings).sigma)
    rate = weights @ be.to_numpy(injection_rate(model, params, kfrac, omega, components=triples, **settings).rate)
    sun = irradiance_at(spec, omega * joules / ELEMENTARY_CHARGE)
    d_omega = joules / HBAR  # rad/s per energy unit
    factor = field_factor_per_irradiance() * d_omega
    j_shift = float(np.trapezoid(sigma * sun, omega) * factor)
    j_inj = float(np.trapezoid(rate * sun, omega) * factor * tau)
    return {"shift": j_shift, "injection": j_inj, "total": j_shift + j_inj, "omega": omega, "sigma": sigma, "tau_eta": tau * rate}


def photocurrent_report(
    model: TightBinding,
    params,
    nk,
    /,
    *,
    spectrum: str = "blackbody5500",
    direction: str = "x",
    polarisation: str = "along",
    parts: str = "both",
    tau: float = DEFAULT_TAU_S,
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    transverse: float | None = None,
    interband: InterbandSettings = DEFAULT_INTERBAND,
) -> dict:
    """Forward evaluation with every convention stated, for the CLI and result files."""
    from ..lattice import parse_nk

    if parts not in PARTS:
        raise ParameterError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
    be = _backend.current()
    sizes = parse_nk(nk, model.dim)
    spec = get_spectrum(spectrum)
    out = photocurrent(
        model,
        params,
        checked_kmesh(model, sizes),
        spectrum=spec,
        direction=direction,
        polarisation=polarisation,
        tau=tau,
        beta=beta,
        mu=mu,
        filling=filling,
        transverse=transverse,
        **interband.describe(),
    )
    j_shift, j_inj = float(be.to_numpy(out["shift"])), float(be.to_numpy(out["injection"]))
    selected = {"both": j_shift + j_inj, "shift": j_shift, "injection": j_inj}[parts]
    t_perp = transverse_measure(model, transverse)
    return {
        "observable": "photocurrent",
        "model": model.name,
        "current_density": selected,
        "parts": parts,
        "shift_current_density": j_shift,
        "injection_current_density": j_inj,
        "current_density_original_normalisation": 2.0 * selected,
        "direction": str(direction),
        "polarisation": polarisation,
        "spectrum": spec.name,
        "spectrum_description": spec.description,
        "spectrum_total_W_per_m2": spec.total(),
        "tau_s": tau,
        "transverse_measure": t_perp,
        "transverse_meaning": {1: "cross-section area per chain", 2: "layer thickness", 3: "none (3D)"}[model.dim],
        "transverse_unit": {1: f"{model.length_unit}^2", 2: model.length_unit, 3: ""}[model.dim],
        "mu": float(be.to_numpy(out["mu"])),
        "beta": float(beta),
        **interband.describe(),
        "nk": list(sizes),
        "units": {"current_density": "A/m^2", "tau_s": "s", "mu": model.energy_unit},
        "normalisation": (
            "J^a = integral domega [sigma^abb(w) + tau eta^abb(w)] I(w)/(c eps0), |E(w)|^2 = I/(2 c eps0), "
            "J = 2 sigma |E|^2, dJ/dt = 2 eta |E|^2; grid-free (each transition weighted by I at its energy). "
            "current_density_original_normalisation = integral sigma |E|^2 "
            "domega with integral |E|^2 = 2 integral I/(c eps0), i.e. 2x"
        ),
        "backend": be.name,
    }
