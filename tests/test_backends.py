"""The backend contract: manifest, selection errors, the degeneracy-safe eigh rule."""

from __future__ import annotations

import pytest
from hamdesign.backends import ADAPTER_MEMBERS, XP_NAMES

import numpy as np
from conftest import AUTODIFF, central_difference, on_backend
from hamdesign.backend import available_backends, get_backend, use_backend
from hamdesign.errors import BackendError


def test_manifest_is_complete(backend):
    for member in ADAPTER_MEMBERS:
        assert hasattr(backend, member), member
    for name in XP_NAMES:
        assert hasattr(backend.xp, name), name


def test_unknown_backend_names_the_valid_choices():
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'.*jax, torch, autograd, numpy"):
        get_backend("tensorflow")


def test_missing_framework_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "autograd" or name.startswith("autograd."):
            raise ModuleNotFoundError("No module named 'autograd'")
        return real_import(name, *args, **kwargs)

    import sys

    for mod in [m for m in sys.modules if m == "autograd" or m.startswith("autograd.") or m == "hamdesign.backends.autograd"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(BackendError, match=r"not installed.*pip install 'hamdesign\[autograd\]'"):
        get_backend("autograd")


def test_numpy_backend_refuses_gradients_with_alternatives():
    with use_backend("numpy") as be:
        with pytest.raises(NotImplementedError, match="jax, torch, autograd"):
            be.value_and_grad(lambda x: x)


def test_available_backends_lists_known_names():
    assert set(available_backends()) <= {"jax", "torch", "autograd", "numpy"}
    assert "numpy" in available_backends()


def test_environment_variable_selects_backend(monkeypatch):
    import hamdesign.backend as hb

    monkeypatch.setattr(hb, "_default", [])
    monkeypatch.setenv("HAMDESIGN_BACKEND", "numpy")
    assert hb.current().name == "numpy"
    monkeypatch.setattr(hb, "_default", [])
    monkeypatch.setenv("HAMDESIGN_BACKEND", "nope")
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        hb.current()


def test_set_backend_inside_use_backend_leaves_the_block_alone(monkeypatch):
    import hamdesign.backend as hb

    monkeypatch.setattr(hb, "_default", [hb.get_backend("numpy")])
    with hb.use_backend("autograd"):
        hb.set_backend("torch")
        assert hb.current().name == "autograd"
    assert hb.current().name == "torch"


def test_use_backend_stack_is_per_thread(monkeypatch):
    import threading

    import hamdesign.backend as hb

    monkeypatch.setattr(hb, "_default", [hb.get_backend("numpy")])
    seen = {}
    with hb.use_backend("autograd"):
        worker = threading.Thread(target=lambda: seen.setdefault("name", hb.current().name))
        worker.start()
        worker.join()
        assert hb.current().name == "autograd"
    assert seen["name"] == "numpy"  # another thread sees the process default, not this block


def test_arrays_default_to_64_bit(backend):
    x = backend.to_numpy(backend.asarray([1.0, 2.0]))
    z = backend.to_numpy(backend.asarray([1.0 + 1j]))
    assert x.dtype == np.float64 and z.dtype == np.complex128


def _hermitian_of(p, xp):
    """A 3×3 Hermitian matrix, real-parametrised by 9 numbers."""
    d = xp.astype(p[:3], xp.complex128)
    off = xp.astype(p[3:6], xp.complex128) + 1j * xp.astype(p[6:9], xp.complex128)
    zero = 0.0 * d[0]
    rows = [
        xp.stack([d[0], off[0], off[1]]),
        xp.stack([xp.conj(off[0]), d[1], off[2]]),
        xp.stack([xp.conj(off[1]), xp.conj(off[2]), d[2] + zero]),
    ]
    return xp.stack(rows)


def _gauge_invariant_loss(p, be):
    xp = be.xp
    w, u = be.eigh(_hermitian_of(p, xp))
    proj = xp.abs(u[0, :]) ** 2  # |<0|n>|², invariant under phases of the eigenvectors
    return xp.sum(w * xp.asarray([1.0, 2.0, -0.5])) + xp.sum(proj * w)


@pytest.mark.parametrize("name", AUTODIFF)
def test_eigh_gradient_matches_finite_differences(name):
    p = np.random.default_rng(3).standard_normal(9)
    with on_backend(name) as be:
        v, g = be.value_and_grad(lambda x: _gauge_invariant_loss(x, be))(be.asarray(p))
        g = be.to_numpy(g)
    with use_backend("numpy") as be_np:
        fd = central_difference(lambda x: _gauge_invariant_loss(be_np.asarray(x), be_np), p)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", AUTODIFF)
def test_eigh_gradient_finite_at_exact_degeneracy(name):
    p = np.array([1.0, 1.0, 1.0, 0, 0, 0, 0, 0, 0])  # H = identity: all three eigenvalues equal
    with on_backend(name) as be:
        v, g = be.value_and_grad(lambda x: _gauge_invariant_loss(x, be))(be.asarray(p))
        g = be.to_numpy(g)
        assert np.all(np.isfinite(g))
    # The loss weights the sorted eigenvalues unequally, so it has a kink at H = 1 and no gradient.
    # eigh returns the basis e_0, e_1, e_2 there, and the AD value is the gradient of the branch
    # that basis labels: the one-sided limit from H = 1 + t diag(0, 1, 2), t → 0+, where the
    # eigenvectors stay e_i in that order (the gradient is constant along that side, so t = 1e-3).
    side = p + 1e-3 * np.array([0.0, 1.0, 2.0, 0, 0, 0, 0, 0, 0])
    with use_backend("numpy") as be_np:
        one_sided = central_difference(lambda x: _gauge_invariant_loss(be_np.asarray(x), be_np), side)
        reversed_order = p + 1e-3 * np.array([2.0, 1.0, 0, 0, 0, 0, 0, 0, 0])
        other_side = central_difference(lambda x: _gauge_invariant_loss(be_np.asarray(x), be_np), reversed_order)
    np.testing.assert_allclose(g, one_sided, rtol=1e-6, atol=1e-8)
    assert np.abs(other_side - one_sided).max() > 0.5  # a real kink: from another side the slope differs
