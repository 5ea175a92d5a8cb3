"""The asv benchmarks across models run (smallest size), so they cannot rot unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))

from benchmarks import models as bench_models  # noqa: E402

CLASSES = [bench_models.HamiltonianAndEigh, bench_models.HallAcrossModels, bench_models.ShiftAcrossModels]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("model", bench_models.MODELS)
def test_benchmark_runs_at_the_smallest_size(cls, model):
    backend = "numpy" if "numpy" in cls.params[0] else "autograd"
    bench = cls()
    try:
        bench.setup(backend, model, "small")
    except NotImplementedError:
        assert cls is bench_models.HallAcrossModels and model in ("kondo_chain", "random3d16")
        return
    methods = [m for m in dir(bench) if m.startswith(("time_", "peakmem_"))]
    assert methods
    for name in methods:
        getattr(bench, name)(backend, model, "small")


def test_random3d16_is_a_3d_model_without_inversion_symmetry():
    import numpy as np

    import hamdesign as hd
    from hamdesign.backend import use_backend

    model = bench_models.random3d16()
    assert model.dim == 3 and model.nband == 16
    with use_backend("numpy"):
        sigma = hd.shift_conductivity(model, None, hd.kmesh(4, 3), [1.0, 2.0], components="xxx", beta=10.0, filling=0.5, eta=0.1).sigma
    assert np.max(np.abs(np.asarray(sigma))) > 0
