"""Shift current σ^{abc}(ω) (A/V², bulk): sum-rule form, and an independent shift-vector form.

Second-order DC response to E(t) = E(ω)e^{−iωt} + c.c. (PHYSICS.md §3)::

    J^a = 2 σ^{abc}(0; ω, −ω) E^b(ω) E^c(−ω)

    σ^{abc}(ω) = (π e³ / 2ħ²) ∫ d^dk/(2π)^d Σ_{n,m} f_nm Im[ r^b_mn r^c_{nm;a} + r^c_mn r^b_{nm;a} ] δ(ω_mn − ω)

the physical (real) part of the Sipe–Shkrebtii shift current as written by Ibañez-Azpiroz, Tsirkin
& Souza, PRB 97, 245143 (2018), Eqs. (2)–(4), and computed by WannierBerri (``ShiftCurrent``) and
wannier90 (``berry_task = sc``). With ħ = e = 1 inside, energies in the model's energy unit E and
lengths in its length unit L::

    ω_nm = ε_n − ε_m,   f_nm = f(ε_n − μ) − f(ε_m − μ),   Δ^a_nm = v^a_nn − v^a_mm,
    r^a_nm = v^a_nm / (i ω_nm)                     (n ≠ m; 0 for n = m)
    r^b_{nm;a} = (i/ω_nm) [ (v^a_nm Δ^b_nm + v^b_nm Δ^a_nm)/ω_nm − w^{ab}_nm
                            + Σ_{p≠n,m} ( v^b_np v^a_pm / ω_pm − v^a_np v^b_pm / ω_np ) ]

(the sum rule for a tight-binding model whose position operator is diagonal in the orbital basis;
v = ∂H/∂k, w = ∂²H/∂k∂k in the band basis, :mod:`hamdesign.model`). With V^a_nm = v^a_nm/ω_nm the
p-sum needs no three-index array: excluding p = n, m from the matrix products gives exactly

    r^b_{nm;a} = (i/ω_nm) [ Δ^a_nm V^b_nm − w^{ab}_nm + (v^b V^a − V^a v^b)_nm ],

which is what :func:`shift_integrand` evaluates (two matrix products per (a, b) pair).

**Degenerate subspaces, sc_eta, position matrix, scissor** (:mod:`~hamdesign.observables.interband`,
docs/theory-shift.md). Bands closer than ``degen_thresh`` (default 1e-4) form one subspace, treated
covariantly (its whole velocity block, its mean energy ε̄_N), so σ does not depend on the basis
``eigh`` returns there, nor on which components are requested. The virtual-transition denominators
of the p-sum are broadened, 1/ω → ω/(ω² + sc_eta²) (default 0.04 energy units, as postw90; 0 gives
the exact sum rule above, the behaviour before these knobs existed). ``position_matrix="full"`` adds
the off-diagonal Wannier position matrix (Ibañez-Azpiroz et al., Eqs. (29)–(33)); ``scissor`` Δ
shifts the subspaces above μ by Δ in the δ-function only (matrix elements r and r_{;a} of the
unshifted model, as postw90's ``scissors_shift``).

**Smearing.** δ(x) is ``"gaussian"``: exp(−x²/η²)/(√π η) (the wannier90 / WannierBerri Gaussian) or
``"lorentzian"``: (η/π)/(x² + η²); η in energy units; δ(ω_mn − ω) = ħ δ(ε_m − ε_n − ħω) in SI.

**k-integral.** ∫ d^dk/(2π)^d = (1/(N_k Ω_cell)) Σ_k with Ω_cell = ``lattice.cell_measure``
(= bz_measure/(2π)^d): a Γ-centred mesh average.

**Units.** Internally σ_int = (π/2) ∫ d^dk/(2π)^d Σ f_nm Im[…] δ_E(ε_m − ε_n − ω) has units
L^{3−d}/E (r ~ L, r_{;a} ~ L², δ_E ~ 1/E, d^dk ~ L^{−d}). Restoring constants, δ(ω) = ħ δ_E turns
πe³/2ħ² into πe³/2ħ, so in SI

    σ_bulk [A/V²] = σ_int / t_⊥ × e³ / (ħ · E_J)          (= σ_int/t_⊥ × e²/ħ = 2.434e−4 A/V² for eV)

with t_⊥ the transverse measure in L^{3−d} (1 in 3D; layer thickness in 2D; cross-section area in
1D: ``lattice.transverse_measure``, or ``transverse=``) and E_J the joules per energy unit. L cancels.
The per-layer (2D) or per-chain (1D) value is σ_bulk × t_⊥ in A·m/V² or A·m²/V². For dimensionless
energy units (e.g. ``t1``) σ is returned as σ_int/t_⊥ in e³/(ħ·E) and the units string says so.

**Second method.** :func:`shift_conductivity_shift_vector` evaluates, for linear polarisation b = c,

    σ^{abb}(ω) = −(π e³/ħ²) ∫ d^dk/(2π)^d Σ_{n,m} f_nm R^{a,b}_mn |r^b_nm|² δ(ω_mn − ω),
    R^{a,b}_mn = ∂_a φ^b_mn − (A^a_mm − A^a_nn),     r^b_mn = |r^b_mn| e^{iφ^b_mn},  A^a_nn = i⟨u_n|∂_a u_n⟩,

from a gauge-invariant central difference of eigenvectors (:func:`shift_vector`); it shares only
v^b (for r^b) with the sum rule, not the generalised derivative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend as _backend
from ..backend import follows_inputs
from ..lattice import kmesh as _kmesh
from ..lattice import parse_nk
from ..model import TightBinding
from ..spectrum import checked_kmesh, eigensystem, resolve_mu
from ..units import ELEMENTARY_CHARGE, HBAR, energy_in_j
from .interband import DEFAULT_DEGEN_THRESH, DEFAULT_SC_ETA, InterbandTerms
from .response import (  # noqa: F401  (re-exported: the names' historical home)
    AXES,
    DEFAULT_INTERBAND,
    SMEARINGS,
    Component,
    InterbandSettings,
    check_current_direction,
    check_kfrac,
    check_settings,
    component_name,
    energy_in_ev,
    omega_array,
    pair_difference,
    parse_components,
    per_layer,
    resolve_components,
    smearing_function,
    spectral_response,
    transitions_sum,
    transverse_measure,
    transverse_unit,
)


# ------------------------------------------------------------------------------------ integrand
def shift_integrand(terms: InterbandTerms, components: Sequence[Component], /):
    """I^{abc}_nm(k) = Im[ r^b_mn r^c_{nm;a} + r^c_mn r^b_{nm;a} ], shape (ncomp, nk, n, n), units L³.

    ``terms`` holds the band-basis blocks of one k-chunk (:func:`~hamdesign.observables.interband.interband_terms`:
    degenerate subspaces, ``sc_eta``, position matrix). Indexed [c, k, n, m]; f_nm and δ(ω_mn − ω) are
    applied by the caller. Each entry is gauge dependent inside a degenerate subspace; its sum over
    the subspace pair (N, M) is not.
    """
    xp = _backend.current().xp
    out = []
    for a, b, c in components:
        rb_t, rc_t = xp.matrix_transpose(terms.r(b)), xp.matrix_transpose(terms.r(c))  # r_mn at [n, m]
        term = rb_t * terms.generalized_derivative(a, c) + rc_t * terms.generalized_derivative(a, b)
        out.append(xp.imag(term))
    return xp.stack(out, axis=0)


#: Evaluate every requested component from shared products (:func:`shift_tensor_integrand`); False
#: computes each component on its own with :func:`shift_integrand`, the general path it is tested against.
SHARED_TENSOR = True


def shift_tensor_integrand(terms: InterbandTerms, components: Sequence[Component], /):
    """The :func:`shift_integrand` of every component at once, from products shared between components.

    With D^a = v^a/(ε̄_m − ε̄_n), D̃^a its ``sc_eta``-broadened form (both anti-Hermitian) and the
    Hermitian v^c_bd (subspace blocks) and v^c_off (the rest), the commutators of
    :mod:`~hamdesign.observables.interband` are [X, Y] = XY + (XY)† for X Hermitian and Y
    anti-Hermitian, so the bracket of r^c_{nm;a}

        B^{ac} = w^{ac} + P^{ca} + P^{ac} + Q^{ca} + h.c. of the three products,
        P^{ca} = v^c_bd D^a,   Q^{ca} = v^c_off D̃^a,

    needs one matrix product per ordered (c, a) for P and for Q: 18 for the whole tensor instead of
    54 for its nine (a, c) blocks one at a time. Every component (a, b, c) then reads
    r^c_{nm;a} = (i/(ε̄_m − ε̄_n)) B^{ac} and r^b = i D^b element by element. The full position matrix
    adds terms this form does not cover: it falls back to :func:`shift_integrand` (still one pass).
    """
    if terms.abar is not None or not SHARED_TENSOR:
        return shift_integrand(terms, components)
    be = _backend.current()
    xp = be.xp

    def dagger(x):
        return xp.conj(xp.matrix_transpose(x))

    products: dict = {}
    off_blocks: dict = {}

    def product(kind, c, a):  # P^{ca} = v^c_bd D^a or Q^{ca} = v^c_off D̃^a, each computed once
        key = (kind, c, a)
        if key not in products:
            if kind == "P":
                left, right = terms.vbd(c), terms.D(a)
            else:
                if c not in off_blocks:
                    off_blocks[c] = terms.outside(terms.v[c])
                left, right = off_blocks[c], terms.Dt(a)
            products[key] = be.matmul(left, right)
        return products[key]

    derivatives: dict = {}

    def derivative(a, c):  # (ε̄_m − ε̄_n) r^c_{nm;a} / i = B^{ac}, then times 1/(ε̄_m − ε̄_n)
        if (a, c) not in derivatives:
            commutators = product("P", c, a) + product("P", a, c) + product("Q", c, a)
            derivatives[(a, c)] = terms.inv * (terms.w[(a, c)] + commutators + dagger(commutators))
        return derivatives[(a, c)]

    out = []
    for a, b, c in components:
        # Im[r^b_mn r^c_{nm;a}] with r^b_mn = i D^b_mn and r^c_{nm;a} = i (inv B^{ac})_nm: −Im[D^b_mn (inv B^{ac})_nm]
        term = xp.matrix_transpose(terms.D(b)) * derivative(a, c) + xp.matrix_transpose(terms.D(c)) * derivative(a, b)
        out.append(-xp.imag(term))
    return xp.stack(out, axis=0)


# ------------------------------------------------------------------------------------ units
def shift_si_factor(model: TightBinding) -> float | None:
    """e³/(ħ·E_J): A/V² per (internal σ / t_⊥) in 1/energy-unit; ``None`` for dimensionless energies."""
    joules = energy_in_j(model.energy_unit)
    if joules is None:
        return None
    return ELEMENTARY_CHARGE**3 / (HBAR * joules)


def shift_units(model: TightBinding) -> str:
    return "A/V^2" if shift_si_factor(model) is not None else f"e^3/(hbar*{model.energy_unit}) (dimensionless energy unit)"


# ------------------------------------------------------------------------------------ main API
@dataclass(frozen=True)
class ShiftConductivity:
    """σ^{abc}(ω), bulk, with the conventions needed to read it.

    ``sigma`` is a backend array (ncomp, nomega): A/V² when the model's energy unit is physical.
    """

    sigma: object
    components: tuple[Component, ...]
    omega: np.ndarray
    units: str
    transverse_measure: float
    transverse_unit: str
    dim: int


@follows_inputs
def shift_conductivity(
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
    transverse: float | None = None,
    sc_eta: float = DEFAULT_SC_ETA,
    degen_thresh: float = DEFAULT_DEGEN_THRESH,
    position_matrix: str = "diagonal",
    scissor: float = 0.0,
    chunk: int | None = None,
) -> ShiftConductivity:
    """Shift conductivity σ^{abc}(ω), bulk, in A/V² (the physical, real part; PHYSICS.md §3).

    .. math::

        σ^{abc}(ω) = \\frac{π e^3}{2ħ^2} ∫\\frac{d^dk}{(2π)^d} Σ_{n,m} f_{nm}
                     \\mathrm{Im}[r^b_{mn} r^c_{nm;a} + r^c_{mn} r^b_{nm;a}] δ(ω_{mn} − ω)

    with the tight-binding sum rule for r^b_{nm;a} (module docstring) and J^a = 2σ^{abc}E^b(ω)E^c(−ω)
    for E(t) = E(ω)e^{−iωt} + c.c.

    Parameters
    ----------
    kfrac
        Fractional k-mesh (nk, dim), NumPy; the integral is the mesh average times 1/Ω_cell.
    omega
        Photon energies ħω in the model's energy unit (scalar or 1D), NumPy.
    components
        ``"xyy"``, ``"xxx,xyy"``, ``"all"`` or a list of (a, b, c) triples (0 = x, 1 = y, 2 = z).
        a (the current) must lie along the periodic directions.
    beta, mu, filling
        1/k_BT (1/energy unit); give ``mu`` (energy) or ``filling`` (fraction of bands occupied).
    eta, smearing
        Width (energy unit) and shape (``"gaussian"``, ``"lorentzian"``) of δ(ε_m − ε_n − ħω).
    transverse
        Layer thickness (2D) or cross-section area (1D) in length units, default
        ``lattice.transverse_measure``; σ_bulk = σ_sheet / thickness (2D), σ_chain / area (1D).
    sc_eta, degen_thresh, position_matrix, scissor
        Broadening of the virtual-transition denominators (energy units; 0: exact sum rule),
        degeneracy threshold (energy units), ``"diagonal"`` or ``"full"`` position matrix, and the
        scissor shift of the subspaces above μ (energy units); :class:`InterbandSettings`.
    chunk
        k-points per batch (default: from the memory budget, :mod:`hamdesign.spectrum`).

    Returns
    -------
    ShiftConductivity
        ``.sigma`` (ncomp, nomega) real backend array; differentiable w.r.t. ``params`` (also
        through μ at fixed filling).
    """
    check_settings(beta, eta, smearing)
    interband = InterbandSettings(sc_eta, degen_thresh, position_matrix, scissor)
    interband.check(model)
    comps = resolve_components(model, components)
    w = omega_array(omega)
    t_perp = transverse_measure(model, transverse)
    settings = {
        "beta": beta,
        "mu": mu,
        "filling": filling,
        "eta": eta,
        "smearing": smearing,
        "chunk": chunk,
        "interband": interband,
    }
    total = spectral_response(model, params, kfrac, w, integrand=shift_tensor_integrand, order=2, components=comps, **settings)
    factor = shift_si_factor(model) or 1.0
    sigma = total * float(0.5 * np.pi * factor / t_perp)
    return ShiftConductivity(
        sigma=sigma,
        components=tuple(comps),
        omega=w,
        units=shift_units(model),
        transverse_measure=t_perp,
        transverse_unit=transverse_unit(model),
        dim=model.dim,
    )


def shift_report(
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
    transverse: float | None = None,
    interband: InterbandSettings = DEFAULT_INTERBAND,
) -> dict:
    """Forward evaluation for people and files: σ^{abc}(ω) bulk and per layer/chain, with conventions."""
    be = _backend.current()
    kfrac = checked_kmesh(model, nk)
    settings = {"beta": beta, "mu": mu, "filling": filling, "eta": eta, "smearing": smearing, "transverse": transverse}
    res = shift_conductivity(model, params, kfrac, omega, components=components, **settings, **interband.describe())
    bulk = np.asarray(be.to_numpy(res.sigma), dtype=float)
    key, per, per_unit = per_layer(model, bulk, res.transverse_measure)
    if shift_si_factor(model) is None:  # σ is not in A/V², so neither is the per-layer value
        per, per_unit = None, None
    report = {
        "observable": "shift",
        "model": model.name,
        "components": [component_name(c) for c in res.components],
        "omega": res.omega.tolist(),
        "omega_unit": model.energy_unit,
        "omega_ev": energy_in_ev(model, res.omega),
        "sigma": bulk.tolist(),
        "transverse_measure": None if model.dim == 3 else res.transverse_measure,
        "transverse_measure_unit": None if model.dim == 3 else res.transverse_unit,
        "transverse_measure_meaning": {3: None, 2: "layer thickness", 1: "cross-section area"}[model.dim],
        "units": {"sigma": res.units, "omega": model.energy_unit, "beta": f"1/{model.energy_unit}", "eta": model.energy_unit},
        "normalisation": (
            "J^a = 2 sigma^{abc}(0;w,-w) E^b(w) E^c(-w), E(t) = E(w) exp(-iwt) + c.c.; "
            "sigma = (pi e^3/2hbar^2) int d^dk/(2pi)^d sum f_nm Im[r^b_mn r^c_nm;a + r^c_mn r^b_nm;a] delta(w_mn - w) "
            "(Ibanez-Azpiroz, Tsirkin, Souza PRB 97, 245143); bulk = per-layer / thickness (2D) or per-chain / area (1D)"
        ),
        "smearing": smearing,
        "eta": float(eta),
        **interband.describe(),
        "beta": float(beta),
        "mu": mu,
        "filling": filling,
        "nk": list(parse_nk(nk, model.dim)),
        "backend": be.name,
    }
    report["units"].update({"sc_eta": model.energy_unit, "degen_thresh": model.energy_unit, "scissor": model.energy_unit})
    if key is not None:
        report[key] = None if per is None else per.tolist()
        report["units"][key] = per_unit
    return report


# ------------------------------------------------------------------------------------ shift vector
def _cartesian_step(model: TightBinding, a: int, dk: float) -> np.ndarray:
    """Fractional k-step δf with δf · B = dk ê_a (ê_a in the periodic plane)."""
    check_current_direction(model, a)
    return dk * model.lattice.vectors[: model.dim, a] / (2 * np.pi)


def shift_vector(model: TightBinding, params, kfrac, /, *, component_a: int, component_b: int, dk: float):
    """Shift vector R^{a,b}_mn(k) and |r^b_nm(k)|² by gauge-invariant central differences (NumPy, forward only).

    With r^b_mn = |r^b_mn| e^{iφ^b_mn} and A^a_nn = i⟨u_n|∂_a u_n⟩ (tight-binding gauge),

        R^{a,b}_mn = ∂_a φ^b_mn − (A^a_mm − A^a_nn)
                   ≈ arg[ r^b_mn(k+) r^b_mn(k−)* ⟨u_n(k−)|u_n(k+)⟩* ⟨u_m(k−)|u_m(k+)⟩ ] / (2 dk),

    k± = k ± dk ê_a (Cartesian; dk in inverse length units). The product is invariant under
    u_n → e^{iα_n(k)} u_n, since ⟨u_n(k−)|u_n(k+)⟩ ≈ exp(−2i dk A^a_nn); the error is O(dk²).
    Sign: Im[r^b_mn r^b_{nm;a}] = −|r^b_nm|² R^{a,b}_mn.

    Returns ``(energies, R, r2)``, NumPy: energies (nk, n); R[k, m, n] = R^{a,b}_mn (length);
    r2[k, n, m] = |r^b_nm|² (length²). Bands are matched by energy order, so they must not cross
    within ±dk.
    """
    be = _backend.current()
    kfrac = check_kfrac(model, kfrac)
    step = _cartesian_step(model, component_a, dk)

    def at(k):
        energies, states, vb, _ = eigensystem(model, params, k, order=1, components=(component_b,))
        e, u, v = (np.asarray(be.to_numpy(x)) for x in (energies, states, vb[component_b]))
        gaps = e[:, :, None] - e[:, None, :]
        off = ~np.eye(e.shape[1], dtype=bool)
        r = np.where(off, v / (1j * np.where(off, gaps, 1.0)), 0.0)  # r_nm = v_nm / (i ω_nm)
        return e, u, r

    e0, _, r0 = at(kfrac)
    _, u_minus, r_minus = at(kfrac - step)
    _, u_plus, r_plus = at(kfrac + step)
    overlap = np.sum(np.conj(u_minus) * u_plus, axis=1)  # ⟨u_n(k−)|u_n(k+)⟩, (nk, n)
    # array index [k, m, n]: r_mn = r[k, m, n]
    link = r_plus * np.conj(r_minus) * np.conj(overlap)[:, None, :] * overlap[:, :, None]
    R = np.angle(link) / (2 * dk)
    return e0, R, np.abs(r0) ** 2


def default_dk(model: TightBinding, sizes: Sequence[int]) -> float:
    """A tenth of the smallest mesh spacing |b_i|/N_i: a step that shrinks with the k-grid."""
    b = model.lattice.periodic_reciprocal
    return 0.1 * min(float(np.linalg.norm(b[i])) / sizes[i] for i in range(model.dim))


@follows_inputs
def shift_conductivity_shift_vector(
    model: TightBinding,
    params,
    nk,
    omega,
    /,
    *,
    component_a: int,
    component_b: int,
    beta: float,
    mu: float | None = None,
    filling: float | None = None,
    eta: float,
    smearing: str = "gaussian",
    transverse: float | None = None,
    dk: float | None = None,
) -> np.ndarray:
    """σ^{abb}(ω) from the shift vector (independent check of :func:`shift_conductivity`; NumPy).

        σ^{abb}(ω) = −(π e³/ħ²) ∫ d^dk/(2π)^d Σ_{n,m} f_nm R^{a,b}_mn |r^b_nm|² δ(ω_mn − ω)

    on the Γ-centred mesh ``nk`` with R from :func:`shift_vector` (step ``dk``, default
    :func:`default_dk`). Same units, smearing and transverse normalisation as
    :func:`shift_conductivity`; returns (nomega,) NumPy. Non-degenerate bands only.
    """
    check_settings(beta, eta, smearing)
    sizes = parse_nk(nk, model.dim)
    kfrac = _kmesh(sizes, model.dim)
    w = omega_array(omega)
    step = default_dk(model, sizes) if dk is None else float(dk)
    energies, R, r2 = shift_vector(model, params, kfrac, component_a=component_a, component_b=component_b, dk=step)
    with _backend.use_backend("numpy"):
        mu_value = float(np.asarray(resolve_mu(energies, beta=beta, mu=mu, filling=filling)))
    occ = 0.5 * (1.0 - np.tanh(0.5 * beta * (energies - mu_value)))
    f_nm = occ[:, :, None] - occ[:, None, :]
    weight = -f_nm * np.swapaxes(R, -1, -2) * r2  # [k, n, m]: −f_nm R_mn |r_nm|²
    omega_mn = energies[:, None, :] - energies[:, :, None]
    x = omega_mn[..., None] - w
    if smearing == "gaussian":
        delta = np.exp(-((x / eta) ** 2)) / (np.sqrt(np.pi) * eta)
    else:
        delta = (eta / np.pi) / (x**2 + eta**2)
    total = np.einsum("knm,knmw->w", weight, delta)
    factor = shift_si_factor(model) or 1.0
    return np.pi * total / (len(kfrac) * model.lattice.cell_measure) * factor / transverse_measure(model, transverse)


__all__ = [
    "InterbandSettings",
    "ShiftConductivity",
    "check_current_direction",
    "component_name",
    "parse_components",
    "shift_conductivity",
    "shift_conductivity_shift_vector",
    "shift_integrand",
    "shift_report",
    "shift_si_factor",
    "shift_vector",
    "transitions_sum",
]
