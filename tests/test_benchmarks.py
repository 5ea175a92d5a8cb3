"""The asv benchmarks across models run (smallest size), so they cannot rot unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


def test_the_grid_covers_every_model_and_stage():
    from hamdesign.bench import grid_cases

    cases = grid_cases("small")
    assert {c.name.split(":")[1] for c in cases} == set(bench_models.MODELS)
    assert {c.name.split(":")[0] for c in cases} == set(bench_models.GRID_STAGES)
    # σ_xy needs 2D/3D, the photocurrent eV and Å, the design step a preset
    assert "hall_value:kondo_chain" not in {c.name for c in cases}
    assert {c.name for c in cases if c.name.startswith("photocurrent")} == {"photocurrent_value_and_grad:kondo_chain", "photocurrent_value_and_grad:random3d16"}


def test_peak_memory_benchmark_builds_its_case():
    bench = bench_models.PeakMemory()
    bench_models._build(bench, "numpy", "haldane", "hall_value", "small")
    bench.peakmem_stage("numpy", "haldane", "hall_value")


def test_random3d16_is_a_3d_model_without_inversion_symmetry():
    import numpy as np

    import hamdesign as hd
    from hamdesign.backend import use_backend

    from hamdesign.bench import random3d16

    model = random3d16()
    assert model.dim == 3 and model.nband == 16
    with use_backend("numpy"):
        sigma = hd.shift_conductivity(model, None, hd.kmesh(4, 3), [1.0, 2.0], components="xxx", beta=10.0, filling=0.5, eta=0.1).sigma
    assert np.max(np.abs(np.asarray(sigma))) > 0
