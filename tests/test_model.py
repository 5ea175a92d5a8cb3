"""Tight-binding structure: Bloch convention, analytic k-derivatives, Hermiticity, bad input."""

from __future__ import annotations

import pytest

import numpy as np
from conftest import random_model
from hamdesign.errors import LatticeError, ModelError, ParameterError
from hamdesign.lattice import Lattice, high_symmetry_path, kmesh, parse_nk
from hamdesign.model import TightBinding, hamiltonian, hamiltonian_derivatives
from hamdesign.models import haldane


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_h_is_exactly_hermitian(backend, dim):
    m = random_model(3, dim=dim, seed=dim)
    k = np.random.default_rng(0).uniform(size=(7, dim))
    h, v, w = (backend.to_numpy(x) for x in hamiltonian_derivatives(m, m.default_params, k, order=2))
    assert np.array_equal(h, np.conj(np.swapaxes(h, -1, -2)))
    assert np.array_equal(v, np.conj(np.swapaxes(v, -1, -2)))
    assert np.array_equal(w, np.conj(np.swapaxes(w, -1, -2)))


def _bloch_sum_by_hand(m: TightBinding, kfrac: np.ndarray) -> np.ndarray:
    """H_ij(k) = Σ t_ij(R) e^{ik·(R+τ_j−τ_i)} + h.c., one bond at a time (the definition)."""
    vals = dict(zip(m.parameter_names, m.default_params, strict=False))
    kc = m.lattice.cartesian_k(kfrac)
    out = np.zeros((len(kfrac), m.norb, m.norb), complex)
    for hop in m.hoppings:
        t = hop.amplitude.evaluate(vals)
        d = np.array(hop.R, float) @ m.lattice.vectors[: m.dim] + m.positions[hop.j] - m.positions[hop.i]
        term = t * np.exp(1j * kc @ d)
        out[:, hop.i, hop.j] += term
        if not hop.is_onsite:
            out[:, hop.j, hop.i] += np.conj(term)
    return out


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_bloch_sum_matches_definition(numpy_backend, dim):
    m = random_model(2, dim=dim, seed=10 + dim)
    k = np.random.default_rng(1).uniform(size=(5, dim))
    np.testing.assert_allclose(hamiltonian(m, m.default_params, k), _bloch_sum_by_hand(m, k), atol=1e-13)


@pytest.mark.parametrize("dim", [2, 3])
def test_derivatives_match_finite_differences_in_cartesian_k(numpy_backend, dim):
    m = random_model(3, dim=dim, seed=20 + dim)
    k0 = np.random.default_rng(2).uniform(size=(1, dim))
    h, v, w = hamiltonian_derivatives(m, m.default_params, k0, order=2)
    step = 1e-5
    for a in range(dim):
        dk = np.zeros(3)
        dk[a] = step
        dfrac = (m.lattice.vectors[:dim] @ dk / (2 * np.pi))[None, :]
        hp, vp = hamiltonian_derivatives(m, m.default_params, k0 + dfrac, order=1)
        hm, vm = hamiltonian_derivatives(m, m.default_params, k0 - dfrac, order=1)
        np.testing.assert_allclose((hp - hm) / (2 * step), v[a], atol=1e-7)
        for b in range(dim):
            np.testing.assert_allclose((vp[b] - vm[b]) / (2 * step), w[b, a], atol=1e-6)


def test_reciprocal_lattice_and_gauge_under_reciprocal_shift(numpy_backend):
    m = random_model(3, dim=2, seed=5)
    lat = m.lattice
    np.testing.assert_allclose(lat.vectors @ lat.reciprocal.T, 2 * np.pi * np.eye(3), atol=1e-12)
    k = np.array([[0.13, 0.37]])
    h0 = hamiltonian(m, m.default_params, k)
    h1 = hamiltonian(m, m.default_params, k + np.array([[1.0, 0.0]]))
    # H(k + G) = V† H(k) V with V_ij = δ_ij exp(i G·τ_i): same spectrum, different gauge
    G = lat.periodic_reciprocal[0]
    V = np.diag(np.exp(1j * m.positions @ G))
    np.testing.assert_allclose(h1[0], V.conj().T @ h0[0] @ V, atol=1e-12)


def test_haldane_convention_spectrum_at_K(numpy_backend):
    m = haldane(M=0.0, t2=0.1, phi=np.pi / 2)
    e = np.linalg.eigvalsh(hamiltonian(m, m.default_params, np.array([[2 / 3, 1 / 3]])))
    # at K the NN term vanishes; NNN gives ±3√3 t2 sin φ on the two sublattices
    np.testing.assert_allclose(sorted(e[0]), [-3 * np.sqrt(3) * 0.1, 3 * np.sqrt(3) * 0.1], atol=1e-12)


def test_parameters_by_name():
    m = haldane()
    p = m.params_from(M=0.3)
    assert p[m.parameter_names.index("M")] == 0.3
    with pytest.raises(ParameterError, match="unknown parameter 'Q'"):
        m.params_from(Q=1.0)


@pytest.mark.parametrize(
    "hops, message",
    [
        ([(0, 0, (0,), "1j")], "not real"),
        ([(0, 1, (0,), 1.0), (1, 0, (0,), 1.0)], "Hermitian partner"),
        ([(0, 2, (0,), 1.0)], "out of range"),
        ([(0, 1, (0.5,), 1.0)], "integers"),
        ([(0, 1, (0, 1), 1.0)], "components"),
        ([(0, 1, (0,), "t9")], "undefined parameter"),
        ([(0, 1, (0,), "exp(i*)")], "cannot read factor"),
        ([(0, 1, (0,), float("nan"))], "finite"),
    ],
)
def test_bad_hoppings_raise_model_error(hops, message):
    with pytest.raises(ModelError, match=message):
        TightBinding.build(Lattice([[1.0]]), [[0.0], [0.5]], hops, {})


def test_singular_lattice_is_refused():
    with pytest.raises(LatticeError, match="singular"):
        Lattice([[1.0, 0.0], [2.0, 0.0]])


def test_kmesh_is_gamma_centred_and_sized():
    k = kmesh((3, 4), 2)
    assert k.shape == (12, 2) and np.all(k[0] == 0)
    assert parse_nk("5,6,1", 2) == (5, 6)
    with pytest.raises(LatticeError):
        parse_nk("5,a", 2)


def test_transverse_measures():
    lat = Lattice([[2.0, 0.0], [1.0, np.sqrt(3.0)]], spacing=10.0)
    assert lat.dim == 2 and np.isclose(lat.transverse_measure, 10.0)
    assert np.isclose(lat.cell_measure, 2 * np.sqrt(3.0))
    chain = Lattice([[3.0]], spacing=2.0)
    assert np.isclose(chain.transverse_measure, 4.0)
    assert np.isclose(chain.with_transverse(9.0).transverse_measure, 9.0)


def test_high_symmetry_path_hits_corners():
    m = haldane()
    kfrac, dist, ticks = high_symmetry_path(m.lattice)
    assert [t[1] for t in ticks] == ["Γ", "K", "M", "Γ"]
    assert np.all(np.diff(dist) >= 0)
    # K is a corner where the NN structure factor vanishes
    kc = m.lattice.cartesian_k(kfrac[60:61])[0]
    assert np.isclose(np.linalg.norm(kc), 4 * np.pi / 3)
