"""The k-mesh sharded over jax devices (hamdesign.devices): same values and gradients as one device.

jax fixes its device count when it starts, so the two-device checks run in a subprocess started
with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import numpy as np
from conftest import preserved_backend_state, require_module
from hamdesign import devices as hdev
from hamdesign.backend import use_backend
from hamdesign.cli import app
from hamdesign.errors import BackendError
from hamdesign.spectrum import k_chunks

# Small chunks (about 100 k-points per device) so that every mesh below spans several chunks and ends
# in a remainder that does not divide over two devices: 31² = 961 and 45 k-points are odd.
SHARDED_CHECK = r"""
import json
import sys
import numpy as np
import jax
import hamdesign as hd
from hamdesign import spectrum
from hamdesign.observables import hall
from hamdesign.lattice import kmesh
from hamdesign.models import haldane, kondo_chain, triangular
from hamdesign.objectives import hall_objective, photocurrent_objective
from hamdesign.parametrize import Parametrization

spectrum.DEFAULT_CHUNK_BYTES = hall.DEFAULT_CHUNK_BYTES = 100 * 24 * 16 * 16
hd.set_backend("jax")


def relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def compare(make, theta, beta):
    theta = jax.numpy.asarray(theta)
    (v1, _), g1 = jax.jit(jax.value_and_grad(make(), has_aux=True))(theta, beta)
    with hd.on_devices(2):
        compiled = jax.jit(jax.value_and_grad(make(), has_aux=True)).lower(theta, beta).compile()
        (v2, _), g2 = compiled(theta, beta)
    text = compiled.as_text()
    sharded = any(op in text for op in ("all-reduce", "all-gather", "reduce-scatter"))
    return {"value": relative(v2, v1), "grad": relative(g2, g1), "grad_norm": float(np.max(np.abs(g1))), "sharded": sharded}


out = {"devices": len(jax.devices())}
cases = sys.argv[1].split(",")
if "haldane" in cases:  # μ at a filling: a sum over the whole sharded mesh inside the objective
    model = haldane()
    par = Parametrization.build(model)
    theta = np.asarray(model.default_params, dtype=float) * 1.1
    out["haldane"] = compare(lambda: hall_objective(model, par, kmesh(15, 2), filling=0.5), theta, 5.0)
    eager = hd.sigma_xy(model, model.default_params, kmesh(15, 2), beta=30.0, filling=0.5)
    with hd.on_devices(2):
        sharded = hd.sigma_xy(model, model.default_params, kmesh(15, 2), beta=30.0, filling=0.5)
    out["eager_hall"] = relative(sharded, eager)
if "triangular" in cases:  # four bands: LAPACK's eigh, mapped over the devices
    model = triangular()
    par = Parametrization.build(model)
    theta = np.asarray(model.default_params) + 0.5 * np.random.default_rng(0).standard_normal(model.nparams)
    out["triangular"] = compare(lambda: hall_objective(model, par, kmesh(11, 2), mu=-1.0), theta, 5.0)
if "photocurrent" in cases:
    chain = kondo_chain(3, t1=0.3, t2=0.13, J=0.4, spins=np.random.default_rng(1).standard_normal((3, 3)))
    par = Parametrization.build(chain)
    theta = np.asarray(chain.default_params, dtype=float)
    out["photocurrent"] = compare(lambda: photocurrent_objective(chain, par, kmesh(21, 1), filling=0.5, sc_eta=0.0), theta, 40.0)
print(json.dumps(out))
"""


def _run_two_devices(*cases: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "HAMDESIGN_BACKEND": "jax"}
    command = [sys.executable, "-c", SHARDED_CHECK, ",".join(cases)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_agree(found: dict) -> None:
    assert found["sharded"], "the compiled program has no cross-device sum: nothing was sharded"
    assert found["grad_norm"] > 1e-3  # a gradient that is not (nearly) zero is compared
    assert found["value"] < 1e-12
    assert found["grad"] < 1e-12


def test_sharded_hall_objective_equals_one_device():
    """σ_xy at a filling (μ from the whole sharded mesh), 15² = 225 k-points: two chunks, one replicated point."""
    require_module("jax")
    found = _run_two_devices("haldane")
    assert found["devices"] == 2
    _assert_agree(found["haldane"])
    assert found["eager_hall"] < 1e-12


@pytest.mark.slow
def test_sharded_lapack_eigh_and_photocurrent_equal_one_device():
    """Four and six bands (LAPACK's eigh mapped over the devices): σ_xy in a band and the photocurrent objective."""
    require_module("jax")
    found = _run_two_devices("triangular", "photocurrent")
    _assert_agree(found["triangular"])
    _assert_agree(found["photocurrent"])


def test_sharded_lengths_leave_a_remainder_below_the_device_count():
    assert hdev.sharded_lengths(10, 2) == [10]
    assert hdev.sharded_lengths(11, 2) == [10, 1]
    assert hdev.sharded_lengths(2, 3) == [2]
    assert hdev.sharded_lengths(7, 4) == [4, 3]


def test_k_chunks_per_device_cover_the_mesh_once(monkeypatch):
    kfrac = np.arange(23.0).reshape(-1, 1)
    monkeypatch.setattr("hamdesign.spectrum.device_count", lambda: 3)
    lengths = [len(c) for c in k_chunks(kfrac, 4)]
    assert lengths == [12, 9, 2]  # 3 devices × 4 per chunk; the last 11 = 9 sharded + 2 replicated
    np.testing.assert_array_equal(np.concatenate(list(k_chunks(kfrac, 4))), kfrac)


def test_on_devices_refuses_other_backends_and_too_many_devices():
    with use_backend("numpy"), pytest.raises(BackendError, match="needs the jax backend"):
        with hdev.on_devices(1):
            pass
    require_module("jax")
    with use_backend("jax"):
        with pytest.raises(hdev.DeviceError, match="devices asked for"):
            with hdev.on_devices(len(hdev.available_devices()) + 1):
                pass
        with pytest.raises(hdev.DeviceError, match="at least 1"):
            with hdev.on_devices(0):
                pass
        with hdev.on_devices(1) as chosen:
            assert hdev.active_devices() == chosen and hdev.device_count() == 1
        assert hdev.active_devices() is None


def _cli(*args: str):
    with preserved_backend_state():  # --backend sets the process default
        return CliRunner().invoke(app, list(args))


def test_cli_devices_errors_exit_2():
    result = _cli("--backend", "numpy", "evaluate", "haldane", "--nk", "8", "--beta", "10", "--devices", "1")
    assert result.exit_code == 2 and "needs the jax backend" in result.output
    require_module("jax")
    result = _cli("--backend", "jax", "evaluate", "haldane", "--nk", "8", "--beta", "10", "--devices", "64")
    assert result.exit_code == 2 and "devices asked for" in result.output
    result = _cli("--backend", "jax", "design", "haldane", "--seeds", "0,1", "--executor", "process", "--devices", "1")
    assert result.exit_code == 2 and "--executor serial" in result.output


def test_cli_evaluate_on_one_device_equals_numpy():
    require_module("jax")
    args = ("evaluate", "haldane", "--nk", "12", "--beta", "10", "--mu", "0.1", "--json")
    sharded = _cli("--backend", "jax", *args, "--devices", "1")
    plain = _cli("--backend", "numpy", *args)
    assert sharded.exit_code == 0, sharded.output
    assert json.loads(sharded.output)["sigma_xy"] == pytest.approx(json.loads(plain.output)["sigma_xy"], rel=1e-12)


def test_host_device_count_read_from_xla_flags():
    require_module("jax")
    from hamdesign.backends.jax import _host_devices_requested

    assert _host_devices_requested("--xla_cpu_foo=1 --xla_force_host_platform_device_count=4") == 4
    assert _host_devices_requested("") == 1


def test_on_devices_takes_a_list_of_jax_devices():
    require_module("jax")
    with use_backend("jax") as be:
        first = be.local_devices()[0]
        with hdev.on_devices([first]) as chosen:
            assert chosen == (first,)
        with pytest.raises(hdev.DeviceError, match="distinct"):
            with hdev.on_devices([first, first]):
                pass


def test_cli_design_on_one_device_equals_the_plain_run(tmp_path):
    require_module("jax")
    args = ("--backend", "jax", "-q", "design", "haldane", "--steps", "2", "--no-figures", "--json")
    plain = _cli(*args, "--out", str(tmp_path / "plain"))
    sharded = _cli(*args, "--out", str(tmp_path / "sharded"), "--devices", "1")
    assert plain.exit_code == 0 and sharded.exit_code == 0, sharded.output
    losses = [json.loads((tmp_path / d / "result.json").read_text())["final_loss"] for d in ("plain", "sharded")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-12)
