"""σ_xy value + gradient: hamdesign against a re-implementation of the original work's approach, side by side.

The original work's code is not part of this repository; the project brief describes it as "a
Python loop of scatter-adds per k-point, jacfwd for the velocity, vmap of the Kubo sum", about
70 ms per step for the Haldane model on a 100×100 mesh on this kind of machine. This script writes
that approach down for the Haldane model in plain JAX (our own code, same conventions as
``hamdesign.models.haldane``: the same lattice, bonds, tight-binding gauge and regularised 1/Δ²),
checks that it gives the same σ_xy and gradient as hamdesign, and then times both in one process,
so the speed-up is a ratio measured side by side rather than against a remembered figure.

Usage::

    python scripts/compare_original_approach.py [--nk 100] [--repeat 21] [--backends jax,torch,autograd]
"""

from __future__ import annotations

import argparse
import statistics
import time

import hamdesign as hd
import numpy as np
from hamdesign.backend import get_backend, use_backend
from hamdesign.models import HALDANE_NNN, HONEYCOMB_NN, haldane

BETA = 5.0
MU = 0.0
REGULATOR = 1e-6


def original_approach(model, kfrac):
    """The per-k-point formulation, jitted: returns a function params → (σ_xy, dσ_xy/dparams)."""
    import jax.numpy as jnp

    import jax

    jax.config.update("jax_enable_x64", True)
    a = model.lattice.vectors[:2, :2]
    tau = model.positions[:, :2]
    kcart = jnp.asarray(model.lattice.cartesian_k(kfrac)[:, :2])
    cell_area = abs(float(np.linalg.det(a)))

    def bond_vector(i, j, R):
        return np.asarray(R, dtype=float) @ a + tau[j] - tau[i]

    bonds = [(0, 1, bond_vector(0, 1, R), "t1") for R in HONEYCOMB_NN]
    bonds += [(0, 0, bond_vector(0, 0, R), "t2+") for R in HALDANE_NNN]
    bonds += [(1, 1, bond_vector(1, 1, tuple(-r for r in R)), "t2+") for R in HALDANE_NNN]

    def hamiltonian_at(k, params):
        t1, t2, phi, mass = params[0], params[1], params[2], params[3]
        amplitude = {"t1": t1 + 0j, "t2+": t2 * jnp.exp(1j * phi)}
        h = jnp.zeros((2, 2), dtype=jnp.complex128)
        for i, j, d, kind in bonds:  # one scatter-add per bond and its Hermitian partner
            term = amplitude[kind] * jnp.exp(1j * jnp.dot(k, d))
            h = h.at[i, j].add(term)
            h = h.at[j, i].add(jnp.conj(term))
        h = h.at[0, 0].add(mass)
        return h.at[1, 1].add(-mass)

    velocity_at = jax.jacfwd(hamiltonian_at, argnums=0)  # (2, 2, 2): ∂H/∂k_x, ∂H/∂k_y

    def occupied_curvature_at(k, params):
        energies, states = jnp.linalg.eigh(hamiltonian_at(k, params))
        dh = velocity_at(k, params)
        vx = states.conj().T @ dh[..., 0] @ states
        vy = states.conj().T @ dh[..., 1] @ states
        gap = energies[:, None] - energies[None, :]
        g = gap**2 / (gap**4 + REGULATOR**4)
        omega = -2.0 * jnp.imag(jnp.sum(vx * vy.T * g, axis=1))
        occupation = 0.5 * (1.0 - jnp.tanh(0.5 * BETA * (energies - MU)))
        return jnp.sum(occupation * omega)

    def sigma(params):
        per_k = jax.vmap(occupied_curvature_at, in_axes=(0, None))(kcart, params)
        # σ_xy = −(1/2π)∫d²k Σ f Ω: the physical sign (electron charge −e), as hamdesign reports it
        return -2 * np.pi / cell_area * jnp.sum(per_k) / kcart.shape[0]

    return jax.jit(jax.value_and_grad(sigma))


def _time(fn, args, be, repeat):
    t0 = time.perf_counter()
    out = fn(*args)
    be.to_numpy(out[1])
    warmup = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        be.to_numpy(out[1])
        times.append(time.perf_counter() - t0)
    return out, warmup, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nk", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--backends", default="jax,torch,autograd")
    ap.add_argument("--rounds", type=int, default=3, help="alternate the codes this many times (the machine's speed drifts)")
    args = ap.parse_args()

    model, kfrac = haldane(M=0.1, phi=1.0), hd.kmesh(args.nk, 2)
    start = np.asarray(model.default_params, dtype=float)
    jax_be = get_backend("jax")
    reference = original_approach(model, kfrac)
    codes = {"original approach (jax)": (jax_be, reference)}
    for name in args.backends.split(","):
        be = get_backend(name)
        with use_backend(be):
            fn = be.jit(be.value_and_grad(lambda p: hd.sigma_xy(model, p, kfrac, beta=BETA, mu=MU)))
        codes[f"hamdesign {name}"] = (be, fn)

    results = {label: [] for label in codes}
    values = {}
    for _ in range(args.rounds):
        for label, (be, fn) in codes.items():
            with use_backend(be):
                out, warmup, median = _time(fn, (be.asarray(start),), be, args.repeat)
            results[label].append((warmup, median))
            values[label] = (float(be.to_numpy(out[0])), np.asarray(be.to_numpy(out[1])))

    ref_value, ref_grad = values["original approach (jax)"]
    print(f"Haldane (M = 0.1, φ = 1), {args.nk}×{args.nk} k, β = {BETA}, μ = {MU}: σ_xy value + gradient")
    print(
        f"σ_xy = {ref_value:.12f} (original approach); median of {args.repeat} calls per round, {args.rounds} rounds alternating"
    )
    print(f"{'code':28s} {'median (ms), per round':30s} {'best':>8s} {'speed-up':>9s} {'|Δσ|':>9s} {'max|Δgrad|':>10s}")
    ref_best = min(m for _, m in results["original approach (jax)"])
    for label, rows in results.items():
        value, grad = values[label]
        best = min(m for _, m in rows)
        per_round = ", ".join(f"{1e3 * m:.2f}" for _, m in rows)
        print(
            f"{label:28s} {per_round:30s} {1e3 * best:8.2f} {ref_best / best:8.1f}× "
            f"{abs(value - ref_value):9.1e} {np.max(np.abs(grad - ref_grad)):10.1e}"
        )
    # per-round ratios: the fairest comparison when the machine's speed drifts
    for label, rows in results.items():
        if label.startswith("hamdesign"):
            ratios = [ref[1] / own[1] for ref, own in zip(results["original approach (jax)"], rows, strict=False)]
            print(f"speed-up of {label} per round: " + ", ".join(f"{r:.1f}×" for r in ratios))


if __name__ == "__main__":
    main()
