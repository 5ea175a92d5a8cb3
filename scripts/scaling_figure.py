"""Scaling of σ_xy value + gradient with k-points and with bands, per backend (docs/images/scaling.png).

Usage::

    python scripts/scaling_figure.py [--out docs/images/scaling.png] [--repeat 3]

Left: the Haldane model on N×N meshes. Right: random 2D models with 2 … 32 orbitals (second-
neighbour hoppings, complex amplitudes) on a 24×24 mesh. Steady-state medians after a warm-up
call, as ``hamdesign bench``; the table is printed too.
"""

from __future__ import annotations

import argparse

import numpy as np
from hamdesign.bench import Case, run_benchmarks

MESHES = (16, 32, 64, 128, 256)
ORBITALS = (2, 4, 8, 16, 32)
BACKENDS = ("jax", "torch", "autograd")


def _random_model(norb: int, seed: int = 0):
    from hamdesign.lattice import Lattice
    from hamdesign.model import TightBinding

    rng = np.random.default_rng(seed)
    positions = rng.uniform(0, 1, size=(norb, 2))
    hops, params = [], {}
    for i in range(norb):
        params[f"e{i}"] = float(rng.normal())
        hops.append((i, i, (0, 0), f"e{i}"))
    for i in range(norb):
        for j in range(norb):
            for R in ((0, 0), (1, 0), (0, 1), (1, 1)):
                if R == (0, 0) and j <= i:
                    continue
                if rng.uniform() < 0.5:
                    continue
                name = f"t{i}_{j}_{R[0]}{R[1]}"
                params[name] = float(rng.normal(scale=0.5))
                params[f"phase_{name}"] = float(rng.uniform(-3, 3))
                hops.append((i, j, R, f"{name}*exp(i*phase_{name})"))
    return TightBinding.build(Lattice(np.eye(2)), positions, hops, params, name=f"random{norb}")


def _hall_case(model, nk: int, label: str) -> Case:
    def build(be):
        import hamdesign as hd

        k = hd.kmesh(nk, 2)
        fn = be.jit(be.value_and_grad(lambda p: hd.sigma_xy(model, p, k, beta=5.0, filling=0.5)))
        return fn, (be.asarray(model.default_params),)

    return Case(label, f"σ_xy value+gradient, {model.name}, {nk}×{nk} k", True, build)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/scaling.png")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from hamdesign.models import haldane

    backends = [b for b in BACKENDS if _installed(b)]
    by_k = run_benchmarks(backends, repeat=args.repeat, cases=[_hall_case(haldane(M=0.1, phi=1.0), n, f"k{n}") for n in MESHES])
    by_band = run_benchmarks(backends, repeat=args.repeat, cases=[_hall_case(_random_model(n), 24, f"b{n}") for n in ORBITALS])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for backend in backends:
        ks = [n * n for n in MESHES]
        times = [1e3 * r["median_s"] for r in by_k if r["backend"] == backend]
        left.loglog(ks, times, "o-", label=backend)
        times = [1e3 * r["median_s"] for r in by_band if r["backend"] == backend]
        right.loglog(ORBITALS, times, "o-", label=backend)
    ref = np.array([n * n for n in MESHES], dtype=float)
    first = [1e3 * r["median_s"] for r in by_k if r["backend"] == backends[0]]
    left.loglog(ref, first[-1] * ref / ref[-1], "k:", label="∝ k-points")
    left.set(xlabel="k-points", ylabel="time per value + gradient (ms)", title="Haldane model, σ_xy value + gradient")
    right.set(xlabel="orbitals (bands)", ylabel="time per value + gradient (ms)", title="random 2D models, 24×24 k")
    from matplotlib.ticker import NullFormatter

    right.set_xticks(ORBITALS, [str(n) for n in ORBITALS])
    right.xaxis.set_minor_formatter(NullFormatter())
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("hamdesign scaling on this machine (steady state, after compilation)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)

    print("| case | " + " | ".join(backends) + " |")
    print("| --- |" + " --- |" * len(backends))
    for rows, cases in ((by_k, [f"k{n}" for n in MESHES]), (by_band, [f"b{n}" for n in ORBITALS])):
        for case in cases:
            cells = [f"{1e3 * r['median_s']:.2f} ms" for b in backends for r in rows if r["case"] == case and r["backend"] == b]
            desc = next(r["description"] for r in rows if r["case"] == case)
            print(f"| {desc} | " + " | ".join(cells) + " |")


def _installed(name: str) -> bool:
    from hamdesign.backend import available_backends

    return name in available_backends()


if __name__ == "__main__":
    main()
