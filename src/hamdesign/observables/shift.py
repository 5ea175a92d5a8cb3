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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend as _backend
from ..backend import follows_inputs
from ..errors import ParameterError
from ..lattice import kmesh as _kmesh
from ..lattice import parse_nk
from ..model import TightBinding
from ..spectrum import (
    DEFAULT_CHUNK_BYTES,
    MATRICES_PER_K,
    bands,
    check_memory,
    checked_kmesh,
    chunk_size,
    eigensystem,
    fermi,
    k_chunks,
    sequenced,
)
from ..units import ELEMENTARY_CHARGE, HBAR, energy_in_j, length_in_m
from .hall import resolve_mu
from .interband import (
    DEFAULT_DEGEN_THRESH,
    DEFAULT_SC_ETA,
    InterbandTerms,
    check_interband_settings,
    interband_terms,
)

AXES = "xyz"
Component = tuple[int, int, int]

SMEARINGS = ("gaussian", "lorentzian")


# ------------------------------------------------------------------------------------ components
def parse_components(spec: str | Iterable, /, *, dim: int = 3) -> list[Component]:
    """Cartesian index triples (a, b, c) from ``"xyy"``, ``"xxx,xyy"``, ``"all"`` or a list.

    ``"all"`` means every a, b, c < ``dim`` with b ≤ c (σ^{abc} = σ^{acb}, so the others repeat).
    A list may hold strings (``"xyy"``) or integer triples (``(0, 1, 1)``).
    """
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "all":
            return [(a, b, c) for a in range(dim) for b in range(dim) for c in range(b, dim)]
        items: list = [s.strip() for s in text.replace(";", ",").replace(" ", ",").split(",") if s.strip()]
    else:
        items = list(spec)
    if not items:
        raise ParameterError("no tensor components given; use e.g. 'xyy', 'xxx,xyy' or 'all'")
    out: list[Component] = []
    for item in items:
        if isinstance(item, str):
            if len(item) != 3 or any(ch not in AXES for ch in item.lower()):
                raise ParameterError(f"tensor component {item!r} must be three letters from x, y, z (e.g. 'xyy')")
            triple = tuple(AXES.index(ch) for ch in item.lower())
        else:
            try:
                triple = tuple(int(i) for i in item)
            except (TypeError, ValueError) as err:
                raise ParameterError(f"tensor component {item!r} must be a string like 'xyy' or three integers") from err
            if len(triple) != 3 or any(not 0 <= i <= 2 for i in triple):
                raise ParameterError(f"tensor component {item!r} must be three Cartesian indices 0..2")
        out.append(triple)  # type: ignore[arg-type]
    return out


def component_name(component: Component) -> str:
    """``(0, 1, 1)`` → ``"xyy"``."""
    return "".join(AXES[i] for i in component)


def check_current_direction(model: TightBinding, a: int) -> None:
    """A DC current flows only along periodic directions: e_a must lie in span(a_1 … a_d)."""
    vecs = model.lattice.vectors[: model.dim]
    proj = vecs.T @ np.linalg.solve(vecs @ vecs.T, vecs)
    e = np.eye(3)[a]
    if np.linalg.norm(proj @ e - e) > 1e-9:
        raise ParameterError(
            f"current direction {AXES[a]} is not along the periodic directions of the {model.dim}D model {model.name}; "
            "a DC current (the first index a of σ^{abc}) must lie in the span of the lattice vectors"
        )


def _resolve_components(model: TightBinding, components) -> list[Component]:
    comps = parse_components(components, dim=model.dim) if isinstance(components, str) else parse_components(components)
    for a, _, _ in comps:
        check_current_direction(model, a)
    return comps


# ------------------------------------------------------------------------------------ helpers
def smearing_function(x, /, *, eta: float, kind: str):
    """Normalised δ(x) of width η: Gaussian exp(−x²/η²)/(√π η) or Lorentzian (η/π)/(x² + η²)."""
    xp = _backend.current().xp
    eta = float(eta)  # Python scalars only: strict array-API namespaces refuse NumPy scalars
    if kind == "gaussian":
        return xp.exp(-(x * x) / (eta * eta)) / float(np.sqrt(np.pi) * eta)
    if kind == "lorentzian":
        return (eta / np.pi) / (x * x + eta * eta)
    raise ParameterError(f"smearing must be one of {', '.join(SMEARINGS)}, got {kind!r}")


def _check_settings(beta: float, eta: float, smearing: str) -> None:
    # β may be a traced value under jit; check it only when it is a concrete number
    if isinstance(beta, (int, float, np.integer, np.floating)) and not 0 < beta < float("inf"):
        raise ParameterError(f"beta must be positive and finite, got {beta}")
    if not eta > 0:
        raise ParameterError(f"eta (broadening) must be positive, got {eta}")
    if smearing not in SMEARINGS:
        raise ParameterError(f"smearing must be one of {', '.join(SMEARINGS)}, got {smearing!r}")


def _omega_array(omega) -> np.ndarray:
    w = np.atleast_1d(np.asarray(omega, dtype=float))
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ParameterError("omega must be a finite number or a 1D array of photon energies")
    return w


def pair_difference(d, /):
    """D_nm = d_n − d_m for a batch of vectors d (..., n) → (..., n, n)."""
    xp = _backend.current().xp
    return xp.expand_dims(d, axis=-1) - xp.expand_dims(d, axis=-2)


#: Bytes of one (transitions × ω) block of δ(ε_m − ε_n − ω): small enough to stay in cache. Torch's
#: CPU allocator hands large blocks back to the OS, so every 100 MB block was fresh memory to fault
#: in; with 4 MiB blocks a 10⁴-k hBN spectrum ran 3–4× faster on torch and NumPy, 2.6× under jit.
TRANSITIONS_CHUNK_BYTES = 4 * 2**20
#: Under ``jit`` every block is a copy of the computation in the traced graph: at most this many.
MAX_TRACED_TRANSITION_CHUNKS = 16


def transitions_sum(weights, energies, omega: np.ndarray, /, *, eta: float, smearing: str, chunk: int | None = None):
    """S[c, j] = Σ_{k,n,m} W[c,k,n,m] δ(ε_m − ε_n − ω_j), evaluated in k-chunks with one matmul each.

    ``weights`` (ncomp, nk, n, n) indexed [c, k, n, m]; ``energies`` (nk, n); returns (ncomp, nomega).
    The n = m terms are left out: every caller's weight carries f_nm = f_n − f_m, which is 0 there.
    The δ of width η is evaluated as its shape in x/η and normalised once at the end, which saves
    two of six passes over the (transitions × ω) block, the dominant cost of a spectrum.
    """
    be = _backend.current()
    xp = be.xp
    ncomp, nk, n, _ = weights.shape
    eta = float(eta)
    scaled_omega = xp.reshape(be.asarray(np.asarray(omega, dtype=float) / eta), (1, -1))
    pairs = be.asarray(np.flatnonzero(~np.eye(n, dtype=bool))) if n > 1 else None
    npair = max(n * (n - 1), 1)
    size = chunk or max(1, int(TRANSITIONS_CHUNK_BYTES // (npair * len(omega) * 8)))
    if chunk is None and be.can_compile:
        size = max(size, -(-nk // MAX_TRACED_TRANSITION_CHUNKS))
    total = None
    for start in range(0, nk, size):
        stop = min(start + size, nk)
        e = energies[start:stop, ...]
        omega_mn = xp.reshape(-pair_difference(e), (stop - start, n * n))  # ε_m − ε_n at [k, n·n + m]
        w = xp.reshape(weights[:, start:stop, ...], (ncomp, stop - start, n * n))
        if pairs is not None:
            omega_mn, w = xp.take(omega_mn, pairs, axis=1), xp.take(w, pairs, axis=2)
        shape = _smearing_shape(xp.reshape(omega_mn, (-1, 1)) * (1.0 / eta) - scaled_omega, kind=smearing)
        part = xp.matmul(xp.reshape(w, (ncomp, -1)), shape)
        total = part if total is None else total + part
    return total * _smearing_norm(eta, smearing)


def _smearing_shape(u, /, *, kind: str):
    """δ(x) η / norm as a function of u = x/η: exp(−u²) (Gaussian) or 1/(1 + u²) (Lorentzian)."""
    xp = _backend.current().xp
    if kind == "gaussian":
        return xp.exp(-(u * u))
    if kind == "lorentzian":
        return 1.0 / (u * u + 1.0)
    raise ParameterError(f"smearing must be one of {', '.join(SMEARINGS)}, got {kind!r}")


def _smearing_norm(eta: float, kind: str) -> float:
    """The factor turning :func:`_smearing_shape` into :func:`smearing_function`: 1/(√π η) or 1/(π η)."""
    return float(1.0 / (np.sqrt(np.pi) * eta) if kind == "gaussian" else 1.0 / (np.pi * eta))


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


# ------------------------------------------------------------------------------------ units
def transverse_measure(model: TightBinding, transverse: float | None = None) -> float:
    """t_⊥: 1 in 3D, the layer thickness (2D) or cross-section area (1D), model length units."""
    if model.dim == 3:
        if transverse is not None:
            raise ParameterError("a 3D model has no transverse extent to set (thickness / cross-section)")
        return 1.0
    if transverse is None:
        return model.lattice.transverse_measure
    if not transverse > 0:
        raise ParameterError(f"thickness / cross-section must be positive, got {transverse}")
    return float(transverse)


def transverse_unit(model: TightBinding) -> str:
    return {3: "", 2: model.length_unit, 1: f"{model.length_unit}^2"}[model.dim]


def shift_si_factor(model: TightBinding) -> float | None:
    """e³/(ħ·E_J): A/V² per (internal σ / t_⊥) in 1/energy-unit; ``None`` for dimensionless energies."""
    joules = energy_in_j(model.energy_unit)
    if joules is None:
        return None
    return ELEMENTARY_CHARGE**3 / (HBAR * joules)


def shift_units(model: TightBinding) -> str:
    return "A/V^2" if shift_si_factor(model) is not None else f"e^3/(hbar*{model.energy_unit}) (dimensionless energy unit)"


def _per_layer(model: TightBinding, bulk: np.ndarray, t_perp: float) -> tuple[str | None, np.ndarray | None, str | None]:
    """(key, value, unit) of the per-layer (2D) or per-chain (1D) quantity: bulk × t_⊥ in metres."""
    if model.dim == 3:
        return None, None, None
    metres = length_in_m(model.length_unit)
    key = "sigma_layer" if model.dim == 2 else "sigma_chain"
    if metres is None:
        return key, None, None
    return key, bulk * t_perp * metres ** (3 - model.dim), ("A m/V^2" if model.dim == 2 else "A m^2/V^2")


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


def _kfrac(model: TightBinding, kfrac) -> np.ndarray:
    k = np.asarray(kfrac, dtype=float)
    if k.ndim == 1 and model.dim == 1:
        k = k[:, None]
    if k.ndim != 2 or k.shape[1] != model.dim or k.shape[0] == 0:
        raise ParameterError(f"kfrac must be fractional k-points of shape (nk, {model.dim}), got {k.shape}")
    return k


@dataclass(frozen=True)
class InterbandSettings:
    """The knobs of the interband matrix elements (docs/theory-shift.md).

    ``sc_eta``: broadening of virtual-transition denominators (energy units, 0: exact sum rule);
    ``degen_thresh``: bands closer than this form one degenerate subspace; ``position_matrix``:
    ``"diagonal"`` (tight-binding convention) or ``"full"`` (Wannier position matrix of a _tb.dat);
    ``scissor``: rigid shift Δ of every subspace above μ in the transition energies (energy units).
    """

    sc_eta: float = DEFAULT_SC_ETA
    degen_thresh: float = DEFAULT_DEGEN_THRESH
    position_matrix: str = "diagonal"
    scissor: float = 0.0

    def check(self, model: TightBinding) -> bool:
        """Validate against ``model``; True when the full position matrix is used."""
        return check_interband_settings(
            model, sc_eta=self.sc_eta, degen_thresh=self.degen_thresh, position_matrix=self.position_matrix, scissor=self.scissor
        )

    def describe(self) -> dict:
        return {
            "sc_eta": float(self.sc_eta),
            "degen_thresh": float(self.degen_thresh),
            "position_matrix": self.position_matrix,
            "scissor": float(self.scissor),
        }


#: The defaults of every knob (a shared immutable value, usable as an argument default).
DEFAULT_INTERBAND = InterbandSettings()


def chunk_terms(model: TightBinding, params, kc, settings: InterbandSettings, /, *, order: int, carts):
    """(energies, InterbandTerms) of one k-chunk, with the position matrix when ``settings`` ask for it."""
    from ..model import berry_connection_terms

    energies, states, vb, wb = eigensystem(model, params, kc, order=order, components=carts)
    connection = berry_connection_terms(model, kc, components=carts) if settings.position_matrix == "full" else None
    terms = interband_terms(
        energies, states, vb, wb, sc_eta=settings.sc_eta, degen_thresh=settings.degen_thresh, connection=connection
    )
    return energies, terms


def transition_levels(terms: InterbandTerms, mu_value, scissor: float):
    """Subspace energies for the δ-function: ε̄_n, plus the scissor Δ where ε̄_n > μ."""
    if scissor == 0:
        return terms.levels
    be = _backend.current()
    cut = float(mu_value) if isinstance(mu_value, (int, float, np.number)) else be.stop_gradient(mu_value)
    above = be.xp.astype(be.stop_gradient(terms.levels) > cut, be.xp.float64)
    return terms.levels + float(scissor) * above


def _pair_response(
    model: TightBinding,
    params,
    kfrac,
    omega: np.ndarray,
    *,
    integrand: Callable,
    order: int,
    comps: Sequence[Component],
    beta: float,
    mu: float | None,
    filling: float | None,
    eta: float,
    smearing: str,
    chunk: int | None,
    interband: InterbandSettings,
):
    """Σ_k Σ_nm f_nm I_nm δ(ε̄_m − ε̄_n − ω) / (N_k Ω_cell): the shared Fermi-sea / smearing machinery."""
    be = _backend.current()
    xp = be.xp
    kfrac = _kfrac(model, kfrac)
    nk, n = len(kfrac), model.nband
    ncomp = len(comps)
    check_memory(nk, n, per_k_arrays=1)
    carts = tuple(sorted({i for comp in comps for i in comp}))
    delta_chunk = chunk
    if chunk is None:
        per_k = (MATRICES_PER_K[order] + 8 * ncomp + 6 * len(carts) ** 2) * n * n * 16
        chunk = max(1, int(DEFAULT_CHUNK_BYTES // per_k))
        chunk = min(chunk, chunk_size(n, order=order))
    mu_value = chemical_potential_on_mesh(model, params, kfrac, beta=beta, mu=mu, filling=filling)
    total = None
    previous = mu_value if filling is not None else None
    for kc in k_chunks(kfrac, chunk):  # only one chunk's matrices are alive at a time
        energies, terms = chunk_terms(model, sequenced(params, previous), kc, interband, order=order, carts=carts)
        previous = energies
        occ = fermi(terms.levels - mu_value, beta)
        weights = xp.expand_dims(pair_difference(occ), axis=0) * integrand(terms, comps)
        levels = transition_levels(terms, mu_value, interband.scissor)
        part = transitions_sum(weights, levels, omega, eta=eta, smearing=smearing, chunk=delta_chunk)
        total = part if total is None else total + part
    return total / float(nk * model.lattice.cell_measure)


def chemical_potential_on_mesh(model: TightBinding, params, kfrac, /, *, beta, mu: float | None, filling: float | None):
    """μ as given, or at ``filling`` from the band energies of the whole mesh (a chunked, energies-only pass)."""
    if filling is None:
        return resolve_mu(None, beta=beta, mu=mu, filling=None)
    return resolve_mu(bands(model, params, kfrac), beta=beta, mu=mu, filling=filling)


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
    _check_settings(beta, eta, smearing)
    interband = InterbandSettings(sc_eta, degen_thresh, position_matrix, scissor)
    interband.check(model)
    comps = _resolve_components(model, components)
    w = _omega_array(omega)
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
    total = _pair_response(model, params, kfrac, w, integrand=shift_integrand, order=2, comps=comps, **settings)
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


def _energy_in_ev(model: TightBinding, values: np.ndarray) -> list[float] | None:
    joules = energy_in_j(model.energy_unit)
    return None if joules is None else (values * joules / ELEMENTARY_CHARGE).tolist()


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
    key, per, per_unit = _per_layer(model, bulk, res.transverse_measure)
    if shift_si_factor(model) is None:  # σ is not in A/V², so neither is the per-layer value
        per, per_unit = None, None
    report = {
        "observable": "shift",
        "model": model.name,
        "components": [component_name(c) for c in res.components],
        "omega": res.omega.tolist(),
        "omega_unit": model.energy_unit,
        "omega_ev": _energy_in_ev(model, res.omega),
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
    kfrac = _kfrac(model, kfrac)
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
    _check_settings(beta, eta, smearing)
    sizes = parse_nk(nk, model.dim)
    kfrac = _kmesh(sizes, model.dim)
    w = _omega_array(omega)
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
