"""Built-in models: construction, known spectra, parameter bookkeeping."""

from __future__ import annotations

import json

import pytest

import hamdesign as hd
import numpy as np
from conftest import DATA
from hamdesign.models import MODELS, get_model, kondo_chain, spin_directions, triangular, triangular_bonds


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_builds_and_is_hermitian(numpy_backend, name):
    m = get_model(name)
    k = np.random.default_rng(0).uniform(size=(4, m.dim))
    h = hd.hamiltonian(m, m.default_params, k)
    assert np.array_equal(h, np.conj(np.swapaxes(h, -1, -2)))
    assert set(m.parameter_info) == set(m.parameter_names)


def test_kondo_chain_ferromagnet_has_exchange_split_cosine_bands(numpy_backend):
    t1, t2, J = 0.3, 0.1, 0.5
    m = kondo_chain(3, t1=t1, t2=t2, J=J, spins=np.tile([0.0, 1.0, 0.0], (3, 1)))
    k = np.linspace(0, 1, 9, endpoint=False)[:, None]
    bands = hd.bands(m, None, k)
    unfolded = np.concatenate([(k[:, 0] + s) / 3 for s in range(3)])
    eps = 2 * t1 * np.cos(2 * np.pi * unfolded) + 2 * t2 * np.cos(4 * np.pi * unfolded)
    expected = np.sort(np.concatenate([eps - J, eps + J]))
    np.testing.assert_allclose(np.sort(bands.ravel()), expected, atol=1e-12)


def test_kondo_chain_reference_texture_round_trips_spins():
    ref = json.loads((DATA / "photovoltaic_optimum.json").read_text())
    spins = np.array(ref["spins_unit_vectors"])
    m = kondo_chain(spins=spins)
    back = spin_directions(m, m.default_params)
    np.testing.assert_allclose(back, spins / np.linalg.norm(spins, axis=1, keepdims=True), atol=1e-12)
    assert m.norb == 24 and m.dim == 1
    assert m.lattice.transverse_measure == pytest.approx(1.0)
    assert kondo_chain(cross_section=20.0).lattice.transverse_measure == pytest.approx(20.0)


def _undirected(i: int, j: int, d, shell: str) -> tuple:
    """A bond as a hashable key that is the same for i→j along d and j→i along −d."""
    d = tuple(float(x) + 0.0 for x in np.round(np.asarray(d, dtype=float), 2))  # + 0.0 turns −0.0 into 0.0
    back = tuple(-x + 0.0 for x in d)
    return (shell, *min((i, j, d), (j, i, back)))


def test_triangular_geometry_matches_the_published_model(numpy_backend):
    """Lattice, sublattices and the 36 bonds of ``triangular`` are those of tests/data/triangular_model.json."""
    ref = json.loads((DATA / "triangular_model.json").read_text())
    m = triangular()
    a = np.asarray(m.lattice.vectors)[:2, :2]
    np.testing.assert_allclose(a, ref["lattice_vectors"], atol=1e-6)
    np.testing.assert_allclose(np.asarray(m.positions)[:, :2], ref["sublattice_positions"], atol=1e-6)
    tau = np.asarray(ref["sublattice_positions"])
    ours = {_undirected(i, j, np.asarray(R) @ a + tau[j] - tau[i], shell) for i, j, R, shell in triangular_bonds()}
    published = {_undirected(b["from"] - 1, b["to"] - 1, b["d"], b["class"]) for b in ref["bonds"]}
    assert len(ours) == len(published) == 36
    assert ours == published
