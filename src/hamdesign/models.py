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
    info = {
        "t1": "nearest-neighbour hopping (eV)",
        "t2": "next-nearest-neighbour hopping (eV)",
        "J": "exchange coupling to the classical spins (eV)",
    }
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


def spin_sites(model: TightBinding) -> int:
    """How many classical spins ``model`` has: N when its parameters include the angles theta0…theta{N−1}
    and phi0…phi{N−1} of unit spins S_i (as :func:`kondo_chain`'s do), else 0."""
    names = set(model.parameter_names)
    n = 0
    while f"theta{n}" in names and f"phi{n}" in names:
        n += 1
    return n


def spin_directions(model: TightBinding, params) -> np.ndarray:
    """Unit spin vectors S_i, shape (N, 3), from the theta/phi parameters of a model with classical spins."""
    values = dict(zip(model.parameter_names, np.asarray(params, dtype=float), strict=False))
    n = spin_sites(model)
    th = np.array([values[f"theta{i}"] for i in range(n)])
    ph = np.array([values[f"phi{i}"] for i in range(n)])
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)


def haldane_general(
    t1: float = 1.0, M_A: float = 0.0, M_B: float = 0.0, t2: float = 0.1, phi: float = float(np.pi / 2)
) -> TightBinding:
    """Honeycomb with every NNN bond free: the 14-parameter search space of the Haldane design.

    Same geometry and NN bonds as :func:`haldane`; on-site M_A, M_B; the six NNN bonds
    t_AA(R) = t2_A{k} e^{i phi_A{k}} and t_BB(R) = t2_B{k} e^{i phi_B{k}} for R = HALDANE_NNN[k]
    (k = 0, 1, 2), each with its own magnitude and phase. Defaults reproduce ``haldane(t1, t2, phi)``
    with M = 0 (t_BB(R) = t2 e^{−iφ} on the same R).
    """
    lattice, pos = _honeycomb(1.0, 1.0)
    hops: list[tuple] = [(0, 1, R, "t1") for R in HONEYCOMB_NN]
    params: dict[str, float] = {"t1": t1, "M_A": M_A, "M_B": M_B}
    info = {"t1": "nearest-neighbour hopping (energy unit)", "M_A": "on-site energy of A", "M_B": "on-site energy of B"}
    for k, R in enumerate(HALDANE_NNN):
        for sub, orb, sign in (("A", 0, 1.0), ("B", 1, -1.0)):
            params[f"t2_{sub}{k}"], params[f"phi_{sub}{k}"] = t2, sign * phi
            hops.append((orb, orb, R, f"t2_{sub}{k}*exp(i*phi_{sub}{k})"))
            info[f"t2_{sub}{k}"] = f"magnitude of t_{sub}{sub}(R = {R[0]} a1 + {R[1]} a2)"
            info[f"phi_{sub}{k}"] = f"phase of t_{sub}{sub}(R = {R[0]} a1 + {R[1]} a2) (rad)"
    hops += [(0, 0, (0, 0), "M_A"), (1, 1, (0, 0), "M_B")]
    return TightBinding.build(
        lattice,
        pos,
        hops,
        params,
        orbital_names=("A", "B"),
        name="haldane_general",
        energy_unit="t1",
        length_unit="a",
        parameter_info=info,
    )


#: Neighbour shells of the triangular lattice (unit NN distance): name, distance.
TRIANGULAR_SHELLS = (("t1", 1.0), ("t2", _SQRT3), ("t3", 2.0))


def triangular_bonds() -> list[tuple[int, int, tuple[int, int], str]]:
    """First, second and third neighbour bonds of the 4-sublattice (2×2) triangular cell, each once.

    Returns ``(i, j, R, shell)`` with d = R + τ_j − τ_i; 12 bonds per shell (3 per site), 36 in all,
    ordered by shell, then i, then j, then R.
    """
    a = np.array([[2.0, 0.0], [1.0, _SQRT3]])
    tau = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.5 * _SQRT3], [1.5, 0.5 * _SQRT3]])
    bonds = []
    for shell, dist in TRIANGULAR_SHELLS:
        found = set()
        for i in range(4):
            for j in range(4):
                for n1 in range(-2, 3):
                    for n2 in range(-2, 3):
                        d = n1 * a[0] + n2 * a[1] + tau[j] - tau[i]
                        if abs(np.linalg.norm(d) - dist) > 1e-9:
                            continue
                        key, partner = (i, j, (n1, n2)), (j, i, (-n1, -n2))
                        if partner not in found:
                            found.add(key)
        bonds += [(i, j, R, shell) for (i, j, R) in sorted(found)]
    return bonds


def triangular(t1: float = 1.0, t2: float = 0.5, t3: float = 0.5, phases=None) -> TightBinding:
    """4-sublattice (2×2 supercell) triangular lattice with free bond phases (the triangular design).

    a_1 = (2, 0), a_2 = (1, √3) in units of the NN distance; sublattices at (0,0), (1,0), (½,√3/2),
    (3/2,√3/2). Every first-, second- and third-neighbour bond b (36, see :func:`triangular_bonds`)
    carries t_shell e^{i p_b}: one magnitude per shell (t1, t2, t3) and one free phase p0…p35.
    Energies in units of |t1|. Default phases 0 (a plain triangular lattice), or ``phases`` (36).
    """
    lattice = Lattice([[2.0, 0.0], [1.0, _SQRT3]], spacing=10.0)
    tau = [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.5, 0.5]]  # reduced: (1,0) = a1/2, (½,√3/2) = a2/2
    bonds = triangular_bonds()
    phase_values = np.zeros(len(bonds)) if phases is None else np.asarray(phases, dtype=float)
    if phase_values.shape != (len(bonds),):
        raise ValueError(f"phases must have {len(bonds)} entries")
    params: dict[str, float] = {"t1": t1, "t2": t2, "t3": t3}
    info = {
        "t1": "first-neighbour magnitude (energy unit)",
        "t2": "second-neighbour magnitude",
        "t3": "third-neighbour magnitude",
    }
    hops = []
    for b, (i, j, R, shell) in enumerate(bonds):
        params[f"p{b}"] = float(phase_values[b])
        info[f"p{b}"] = f"phase of the {shell} bond {i}->{j}, R = {list(R)} (rad)"
        hops.append((i, j, R, f"{shell}*exp(i*p{b})"))
    return TightBinding.build(
        lattice,
        tau,
        hops,
        params,
        orbital_names=("s0", "s1", "s2", "s3"),
        name="triangular",
        energy_unit="t1",
        length_unit="a",
        parameter_info=info,
    )


#: name → factory; every factory works with no arguments.
MODELS: dict[str, Callable[..., TightBinding]] = {
    "haldane": haldane,
    "haldane_general": haldane_general,
    "hbn": hbn,
    "triangular": triangular,
    "kondo_chain": kondo_chain,
}


def get_model(name: str, **kwargs) -> TightBinding:
    from .errors import ModelError

    if name not in MODELS:
        raise ModelError(f"unknown built-in model {name!r}; built-in models: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
