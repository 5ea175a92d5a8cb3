"""Reliability: killed runs resume, oversized requests are refused, edge cases stay finite, fuzzing."""

from __future__ import annotations

import copy
import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import numpy as np
from hamdesign.backend import use_backend
from hamdesign.design import PRESETS
from hamdesign.errors import MemoryBudgetError, ModelFileError

FUZZ = settings(
    max_examples=int(os.environ.get("HAMDESIGN_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _cli():
    import shutil
    from pathlib import Path

    return shutil.which("hamdesign", path=str(Path(sys.executable).parent))


def _small_config(tmp_path, steps=300):
    import tomli_w

    cfg = copy.deepcopy(PRESETS["haldane"])
    cfg.update(steps=steps, kmesh=[40, 40], checkpoint_every=2)
    cfg["evaluation"] = {"beta": 200.0, "nk": 40}
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    config = _small_config(tmp_path)
    env = {**os.environ, "HAMDESIGN_BACKEND": "autograd"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [_cli(), "-q", "design", str(config), "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = killed / "checkpoint.npz"
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoint.exists():
        time.sleep(0.05)
    time.sleep(0.3)  # let it get further, so the kill can land mid-step or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; make it longer"
    from hamdesign.optimize import load_checkpoint

    state, _ = load_checkpoint(checkpoint)  # the checkpoint left behind is complete and readable
    assert 0 < state.step < 300
    resumed = subprocess.run(
        [_cli(), "-q", "design", str(config), "--resume", str(killed)], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"took over the lock of pid {proc.pid}" in resumed.stderr  # the killed run's lock, recognised as stale
    straight = subprocess.run(
        [_cli(), "-q", "design", str(config), "--out", str(tmp_path / "straight")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr
    a = json.loads((killed / "result.json").read_text())
    b = json.loads((tmp_path / "straight" / "result.json").read_text())
    for name, value in b["design_variables"].items():
        assert a["design_variables"][name] == pytest.approx(value, rel=1e-12, abs=1e-14)
    assert a["evaluation"]["sigma_xy"] == pytest.approx(b["evaluation"]["sigma_xy"], rel=1e-12)
    with np.load(killed / "history.npz") as history:
        assert len(history["loss"]) == 300


def test_oversized_mesh_is_refused_with_an_estimate():
    from hamdesign.lattice import kmesh
    from hamdesign.models import haldane
    from hamdesign.observables.hall import sigma_xy

    with use_backend("numpy"), pytest.raises(MemoryBudgetError, match=r"GiB.*smaller --nk"):
        sigma_xy(haldane(), None, kmesh((20000, 20000), 2), beta=1.0, mu=0.0)
    out = subprocess.run(
        [_cli(), "evaluate", "haldane", "--nk", "30000", "--beta", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HAMDESIGN_BACKEND": "numpy"},
    )
    assert out.returncode == 2 and "GiB" in out.stderr and len(out.stderr.strip().splitlines()) == 1


EDGE_CASES = ["very-low-temperature", "mu-at-band-edge", "mesh-of-one", "one-orbital-1d", "one-orbital-3d", "fully-degenerate"]


def _edge_case(case: str):
    """(model, k-mesh, occupation keywords, objectives) of one numerical edge case."""
    import hamdesign as hd
    from hamdesign.lattice import Lattice
    from hamdesign.model import TightBinding
    from hamdesign.models import haldane, hbn

    kw = {"beta": 5.0, "mu": 0.0}
    if case == "very-low-temperature":
        model, k, kw = haldane(M=0.2), hd.kmesh(12, 2), {"beta": 1e8, "filling": 0.5}
    elif case == "mu-at-band-edge":
        model, k = hbn(), hd.kmesh(12, 2)  # 12 is divisible by 3: K is on the mesh
        kw = {"beta": 200.0, "mu": -1.0}  # M = 1 eV: the valence-band top is exactly −M = −1 eV, at K
    elif case == "mesh-of-one":
        model, k = haldane(M=0.3), hd.kmesh((1, 9), 2)
    elif case == "one-orbital-1d":
        model = TightBinding.build(Lattice([[1.0]]), [[0.0]], [(0, 0, (1,), "t")], {"t": 1.0})
        k = hd.kmesh(8, 1)
    elif case == "one-orbital-3d":
        hops = [(0, 0, (1, 0, 0), "t"), (0, 0, (0, 1, 0), "t")]
        model = TightBinding.build(Lattice(np.eye(3)), [[0.0, 0.0, 0.0]], hops, {"t": 1.0})
        k = hd.kmesh(4, 3)
    else:
        model = TightBinding.build(
            Lattice(np.eye(2)), [[0, 0], [0.5, 0.5]], [(0, 0, (0, 0), "e"), (1, 1, (0, 0), "e")], {"e": 0.3}
        )
        k = hd.kmesh(6, 2)
    objectives = [lambda q: hd.shift_conductivity(model, q, k, [0.5, 1.5], components="xxx", eta=0.1, **kw).sigma[0, 0]]
    objectives.append(lambda q: hd.injection_rate(model, q, k, [0.5, 1.5], components="xxx", eta=0.1, **kw).rate[0, 1] * 1e-15)
    if model.dim >= 2:
        objectives.append(lambda q: hd.sigma_xy(model, q, k, **kw))
    return model, objectives


@functools.cache
def _edge_case_differences(case: str) -> list[np.ndarray]:
    """Central differences of every objective of ``case`` at the default parameters, on numpy."""
    from conftest import central_difference

    model, objectives = _edge_case(case)
    return [central_difference(f, model.default_params, h=1e-6) for f in objectives]


@pytest.mark.parametrize("case", EDGE_CASES)
def test_numerical_edge_cases_are_finite_on_every_backend(ad_backend, case):
    """Finite values and gradients, and gradients equal to central differences.

    Each edge case is differentiable at its default parameters: the levels at μ (band edge) are
    smeared by a finite β; at β = 1e8 the filling puts μ mid-gap, far from every level; one orbital,
    or two that stay degenerate whatever e is, make every objective identically 0. So central
    differences (h = 1e-6) are the reference. Where an objective responds (largest difference
    above 1e-6) they must agree as in the gapped tests; where it vanishes (hBN's σ^xxx and σ_xy by
    symmetry, responses below the gap) both are round-off, and the AD gradient must be no larger.
    """
    model, objectives = _edge_case(case)
    p = ad_backend.asarray(model.default_params)
    for f, fd in zip(objectives, _edge_case_differences(case), strict=True):
        v, g = ad_backend.value_and_grad(f)(p)
        g = ad_backend.to_numpy(g)
        assert np.isfinite(float(ad_backend.to_numpy(v))) and np.all(np.isfinite(g)), case
        if np.abs(fd).max() > 1e-6:
            np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max(), err_msg=case)
        else:
            assert np.abs(g).max() <= 2 * np.abs(fd).max() + 1e-30, (case, g, fd)


# ---------------------------------------------------------------------------------- fuzzing
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)
)


def _containers(inner):
    """Lists and string-keyed dicts of ``inner``: the nesting that JSON/TOML model files allow."""
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4))


_value = st.recursive(_scalar, _containers, max_leaves=12)


def _valid_model_dict():
    return {
        "lattice": {"vectors": [[1.0, 0.0], [0.0, 1.0]]},
        "parameters": {"t": 1.0},
        "orbitals": [{"position": [0.0, 0.0]}, {"position": [0.5, 0.5]}],
        "hoppings": [
            {"from": 0, "to": 1, "R": [0, 0], "amplitude": "t"},
            {"from": 0, "to": 0, "R": [1, 0], "amplitude": [0.1, 0.2]},
        ],
    }


_PATHS = [
    ("lattice", "vectors"),
    ("lattice",),
    ("parameters",),
    ("orbitals",),
    ("hoppings",),
    ("hoppings", 0, "amplitude"),
    ("hoppings", 0, "R"),
    ("hoppings", 1, "from"),
    ("orbitals", 1, "position"),
    ("name",),
    ("extra",),
]


@FUZZ
@given(path=st.sampled_from(_PATHS), value=_value)
# inputs that once escaped as TypeError, OverflowError or floating-point warnings, kept as regressions
@example(path=("hoppings",), value=None)
@example(path=("lattice", "vectors"), value=[[False, 2.225073858507e-311]])
@example(path=("lattice", "vectors"), value=[[1.3407807929942597e160]])
@example(path=("hoppings", 0, "R"), value=[1.430558742878514e308, 1.430558742878514e308])
@example(path=("hoppings", 0, "amplitude"), value=[1.2711610061536462e308, 1.2711610061536464e308])
@example(path=("parameters",), value={"": 1000000000001.0})
def test_fuzzed_model_files_give_a_model_or_a_model_error(path, value):
    from hamdesign.io import model_from_dict

    data = _valid_model_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        model = model_from_dict(data, "fuzz.toml")
    except ModelFileError as err:
        assert str(err).startswith("fuzz.toml")
        return
    import hamdesign as hd

    with use_backend("numpy"):
        h = np.asarray(hd.hamiltonian(model, None, np.full((1, model.dim), 0.1)))
    assert np.all(np.isfinite(h))


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzzed_model_file_text_never_crashes(tmp_path_factory, text):
    from hamdesign.io import read_model_file

    path = tmp_path_factory.mktemp("fuzz") / "m.toml"
    path.write_text(text)
    with pytest.raises(ModelFileError):
        read_model_file(path)


_CONFIG_PATHS = [
    ("steps",),
    ("kmesh",),
    ("seeds",),
    ("objective", "goal"),
    ("objective", "mu"),
    ("optimizer", "learning_rate"),
    ("temperature", "start"),
    ("parameters", "M_*"),
    ("model",),
    ("evaluation", "beta"),
    ("init_scale",),
]


@FUZZ
@given(path=st.sampled_from(_CONFIG_PATHS), value=_value)
def test_fuzzed_configs_are_valid_or_one_config_error(path, value):
    from hamdesign.design import validate_config
    from hamdesign.errors import ConfigError

    cfg = copy.deepcopy(PRESETS["haldane"])
    target = cfg
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        validate_config(cfg, "fuzz.toml")
    except ConfigError as err:
        assert str(err).startswith("fuzz.toml: ")


@FUZZ
@given(values=st.lists(st.floats(-3, 3), min_size=4, max_size=4), nk=st.integers(1, 7))
def test_random_valid_haldane_models_give_finite_hall_values(values, nk):
    import hamdesign as hd
    from hamdesign.models import haldane

    model = haldane(*values)
    with use_backend("numpy"):
        report = hd.hall_report(model, None, nk, beta=10.0, filling=0.5)
    assert np.isfinite(report["sigma_xy"]) and all(np.isfinite(report["chern"]))
    # Ω_− = −Ω_+ at every k (also where the regulator acts), so the band Chern numbers cancel
    assert abs(sum(report["chern"])) <= 1e-9 * max(1.0, *np.abs(report["chern"]))


def test_cli_errors_for_fuzzed_files_are_one_line(tmp_path):
    for i, text in enumerate(
        [
            "[lattice]\nvectors = 3\n",
            "\x00\x01garbage",
            '{"lattice": {"vectors": [[1]]}, "orbitals": []}',
            "[[hoppings]]\nfrom = 0\n",
        ]
    ):
        path = tmp_path / f"bad{i}.{'json' if text.startswith('{') else 'toml'}"
        path.write_text(text)
        out = subprocess.run(
            [_cli(), "evaluate", str(path), "--beta", "1"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HAMDESIGN_BACKEND": "numpy"},
        )
        assert out.returncode == 2, (text, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
