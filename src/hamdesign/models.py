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


#: name → factory; every factory works with no arguments.
MODELS: dict[str, Callable[..., TightBinding]] = {"haldane": haldane, "hbn": hbn}


def get_model(name: str, **kwargs) -> TightBinding:
    from .errors import ModelError

    if name not in MODELS:
        raise ModelError(f"unknown built-in model {name!r}; built-in models: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
