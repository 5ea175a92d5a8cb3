"""Memory of one design gradient on bcc Fe (18 bands) against the k-mesh, with and without per-chunk rematerialisation.

    python scripts/real_material_memory.py --nk 16 24 32 [--filling 0.45] [--backend jax|torch|autograd]

jax: the compiled step's temporary buffers (``memory_analysis().temp_size_in_bytes``, exact and
independent of machine load). torch/autograd: the peak resident memory of a fresh process that
takes one step, minus that of the same process before the step. Each case runs in its own
process; ``--no-remat`` cases replace the adapter's ``rematerialize`` by the identity.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FE = ROOT / "tests" / "data" / "wannier" / "Fe_tb.dat.gz"

CHILD = r"""
import json, resource, sys, time
import numpy as np
from hamdesign.backend import get_backend, use_backend
from hamdesign.io import load_model
from hamdesign.lattice import kmesh
from hamdesign.objectives import ahc_objective
from hamdesign.parametrize import Parametrization
from hamdesign.perturbations import build_perturbations, designable, parameter_maps

name, nk, filling, remat = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
adapter = get_backend(name)
if not remat:
    adapter.rematerialize = lambda fn: fn
base = load_model(sys.argv[5])
model = designable(base, build_perturbations({"shift": {"t2g": {"orbitals": "13-18"}, "hybrids": {"orbitals": "1-12"}}}, base))
par = Parametrization.build(model, parameter_maps(model))
objective = ahc_objective(model, par, kmesh((nk, nk, nk), 3), **({"filling": filling} if filling > 0 else {"mu": 18.0}))
with use_backend(name) as be:
    step = be.value_and_grad(objective, has_aux=True)
    theta, beta = be.asarray(np.zeros(par.size)), be.asarray(20.0)
    if name == "jax":
        import jax
        compiled = jax.jit(step).lower(theta, beta).compile()
        start = time.perf_counter()
        jax.block_until_ready(compiled(theta, beta))
        out = {"bytes": compiled.memory_analysis().temp_size_in_bytes, "what": "XLA temporaries"}
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        step(theta, beta)
        out = {"bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024, "what": "peak RSS growth"}
    out["seconds"] = time.perf_counter() - start
print(json.dumps(out))
"""


def measure(backend: str, nk: int, filling: float, remat: bool) -> dict:
    args = [sys.executable, "-c", CHILD, backend, str(nk), str(filling), "1" if remat else "0", str(FE)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nk", type=int, nargs="+", default=[16, 24, 32])
    parser.add_argument("--filling", type=float, default=0.0, help="0: μ = 18 eV given; else the filling (μ found each step)")
    parser.add_argument("--backend", default="jax")
    args = parser.parse_args()
    print(f"| backend | k-mesh | {'filling' if args.filling else 'μ given'} | rematerialised | plain | step (s, remat) |")
    print("|---|---|---|---|---|---|")
    for nk in args.nk:
        on, off = measure(args.backend, nk, args.filling, True), measure(args.backend, nk, args.filling, False)
        print(
            f"| {args.backend} | {nk}³ | {on['what']} | {on['bytes'] / 2**20:.0f} MiB | {off['bytes'] / 2**20:.0f} MiB | "
            f"{on['seconds']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
