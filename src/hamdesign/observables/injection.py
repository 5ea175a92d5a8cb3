"""Injection current: the rate η^{abc}(ω) (A V⁻² s⁻¹, bulk) at which light builds up a DC current.

When time reversal is broken (complex hoppings, magnetic textures) linearly polarised light injects
carriers with asymmetric band velocities, and the current grows until relaxation (time τ) stops it
(PHYSICS.md §3b; Sipe & Shkrebtii, PRB 61, 5337 (2000), Eq. (52); WannierBerri
``InjectionCurrent``). With ħ = e = 1 inside::

    η^{abc}(ω) = −(π e³/ħ²) ∫ d^dk/(2π)^d Σ_{n,m} f_nm Δ^a_mn r^b_nm r^c_mn δ(ω_mn − ω)

    Δ^a_mn = v^a_mm − v^a_nn,   r^b_nm = v^b_nm/(iω_nm),   f_nm = f_n − f_m,   ω_mn = ε_m − ε_n.

**Field convention.** E(t) = E(ω)e^{−iωt} + c.c. (physical amplitude E0 = 2|E(ω)|) and

    dJ^a/dt = 2 η^{abc}(ω) E^b(ω) E^c(−ω),        J^a = τ dJ^a/dt (steady state),

the factor 2 counting both frequency orderings (ω, −ω) and (−ω, ω), exactly as for the shift
current J^a = 2σ^{abc}E^b(ω)E^c(−ω). So τη^{abc} (A/V²) adds to σ^{abc}_shift term by term, and a
solar photocurrent is ∫dω (σ^{abb} + τη^{abb}) I(ω)/(cε0). Derivation (checked by a test): the golden
rule gives the rate (2π q²/ħ²)|r^b_mn E^b|² δ(ω_mn − ω) for n → m, each transition adds q Δ^a_mn to
the current, and q = −e, so dJ^a/dt = −(2πe³/ħ²) ∫ Σ f_nm Δ^a_mn |r^b_nm|² δ |E^b|² = 2η^{abb}|E^b|².
This η equals WannierBerri's ``InjectionCurrent`` × 10¹⁵ (it reports per femtosecond) for b = c.

**Real and imaginary parts.** For b = c, r^b_nm r^b_mn = |r^b_nm|² and η is real; it vanishes
with time-reversal symmetry (Δ is odd in k, |r|² even). ``part="real"`` returns Re η^{abc},
symmetric in (b, c) (linear light); ``part="imag"`` returns Im η^{abc}, antisymmetric in (b, c), which
drives the circular injection current under circularly polarised light (time-reversal even).

**Units.** η_int = −π ∫ d^dk/(2π)^d Σ f Δ r r δ_E has units L^{3−d} (Δ ~ E·L, r² ~ L², δ_E ~ 1/E):
ħ cancels between v = ∂ε/ħ∂k and δ(ω) = ħ δ_E, so

    η_bulk [A V⁻² s⁻¹] = η_int / t_⊥ × e³/ħ²,       e³/ħ² = 3.698e11 A V⁻² s⁻¹,

independent of the model's energy and length units (t_⊥: 1 in 3D, layer thickness in 2D,
cross-section area in 1D, as for the shift current). The k-integral, smearing, degenerate
subspaces (``degen_thresh``), position matrix, scissor and chunking are those of
:mod:`hamdesign.observables.shift`; with the full position matrix r = iD + Ā (interband part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend as _backend
from ..backend import follows_inputs
from ..errors import ParameterError
from ..lattice import parse_nk
from ..model import TightBinding
from ..spectrum import checked_kmesh
from ..units import ELEMENTARY_CHARGE, HBAR
from .interband import DEFAULT_DEGEN_THRESH, DEFAULT_SC_ETA, InterbandTerms
from .response import (
    DEFAULT_INTERBAND,
    Component,
    InterbandSettings,
    check_settings,
    component_name,
    energy_in_ev,
    omega_array,
    per_layer,
    resolve_components,
    spectral_response,
    transverse_measure,
    transverse_unit,
)

#: e³/ħ²: A V⁻² s⁻¹ per unit of the internal η (per t_⊥).
INJECTION_SI_FACTOR = ELEMENTARY_CHARGE**3 / HBAR**2
#: Default relaxation time for steady-state injection currents, seconds (100 fs; PHYSICS.md §3b).
DEFAULT_TAU_S = 1e-13


def injection_integrand(terms: InterbandTerms, components, /, *, part: str = "real"):
    """J^{abc}_nm(k) = part(r^b_nm (v^a_bd r^c)_mn − (v^a_bd r^b)_nm r^c_mn), (ncomp, nk, n, n), units E·L³, [c, k, n, m].

    Summed over a pair of subspaces (N, M) this is Tr[r^b_NM v^a_MM r^c_MN] − Tr[v^a_NN r^b_NM r^c_MN],
    the covariant form of Σ Δ^a_mn r^b_nm r^c_mn (v_bd: the whole velocity block of each subspace;
    :mod:`~hamdesign.observables.interband`); for non-degenerate bands the two are equal term by term.
    Each product v^a_bd r^x is computed once and shared by every component that needs it (nine for
    the whole tensor instead of two per component).
    """
    be = _backend.current()
    xp = be.xp
    take = xp.real if part == "real" else xp.imag
    products: dict = {}

    def velocity_times_r(a, x):
        if (a, x) not in products:
            products[(a, x)] = be.matmul(terms.vbd(a), terms.r(x))
        return products[(a, x)]

    out = []
    for a, b, c in components:
        value = terms.r(b) * xp.matrix_transpose(velocity_times_r(a, c)) - velocity_times_r(a, b) * xp.matrix_transpose(
            terms.r(c)
        )
        out.append(take(value))
    return xp.stack(out, axis=0)


@dataclass(frozen=True)
class InjectionRate:
    """η^{abc}(ω), bulk, A V⁻² s⁻¹; ``rate`` is a backend array (ncomp, nomega).

    (The rate is ``rate``, not ``eta``: ``eta`` is the broadening everywhere else in the API.)
    """

    rate: object
    components: tuple[Component, ...]
    omega: np.ndarray
    part: str
    units: str
    transverse_measure: float
    transverse_unit: str
    dim: int


@follows_inputs
def injection_rate(
    model: TightBinding,
    params,
    kfrac,
    omega,
    /,
    *,
    components,
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    eta: float,
    smearing: str = "gaussian",
    part: str = "real",
    transverse: float | None = None,
    sc_eta: float = DEFAULT_SC_ETA,
    degen_thresh: float = DEFAULT_DEGEN_THRESH,
    position_matrix: str = "diagonal",
    scissor: float = 0.0,
    chunk: int | None = None,
) -> InjectionRate:
    """Injection rate η^{abc}(ω), bulk, in A V⁻² s⁻¹ (PHYSICS.md §3b).

    .. math::

        η^{abc}(ω) = −\\frac{π e^3}{ħ^2} ∫\\frac{d^dk}{(2π)^d} Σ_{n,m} f_{nm} Δ^a_{mn} r^b_{nm} r^c_{mn} δ(ω_{mn} − ω)

    with dJ^a/dt = 2η^{abc}E^b(ω)E^c(−ω) for E(t) = E(ω)e^{−iωt} + c.c. and J = τ dJ/dt.

    Parameters are those of :func:`hamdesign.observables.shift.shift_conductivity` (``eta`` is the
    broadening in energy units), plus ``part``: ``"real"`` (default; the b = c linear-light rate)
    or ``"imag"``. ``sc_eta`` is accepted for a common signature and has no effect: η has no
    virtual transitions. Returns :class:`InjectionRate` with ``.rate`` (ncomp, nomega), differentiable
    with respect to ``params``.
    """
    check_settings(beta, eta, smearing)
    if part not in ("real", "imag"):
        raise ParameterError(f"part must be 'real' or 'imag', got {part!r}")
    interband = InterbandSettings(sc_eta, degen_thresh, position_matrix, scissor)
    interband.check(model)
    comps = resolve_components(model, components)
    w = omega_array(omega)
    t_perp = transverse_measure(model, transverse)

    def integrand(terms, cs):
        return injection_integrand(terms, cs, part=part)

    settings = {
        "beta": beta,
        "mu": mu,
        "filling": filling,
        "eta": eta,
        "smearing": smearing,
        "chunk": chunk,
        "interband": interband,
    }
    total = spectral_response(model, params, kfrac, w, integrand=integrand, order=1, components=comps, **settings)
    rate = total * float(-np.pi * INJECTION_SI_FACTOR / t_perp)
    return InjectionRate(
        rate=rate,
        components=tuple(comps),
        omega=w,
        part=part,
        units="A V^-2 s^-1",
        transverse_measure=t_perp,
        transverse_unit=transverse_unit(model),
        dim=model.dim,
    )


def injection_report(
    model: TightBinding,
    params,
    nk,
    omega,
    /,
    *,
    components="all",
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    eta: float,
    smearing: str = "gaussian",
    tau: float = DEFAULT_TAU_S,
    transverse: float | None = None,
    interband: InterbandSettings = DEFAULT_INTERBAND,
) -> dict:
    """Forward evaluation for people and files: η^{abc}(ω), and τη (A/V²) bulk and per layer/chain."""
    if not tau > 0:
        raise ParameterError(f"tau (relaxation time, s) must be positive, got {tau}")
    be = _backend.current()
    kfrac = checked_kmesh(model, nk)
    settings = {"beta": beta, "mu": mu, "filling": filling, "eta": eta, "smearing": smearing, "transverse": transverse}
    res = injection_rate(model, params, kfrac, omega, components=components, **settings, **interband.describe())
    rate = np.asarray(be.to_numpy(res.rate), dtype=float)
    steady = tau * rate
    key, per, per_unit = per_layer(model, steady, res.transverse_measure)
    report = {
        "observable": "injection",
        "model": model.name,
        "components": [component_name(c) for c in res.components],
        "omega": res.omega.tolist(),
        "omega_unit": model.energy_unit,
        "omega_ev": energy_in_ev(model, res.omega),
        "injection_rate": rate.tolist(),
        "tau_s": float(tau),
        "sigma": steady.tolist(),
        "transverse_measure": None if model.dim == 3 else res.transverse_measure,
        "transverse_measure_unit": None if model.dim == 3 else res.transverse_unit,
        "transverse_measure_meaning": {3: None, 2: "layer thickness", 1: "cross-section area"}[model.dim],
        "units": {
            "injection_rate": "A V^-2 s^-1",
            "sigma": "A/V^2 (tau * injection_rate)",
            "tau_s": "s",
            "omega": model.energy_unit,
            "beta": f"1/{model.energy_unit}",
            "eta": model.energy_unit,
        },
        "normalisation": (
            "dJ^a/dt = 2 eta^{abc}(w) E^b(w) E^c(-w), E(t) = E(w) exp(-iwt) + c.c.; steady state J = tau dJ/dt, "
            "so sigma = tau*eta adds to the shift conductivity; eta = -(pi e^3/hbar^2) int d^dk/(2pi)^d "
            "sum f_nm Delta^a_mn r^b_nm r^c_mn delta(w_mn - w) (real part); bulk = per-layer / thickness (2D) "
            "or per-chain / area (1D)"
        ),
        "smearing": smearing,
        "eta": float(eta),
        "degen_thresh": float(interband.degen_thresh),
        "position_matrix": interband.position_matrix,
        "scissor": float(interband.scissor),
        "beta": float(beta),
        "mu": mu,
        "filling": filling,
        "nk": list(parse_nk(nk, model.dim)),
        "backend": be.name,
    }
    if key is not None:
        report[key] = None if per is None else per.tolist()
        report["units"][key] = per_unit + " (tau * injection_rate per layer/chain)"
    return report


__all__ = ["DEFAULT_TAU_S", "INJECTION_SI_FACTOR", "InjectionRate", "injection_integrand", "injection_rate", "injection_report"]
