"""The band-pair response engine shared by the shift current, the injection current and the photocurrent.

Every second-order optical response here is a Fermi-sea sum over band pairs,

    R^{(c)}(ω) = (1/(N_k Ω_cell)) Σ_k Σ_{n≠m} f_nm I^{(c)}_nm(k) δ(ε̄_m − ε̄_n − ω),

with f_nm = f(ε̄_n − μ) − f(ε̄_m − μ) and an observable-specific integrand I built from the
band-basis blocks of :mod:`~hamdesign.observables.interband`. This module owns everything except I:

- **k-chunks**: the mesh is walked in chunks sized from the memory budget, so only one chunk's
  matrices are alive at a time, whatever the number of components, ω or k-points
  (:func:`pair_chunks`); each chunk's ``eigh`` is ordered after the previous one
  (:func:`hamdesign.spectrum.sequenced`), and after μ when μ is found at a filling;
- **the eigensystem and its band-basis blocks**, once per chunk for every requested component,
  with degenerate subspaces treated covariantly, the ``sc_eta`` broadening, the full position
  matrix and the scissor (:class:`InterbandSettings`, :func:`chunk_terms`, :func:`transition_levels`);
- **occupations** f_nm, μ given or solved at a filling (:func:`chemical_potential_on_mesh`);
- **the δ(ω) contraction**: the weights f_nm I_nm of every component of a chunk are contracted with
  the (transitions × ω) block of δ in one matrix product (:func:`transitions_sum`), over the
  pairs that can contribute only (:func:`contributing_pairs`);
- the Cartesian components, the transverse measure of 1D/2D models and the per-layer numbers.

An observable is then a formula (``integrand(terms, components) -> (ncomp, nk, n, n)``), a unit
factor and a frozen result type; :func:`spectral_response` evaluates it on an ω-grid and
:func:`pair_chunks` gives a grid-free observable (the photocurrent) the same per-chunk data.
docs/extending.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend as _backend
from ..errors import ParameterError
from ..model import TightBinding
from ..spectrum import (
    DEFAULT_CHUNK_BYTES,
    MATRICES_PER_K,
    bands,
    check_memory,
    chunk_budget,
    chunk_size,
    chunk_threads,
    eigensystem,
    fermi,
    k_chunks,
    map_chunks,
    require_positive_beta,
    resolve_mu,
    sequenced,
)
from ..units import ELEMENTARY_CHARGE, energy_in_j, length_in_m
from .interband import (
    DEFAULT_DEGEN_THRESH,
    DEFAULT_SC_ETA,
    InterbandTerms,
    check_interband_settings,
    interband_terms,
)

AXES = "xyz"
Component = tuple[int, int, int]
#: An observable's formula: the band-pair integrand I[c, k, n, m] of every component of one chunk.
Integrand = Callable[[InterbandTerms, Sequence[Component]], object]

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


def resolve_components(model: TightBinding, components) -> list[Component]:
    """:func:`parse_components` (``"all"`` up to the model's dimension), current directions checked."""
    comps = parse_components(components, dim=model.dim) if isinstance(components, str) else parse_components(components)
    for a, _, _ in comps:
        check_current_direction(model, a)
    return comps


def cartesian_indices(components: Iterable[Component]) -> tuple[int, ...]:
    """The Cartesian directions any of ``components`` needs, sorted."""
    return tuple(sorted({i for comp in components for i in comp}))


# ------------------------------------------------------------------------------------ settings
def check_settings(beta: float, eta: float, smearing: str) -> None:
    """β > 0 (when concrete: it may be traced under jit), η > 0, a known smearing."""
    require_positive_beta(beta)
    if not eta > 0:
        raise ParameterError(f"eta (broadening) must be positive, got {eta}")
    if smearing not in SMEARINGS:
        raise ParameterError(f"smearing must be one of {', '.join(SMEARINGS)}, got {smearing!r}")


def omega_array(omega) -> np.ndarray:
    """Photon energies as a finite, non-empty 1D NumPy array."""
    w = np.atleast_1d(np.asarray(omega, dtype=float))
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ParameterError("omega must be a finite number or a 1D array of photon energies")
    return w


def check_kfrac(model: TightBinding, kfrac) -> np.ndarray:
    """Fractional k-points as an (nk, dim) NumPy array (a 1D array is accepted for a 1D model)."""
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


@dataclass(frozen=True)
class Request:
    """One forward evaluation as the CLI asks for it (model energy units); each observable reads what it needs."""

    model: object
    params: object
    nk: object
    beta: float
    mu: object = None
    filling: float | None = None
    thickness: float | None = None
    components: str = "xxx"
    omega: object = None
    eta: float = 0.02
    smearing: str = "gaussian"
    tau: float = 1e-13
    spectrum: str = "blackbody5500"
    polarisation: str = "along"
    parts: str = "both"
    direction: str = "x"
    interband: InterbandSettings = DEFAULT_INTERBAND


# ------------------------------------------------------------------------------------ smearing
def smearing_function(x, /, *, eta: float, kind: str):
    """Normalised δ(x) of width η: Gaussian exp(−x²/η²)/(√π η) or Lorentzian (η/π)/(x² + η²)."""
    xp = _backend.current().xp
    eta = float(eta)  # Python scalars only: strict array-API namespaces refuse NumPy scalars
    if kind == "gaussian":
        return xp.exp(-(x * x) / (eta * eta)) / float(np.sqrt(np.pi) * eta)
    if kind == "lorentzian":
        return (eta / np.pi) / (x * x + eta * eta)
    raise ParameterError(f"smearing must be one of {', '.join(SMEARINGS)}, got {kind!r}")


#: The Gaussian's shape exp(−u²) is set to exactly 0 beyond |u| = 6, where it is below 2.3e−16 of its peak
#: (the round-off of the peak's own contribution). Left alone, its far tail is a sea of subnormal numbers, and
#: a matrix product over subnormals runs up to 100× slower on x86: a 4-band 40³ tensor with η = 0.02 eV spent
#: 80 % of its time there. The cut also lets :func:`contributing_pairs` drop the pairs whose transition energy
#: is more than 6η outside the ω window, exactly.
GAUSSIAN_CUT_SQUARED = 36.0


def _smearing_shape(u, /, *, kind: str):
    """δ(x) η / norm as a function of u = x/η: exp(−u²) (Gaussian, 0 beyond |u| = 6) or 1/(1 + u²) (Lorentzian)."""
    xp = _backend.current().xp
    if kind == "gaussian":
        uu = u * u
        return xp.where(uu < GAUSSIAN_CUT_SQUARED, xp.exp(-uu), 0.0 * uu)
    if kind == "lorentzian":
        return 1.0 / (u * u + 1.0)
    raise ParameterError(f"smearing must be one of {', '.join(SMEARINGS)}, got {kind!r}")


def _smearing_norm(eta: float, kind: str) -> float:
    """The factor turning :func:`_smearing_shape` into :func:`smearing_function`: 1/(√π η) or 1/(π η)."""
    return float(1.0 / (np.sqrt(np.pi) * eta) if kind == "gaussian" else 1.0 / (np.pi * eta))


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


def off_diagonal_pairs(n: int, /) -> np.ndarray:
    """Flat indices n·N + m of every pair n ≠ m of an (N, N) matrix."""
    return np.flatnonzero(~np.eye(n, dtype=bool))


def transitions_sum(weights, energies, omega: np.ndarray, /, *, eta: float, smearing: str, chunk: int | None = None, pairs=None):
    """S[c, j] = Σ_{k,n,m} W[c,k,n,m] δ(ε_m − ε_n − ω_j), evaluated in k-chunks with one matmul each.

    ``weights`` (ncomp, nk, n, n) indexed [c, k, n, m]; ``energies`` (nk, n); returns (ncomp, nomega).
    Only the pairs ``pairs`` (flat indices n·N + m, default every n ≠ m) are summed: the n = m terms
    carry f_nm = 0 in every caller's weight, and :func:`contributing_pairs` finds the others that add
    exactly 0. The δ of width η is evaluated as its shape in x/η and normalised once at the end,
    which saves two of six passes over the (transitions × ω) block, the dominant cost of a spectrum.
    """
    be = _backend.current()
    xp = be.xp
    ncomp, nk, n, _ = weights.shape
    eta = float(eta)
    scaled_omega = xp.reshape(be.asarray(np.asarray(omega, dtype=float) / eta), (1, -1))
    pairs = off_diagonal_pairs(n) if pairs is None else np.asarray(pairs)
    gather = None if len(pairs) == n * n else be.asarray(pairs)
    npair = max(len(pairs), 1)
    size = chunk or max(1, int(TRANSITIONS_CHUNK_BYTES // (npair * len(omega) * 8)))
    if chunk is None and be.can_compile:
        size = max(size, -(-nk // MAX_TRACED_TRANSITION_CHUNKS))
    total = None
    for start in range(0, nk, size):
        stop = min(start + size, nk)
        e = energies[start:stop, ...]
        omega_mn = xp.reshape(-pair_difference(e), (stop - start, n * n))  # ε_m − ε_n at [k, n·n + m]
        w = xp.reshape(weights[:, start:stop, ...], (ncomp, stop - start, n * n))
        if gather is not None:
            omega_mn, w = xp.take(omega_mn, gather, axis=1), xp.take(w, gather, axis=2)
        shape = _smearing_shape(xp.reshape(omega_mn, (-1, 1)) * (1.0 / eta) - scaled_omega, kind=smearing)
        part = xp.matmul(xp.reshape(w, (ncomp, -1)), shape)
        total = part if total is None else total + part
    return total * _smearing_norm(eta, smearing)


#: Drop the band pairs that add exactly 0 to a chunk, on forward-only backends (NumPy), whose arrays can
#: always be read: under jit the graph is fixed, and under torch.func or autograd the values are wrapped.
#: Set False to compare with the path that sums every pair (tests/test_fast_paths.py).
RESTRICT_PAIRS = True


def contributing_pairs(f_nm, levels, omega: np.ndarray, /, *, eta: float, smearing: str) -> np.ndarray | None:
    """Flat indices n·N + m of the pairs that can contribute in this chunk; None: every n ≠ m.

    A pair is left out when f_nm is exactly 0 at every k of the chunk (both bands beyond the point,
    80/β from μ, where the Fermi function is exactly 0 or 1, with a zero derivative) or, for the
    Gaussian, when ε̄_m − ε̄_n lies beyond the shape's cut (:data:`GAUSSIAN_CUT_SQUARED`) from every ω
    at every k. Both leave the sum unchanged. Differentiating or compiling backends keep every pair.
    """
    be = _backend.current()
    if be.can_compile or be.can_differentiate or not RESTRICT_PAIRS:
        return None
    f = np.asarray(be.to_numpy(be.stop_gradient(f_nm)))
    mask = np.any(f != 0, axis=0)
    np.fill_diagonal(mask, False)
    if smearing == "gaussian":
        e = np.asarray(be.to_numpy(be.stop_gradient(levels)))
        x = e[:, None, :] - e[:, :, None]  # ε̄_m − ε̄_n at [k, n, m]
        reach = float(np.sqrt(GAUSSIAN_CUT_SQUARED)) * float(eta)
        mask &= np.any((x > float(np.min(omega)) - reach) & (x < float(np.max(omega)) + reach), axis=0)
    return np.flatnonzero(mask)


# ------------------------------------------------------------------------------------ chunks
def chemical_potential_on_mesh(model: TightBinding, params, kfrac, /, *, beta, mu: float | None, filling: float | None):
    """μ as given, or at ``filling`` from the band energies of the whole mesh (a chunked, energies-only pass)."""
    if filling is None:
        return resolve_mu(None, beta=beta, mu=mu, filling=None)
    return resolve_mu(bands(model, params, kfrac), beta=beta, mu=mu, filling=filling)


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


@dataclass(frozen=True)
class PairChunk:
    """What every band-pair observable needs of one k-chunk.

    ``terms``: the band-basis blocks (degenerate subspaces covariant); ``f_nm`` (nk, n, n) the
    occupation differences f(ε̄_n − μ) − f(ε̄_m − μ); ``levels`` (nk, n) the subspace energies the
    δ-function sees (scissor included): the transition n → m has energy levels_m − levels_n.
    """

    terms: InterbandTerms
    f_nm: object
    levels: object


def response_chunk_size(norb: int, *, order: int, ncomp: int, ncarts: int, chunk: int | None = None) -> int:
    """k-points per chunk: the eigensystem, ``ncomp`` integrands and the (a, b) blocks within the budget."""
    if chunk is not None:
        return chunk
    per_k = (MATRICES_PER_K[order] + 8 * ncomp + 6 * ncarts**2) * norb * norb * 16
    return min(max(1, int(chunk_budget(DEFAULT_CHUNK_BYTES) // per_k)), chunk_size(norb, order=order))


def pair_chunks(
    model: TightBinding,
    params,
    kfrac: np.ndarray,
    mu_value,
    /,
    *,
    beta,
    interband: InterbandSettings,
    order: int,
    carts,
    size: int,
    after=None,
) -> Iterator[PairChunk]:
    """The :class:`PairChunk` of each k-chunk of ``size`` points, in order; only one chunk is alive at a time.

    ``after``: a value the first chunk's eigensystem must be computed after (μ when it was solved from
    the bands; see :func:`hamdesign.spectrum.sequenced`); each later chunk follows the previous one.
    """
    previous = after
    for kc in k_chunks(kfrac, size):
        part = pair_chunk(
            model, sequenced(params, previous), kc, mu_value, beta=beta, interband=interband, order=order, carts=carts
        )
        previous = part.levels
        yield part


def pair_chunk(
    model: TightBinding, params, kc, mu_value, /, *, beta, interband: InterbandSettings, order: int, carts
) -> PairChunk:
    """The :class:`PairChunk` of one k-chunk."""
    _, terms = chunk_terms(model, params, kc, interband, order=order, carts=carts)
    occupation = fermi(terms.levels - mu_value, beta)
    return PairChunk(terms=terms, f_nm=pair_difference(occupation), levels=transition_levels(terms, mu_value, interband.scissor))


def spectral_response(
    model: TightBinding,
    params,
    kfrac,
    omega: np.ndarray,
    /,
    *,
    integrand: Integrand,
    order: int,
    components: Sequence[Component],
    beta: float,
    mu: float | None,
    filling: float | None,
    eta: float,
    smearing: str,
    chunk: int | None,
    interband: InterbandSettings,
):
    """Σ_k Σ_nm f_nm I_nm δ(ε̄_m − ε̄_n − ω) / (N_k Ω_cell) for every component: (ncomp, nomega).

    One pass over k for all ``components``: per chunk one eigensystem, the band-basis blocks once,
    ``integrand(terms, components)`` (ncomp, nk, n, n) once, and one matrix product with the δ
    block over the contributing pairs. ``order``: the derivatives of H the integrand needs (1: v, 2: v and w).
    """
    be = _backend.current()
    xp = be.xp
    kfrac = check_kfrac(model, kfrac)
    nk, n = len(kfrac), model.nband
    check_memory(nk, n, per_k_arrays=1)
    carts = cartesian_indices(components)
    size = response_chunk_size(n, order=order, ncomp=len(components), ncarts=len(carts), chunk=chunk)
    mu_value = chemical_potential_on_mesh(model, params, kfrac, beta=beta, mu=mu, filling=filling)
    after = mu_value if filling is not None else None

    def spectrum_of(part: PairChunk):
        pairs = contributing_pairs(part.f_nm, part.levels, omega, eta=eta, smearing=smearing)
        if pairs is not None and pairs.size == 0:
            return None  # nothing in this chunk can absorb: every term is exactly 0
        weights = xp.expand_dims(part.f_nm, axis=0) * integrand(part.terms, components)
        return transitions_sum(weights, part.levels, omega, eta=eta, smearing=smearing, chunk=chunk, pairs=pairs)

    if be.can_differentiate:  # a gradient needs the chunks in program order
        parts = pair_chunks(
            model, params, kfrac, mu_value, beta=beta, interband=interband, order=order, carts=carts, size=size, after=after
        )
        blocks = map(spectrum_of, parts)
    else:

        def chunk_spectrum(kc):
            return spectrum_of(pair_chunk(model, params, kc, mu_value, beta=beta, interband=interband, order=order, carts=carts))

        threads = chunk_threads(chunk_budget(DEFAULT_CHUNK_BYTES))
        blocks = map_chunks(chunk_spectrum, k_chunks(kfrac, size), threads=threads)
    total = None
    for block in blocks:
        if block is not None:
            total = block if total is None else total + block
    if total is None:
        return xp.zeros((len(components), len(omega)), dtype=xp.float64, device=be.device)
    return total / float(nk * model.lattice.cell_measure)


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


def per_layer(model: TightBinding, bulk: np.ndarray, t_perp: float) -> tuple[str | None, np.ndarray | None, str | None]:
    """(key, value, unit) of the per-layer (2D) or per-chain (1D) quantity: bulk × t_⊥ in metres."""
    if model.dim == 3:
        return None, None, None
    metres = length_in_m(model.length_unit)
    key = "sigma_layer" if model.dim == 2 else "sigma_chain"
    if metres is None:
        return key, None, None
    return key, bulk * t_perp * metres ** (3 - model.dim), ("A m/V^2" if model.dim == 2 else "A m^2/V^2")


def energy_in_ev(model: TightBinding, values: np.ndarray) -> list[float] | None:
    """``values`` (model energy unit) in eV, or None for a dimensionless energy unit."""
    joules = energy_in_j(model.energy_unit)
    return None if joules is None else (values * joules / ELEMENTARY_CHARGE).tolist()


__all__ = [
    "DEFAULT_INTERBAND",
    "InterbandSettings",
    "PairChunk",
    "Request",
    "check_current_direction",
    "component_name",
    "contributing_pairs",
    "pair_chunks",
    "parse_components",
    "smearing_function",
    "spectral_response",
    "transitions_sum",
]
