"""GPU check: the jax and torch backends on a CUDA device agree with the CPU and how fast they are.

Usage (on a machine with an NVIDIA GPU and jax[cuda] / CUDA torch installed)::

    python scripts/gpu_check.py [results.json]

References are computed on the CPU with the numpy backend (values) and the autograd backend
(gradients); jax and torch are then loaded with HAMDESIGN_DEVICE=gpu, every case is re-evaluated
there, and the largest relative difference is printed. The timing part is ``hamdesign bench`` on
larger sizes, GPU backends only, with the compile (warm-up) time reported separately.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

os.environ["HAMDESIGN_DEVICE"] = "cpu"
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # jax and torch share the GPU here

import hamdesign as hd  # noqa: E402
from hamdesign.backend import get_backend, use_backend  # noqa: E402
from hamdesign.models import haldane, hbn, kondo_chain, triangular  # noqa: E402


def _cases():
    """name -> (model, k-mesh, scalar function of params, whether it is differentiated)."""
    omega = np.linspace(0.5, 8.0, 50)
    tri = triangular()
    return {
        "hall_haldane": (
            haldane(M=0.1, phi=1.0),
            hd.kmesh(60, 2),
            lambda m, k, p: hd.sigma_xy(m, p, k, beta=5.0, filling=0.5),
            True,
        ),
        "hall_triangular": (tri, hd.kmesh(36, 2), lambda m, k, p: hd.sigma_xy(m, p, k, beta=2.0, filling=0.5), True),
        "shift_hbn": (
            hbn(),
            hd.kmesh(48, 2),
            lambda m, k, p: hd.shift_conductivity(m, p, k, omega, components="yyy", beta=100.0, filling=0.5, eta=0.05).sigma,
            False,
        ),
        "photocurrent_kondo24": (
            kondo_chain(),
            hd.kmesh(64, 1),
            lambda m, k, p: hd.photocurrent(m, p, k, beta=38.68, filling=0.5)["total"],
            True,
        ),
    }


def _params(model, seed=3):
    rng = np.random.default_rng(seed)
    return np.asarray(model.default_params, dtype=float) + 0.05 * rng.standard_normal(len(model.default_params))


def _evaluate(be, case, *, grad=True):
    model, k, fn, differentiable = case
    grad = grad and differentiable
    p = be.asarray(_params(model))
    with use_backend(be):
        if grad:
            value, g = be.value_and_grad(lambda q: fn(model, k, q))(p)
            return np.asarray(be.to_numpy(value), dtype=float), np.asarray(be.to_numpy(g), dtype=float)
        return np.asarray(be.to_numpy(fn(model, k, p)), dtype=float), None


def _rel(a, b):
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b)) / scale)


def main(out_path: str | None) -> int:
    cases = _cases()
    cpu_value, cpu_grad = get_backend("numpy"), get_backend("autograd")
    reference = {}
    for name, case in cases.items():
        value = _evaluate(cpu_value, case, grad=False)[0]
        grad = _evaluate(cpu_grad, case)[1]
        reference[name] = (value, grad)

    os.environ["HAMDESIGN_DEVICE"] = os.environ.get(
        "GPU_CHECK_DEVICE", "gpu"
    )  # read by the jax and torch adapters when first loaded
    report = {"agreement": {}, "timing": [], "devices": {}}
    worst = 0.0
    for backend in ("jax", "torch"):
        be = get_backend(backend)
        report["devices"][backend] = str(be.device)
        for name, case in cases.items():
            value, grad = _evaluate(be, case)
            ref_value, ref_grad = reference[name]
            diffs = {"value": _rel(value, ref_value)}
            if grad is not None:
                diffs["gradient"] = _rel(grad, ref_grad)
            worst = max(worst, *diffs.values())
            report["agreement"][f"{backend}/{name}"] = diffs
            print(f"{backend:6s} {name:22s} " + "  ".join(f"{k} rel.diff {v:.1e}" for k, v in diffs.items()), flush=True)

    from hamdesign.bench import _design_step_case, _hall_case, _photocurrent_case, _shift_case, run_benchmarks

    sizes = (
        _hall_case(100),
        _hall_case(200),
        _shift_case(100),
        _shift_case(200),
        _photocurrent_case(64),
        _photocurrent_case(1024),
        _design_step_case("photovoltaic"),
    )
    t0 = time.perf_counter()
    rows = run_benchmarks(["jax", "torch"], repeat=5, cases=sizes)
    for row in rows:
        print(
            f"{row['case']:32s} {row['backend']:6s} median {1e3 * row['median_s']:9.2f} ms   warm-up {row['warmup_s']:.2f} s",
            flush=True,
        )
    report["timing"] = rows
    report["timing_wall_s"] = time.perf_counter() - t0
    report["worst_relative_difference"] = worst
    if out_path:
        with open(out_path, "w") as fh:
            json.dump(report, fh, indent=1)
    ok = worst < 1e-8
    print(f"worst relative difference GPU vs CPU: {worst:.1e} -> {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
