"""The asv benchmarks across models run (smallest size), so they cannot rot unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))

from benchmarks import models as bench_models  # noqa: E402


@pytest.mark.parametrize("stage", bench_models.GRID_STAGES)
@pytest.mark.parametrize("model", bench_models.MODELS)
def test_every_stage_runs_at_the_smallest_size(model, stage):
    from hamdesign.bench import grid_case

    case = grid_case(stage, model, "small")
    backend = "autograd" if case is not None and case.needs_grad else "numpy"
    bench = bench_models.Stages()
    try:
        bench.setup(backend, model, stage, "small")
    except NotImplementedError:
        assert case is None  # only stages that do not apply to the model are skipped
        return
    bench.time_stage(backend, model, stage, "small")
    from benchmarks.common import block

    from hamdesign.backend import use_backend

    with use_backend(bench.be):
        assert np.all(np.isfinite(block(bench.be, bench.fn(*bench.args))))


def test_the_grid_covers_every_model_and_stage():
    from hamdesign.bench import grid_cases

    cases = grid_cases("small")
    assert {c.name.split(":")[1] for c in cases} == set(bench_models.MODELS)
    assert {c.name.split(":")[0] for c in cases} == set(bench_models.GRID_STAGES)
    # σ_xy needs 2D/3D, the photocurrent eV and Å, the design step a preset
    assert "hall_value:kondo_chain" not in {c.name for c in cases}
    assert {c.name for c in cases if c.name.startswith("photocurrent")} == {
        "photocurrent_value_and_grad:kondo_chain",
        "photocurrent_value_and_grad:random3d16",
    }


def test_peak_memory_benchmark_runs_the_largest_mesh():
    from benchmarks.common import block

    import numpy as np
    from hamdesign.backend import use_backend
    from hamdesign.bench import grid_case

    bench = bench_models.PeakMemory()
    bench.setup("numpy", "haldane", "shift_spectrum")
    bench.peakmem_stage("numpy", "haldane", "shift_spectrum")
    with use_backend("numpy") as be:
        measured = block(be, bench.fn(*bench.args))
        spectra = {
            size: block(be, (lambda fn, args: fn(*args))(*grid_case("shift_spectrum", "haldane", size).build(be)))
            for size in ("small", "large")
        }
    assert np.max(np.abs(spectra["large"])) > 0
    np.testing.assert_array_equal(measured, spectra["large"])  # the 200×200 mesh, not a smaller one
    assert not np.array_equal(measured, spectra["small"])
    for backend, model, stage in (
        ("numpy", "haldane", "hall_value_and_grad"),
        ("autograd", "kondo_chain", "hall_value_and_grad"),
    ):
        with pytest.raises(NotImplementedError):  # no gradient on numpy; no σ_xy for a 1D chain
            bench.setup(backend, model, stage)


def test_random3d16_is_a_3d_model_without_inversion_symmetry():
    import hamdesign as hd
    import numpy as np
    from hamdesign.backend import use_backend
    from hamdesign.bench import random3d16

    model = random3d16()
    assert model.dim == 3 and model.nband == 16
    with use_backend("numpy"):
        sigma = hd.shift_conductivity(
            model, None, hd.kmesh(4, 3), [1.0, 2.0], components="xxx", beta=10.0, filling=0.5, eta=0.1
        ).sigma
    assert np.max(np.abs(np.asarray(sigma))) > 0


@pytest.mark.jax
def test_the_original_approach_baseline_computes_the_same_sigma_and_gradient():
    """scripts/compare_original_approach.py times a per-k-point re-implementation: it must agree."""
    import importlib.util

    import hamdesign as hd
    import numpy as np
    from conftest import on_backend
    from hamdesign.models import haldane

    path = Path(__file__).resolve().parents[1] / "scripts" / "compare_original_approach.py"
    spec = importlib.util.spec_from_file_location("compare_original_approach", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model, k = haldane(M=0.1, phi=1.0), hd.kmesh(12, 2)
    with on_backend("jax") as be:
        p = be.asarray(np.asarray(model.default_params, dtype=float))
        value, grad = script.original_approach(model, k)(p)
        own_value, own_grad = be.value_and_grad(lambda q: hd.sigma_xy(model, q, k, beta=script.BETA, mu=script.MU))(p)
    assert float(value) == pytest.approx(float(own_value), rel=1e-12)
    assert np.allclose(np.asarray(grad), np.asarray(own_grad), rtol=1e-10, atol=1e-12)


def test_fermi_level_scan_benchmark_runs_both_paths():
    from benchmarks.hall import FermiLevelScan

    results = {}
    for path in ("report", "dense"):
        bench = FermiLevelScan()
        bench.setup(path, 3, 5)
        bench.time_scan(path, 3, 5)
        results[path] = bench.compute(path, 3, 5)
    assert results["dense"].shape == (5, 3) and np.abs(results["dense"]).max() > 10.0
    np.testing.assert_allclose(results["report"], results["dense"], rtol=0, atol=1e-10 * np.abs(results["dense"]).max())


def test_fe_eigensystem_benchmark_times_the_same_matrices_paired_and_unpaired():
    from benchmarks.hall import FeEigensystem

    from hamdesign import model as model_module

    for order in (1, 2):
        results = {}
        for paired in (True, False):
            bench = FeEigensystem()
            bench.nk = 3
            bench.setup(paired, order)
            bench.time_eigensystem(paired, order)
            results[paired] = bench.compute(paired, order)
        assert model_module.PAIRED_DERIVATIVES is True  # the switch is put back
        for (v1, w1), (v2, w2) in zip(results[True], results[False], strict=True):
            assert len(v1) == 3 and len(w1) == (9 if order == 2 else 0)
            for key in (*v1, *w1):
                x, y = (v1 | w1)[key], (v2 | w2)[key]
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-12 * np.abs(y).max())
