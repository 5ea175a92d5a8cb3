"""Anomalous Hall effect: Berry curvature, band Chern numbers and the anomalous Hall conductivity.

Formulas (PHYSICS.md §2; ħ = e = 1 inside; Wang, Yates, Souza & Vanderbilt, PRB 74, 195118 (2006))::

    Ω^c_n(k) = −2 Im Σ_{m≠n} v^a_nm v^b_mn  g(ε_n − ε_m),     (a, b, c) cyclic,  g(Δ) = Δ² / (Δ⁴ + δ⁴)
    C_n      = (1/2π) ∫_BZ Ω^z_n d²k
    σ_xy     = −(e²/h) Σ_n (1/2π) ∫_BZ f(ε_n − μ) Ω^z_n d²k                 (2D, e²/h per layer)
    σ_ab     = −(e²/ħ) ∫_BZ d³k/(2π)³ Σ_n f(ε_n − μ) Ω^c_n                   (3D, S/cm)

This is the physical sign (electron charge −e) used by wannier90's postw90 and by WannierBerri:
bcc Fe magnetised along +z has σ_xy > 0. With occupied bands of total Chern number C,
σ_xy → −C e²/h as T → 0 (Haldane at M = 0, φ = +π/2, t2 = 0.1: C = (−1, +1), σ_xy = +1 e²/h).
The original work's code used the opposite sign of Ω; its σ_xy values have the sign used here.

g(Δ) = Re 1/(Δ² + iδ²) is the regularised 1/Δ² (the original work used (Δε)² + iδ): it equals
1/Δ² to relative order (δ/Δ)⁴ and is 0 where bands touch, so values and gradients stay finite at
degeneracies. δ = ``regulator`` (default 1e-6 energy units) changes gapped results by < 1e-12
relative for gaps above 1e-3. Σ_n f_n Ω_n is unchanged by a unitary rotation inside a degenerate
subspace (equal f there), so the conductivity does not depend on the basis ``eigh`` returns.

Position matrix. ``position_matrix="diagonal"`` is the tight-binding convention (orbital centres
only). ``"full"`` adds the off-diagonal Berry connection of a wannier90 ``_tb.dat``, Eq. (32) of
Wang et al. 2006 written per band (see :func:`_position_terms`).

Fermi-level scans: ``mu`` may be an array; the eigensystem is computed once per k-chunk and the
occupation weights of every μ are contracted with it in one matrix product, so hundreds of μ cost
little more than one. Memory is bounded by the k-chunk when μ is given; at a filling the energies
and curvatures of the whole mesh are kept (μ needs every level), nk × nband × (1 + planes) floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend as _backend
from ..backend import follows_inputs
from ..errors import MemoryBudgetError, ModelError, ParameterError
from ..lattice import kmesh as _kmesh
from ..lattice import parse_nk
from ..model import TightBinding, bloch_terms, hamiltonian_derivatives
from ..spectrum import (
    DEFAULT_CHUNK_BYTES,
    MATRICES_PER_K,
    chemical_potential,
    chunk_budget,
    chunk_size,
    chunk_threads,
    eigensystem,
    fermi,
    k_chunks,
    map_chunks,
    memory_budget_bytes,
    require_positive_beta,
    resolve_mu,  # noqa: F401  (kept importable from here: objectives.py uses it)
    sequenced,
)
from ..units import E2_OVER_H, length_in_m, sheet_to_bulk_s_per_cm
from .interband import check_degen_thresh, check_position_matrix, subspace_levels

#: Default δ of the regularised inverse gap g(Δ) = Δ²/(Δ⁴ + δ⁴), model energy units.
HALL_REGULATOR = 1e-6
#: Bands closer than this (energy units) form one degenerate subspace: pairs inside it are left out of
#: Ω and its bands share the subspace's mean energy (WannierBerri's default degen_thresh).
HALL_DEGEN_THRESH = 1e-4
#: Evaluate Ω of two-orbital models from the Pauli vector (:func:`two_band_berry_curvature`).
TWO_BAND_CLOSED_FORM = True
#: The pseudovector components of Ω and σ: name → the plane (a, b) with (a, b, c) cyclic.
PLANES: dict[str, tuple[int, int]] = {"yz": (1, 2), "zx": (2, 0), "xy": (0, 1)}


def _require_plane(model: TightBinding) -> None:
    if model.dim < 2:
        raise ModelError(f"the Hall response needs a 2D or 3D model; {model.name} is {model.dim}D")


def _check_planes(model: TightBinding, planes: Sequence[str]) -> tuple[str, ...]:
    _require_plane(model)
    planes = tuple(planes)
    unknown = [p for p in planes if p not in PLANES]
    if unknown or not planes:
        raise ParameterError(f"unknown Hall plane(s) {unknown}; choose from {', '.join(PLANES)}")
    if model.dim == 2 and planes != ("xy",):
        raise ModelError(f"a 2D model has only the xy Hall component, not {', '.join(p for p in planes if p != 'xy')}")
    return planes


def regularised_inverse_gap_squared(gaps, /, *, regulator: float):
    """g(Δ) = Δ² / (Δ⁴ + δ⁴): 1/Δ² away from degeneracies, 0 at Δ = 0, smooth in between."""
    g2 = gaps * gaps
    return g2 / (g2 * g2 + regulator**4)


def regularised_inverse_gap(gaps, /, *, regulator: float):
    """Δ / (Δ² + δ²): 1/Δ away from degeneracies, 0 at Δ = 0, smooth in between."""
    return gaps / (gaps * gaps + regulator**2)


@follows_inputs
def berry_curvature(model: TightBinding, params, kfrac, /, *, regulator: float = HALL_REGULATOR):
    """Band energies and Berry curvature Ω^z_n(k) on a k-batch.

    Returns ``(energies, omega)``, both (nk, nband): energy unit and length² (Ω = ∂_x A_y − ∂_y A_x
    with A = i<u|∇_k u>).
    """
    energies, omega = curvature(model, params, kfrac, planes=("xy",), regulator=regulator)
    return energies, omega[..., 0]


@follows_inputs
def curvature(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    planes: Sequence[str] = ("xy",),
    regulator: float = HALL_REGULATOR,
    position_matrix: str = "diagonal",
    degen_thresh: float = HALL_DEGEN_THRESH,
):
    """Band energies (nk, nband) and Berry curvature Ω^c_n(k) (nk, nband, len(planes)) on a k-batch.

    ``planes`` names the pseudovector components ("yz" → Ω^x, "zx" → Ω^y, "xy" → Ω^z). With
    ``position_matrix="full"`` the band-resolved curvature includes the Wannier position-matrix
    terms (only their sum weighted by occupations is gauge invariant inside degenerate subspaces).

    Degenerate subspaces: bands whose consecutive energies differ by less than ``degen_thresh``
    (a Kramers pair split by round-off, a level split by less than the threshold) form one
    subspace N. Pairs inside N are left out of every sum and each band of N is reported at the
    subspace's mean energy, so its occupation is shared: Σ_{n∈N} f_n Ω_n is then unchanged by any
    unitary rotation inside N, and a pair split by 1e-8 eV cannot contribute f_n − f_m ~ β·1e-8
    times an intra-pair curvature of ~1/(1e-8)². ``degen_thresh = 0`` keeps every pair.
    """
    planes = _check_planes(model, planes)
    full = check_position_matrix(model, position_matrix)
    check_degen_thresh(degen_thresh)
    if model.norb == 2 and TWO_BAND_CLOSED_FORM and not full:
        return two_band_berry_curvature(model, params, kfrac, regulator=regulator, planes=planes, degen_thresh=degen_thresh)
    xp = _backend.current().xp
    directions = sorted({a for p in planes for a in PLANES[p]})
    energies, states, vb, _ = eigensystem(model, params, kfrac, order=1, components=tuple(directions), vectors=full)
    # every energy below is its subspace's mean, so the blocks transform covariantly
    together, energies = subspace_levels(energies, degen_thresh)
    apart = 1.0 - together
    gaps = xp.expand_dims(energies, axis=-1) - xp.expand_dims(energies, axis=-2)  # ε̄_n − ε̄_m
    g = regularised_inverse_gap_squared(gaps, regulator=regulator) * apart
    # v^b_mn = (v^b_nm)* (Hermitian): no transposed read
    omega = [-2.0 * xp.sum(xp.imag(vb[a] * xp.conj(vb[b])) * g, axis=-1) for a, b in (PLANES[p] for p in planes)]
    if full:
        extra = _position_terms(model, kfrac, energies, states, vb, planes, regulator=regulator, apart=apart)
        omega = [o + e for o, e in zip(omega, extra, strict=True)]
    return energies, xp.stack(omega, axis=-1)


def _position_terms(model: TightBinding, kfrac, energies, states, vb, planes, *, regulator: float, apart):
    """Per-band Wannier position-matrix terms of the curvature, Wang et al. 2006, Eq. (32).

    With Ā^a = U† A^a U and Ω̄^{ab} = U† (∂_a A^b − ∂_b A^a) U, A the Berry connection of the orbital
    basis in the tight-binding convention (:func:`hamdesign.model.berry_connection_terms`), and
    D^a_nm = v^a_nm / (ε_m − ε_n) (n, m in different subspaces; ``apart`` marks them; regularised),

        Σ_n f_n Ω_n = Σ_n f_n [Ω̄^{ab}_nn + Σ_m (X_mn − X_nm)] + (Kubo term),
        X_nm = D^a_nm Ā^b_mn − D^b_nm Ā^a_mn,

    which is Σ_nm (f_m − f_n) X_nm of the paper written per band. Real up to round-off; the real
    part is returned.
    """
    from ..model import berry_connection_terms

    be = _backend.current()
    xp = be.xp
    connection, derivative = berry_connection_terms(model, kfrac)
    ud = xp.conj(xp.matrix_transpose(states))

    def to_band(x):
        return be.matmul(be.matmul(ud, x), states)

    # D^a_nm = v^a_nm / (ε_m − ε_n): gaps[n, m] = ε_n − ε_m, hence the minus sign
    gaps = xp.expand_dims(energies, axis=-1) - xp.expand_dims(energies, axis=-2)
    inverse = -regularised_inverse_gap(gaps, regulator=regulator) * apart
    bar = {}
    out = []
    for plane in planes:
        a, b = PLANES[plane]
        for c in (a, b):
            if c not in bar:
                bar[c] = to_band(connection[c])
        curl = to_band(derivative[(a, b)] - derivative[(b, a)])
        d_a, d_b = vb[a] * xp.astype(inverse, xp.complex128), vb[b] * xp.astype(inverse, xp.complex128)
        x = d_a * xp.matrix_transpose(bar[b]) - d_b * xp.matrix_transpose(bar[a])  # X_nm
        per_band = xp.sum(x, axis=-2) - xp.sum(x, axis=-1)  # Σ_m X_mn − Σ_m X_nm
        diagonal = xp.sum(curl * be.asarray(np.eye(model.norb, dtype=complex)), axis=-1)
        out.append(xp.real(diagonal + per_band))
    return out


def pauli_components(m, /):
    """(d_0, d_1, d_2, d_3) of a batch of 2×2 Hermitian matrices m = d_0 1 + d·σ, each shape (nk,)."""
    be = _backend.current()
    xp = be.xp
    flat = xp.reshape(m, (m.shape[0], 4))  # [m00, m01, m10, m11]
    q = xp.real(be.matmul(flat, be.asarray(_PAULI_PROJECTION)))
    return q[:, 0], q[:, 1], q[:, 2], q[:, 3]


# columns map [m00, m01, m10, m11] to d_0 = (m00 + m11)/2, d_1 = Re m01 = (m01 + m10)/2,
# d_2 = −Im m01 = i(m01 − m10)/2, d_3 = (m00 − m11)/2 (Hermitian m: m10 = m01*)
_PAULI_PROJECTION = 0.5 * np.array([[1, 0, 0, 1], [0, 1, 1j, 0], [0, 1, -1j, 0], [1, 0, 0, -1]])


def two_band_berry_curvature(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    regulator: float = HALL_REGULATOR,
    planes: Sequence[str] = ("xy",),
    degen_thresh: float = HALL_DEGEN_THRESH,
):
    """:func:`curvature` of a two-orbital model in closed form, without eigenvectors.

    With H = d_0 + d·σ and v^a = ∂_a d_0 + ∂_a d·σ, the band energies are ε_∓ = d_0 ∓ |d| and
    Im v^a_{−+} v^b_{+−} = −d̂·(∂_a d × ∂_b d), so the Kubo formula of the module docstring, with
    the same regularised g(Δ) at Δ = 2|d|, reads

        Ω_− = −Ω_+ = 2 d̂·(∂_a d × ∂_b d) g(2|d|) = 8 |d| d·(∂_a d × ∂_b d) / (16|d|⁴ + δ⁴),

    which is d·(∂_a d × ∂_b d) / 2|d|³ away from degeneracies. Only |d| (not 1/|d|) appears, and
    |d| is taken as 0 with a zero derivative where d = 0, so values and gradients are finite at
    band touchings. Elementwise on (nk,) real arrays: several times faster than the eigenvector
    route on every backend, equal to it to round-off (tested). Where 2|d| < ``degen_thresh`` the two
    bands are one subspace: Ω = 0 and both sit at d_0. Returns energies (nk, 2) and
    Ω (nk, 2, len(planes)).
    """
    be = _backend.current()
    xp = be.xp
    directions = tuple(sorted({a for p in planes for a in PLANES[p]}))
    # the Pauli components average each off-diagonal entry with its partner: no (X + X†)/2 needed
    h, v, _ = bloch_terms(model, params, kfrac, order=1, components=directions, symmetrise=False, orbital_phase=False)
    d0, d1, d2, d3 = pauli_components(h)
    squared = d1 * d1 + d2 * d2 + d3 * d3
    touching = squared == 0.0
    radius = xp.where(touching, 0.0 * squared, xp.sqrt(xp.where(touching, 1.0 + 0.0 * squared, squared)))
    weight = 8.0 * radius / (16.0 * squared * squared + regulator**4)
    pauli = {a: pauli_components(v[a])[1:] for a in directions}
    lower = []
    for plane in planes:
        (x1, x2, x3), (y1, y2, y3) = (pauli[a] for a in PLANES[plane])
        triple = d1 * (x2 * y3 - x3 * y2) + d2 * (x3 * y1 - x1 * y3) + d3 * (x1 * y2 - x2 * y1)
        lower.append(weight * triple)
    apart = xp.astype(2.0 * be.stop_gradient(radius) > float(degen_thresh), xp.float64)
    lower = xp.stack(lower, axis=-1) * xp.expand_dims(apart, axis=-1)
    split = radius * apart
    energies = xp.stack([d0 - split, d0 + split], axis=-1)
    return energies, xp.stack([lower, -lower], axis=1)


def hall_chunk_size(model: TightBinding, *, nmu: int = 1, nplanes: int = 1, chunk_bytes: int | None = None) -> int:
    """k-points per chunk: the eigensystem's working set and the (nμ, nk, nband) occupations fit ``chunk_bytes``."""
    budget = chunk_bytes or chunk_budget(DEFAULT_CHUNK_BYTES)
    per_k_occupations = 3 * nmu * model.nband * 8
    return max(1, min(chunk_size(model.norb, order=1, chunk_bytes=budget), int(budget // max(per_k_occupations, 1))))


def hall_memory_estimate(model: TightBinding, nk: int, *, nmu: int = 1, nplanes: int = 1, at_filling: bool = False) -> int:
    """Bytes the Hall path keeps: one chunk's working set, plus the whole mesh's levels at a filling."""
    size = min(nk, hall_chunk_size(model, nmu=nmu, nplanes=nplanes))
    working = size * (MATRICES_PER_K[1] * model.norb * model.norb * 16 + 3 * nmu * model.nband * 8)
    kept = nk * model.nband * (1 + nplanes) * 8 if at_filling else 0
    return int(working + kept)


def check_hall_memory(model: TightBinding, nk: int, *, nmu: int = 1, nplanes: int = 1, at_filling: bool = False) -> None:
    """Refuse up front (MemoryBudgetError) when :func:`hall_memory_estimate` exceeds the budget."""
    need = hall_memory_estimate(model, nk, nmu=nmu, nplanes=nplanes, at_filling=at_filling)
    budget = memory_budget_bytes()
    if need > budget:
        raise MemoryBudgetError(
            f"{nk} k-points × {model.nband} bands needs about {need / 2**30:.1f} GiB for the Hall conductivity, more than "
            f"the budget of {budget / 2**30:.1f} GiB (HAMDESIGN_MEMORY_BUDGET); use a smaller --nk"
            + (" or give --mu instead of a filling" if at_filling else "")
        )


def curvature_chunks(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    planes: Sequence[str] = ("xy",),
    regulator: float = HALL_REGULATOR,
    position_matrix: str = "diagonal",
    degen_thresh: float = HALL_DEGEN_THRESH,
    chunk: int | None = None,
) -> Iterator[tuple]:
    """:func:`curvature` over a mesh, one memory-bounded k-chunk at a time (eigh calls kept in order).

    When ``params`` is a backend array and the mesh takes more than one chunk, each chunk is
    rematerialised (the adapter's ``rematerialize``): reverse mode keeps only each chunk's levels
    and curvature, (nk, nband, 1 + planes) numbers, and recomputes the chunk's eigensystem in the
    backward pass, so a gradient's memory is one chunk's working set whatever the mesh.
    """
    be = _backend.current()
    xp = be.xp
    kfrac = np.asarray(kfrac, dtype=float).reshape(-1, model.dim)
    size = chunk or chunk_size(model.norb, order=1)
    remat = params is not None and not isinstance(params, (np.ndarray, list, tuple)) and kfrac.shape[0] > size
    previous = None
    for kc in k_chunks(kfrac, size):

        def compute(p, kc=kc):
            return curvature(
                model, p, kc, planes=planes, regulator=regulator, position_matrix=position_matrix, degen_thresh=degen_thresh
            )

        def packed(p, compute=compute):  # bound now: torch's backward pass calls it after the loop has moved on
            energies, omega = compute(p)
            return xp.concat([xp.expand_dims(energies, axis=-1), omega], axis=-1)

        p = sequenced(params, previous)
        if remat:
            both = be.rematerialize(packed)(p)
            part = (both[..., 0], both[..., 1:])
        else:
            part = compute(p)
        previous = part[0]
        yield part


def curvature_on_mesh(model: TightBinding, params, kfrac, /, *, regulator: float = HALL_REGULATOR, chunk: int | None = None):
    """:func:`berry_curvature` (Ω^z) on a whole mesh, evaluated in memory-bounded k-chunks."""
    xp = _backend.current().xp
    nk = np.asarray(kfrac).size // model.dim
    check_hall_memory(model, nk, at_filling=True)
    parts = [(e, o[..., 0]) for e, o in curvature_chunks(model, params, kfrac, regulator=regulator, chunk=chunk)]
    if len(parts) == 1:
        return parts[0]
    return xp.concat([p[0] for p in parts], axis=0), xp.concat([p[1] for p in parts], axis=0)


def hall_prefactor(model: TightBinding) -> float:
    """2π / |a_1 × a_2|: turns the k-mean of Ω (length²) into (1/2π)∫d²k Ω per layer."""
    _require_plane(model)
    a1, a2 = model.lattice.vectors[:2]
    return 2 * np.pi / float(np.linalg.norm(np.cross(a1, a2)))


def layer_spacing(model: TightBinding) -> float:
    """Spacing of the planes spanned by a_1, a_2: the layer thickness in 2D, V/|a_1 × a_2| in 3D."""
    a1, a2 = model.lattice.vectors[:2]
    return model.lattice.volume / float(np.linalg.norm(np.cross(a1, a2)))


def _mu_levels(mu) -> np.ndarray | None:
    """A concrete μ (a number or a 1D list/array of numbers) as a NumPy vector; None for a traced μ."""
    if isinstance(mu, (int, float, np.integer, np.floating, list, tuple, np.ndarray)):
        levels = np.asarray(mu, dtype=float)
        if levels.ndim > 1 or levels.size == 0:
            raise ParameterError(f"mu must be a number or a 1D list of numbers, got shape {levels.shape}")
        if not np.all(np.isfinite(levels)):
            raise ParameterError(f"mu must be finite, got {mu}")
        return levels.reshape(-1)
    return None


@dataclass(frozen=True)
class HallSums:
    """k-means of the occupied and band-resolved curvature on a mesh (backend arrays).

    ``occupied[i, p]`` = mean_k Σ_n f(ε_nk − μ_i) Ω^p_n(k), ``bands[n, p]`` = mean_k Ω^p_n(k) (length²);
    ``mu`` (nμ,) the chemical potentials; ``band_min``/``band_max`` (nband,) NumPy band edges
    (infinite unless requested).
    """

    mu: object
    occupied: object
    bands: object
    band_min: np.ndarray
    band_max: np.ndarray
    planes: tuple[str, ...]
    scan: bool


@follows_inputs
def hall_sums(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    beta: float,
    mu=None,
    filling: float | None = None,
    planes: Sequence[str] = ("xy",),
    regulator: float = HALL_REGULATOR,
    position_matrix: str = "diagonal",
    band_edges: bool = False,
    contraction: str = "dense",
    degen_thresh: float = HALL_DEGEN_THRESH,
) -> HallSums:
    """The one pass over k behind every Hall number: Σ_n f Ω for each μ and plane, and mean Ω per band.

    With ``mu`` given (a number, or a 1D array for a Fermi-level scan) the curvature of each k-chunk
    is contracted with the occupations of every μ at once ((nμ, nk·nband) @ (nk·nband, planes)) and
    dropped: memory is bounded by the chunk. With ``filling`` the whole mesh's levels are kept to
    find μ (:func:`chemical_potential`, differentiable through μ). ``band_edges`` also records
    each band's extent as NumPy (forward evaluations only: it reads concrete values).

    ``contraction="sorted"`` (forward only, for Fermi-level scans) replaces the dense
    (nμ, nk·nband) occupation matrix by :func:`fermi_sea_sums` on each chunk's levels in NumPy:
    the same numbers to round-off, in O(N log N + Σ_μ window) instead of O(nμ N) Fermi functions.
    """
    require_positive_beta(beta)
    be = _backend.current()
    xp = be.xp
    planes = _check_planes(model, planes)
    check_position_matrix(model, position_matrix)
    if (mu is None) == (filling is None):
        raise ParameterError("give exactly one of mu (energy) or filling (fraction of bands occupied)")
    kfrac = np.asarray(kfrac, dtype=float).reshape(-1, model.dim)
    nk = kfrac.shape[0]
    levels = None if mu is None else _mu_levels(mu)
    scan = levels is not None and np.ndim(mu) == 1
    nmu = 1 if levels is None else levels.size
    if contraction not in ("dense", "sorted"):
        raise ParameterError(f"contraction must be 'dense' or 'sorted', got {contraction!r}")
    sorted_scan = contraction == "sorted" and levels is not None
    dense_mu = 1 if sorted_scan else nmu  # the sorted contraction keeps no (nμ, nk, nband) array
    check_hall_memory(model, nk, nmu=dense_mu, nplanes=len(planes), at_filling=filling is not None)
    size = hall_chunk_size(model, nmu=dense_mu, nplanes=len(planes))
    curvature_options = dict(planes=planes, regulator=regulator, position_matrix=position_matrix, degen_thresh=degen_thresh)
    band_min, band_max = np.full(model.nband, np.inf), np.full(model.nband, -np.inf)

    def edges(energies):
        if not band_edges:
            return
        e = be.to_numpy(be.stop_gradient(energies))
        np.minimum(band_min, e.min(axis=0), out=band_min)
        np.maximum(band_max, e.max(axis=0), out=band_max)

    if filling is not None:
        parts = list(curvature_chunks(model, params, kfrac, chunk=size, **curvature_options))
        energies = parts[0][0] if len(parts) == 1 else xp.concat([p[0] for p in parts], axis=0)
        omega = parts[0][1] if len(parts) == 1 else xp.concat([p[1] for p in parts], axis=0)
        edges(energies)
        mu_value = chemical_potential(energies, filling=filling, beta=beta)
        occ = fermi(energies - mu_value, beta)
        occupied = xp.reshape(xp.sum(xp.expand_dims(occ, axis=-1) * omega, axis=(0, 1)), (1, len(planes))) / nk
        return HallSums(xp.reshape(mu_value, (1,)), occupied, xp.sum(omega, axis=0) / nk, band_min, band_max, planes, False)

    mu_b = be.asarray(levels) if levels is not None else xp.reshape(mu, (1,))

    def contracted(energies, omega):
        """(energies, Σ_n f Ω for every μ, Σ_n Ω) of one chunk."""
        nkc = energies.shape[0]
        if sorted_scan:
            flat_omega = be.to_numpy(omega).reshape(nkc * model.nband, len(planes))
            weighted = be.asarray(fermi_sea_sums(be.to_numpy(energies).reshape(-1), flat_omega, levels, beta=beta))
        else:
            occ = fermi(xp.expand_dims(energies, axis=0) - xp.reshape(mu_b, (nmu, 1, 1)), beta)  # (nμ, nkc, nband)
            weighted = be.matmul(xp.reshape(occ, (nmu, nkc * model.nband)), xp.reshape(omega, (nkc * model.nband, len(planes))))
        return energies, weighted, xp.sum(omega, axis=0)

    if be.can_differentiate:  # a gradient needs the chunks in program order (and traced μ stays serial)
        chunks = curvature_chunks(model, params, kfrac, chunk=size, **curvature_options)
        parts = (contracted(energies, omega) for energies, omega in chunks)
    else:

        def chunk_sums(kc):
            return contracted(*curvature(model, params, kc, **curvature_options))

        threads = chunk_threads(hall_memory_estimate(model, size, nmu=dense_mu, nplanes=len(planes)))
        parts = map_chunks(chunk_sums, k_chunks(kfrac, size), threads=threads)
    occupied = bands_sum = None
    for energies, weighted, band_part in parts:
        edges(energies)
        occupied = weighted if occupied is None else occupied + weighted
        bands_sum = band_part if bands_sum is None else bands_sum + band_part
    return HallSums(mu_b, occupied / nk, bands_sum / nk, band_min, band_max, planes, scan)


#: Beyond |β(ε − μ)| > this, f(ε − μ) is 0 or 1 to within e^{-40} ≈ 4e-18 (:func:`fermi_sea_sums`).
FERMI_WINDOW = 40.0


def fermi_sea_sums(levels: np.ndarray, weights: np.ndarray, mus: np.ndarray, /, *, beta: float) -> np.ndarray:
    """Σ_j f(ε_j − μ_i) w_j for every μ_i, by sorting the levels once (NumPy, forward only).

    With the levels sorted and the weights summed cumulatively, the levels more than
    ``FERMI_WINDOW``/β below μ_i contribute their cumulative sum (f = 1 to 4e-18), those more than
    that above contribute nothing, and only the window in between is weighted by the Fermi function:
    O(N log N + Σ_i window_i) work instead of nμ·N Fermi functions. ``levels`` (N,), ``weights``
    (N, P), ``mus`` (nμ,); returns (nμ, P). Equal to the dense contraction to round-off (tested).
    """
    order = np.argsort(levels, kind="stable")
    ordered, w = levels[order], weights[order]
    cumulative = np.concatenate([np.zeros((1, w.shape[1])), np.cumsum(w, axis=0)])
    half = FERMI_WINDOW / beta
    low = np.searchsorted(ordered, mus - half, side="left")
    high = np.searchsorted(ordered, mus + half, side="right")
    out = cumulative[low].copy()
    with _backend.use_backend("numpy"):  # the arrays here are NumPy whatever the caller's backend
        for i in np.flatnonzero(high > low):  # only the μ with levels in their window
            a, b = low[i], high[i]
            out[i] += np.asarray(fermi(ordered[a:b] - mus[i], beta)) @ w[a:b]
    return out


def sigma_xy_from_curvature(model: TightBinding, energies, omega, /, *, mu, beta: float):
    """σ_xy (e²/h per layer) from the levels and Ω^z of a whole mesh: −(2π/A) mean_k Σ_n f(ε_n − μ) Ω_n."""
    xp = _backend.current().xp
    return -hall_prefactor(model) * xp.sum(fermi(energies - mu, beta) * omega) / energies.shape[0]


def _squeeze_mu(values, sums: HallSums):
    """(nμ, …) → (…) unless μ was given as an array (a scan)."""
    return values if sums.scan else values[0, ...]


@follows_inputs
def sigma_xy(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    beta: float,
    mu=None,
    filling: float | None = None,
    regulator: float = HALL_REGULATOR,
    position_matrix: str = "diagonal",
    degen_thresh: float = HALL_DEGEN_THRESH,
):
    """Anomalous Hall conductivity σ_xy per layer, in units of e²/h (a backend scalar, or (nμ,) for a μ array).

    σ_xy = −(1/2π) ∫ d²k Σ_n f(ε_n − μ) Ω^z_n, evaluated as the mean over the k-mesh ``kfrac``
    times (2π)²/|a_1 × a_2| / 2π (PHYSICS.md §2, physical sign). ``beta`` = 1/k_BT in inverse
    energy units; give ``mu`` (a number or an array of Fermi levels) or ``filling``.
    Differentiable with respect to ``params`` (also through μ at fixed filling). For a 3D model it
    is the 3D σ_xy times the spacing of the planes spanned by a_1, a_2; see
    :func:`anomalous_hall_conductivity` for the bulk pseudovector in S/cm.

    >>> from hamdesign.models import haldane
    >>> from hamdesign.lattice import kmesh
    >>> from hamdesign.backend import use_backend
    >>> m = haldane()
    >>> with use_backend("numpy"):
    ...     round(float(sigma_xy(m, m.default_params, kmesh(60, 2), beta=200.0, mu=0.0)), 4)
    1.0
    """
    sums = hall_sums(
        model,
        params,
        kfrac,
        beta=beta,
        mu=mu,
        filling=filling,
        regulator=regulator,
        position_matrix=position_matrix,
        degen_thresh=degen_thresh,
    )
    return _squeeze_mu(-hall_prefactor(model) * sums.occupied[:, 0], sums)


def bulk_hall_factor(model: TightBinding) -> float:
    """−(e²/ħ)/V_cell in S/cm per length²: turns the k-mean of Σ f Ω (length²) into σ (S/cm).

    ∫_BZ d³k/(2π)³ F = mean_k F / V_cell, and e²/ħ = 2π e²/h.
    """
    metres = length_in_m(model.length_unit)
    if metres is None:
        raise ModelError(f"S/cm needs a physical length unit; model {model.name} has {model.length_unit!r}")
    return -2 * np.pi * E2_OVER_H / (metres * 100.0) / model.lattice.volume


@follows_inputs
def anomalous_hall_conductivity(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    beta: float,
    mu=None,
    filling: float | None = None,
    regulator: float = HALL_REGULATOR,
    position_matrix: str = "diagonal",
    degen_thresh: float = HALL_DEGEN_THRESH,
):
    """Bulk anomalous Hall pseudovector (σ_yz, σ_zx, σ_xy) of a 3D model in S/cm.

    σ_ab = −(e²/ħ) ∫ d³k/(2π)³ Σ_n f(ε_n − μ) Ω^c_n, (a, b, c) cyclic, evaluated as −(e²/ħ) times
    the k-mean over the mesh divided by the cell volume (Wang et al. 2006, the sign of postw90 and
    WannierBerri). Shape (3,), or (nμ, 3) when ``mu`` is an array (a Fermi-level scan, one pass
    over k). ``position_matrix="full"`` adds the off-diagonal Wannier Berry-connection terms of a
    ``_tb.dat`` model. Differentiable with respect to ``params``.
    """
    if model.dim != 3:
        raise ModelError(f"the AHC pseudovector is for 3D models; {model.name} is {model.dim}D (use sigma_xy)")
    sums = hall_sums(
        model,
        params,
        kfrac,
        beta=beta,
        mu=mu,
        filling=filling,
        planes=tuple(PLANES),
        regulator=regulator,
        position_matrix=position_matrix,
        degen_thresh=degen_thresh,
    )
    return _squeeze_mu(bulk_hall_factor(model) * sums.occupied, sums)


@follows_inputs
def chern_numbers(model: TightBinding, params, kfrac, /, *, regulator: float = HALL_REGULATOR):
    """Band Chern numbers from the Kubo formula, C_n = (1/2π) Σ_k Ω_n(k) ΔA (floats, one per band).

    Exact integers only as the mesh converges; compare :func:`chern_numbers_lattice`.
    """
    xp = _backend.current().xp
    energies, omega = curvature_on_mesh(model, params, kfrac, regulator=regulator)
    return hall_prefactor(model) * xp.sum(omega, axis=0) / energies.shape[0]


def chern_numbers_lattice(model: TightBinding, params, nk, /) -> np.ndarray:
    """Band Chern numbers by the Fukui–Hatsugai–Suzuki lattice method (forward only, NumPy).

    Link variables U_μ(k) = <u_n(k)|u_n(k+μ̂)>/|…| of the periodic-gauge eigenvectors; the field
    strength F = arg U_1(k) U_2(k+1̂) U_1(k+2̂)* U_2(k)* sums to −2π C (Ω and F have opposite signs
    with A = i<u|∇u>). Integer for any mesh on which each band stays isolated. 2D models only.
    """
    if model.dim != 2:
        raise ModelError("lattice Chern numbers are implemented for 2D models")
    be = _backend.current()
    n1, n2 = parse_nk(nk, 2)
    ham = be.to_numpy(hamiltonian_derivatives(model, params, _kmesh((n1, n2), 2), order=0, gauge="periodic")[0])
    _, u = np.linalg.eigh(ham)
    u = u.reshape(n1, n2, model.norb, model.norb)
    link1 = np.sum(np.conj(u) * np.roll(u, -1, axis=0), axis=2)
    link2 = np.sum(np.conj(u) * np.roll(u, -1, axis=1), axis=2)
    plaquette = link1 * np.roll(link2, -1, axis=0) * np.conj(np.roll(link1, -1, axis=1)) * np.conj(link2)
    flux = np.angle(plaquette).sum(axis=(0, 1))
    b1, b2 = model.lattice.periodic_reciprocal
    orientation = np.sign(np.cross(b1, b2)[2]) or 1.0
    return -orientation * flux / (2 * np.pi)


def _listed(values: np.ndarray, scan: bool):
    values = np.asarray(values, dtype=float)
    return [float(v) for v in values] if scan else float(values[0])


def hall_report(
    model: TightBinding,
    params,
    nk,
    /,
    *,
    beta: float,
    mu=None,
    filling: float | None = None,
    thickness: float | None = None,
    position_matrix: str = "diagonal",
    degen_thresh: float = HALL_DEGEN_THRESH,
) -> dict:
    """Forward evaluation for people and files.

    2D: σ_xy per layer (e²/h) and in bulk (S/cm, divided by the layer thickness), band Chern numbers.
    3D: the pseudovector (σ_yz, σ_zx, σ_xy) in S/cm (``sigma_bulk_S_per_cm``, keys yz/zx/xy); no
    band Chern numbers (they are not quantised in a 3D metal). With ``mu`` an array every σ is a
    list of the same length as ``mu``.
    """
    from ..lattice import kmesh

    be = _backend.current()
    sizes = parse_nk(nk, model.dim)
    planes = tuple(PLANES) if model.dim == 3 else ("xy",)
    check_hall_memory(model, int(np.prod(sizes, dtype=float)), nplanes=len(planes), at_filling=filling is not None)
    kfrac = kmesh(sizes, model.dim)
    sums = hall_sums(
        model,
        params,
        kfrac,
        beta=beta,
        mu=mu,
        filling=filling,
        planes=planes,
        position_matrix=position_matrix,
        band_edges=True,
        contraction="sorted",
        degen_thresh=degen_thresh,
    )
    occupied = be.to_numpy(sums.occupied)
    report = {
        "observable": "hall",
        "model": model.name,
        "mu": _listed(be.to_numpy(sums.mu), sums.scan),
        "beta": float(beta),
        "nk": list(sizes),
        "position_matrix": position_matrix,
        "degen_thresh": float(degen_thresh),
        "gaps_above_band": {str(n + 1): float(sums.band_min[n + 1] - sums.band_max[n]) for n in range(model.nband - 1)},
        "units": {"mu": model.energy_unit, "beta": f"1/{model.energy_unit}", "gaps_above_band": model.energy_unit},
        "conventions": (
            "Omega^c_n = -2 Im sum_m v^a_nm v^b_mn / (e_n - e_m)^2 (tight-binding gauge); "
            "sigma_ab = -(e^2/hbar) int d^dk/(2pi)^d sum_n f Omega^c_n (Wang et al. 2006; postw90/WannierBerri sign)"
        ),
        "backend": be.name,
    }
    if model.dim == 3:
        factor = bulk_hall_factor(model)
        report["sigma_bulk_S_per_cm"] = {p: _listed(factor * occupied[:, i], sums.scan) for i, p in enumerate(planes)}
        report["units"]["sigma_bulk_S_per_cm"] = "S/cm"
        return report
    pref = hall_prefactor(model)
    sigma = -pref * occupied[:, 0]
    chern = pref * be.to_numpy(sums.bands)[:, 0]
    spacing = thickness if thickness is not None else layer_spacing(model)
    bulk = [sheet_to_bulk_s_per_cm(float(s), spacing, model.length_unit) for s in sigma]
    report.update(
        sigma_xy=_listed(sigma, sums.scan),
        sigma_xy_bulk_S_per_cm=(bulk if sums.scan else bulk[0]) if bulk[0] is not None else None,
        layer_spacing=spacing,
        chern=[float(c) for c in chern],
        chern_rounded=[int(round(float(c))) for c in chern],
    )
    report["units"].update({"sigma_xy": "e^2/h per layer", "sigma_xy_bulk_S_per_cm": "S/cm", "layer_spacing": model.length_unit})
    return report
