"""Wigner–Seitz supercell translations of wannier90's ``use_ws_distance`` (the MDRS interpolation).

A wannier90 model built from an N1×N2×N3 k-grid is periodic over that supercell: H_mn(R) and
H_mn(R + T) for any supercell vector T = (N1 t1, N2 t2, N3 t3) are the same number. Interpolating
with the listed R alone places orbital n at R + τ_n although an equivalent copy at R + T + τ_n may
be nearer to τ_m. wannier90 ≥ 2.1 (default since 3.0) moves every element to the translations T
that minimise |R + T + τ_n − τ_m| (Cartesian), splitting it with weight 1/N_T over the N_T
translations equally near within ``ws_distance_tol`` (absolute, 1e-5 Å by default). It searches
T over ±(ws_search_size + 1) supercells in each direction (ws_search_size = 2 by default) and uses
the Wannier centres as they are (not folded into the home cell). The translations are written to
``seedname_wsvec.dat`` when wannier90 writes ``_hr.dat``/``_tb.dat``; they can also be rebuilt
from the centres, the lattice and ``mp_grid``. The same translations apply to the position matrix.

Representation: :class:`Translations` holds, for every element (r, m, n) of a file's R list, a run
of entries in ``shift`` (the T vectors) with ``count`` = N_T each; :func:`expand` applies them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

#: wannier90's defaults (``ws_distance_tol`` in Å, ``ws_search_size`` in supercells).
WS_DISTANCE_TOL = 1e-5
WS_SEARCH_SIZE = (2, 2, 2)
_CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Translations:
    """Supercell translations of every element (r, m, n), flattened as index ``(r * norb + m) * norb + n``.

    ``element`` (nE,) is the flat element index of each translation, ``shift`` (nE, 3) the integer
    lattice vector T added to R, ``count`` (nR * norb²,) the number N_T of translations of each
    element (every element has at least one).
    """

    element: np.ndarray
    shift: np.ndarray
    count: np.ndarray


def rebuild_translations(
    lattice: np.ndarray,
    centres: np.ndarray,
    Rs: np.ndarray,
    mp_grid,
    *,
    tol: float = WS_DISTANCE_TOL,
    search=WS_SEARCH_SIZE,
) -> Translations:
    """The translations wannier90 would write to ``seedname_wsvec.dat`` for these centres and ``mp_grid``.

    ``lattice`` rows are the lattice vectors (Å), ``centres`` (norb, 3) Cartesian, ``Rs`` (nR, 3)
    integer. Vectorised over chunks of R.
    """
    grid = np.asarray(mp_grid, dtype=int).reshape(3)
    ranges = [range(-s - 1, s + 2) for s in np.asarray(search, dtype=int).reshape(3)]
    T = np.array(list(itertools.product(*ranges)), dtype=int) * grid
    T_cart = T @ lattice
    norb = len(centres)
    bond = centres[None, :, :] - centres[:, None, :]  # (m, n, a) = τ_n − τ_m
    per_R = norb * norb * len(T) * 8 * 4
    step = max(1, _CHUNK_BYTES // per_R)
    elements, shifts = [], []
    counts = np.zeros(len(Rs) * norb * norb, dtype=np.int64)
    for start in range(0, len(Rs), step):
        chunk = np.asarray(Rs[start : start + step], dtype=float)
        d = (chunk @ lattice)[:, None, None, :] + bond[None]  # (c, m, n, a)
        dist = np.linalg.norm(d[..., None, :] + T_cart, axis=-1)  # (c, m, n, T)
        nearest = np.abs(dist - dist.min(axis=-1, keepdims=True)) < tol
        flat = nearest.reshape(-1, len(T))
        elem, which = np.nonzero(flat)
        elements.append(elem + start * norb * norb)
        shifts.append(T[which])
        counts[start * norb * norb : start * norb * norb + flat.shape[0]] = flat.sum(axis=1)
    return Translations(np.concatenate(elements), np.concatenate(shifts), counts)


def expand(Rs: np.ndarray, blocks: np.ndarray, translations: Translations) -> tuple[np.ndarray, np.ndarray]:
    """Move every element of ``blocks`` (nR, norb, norb, ...) to R + T with weight 1/N_T.

    Returns the new R list (sorted, unique, (nR', 3)) and blocks (nR', norb, norb, ...).
    """
    nR, norb = blocks.shape[:2]
    r, rest = np.divmod(translations.element, norb * norb)
    m, n = np.divmod(rest, norb)
    targets = np.asarray(Rs, dtype=int)[r] + translations.shift
    new_R, where = np.unique(targets, axis=0, return_inverse=True)
    weight = 1.0 / translations.count[translations.element]
    values = blocks[r, m, n] * weight.reshape((-1,) + (1,) * (blocks.ndim - 3))
    out = np.zeros((len(new_R),) + blocks.shape[1:], dtype=blocks.dtype)
    np.add.at(out, (where.reshape(-1), m, n), values)
    return new_R, out
