"""Built-in models: starting points for evaluation and design.

Each factory returns a :class:`~hamdesign.model.TightBinding` whose ``parameter_info`` explains
every parameter; ``hamdesign models`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .lattice import Lattice
from .model import TightBinding

_SQRT3 = float(np.sqrt(3.0))

#: The three NNN vectors R (in a_1, a_2 units) with t_AA(R) = t2 e^{iφ} (PHYSICS.md §2).
HALDANE_NNN = ((1, 0), (-1, 1), (0, -1))
#: The three R with t_AB(R) = t1: the nearest neighbours of A.
HONEYCOMB_NN = ((0, 0), (-1, 0), (0, -1))


def _honeycomb(a: float, spacing: float) -> tuple[Lattice, list[list[float]]]:
    lattice = Lattice([[a, 0.0], [0.5 * a, 0.5 * _SQRT3 * a]], spacing=spacing)
    return lattice, [[0.0, 0.0], [1 / 3, 1 / 3]]


def haldane(t1: float = 1.0, t2: float = 0.1, phi: float = float(np.pi / 2), M: float = 0.0) -> TightBinding:
    """Haldane's honeycomb Chern insulator in the convention of PHYSICS.md §2.

    a_1 = (1, 0), a_2 = (½, √3/2), τ_A = 0, τ_B = (a_1 + a_2)/3; t_AB(R) = t1 for R ∈ {0, −a_1, −a_2};
    t_AA(R) = t2 e^{iφ} and t_BB(R) = t2 e^{−iφ} for R ∈ {a_1, a_2 − a_1, −a_2}; on-site +M (A), −M (B).
    Energies in units of t1 (dimensionless), lengths in units of the lattice constant. Topological
    for |M| < 3√3 |t2 sin φ|, with C = (−1, +1) at M = 0, φ = +π/2.
    """
    lattice, pos = _honeycomb(1.0, 1.0)
    hops: list[tuple] = [(0, 1, R, "t1") for R in HONEYCOMB_NN]
    hops += [(0, 0, R, "t2*exp(i*phi)") for R in HALDANE_NNN]
    # t_BB(R) = t2 e^{-iφ} for R in HALDANE_NNN, listed here as its partner t_BB(-R) = t2 e^{+iφ}
    hops += [(1, 1, tuple(-r for r in R), "t2*exp(i*phi)") for R in HALDANE_NNN]
    hops += [(0, 0, (0, 0), "M"), (1, 1, (0, 0), "-1*M")]
    return TightBinding.build(
        lattice,
        pos,
        hops,
        {"t1": t1, "t2": t2, "phi": phi, "M": M},
        orbital_names=("A", "B"),
        name="haldane",
        energy_unit="t1",
        length_unit="a",
        parameter_info={
            "t1": "nearest-neighbour hopping (energy unit)",
            "t2": "magnitude of the next-nearest-neighbour hopping",
            "phi": "phase of t_AA(R) = t2 e^{i phi} on R = a1, a2-a1, -a2 (radians)",
            "M": "staggered on-site energy: +M on A, -M on B",
        },
    )


def hbn(t1: float = -2.7, M: float = 1.0, a: float = 2.504, thickness: float = 3.33) -> TightBinding:
    """Gapped graphene / hBN-like honeycomb (D3h): NN hopping t1, on-site ±M (gap 2|M| at K).

    Lattice constant ``a`` in Å (2.504, hBN), layer thickness 3.33 Å for bulk numbers, energies in eV.
    a_1 = a(1, 0), a_2 = a(½, √3/2); one NN bond is along y, so y is in the mirror plane x → −x.
    """
    lattice, pos = _honeycomb(a, thickness)
    hops: list[tuple] = [(0, 1, R, "t1") for R in HONEYCOMB_NN]
    hops += [(0, 0, (0, 0), "M"), (1, 1, (0, 0), "-1*M")]
    return TightBinding.build(
        lattice,
        pos,
        hops,
        {"t1": t1, "M": M},
        orbital_names=("B", "N"),
        name="hbn",
        energy_unit="eV",
        length_unit="Å",
        parameter_info={"t1": "nearest-neighbour hopping (eV)", "M": "on-site +M on the first, -M on the second sublattice (eV)"},
    )


def kondo_chain(
    n_sites: int = 12,
    *,
    t1: float = 0.11829,
    t2: float = 0.07757,
    J: float = 0.25286,
    spacing: float = 1.0,
    cross_section: float = 1.0,
    spins=None,
) -> TightBinding:
    """Spin-½ electrons on a chain coupled to classical unit spins (Kondo-lattice / s-d model).

    H = t1 Σ_i (c†_{i+1} c_i + h.c.) + t2 Σ_i (c†_{i+2} c_i + h.c.) + J Σ_i S_i · (c†_i σ c_i),
    with N = ``n_sites`` sites per cell (2N bands), site spacing ``spacing`` Å (cell length N·spacing)
    and S_i = (sin θ_i cos φ_i, sin θ_i sin φ_i, cos θ_i). Orbital 2i is site i spin ↑, 2i+1 spin ↓.
    Parameters: t1, t2, J (eV), theta0…theta{N−1}, phi0…phi{N−1} (radians). The chain runs along x;
    ``cross_section`` (Å², default 1) is the area per chain that turns per-chain currents into bulk
    densities. Defaults: t1, t2, J of the original work's photovoltaic optimum and, unless ``spins``
    (an (N, 3) array of directions) is given, a three-sublattice umbrella texture (θ = π/4,
    φ_i = 2πi/3), which breaks time reversal and inversion.
    """
    if n_sites < 1:
        raise ValueError("n_sites must be at least 1")
    side = float(np.sqrt(cross_section))
    lattice = Lattice([[n_sites * spacing, 0.0, 0.0], [0.0, side, 0.0], [0.0, 0.0, side]], dim=1)
    positions = [[i / n_sites, 0.0, 0.0] for i in range(n_sites) for _ in (0, 1)]
    if spins is None:
        theta = np.full(n_sites, np.pi / 4)
        phi = 2 * np.pi * np.arange(n_sites) / 3
    else:
        s = np.asarray(spins, dtype=float)
        if s.shape != (n_sites, 3):
            raise ValueError(f"spins must have shape ({n_sites}, 3)")
        s = s / np.linalg.norm(s, axis=1, keepdims=True)
        theta, phi = np.arccos(np.clip(s[:, 2], -1, 1)), np.arctan2(s[:, 1], s[:, 0])
    params: dict[str, float] = {"t1": t1, "t2": t2, "J": J}
    params.update({f"theta{i}": float(theta[i]) for i in range(n_sites)})
    params.update({f"phi{i}": float(phi[i]) for i in range(n_sites)})
    hops: list[tuple] = []
    for i in range(n_sites):
        for shift, name in ((1, "t1"), (2, "t2")):
            j, R = (i + shift) % n_sites, (i + shift) // n_sites
            if n_sites <= shift and R == 0:
                continue
            for spin in (0, 1):
                hops.append((2 * i + spin, 2 * j + spin, (R,), name))
        hops.append((2 * i, 2 * i, (0,), f"J*cos(theta{i})"))
        hops.append((2 * i + 1, 2 * i + 1, (0,), f"-1*J*cos(theta{i})"))
        hops.append((2 * i, 2 * i + 1, (0,), f"J*sin(theta{i})*exp(-i*phi{i})"))
    info = {"t1": "nearest-neighbour hopping (eV)", "t2": "next-nearest-neighbour hopping (eV)", "J": "exchange coupling to the classical spins (eV)"}
    info.update({f"theta{i}": f"polar angle of spin {i} (rad)" for i in range(n_sites)})
    info.update({f"phi{i}": f"azimuthal angle of spin {i} (rad)" for i in range(n_sites)})
    return TightBinding.build(
        lattice,
        positions,
        hops,
        params,
        orbital_names=tuple(f"{i}{'du'[s == 0]}" for i in range(n_sites) for s in (0, 1)),
        name="kondo_chain",
        energy_unit="eV",
        length_unit="Å",
        parameter_info=info,
    )


def spin_directions(model: TightBinding, params) -> np.ndarray:
    """Unit spin vectors S_i, shape (N, 3), from the theta/phi parameters of a kondo_chain model."""
    values = dict(zip(model.parameter_names, np.asarray(params, dtype=float)))
    n = sum(1 for name in values if name.startswith("theta"))
    th = np.array([values[f"theta{i}"] for i in range(n)])
    ph = np.array([values[f"phi{i}"] for i in range(n)])
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)


#: name → factory; every factory works with no arguments.
MODELS: dict[str, Callable[..., TightBinding]] = {"haldane": haldane, "hbn": hbn, "kondo_chain": kondo_chain}


def get_model(name: str, **kwargs) -> TightBinding:
    from .errors import ModelError

    if name not in MODELS:
        raise ModelError(f"unknown built-in model {name!r}; built-in models: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
