"""The whole shift (and injection) tensor in one pass over k equals each component computed on its own.

The one-pass path (:func:`hamdesign.observables.shift.shift_tensor_integrand`, the pair restriction
of :func:`hamdesign.observables.response.contributing_pairs`, the Gaussian's tail cut) is compared
with the general path it replaced: every one of the 27 σ^{abc} (b > c included) computed alone with
``SHARED_TENSOR = RESTRICT_PAIRS = False``, on a random 3D model and on a spin-doubled one whose bands
are all exactly twice degenerate (the covariant subspace treatment), for both smearings, with and
without sc_eta and the scissor. Memory: the peak of a whole-tensor spectrum does not grow with the mesh.
"""

from __future__ import annotations

import os
import tracemalloc
from itertools import product

import pytest

import hamdesign as hd
import numpy as np
from conftest import AUTODIFF, random_model, value_and_grad_on
from hamdesign.backend import use_backend
from hamdesign.observables import response, shift
from hamdesign.observables.injection import injection_rate
from hamdesign.observables.shift import shift_conductivity

EVERY_TRIPLE = [tuple(t) for t in product(range(3), repeat=3)]
OMEGA = np.linspace(0.2, 6.0, 23)


@pytest.fixture
def general_path(monkeypatch):
    """Switch the one-pass shortcuts off inside a ``with`` block (the path each component took before)."""

    class Switch:
        def __enter__(self):
            monkeypatch.setattr(shift, "SHARED_TENSOR", False)
            monkeypatch.setattr(response, "RESTRICT_PAIRS", False)

        def __exit__(self, *exc):
            monkeypatch.setattr(shift, "SHARED_TENSOR", True)
            monkeypatch.setattr(response, "RESTRICT_PAIRS", True)

    return Switch()


MODELS = {
    "random3d": lambda: random_model(4, dim=3, seed=31, onsite_spread=1.0),
    "spin-doubled": lambda: random_model(2, dim=3, seed=32, onsite_spread=1.5, spin_degenerate=True),
}
SETTINGS = {
    "gaussian": {"beta": 40.0, "mu": 0.4, "eta": 0.15, "smearing": "gaussian"},
    "lorentzian-sc0": {"beta": 40.0, "filling": 0.5, "eta": 0.1, "smearing": "lorentzian", "sc_eta": 0.0},
    "gaussian-scissor": {"beta": 40.0, "mu": 0.4, "eta": 0.1, "smearing": "gaussian", "scissor": 0.3, "sc_eta": 0.1},
}


def _numpy(fn):
    with use_backend("numpy") as be:
        return np.asarray(be.to_numpy(fn()))


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", list(MODELS))
def test_one_pass_tensor_equals_every_component_alone(name, setting, general_path):
    model = MODELS[name]()
    k = hd.kmesh(5, 3)
    kw = SETTINGS[setting]
    together = _numpy(lambda: shift_conductivity(model, None, k, OMEGA, components=EVERY_TRIPLE, **kw).sigma)
    with general_path:
        alone = np.stack(
            [_numpy(lambda t=t: shift_conductivity(model, None, k, OMEGA, components=[t], **kw).sigma)[0] for t in EVERY_TRIPLE]
        )
    scale = np.abs(alone).max()
    assert scale > 0
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12 * scale)
    # σ^{abc} = σ^{acb}: what "all" (b ≤ c) leaves out
    tensor = together.reshape(3, 3, 3, -1)
    np.testing.assert_allclose(tensor, np.swapaxes(tensor, 1, 2), rtol=0, atol=1e-12 * scale)


def test_spin_doubled_tensor_is_twice_the_single_one():
    # independent of both paths: the doubled model's bands are all degenerate, the single one's none
    single = random_model(2, dim=3, seed=32, onsite_spread=1.5)
    doubled = random_model(2, dim=3, seed=32, onsite_spread=1.5, spin_degenerate=True)
    k = hd.kmesh(5, 3)
    kw = {"beta": 40.0, "mu": 0.4, "eta": 0.15}
    one = _numpy(lambda: shift_conductivity(single, None, k, OMEGA, components="all", **kw).sigma)
    two = _numpy(lambda: shift_conductivity(doubled, None, k, OMEGA, components="all", **kw).sigma)
    np.testing.assert_allclose(two, 2 * one, rtol=0, atol=1e-11 * np.abs(one).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_injection_tensor_equals_every_component_alone(name, general_path):
    model = MODELS[name]()
    k = hd.kmesh(4, 3)
    kw = {"beta": 40.0, "mu": 0.4, "eta": 0.15}
    together = _numpy(lambda: injection_rate(model, None, k, OMEGA, components=EVERY_TRIPLE, **kw).rate)
    with general_path:
        alone = np.stack(
            [_numpy(lambda t=t: injection_rate(model, None, k, OMEGA, components=[t], **kw).rate)[0] for t in EVERY_TRIPLE]
        )
    assert np.abs(alone).max() > 0
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12 * np.abs(alone).max())


@pytest.mark.parametrize("backend", AUTODIFF)
def test_shared_products_give_the_same_value_and_gradient(backend, general_path):
    model = random_model(3, dim=3, seed=33, onsite_spread=1.0)
    k = hd.kmesh(3, 3)

    def f(p):
        res = shift_conductivity(model, p, k, [1.0, 2.5], components="xyz,zxx,yyz", beta=20.0, filling=0.5, eta=0.3)
        return hd.backend.current().xp.sum(res.sigma) * 1e4

    value, grad = value_and_grad_on(backend, f, model.default_params)
    with general_path:
        ref_value, ref_grad = value_and_grad_on(backend, f, model.default_params)
    assert value == pytest.approx(ref_value, rel=1e-11)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-11 * np.abs(ref_grad).max())


def test_pairs_that_add_nothing_are_left_out():
    # a cold, wide-gap model: the pairs inside the occupied (empty) bands have f_nm = 0 exactly
    model = random_model(4, dim=3, seed=34, onsite_spread=3.0, hop_scale=0.2)
    k = hd.kmesh(3, 3)
    with use_backend("numpy") as be:
        e = np.sort(np.asarray(hd.spectrum.bands(model, None, k)), axis=1)
        mu = 0.5 * (e[:, 1].max() + e[:, 2].min())
        assert e[:, 2].min() - e[:, 1].max() > 0.5  # a real gap
        occ = hd.spectrum.fermi(be.asarray(e) - mu, 200.0)
        f_nm = response.pair_difference(occ)
        lorentz = response.contributing_pairs(f_nm, be.asarray(e), OMEGA, eta=0.1, smearing="lorentzian")
        # only occupied → empty and back: (0|1) × (2|3), both orders
        across = [n * 4 + m for n in (0, 1) for m in (2, 3)] + [m * 4 + n for n in (0, 1) for m in (2, 3)]
        assert sorted(lorentz.tolist()) == sorted(across)
        gauss = response.contributing_pairs(f_nm, be.asarray(e), np.array([5.0, 6.0]), eta=0.01, smearing="gaussian")
        # ω far above every gap: with the Gaussian's cut nothing is left
        assert gauss.size < lorentz.size


def test_gaussian_shape_is_exactly_zero_beyond_its_cut_and_exact_inside():
    with use_backend("numpy"):
        u = np.array([0.0, 1.0, 5.0, 5.99, 6.0, 30.0, 1e3])
        shape = np.asarray(response._smearing_shape(u, kind="gaussian"))
    inside = u * u < response.GAUSSIAN_CUT_SQUARED
    np.testing.assert_array_equal(shape[inside], np.exp(-(u[inside] ** 2)))
    assert np.all(shape[~inside] == 0.0) and (~inside).sum() == 3


def test_memory_of_the_whole_tensor_is_bounded_by_the_chunk():
    model = random_model(4, dim=3, seed=35)
    peaks = []
    for nk in (6, 10):  # 216 and 1000 k-points, 64 per chunk
        k = hd.kmesh(nk, 3)
        with use_backend("numpy"):
            shift_conductivity(model, None, k, OMEGA, components="all", beta=20.0, mu=0.0, eta=0.1, chunk=64)  # warm caches
            tracemalloc.start()
            shift_conductivity(model, None, k, OMEGA, components="all", beta=20.0, mu=0.0, eta=0.1, chunk=64)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    # 4.6× the k-points; the mesh itself (and its cached phases) is a few hundred kB of it
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_whole_tensor_benchmark_and_the_comparison_script_assemble_all_27():
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "asv_bench"))
    try:
        from benchmarks.shift import ShiftTensor
    finally:
        sys.path.remove(str(root / "asv_bench"))
    bench = ShiftTensor()
    bench.setup("numpy", 3)
    bench.time_tensor("numpy", 3)
    sigma = np.asarray(bench.fn(bench.p))
    assert sigma.shape == (18, 59) and np.abs(sigma).max() > 0
    path = root / "scripts" / "compare_wannierberri_speed.py"
    spec = importlib.util.spec_from_file_location("compare_wannierberri_speed", path)
    script = importlib.util.module_from_spec(spec)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    environment = dict(os.environ)
    try:
        spec.loader.exec_module(script)  # sets thread variables and pins this process to one core: undone below
    finally:
        os.environ.clear()
        os.environ.update(environment)
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    full = script.full_tensor(sigma, 3)
    rows = shift.parse_components("all", dim=3)
    for (a, b, c), row in zip(rows, sigma, strict=True):
        np.testing.assert_array_equal(full[:, a, b, c], row)
        np.testing.assert_array_equal(full[:, a, c, b], row)
