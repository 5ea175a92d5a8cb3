"""Quick speed comparison across the installed backends (``hamdesign bench``).

Each case is timed after a warm-up call (compilation for jax), as the median of ``repeat`` runs;
the warm-up time is reported separately. Only the public API is used, so the numbers are what a
user gets. asv_bench/ holds the same cases as asv benchmarks with more sizes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    needs_grad: bool
    build: Callable  # (backend) -> (fn, args)


def _hall_case(nk: int) -> Case:
    def build(be):
        import hamdesign as hd
        from hamdesign.models import haldane

        model, k = haldane(M=0.1, phi=1.0), hd.kmesh(nk, 2)
        fn = be.jit(be.value_and_grad(lambda p: hd.sigma_xy(model, p, k, beta=5.0, filling=0.5)))
        return fn, (be.asarray(model.default_params),)

    return Case(f"hall_vg_haldane_{nk}x{nk}", f"σ_xy value+gradient, Haldane, {nk}×{nk} k, μ at half filling", True, build)


def _shift_case(nk: int) -> Case:
    def build(be):
        import hamdesign as hd
        from hamdesign.models import hbn

        model, k = hbn(), hd.kmesh(nk, 2)
        omega = np.linspace(0.5, 8.0, 200)
        fn = be.jit(lambda p: hd.shift_conductivity(model, p, k, omega, components="yyy", beta=100.0, filling=0.5, eta=0.05).sigma)
        return fn, (be.asarray(model.default_params),)

    return Case(f"shift_hbn_{nk}x{nk}", f"shift-current spectrum σ^yyy (200 ω), hBN, {nk}×{nk} k", False, build)


def _photocurrent_case(nk: int) -> Case:
    def build(be):
        import hamdesign as hd
        from hamdesign.models import kondo_chain

        model, k = kondo_chain(), hd.kmesh(nk, 1)
        fn = be.jit(be.value_and_grad(lambda p: hd.photocurrent(model, p, k, beta=38.68, filling=0.5)["total"]))
        return fn, (be.asarray(model.default_params),)

    return Case(f"photocurrent_vg_kondo24_{nk}k", f"solar photocurrent value+gradient, 24-band chain, {nk} k", True, build)


def _design_step_case(preset: str) -> Case:
    def build(be):
        from hamdesign.design import DesignRun, load_config

        run = DesignRun(load_config(preset)[0])
        step = be.jit(be.value_and_grad(run.objective, has_aux=True))
        return step, (be.asarray(run.initial_theta(0)), be.asarray(run.beta(0)))

    return Case(f"design_step_{preset}", f"one design step (objective + gradient) of the {preset} preset", True, build)


CASES: tuple[Case, ...] = (
    _hall_case(100),
    _shift_case(100),
    _photocurrent_case(64),
    _design_step_case("haldane"),
    _design_step_case("triangular"),
    _design_step_case("photovoltaic"),
)


def _block(be, out):
    while isinstance(out, (tuple, list, dict)):
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return be.to_numpy(out)


def run_benchmarks(backends: list[str], *, repeat: int = 5, cases=CASES, progress=None) -> list[dict]:
    """Rows {case, backend, warmup_s, median_s, min_s} (None times where a backend cannot run a case)."""
    from .backend import get_backend, use_backend

    rows = []
    for case in cases:
        for name in backends:
            be = get_backend(name)
            row = {"case": case.name, "description": case.description, "backend": name, "warmup_s": None, "median_s": None, "min_s": None}
            if case.needs_grad and not be.can_differentiate:
                rows.append(row)
                continue
            with use_backend(be):
                fn, args = case.build(be)
                t0 = time.perf_counter()
                _block(be, fn(*args))
                row["warmup_s"] = time.perf_counter() - t0
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    _block(be, fn(*args))
                    times.append(time.perf_counter() - t0)
            row["median_s"], row["min_s"] = statistics.median(times), min(times)
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows
