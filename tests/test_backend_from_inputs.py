"""The backend follows the arrays a user passes in, whatever HAMDESIGN_BACKEND or set_backend say.

A PyTorch user passes a ``torch.Tensor`` with ``requires_grad`` and calls ``.backward()``; a JAX user
calls ``jax.grad``/``jax.jit`` on the public function directly. Both must get the same values and
gradients as the adapters' own ``value_and_grad`` (and as each other) with no ``use_backend`` in sight.
"""

from __future__ import annotations

import pytest

import hamdesign as hd
import hamdesign.backend as hb
import numpy as np
from conftest import on_backend, random_model, require_module
from hamdesign.models import haldane, hbn, kondo_chain
from hamdesign.observables.hall import anomalous_hall_conductivity


def _public_objectives():
    """name → (model, params, f(params) → scalar) for every public observable."""
    hal, boron, chain = haldane(t2=0.15, phi=0.9, M=0.1), hbn(), kondo_chain()
    bulk = random_model(3, dim=3, seed=2)
    return {
        "sigma_xy": (hal, hal.default_params, lambda p: hd.sigma_xy(hal, p, hd.kmesh(12, 2), beta=5.0, filling=0.5)),
        "ahc": (
            bulk,
            bulk.default_params,
            lambda p: anomalous_hall_conductivity(bulk, p, hd.kmesh(3, 3), beta=5.0, mu=np.array([0.1]))[0, 2],
        ),
        "shift": (
            boron,
            boron.default_params,
            lambda p: hd.shift_conductivity(
                boron, p, hd.kmesh(8, 2), [3.0, 4.0], components="yyy", beta=30.0, filling=0.5, eta=0.2
            ).sigma[0, 1],
        ),
        "injection": (
            chain,
            chain.default_params,
            lambda p: (
                hd.injection_rate(chain, p, hd.kmesh(8, 1), [1.0], components="xxx", beta=30.0, filling=0.5, eta=0.2).rate[0, 0]
                * 1e-12
            ),
        ),
        "photocurrent": (
            chain,
            chain.default_params,
            lambda p: hd.photocurrent(chain, p, hd.kmesh(8, 1), beta=30.0, filling=0.5)["total"],
        ),
    }


OBJECTIVES = list(_public_objectives())


@pytest.fixture
def numpy_is_the_default(monkeypatch):
    """HAMDESIGN_BACKEND=numpy: nothing but the inputs can select an autodiff backend."""
    monkeypatch.setenv("HAMDESIGN_BACKEND", "numpy")
    monkeypatch.setattr(hb, "_default", [hb.get_backend("numpy")])


def _reference(name):
    model, p0, f = _public_objectives()[name]
    with on_backend("autograd") as be:
        value, grad = be.value_and_grad(f)(be.asarray(p0))
        return float(be.to_numpy(value)), be.to_numpy(grad)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_torch_tensor_with_backward(name, numpy_is_the_default):
    torch = require_module("torch")
    model, p0, f = _public_objectives()[name]
    p = torch.tensor(np.asarray(p0, dtype=float), dtype=torch.float64, requires_grad=True)
    value = f(p)
    assert isinstance(value, torch.Tensor)
    value.backward()
    ref_value, ref_grad = _reference(name)
    assert float(value.detach()) == pytest.approx(ref_value, rel=1e-10, abs=1e-14)
    np.testing.assert_allclose(p.grad.numpy(), ref_grad, rtol=1e-8, atol=1e-10 * max(np.abs(ref_grad).max(), 1e-300))
    assert hb.current().name == "numpy"


@pytest.mark.parametrize("name", OBJECTIVES)
def test_jax_grad_and_jit(name, numpy_is_the_default):
    jax = require_module("jax")
    jax.config.update("jax_enable_x64", True)
    model, p0, f = _public_objectives()[name]
    p = jax.numpy.asarray(np.asarray(p0, dtype=float))
    value, grad = jax.jit(jax.value_and_grad(f))(p)
    ref_value, ref_grad = _reference(name)
    assert float(value) == pytest.approx(ref_value, rel=1e-10, abs=1e-14)
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-8, atol=1e-10 * max(np.abs(ref_grad).max(), 1e-300))
    assert hb.current().name == "numpy"


def test_numpy_inputs_follow_use_backend_and_the_environment(numpy_is_the_default):
    model = haldane()
    with hb.use_backend("autograd"):
        out = hd.sigma_xy(model, model.default_params, hd.kmesh(6, 2), beta=5.0, mu=0.0)
        assert type(out).__module__.startswith("numpy") or type(out).__module__.startswith("autograd")
    assert hb.backend_of(np.zeros(3), 1.0, "x") is None
