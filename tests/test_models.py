"""Built-in models: construction, known spectra, parameter bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hamdesign as hd
from hamdesign.models import MODELS, get_model, kondo_chain, spin_directions

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


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
    ref = json.loads((REFERENCE / "photovoltaic_optimum.json").read_text())
    spins = np.array(ref["spins_unit_vectors"])
    m = kondo_chain(spins=spins)
    back = spin_directions(m, m.default_params)
    np.testing.assert_allclose(back, spins / np.linalg.norm(spins, axis=1, keepdims=True), atol=1e-12)
    assert m.norb == 24 and m.dim == 1
    assert m.lattice.transverse_measure == pytest.approx(1.0)
    assert kondo_chain(cross_section=20.0).lattice.transverse_measure == pytest.approx(20.0)
