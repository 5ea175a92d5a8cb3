"""Bravais lattices with 1, 2 or 3 periodic directions, Γ-centred k-meshes and high-symmetry paths.

A lattice is always stored as three Cartesian vectors (rows of ``vectors``, shape (3, 3)); the
first ``dim`` are periodic. For a 2D model the third vector spans the layer spacing (its extent
perpendicular to the plane is the thickness used to turn a sheet conductance into a bulk one);
for a 1D chain the second and third vectors span the cross-section. Reciprocal vectors satisfy
a_i · b_j = 2π δ_ij. k-points are fractional coordinates along the periodic b_i.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import LatticeError, MemoryBudgetError
from .memory import memory_budget_bytes

_SINGULAR_TOL = 1e-8
_MIN_LENGTH, _MAX_LENGTH = 1e-6, 1e6  # lattice-vector lengths accepted, in the model's length unit


@dataclass(frozen=True, eq=False)
class Lattice:
    """Lattice vectors (rows, Cartesian, in the model's length unit) and the periodic dimension.

    Parameters
    ----------
    vectors
        ``dim`` periodic vectors, each with ``dim`` or 3 Cartesian components; or 3 vectors of which
        the first ``dim`` are periodic (pass ``dim``).
    dim
        Number of periodic directions (1, 2 or 3); defaults to the number of vectors given.
    spacing
        For ``dim < 3`` given with fewer than 3 vectors: the length of the non-periodic vectors added
        perpendicular to the periodic ones (layer thickness in 2D; side of a square cross-section in
        1D). Default 1 length unit; it only affects bulk (per-volume) numbers, which always report it.
    """

    vectors: np.ndarray
    dim: int
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __init__(self, vectors: Sequence[Sequence[float]], dim: int | None = None, *, spacing: float = 1.0):
        try:
            given = np.array(vectors, dtype=float)
        except (TypeError, ValueError) as err:
            raise LatticeError(f"lattice vectors must be numbers, got {vectors!r}") from err
        if given.ndim != 2 or not (1 <= given.shape[0] <= 3) or not (1 <= given.shape[1] <= 3):
            raise LatticeError(f"lattice vectors must be 1 to 3 rows of 1 to 3 components, got shape {given.shape}")
        if not np.all(np.isfinite(given)):
            raise LatticeError("lattice vectors contain NaN or inf")
        dim = given.shape[0] if dim is None else int(dim)
        if not 1 <= dim <= 3 or dim > given.shape[0]:
            raise LatticeError(f"dim={dim} does not fit {given.shape[0]} lattice vectors")
        if not _MIN_LENGTH <= spacing <= _MAX_LENGTH:
            raise LatticeError(f"spacing must be between {_MIN_LENGTH:g} and {_MAX_LENGTH:g} length units, got {spacing}")
        lengths = np.linalg.norm(np.clip(given[:dim], -_MAX_LENGTH, _MAX_LENGTH), axis=1)  # clipped: no overflow
        if np.any(lengths < _MIN_LENGTH) or np.any(np.abs(given[:dim]) >= _MAX_LENGTH):
            # beyond this range products of lengths under- or overflow and the cell is not a physical one
            raise LatticeError(
                f"lattice vectors must have lengths between {_MIN_LENGTH:g} "
                f"and {_MAX_LENGTH:g} length units, got {lengths.tolist()}"
            )
        full = np.zeros((given.shape[0], 3))
        full[:, : given.shape[1]] = given
        full = _complete_basis(full, spacing)
        volume = abs(np.linalg.det(full))
        scale = np.prod(np.linalg.norm(full, axis=1))
        if not volume > _SINGULAR_TOL * scale:
            raise LatticeError(f"lattice vectors are singular (linearly dependent): {given.tolist()}")
        object.__setattr__(self, "vectors", full)
        object.__setattr__(self, "dim", dim)
        object.__setattr__(self, "_cache", {})

    @property
    def reciprocal(self) -> np.ndarray:
        """All three reciprocal vectors b_i (rows), a_i · b_j = 2π δ_ij."""
        return 2 * np.pi * np.linalg.inv(self.vectors).T

    @property
    def periodic_reciprocal(self) -> np.ndarray:
        """The ``dim`` reciprocal vectors of the periodic directions, shape (dim, 3)."""
        return self.reciprocal[: self.dim]

    @property
    def volume(self) -> float:
        """Cell volume |a1 · (a2 × a3)| in length³ (including the non-periodic extent)."""
        return float(abs(np.linalg.det(self.vectors)))

    @property
    def cell_measure(self) -> float:
        """Length (1D), area (2D) or volume (3D) of the periodic cell."""
        a = self.vectors[: self.dim]
        return float(np.sqrt(abs(np.linalg.det(a @ a.T))))

    @property
    def bz_measure(self) -> float:
        """Length, area or volume of the Brillouin zone: (2π)^dim / cell_measure."""
        return (2 * np.pi) ** self.dim / self.cell_measure

    @property
    def transverse_measure(self) -> float:
        """Thickness (2D) or cross-section area (1D) of one cell: volume / cell_measure; 1 in 3D."""
        return self.volume / self.cell_measure if self.dim < 3 else 1.0

    def with_transverse(self, measure: float) -> Lattice:
        """A copy whose non-periodic vectors are rescaled to the given thickness (2D) or area (1D)."""
        if self.dim == 3:
            raise LatticeError("a 3D lattice has no transverse extent to set")
        if not measure > 0:
            raise LatticeError(f"thickness / cross-section must be positive, got {measure}")
        factor = (measure / self.transverse_measure) ** (1.0 / (3 - self.dim))
        vecs = self.vectors.copy()
        vecs[self.dim :] *= factor
        return Lattice(vecs, self.dim)

    def cartesian_k(self, kfrac) -> np.ndarray:
        """Cartesian k (nk, 3) from fractional coordinates along the periodic reciprocal vectors."""
        kfrac = np.asarray(kfrac, dtype=float).reshape(-1, self.dim)
        return kfrac @ self.periodic_reciprocal

    def __repr__(self) -> str:
        return f"Lattice(dim={self.dim}, vectors={self.vectors.tolist()})"


def _complete_basis(vectors: np.ndarray, spacing: float) -> np.ndarray:
    """Extend 1 or 2 vectors to a right-handed 3D basis with perpendicular vectors of length ``spacing``."""
    vecs = list(vectors)
    if len(vecs) == 1:
        a = vecs[0]
        trial = np.array([0.0, 1.0, 0.0]) if abs(a[1]) < 0.9 * np.linalg.norm(a) else np.array([0.0, 0.0, 1.0])
        perp = trial - a * (trial @ a) / max(a @ a, 1e-300)
        vecs.append(spacing * perp / max(np.linalg.norm(perp), 1e-300))
    if len(vecs) == 2:
        n = np.cross(vecs[0], vecs[1])
        vecs.append(spacing * n / max(np.linalg.norm(n), 1e-300))
    return np.array(vecs, dtype=float)


def parse_nk(nk: int | Sequence[int] | str, dim: int) -> tuple[int, ...]:
    """Mesh sizes along each periodic direction from ``N``, ``(N1, N2[, N3])`` or ``"N1,N2,N3"``.

    A single N means N along every periodic direction; extra entries for non-periodic directions
    must be 1.
    """
    if isinstance(nk, str):
        try:
            nk = [int(s) for s in nk.replace("x", ",").split(",") if s.strip()]
        except ValueError as err:
            raise LatticeError(f"--nk must be N or N1,N2,N3 with positive integers, got {nk!r}") from err
    if isinstance(nk, (int, np.integer)):
        sizes = (int(nk),) * dim
    else:
        sizes = tuple(int(n) for n in nk)
        if len(sizes) == 1:
            sizes = sizes * dim
        if len(sizes) > dim and all(n == 1 for n in sizes[dim:]):
            sizes = sizes[:dim]
    if len(sizes) != dim or any(n < 1 for n in sizes):
        raise LatticeError(f"k-mesh {nk!r} does not fit a {dim}D model (need {dim} positive sizes)")
    return sizes


def kmesh(nk: int | Sequence[int] | str, dim: int) -> np.ndarray:
    """Γ-centred Monkhorst–Pack mesh in fractional coordinates, shape (N1·N2·…, dim).

    k = (i1/N1, i2/N2, …) with i_a = 0 … N_a − 1; Γ is the first point.
    """
    sizes = parse_nk(nk, dim)
    need = int(np.prod(sizes, dtype=float)) * dim * 8 * 3  # the mesh plus meshgrid temporaries
    if need > memory_budget_bytes():
        raise MemoryBudgetError(
            f"a {'×'.join(map(str, sizes))} k-mesh needs {need / 2**30:.1f} GiB just for its coordinates, more than the "
            f"budget of {memory_budget_bytes() / 2**30:.1f} GiB (HAMDESIGN_MEMORY_BUDGET); use a smaller --nk"
        )
    axes = [np.arange(n) / n for n in sizes]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=-1)


def mesh_row_length(kfrac: np.ndarray) -> int:
    """How many leading k-points share every coordinate but the last (1 for a 1D list or a lone point)."""
    kfrac = np.asarray(kfrac)
    if kfrac.ndim != 2 or kfrac.shape[1] < 2 or kfrac.shape[0] < 2:
        return 1
    change = np.flatnonzero(np.any(kfrac[1:, :-1] != kfrac[:-1, :-1], axis=1))
    return int(change[0]) + 1 if change.size else kfrac.shape[0]


def mesh_rows(kfrac: np.ndarray) -> tuple[int, int] | None:
    """``(rows, length)`` when ``kfrac`` is whole rows of a product mesh, else None.

    Rows are consecutive runs of ``length`` > 1 k-points that share every coordinate but the last
    and take the same ``length`` values of the last coordinate, in the same order, in every run:
    a :func:`kmesh` (its last index runs fastest), or any run of whole rows of one. On such points
    e^{2πi k·R} factorises into a row factor and a last-coordinate factor.
    """
    kfrac = np.asarray(kfrac)
    length = mesh_row_length(kfrac)
    if length < 2 or kfrac.shape[0] % length:
        return None
    grid = kfrac.reshape(-1, length, kfrac.shape[1])
    if np.array_equal(grid[:, :, :-1], np.broadcast_to(grid[:, :1, :-1], grid[:, :, :-1].shape)) and np.array_equal(
        grid[:, :, -1], np.broadcast_to(grid[:1, :, -1], grid[:, :, -1].shape)
    ):
        return grid.shape[0], length
    return None


#: Fractional coordinates of common high-symmetry points, by lattice family.
HIGH_SYMMETRY_POINTS: dict[str, dict[str, tuple[float, ...]]] = {
    "chain": {"Γ": (0.0,), "X": (0.5,)},
    "hexagonal": {"Γ": (0.0, 0.0), "K": (2 / 3, 1 / 3), "M": (0.5, 0.0), "K'": (1 / 3, 2 / 3)},
    "square": {"Γ": (0.0, 0.0), "X": (0.5, 0.0), "M": (0.5, 0.5)},
    "cubic": {"Γ": (0.0, 0.0, 0.0), "X": (0.5, 0.0, 0.0), "M": (0.5, 0.5, 0.0), "R": (0.5, 0.5, 0.5)},
}


def lattice_family(lattice: Lattice) -> str:
    """'chain', 'hexagonal' (60°/120° between equal a1, a2), 'square' or 'cubic' (others fall back)."""
    if lattice.dim == 1:
        return "chain"
    if lattice.dim == 3:
        return "cubic"
    a1, a2 = lattice.vectors[:2]
    cos = a1 @ a2 / np.linalg.norm(a1) / np.linalg.norm(a2)
    equal = np.isclose(np.linalg.norm(a1), np.linalg.norm(a2))
    return "hexagonal" if equal and np.isclose(abs(cos), 0.5) else "square"


def high_symmetry_path(lattice: Lattice, labels: Sequence[str] | None = None, *, n_per_segment: int = 60):
    """Straight segments through high-symmetry points.

    Returns ``(kfrac, distance, ticks)``: fractional k (n, dim), cumulative Cartesian distance (n,),
    and ``[(distance, label), …]`` at each corner.
    """
    family = lattice_family(lattice)
    points = HIGH_SYMMETRY_POINTS[family]
    if family == "hexagonal" and lattice.vectors[0] @ lattice.vectors[1] < 0:  # 120° between a1, a2
        points = {"Γ": (0.0, 0.0), "K": (1 / 3, 1 / 3), "M": (0.5, 0.0), "K'": (-1 / 3, -1 / 3)}
    default = {"chain": "ΓXΓ", "hexagonal": "ΓKMΓ", "square": "ΓXMΓ", "cubic": "ΓXMΓR"}[family]
    if labels is None:
        labels = list(default)
    unknown = [lab for lab in labels if lab not in points]
    if unknown:
        raise LatticeError(f"unknown high-symmetry labels {unknown} for a {family} lattice; known: {list(points)}")
    corners = np.array([points[lab] for lab in labels], dtype=float)
    segs = [
        corners[i] + np.linspace(0, 1, n_per_segment, endpoint=(i == len(corners) - 2))[:, None] * (corners[i + 1] - corners[i])
        for i in range(len(corners) - 1)
    ]
    kfrac = np.concatenate(segs, axis=0)
    cart = lattice.cartesian_k(kfrac)
    step = np.r_[0.0, np.linalg.norm(np.diff(cart, axis=0), axis=1)]
    dist = np.cumsum(step)
    tick_idx = [i * n_per_segment for i in range(len(corners) - 1)] + [len(kfrac) - 1]
    return kfrac, dist, [(float(dist[i]), lab) for i, lab in zip(tick_idx, labels, strict=False)]
