"""Designable real materials: named perturbations of a wannier90 model (hamdesign.perturbations).

Checked against independent facts: the projection order of wannier90 against the Wannier centres
(As orbitals sit on As), time-reversal symmetry (no exchange → no AHC), a second way to strain
(the transformed pseudovector against the strained crystal written out), WannierBerri on the
exported designed model, finite differences and the three autodiff backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hamdesign as hd
import numpy as np
from conftest import AUTODIFF, central_difference, on_backend, wannierberri_ahc_of_file
from hamdesign.backend import use_backend
from hamdesign.errors import ConfigError
from hamdesign.io import load_model, write_tb_dat
from hamdesign.io.projections import read_orbital_labels
from hamdesign.model import hopping_blocks
from hamdesign.objectives import ahc_objective
from hamdesign.observables import hall
from hamdesign.observables.hall import anomalous_hall_conductivity
from hamdesign.parametrize import Parametrization
from hamdesign.perturbations import (
    build_perturbations,
    designable,
    materialize,
    parameter_maps,
    perturbation_norm_squared,
    strained_pseudovector,
)

DATA = Path(__file__).parent / "data" / "wannier"
FE_MU = 18.0
EVERYTHING = {
    "shift": {"t2g": {"orbitals": ["Fe:dxy", "Fe:dxz", "Fe:dyz"]}, "hybrids": {"orbitals": "1-12", "low": -0.3, "high": 0.3}},
    "field": {"components": ["x", "z"]},
    "exchange": {"low": 0.5, "high": 1.5},
    "strain": {"components": ["xx", "zz", "xy"], "eta": 3.0},
    "mu_shift": {},
}


@pytest.fixture(scope="module")
def fe():
    return load_model(str(DATA / "Fe_tb.dat.gz"))


@pytest.fixture(scope="module")
def fe_labels():
    return read_orbital_labels(DATA / "Fe.win", 18)


@pytest.fixture(scope="module")
def fe_design(fe, fe_labels):
    return designable(fe, build_perturbations(EVERYTHING, fe, labels=fe_labels))


def _params(model, **values) -> np.ndarray:
    return model.params_from({k.replace("__", ":"): v for k, v in values.items()})


def _blocks(model, params) -> np.ndarray:
    with use_backend("numpy"):
        return np.asarray(hopping_blocks(model, params)).reshape(-1, model.norb, model.norb)


def _onsite(model, params) -> np.ndarray:
    zero = int(np.nonzero(~model.tables()["n_R"].any(axis=1))[0][0])
    return _blocks(model, params)[zero]


def test_projection_order_follows_wannier90_and_the_centres_confirm_it():
    gaas = load_model(str(DATA / "GaAs_tb.dat.gz"))
    labels = read_orbital_labels(DATA / "GaAs.win", gaas.norb)
    assert [str(x) for x in labels[:2]] == ["As1:sp3-1:up", "As1:sp3-1:dn"]
    arsenic = np.array([x.species == "As" for x in labels])
    # in GaAs.win As sits at (¼, ¼, ¼) and Ga at the origin: every As-labelled Wannier centre must be nearer As
    as_site = np.array([0.25, 0.25, 0.25]) @ gaas.lattice.vectors
    nearer_as = np.linalg.norm(gaas.positions - as_site, axis=1) < np.linalg.norm(gaas.positions, axis=1)
    np.testing.assert_array_equal(nearer_as, arsenic)
    fe_labels = read_orbital_labels(DATA / "Fe.win", 18)
    assert [str(x) for x in fe_labels[12:14]] == ["Fe1:dxy:up", "Fe1:dxy:dn"]


def test_orbital_selectors_choose_by_site_orbital_and_spin(fe, fe_labels):
    spec = {
        "shift": {
            "t2g": {"orbitals": ["Fe:d*"]},
            "up_hybrids": {"orbitals": ["Fe1:sp3d2:up"]},
            "by_index": {"orbitals": "1-2, 5"},
            "listed": {"orbitals": [3, 18]},
        }
    }
    shifts = {s.name: s.orbitals for s in build_perturbations(spec, fe, labels=fe_labels).shifts}
    assert shifts == {
        "t2g": (12, 13, 14, 15, 16, 17),
        "up_hybrids": (0, 2, 4, 6, 8, 10),
        "by_index": (0, 1, 4),
        "listed": (2, 17),
    }


def test_at_dft_values_the_designable_model_is_the_dft_model(fe, fe_design):
    np.testing.assert_array_equal(_blocks(fe_design, fe_design.default_params), _blocks(fe, None))
    k = hd.kmesh(4, 3)
    with use_backend("numpy"):
        plain = np.asarray(anomalous_hall_conductivity(fe, None, k, beta=50.0, mu=FE_MU))
        designed = np.asarray(anomalous_hall_conductivity(fe_design, None, k, beta=50.0, mu=FE_MU))
        assert float(perturbation_norm_squared(fe_design, fe_design.default_params)) == 0.0
    np.testing.assert_allclose(designed, plain, rtol=1e-13)


def test_onsite_shift_moves_the_selected_levels_and_nothing_else(fe, fe_design):
    params = _params(fe_design, shift__t2g=0.15)
    change = _blocks(fe_design, params) - _blocks(fe, None)
    zero = int(np.nonzero(~fe.tables()["n_R"].any(axis=1))[0][0])
    expected = np.zeros_like(change)
    expected[zero, range(12, 18), range(12, 18)] = 0.15
    np.testing.assert_allclose(change, expected, atol=1e-15)
    with use_backend("numpy"):
        norm = np.sqrt(float(perturbation_norm_squared(fe_design, params)))
    assert norm == pytest.approx(0.15 * np.sqrt(6 / 18), rel=1e-12)  # rms change per orbital


def test_field_acts_through_the_centres_relative_to_their_mean():
    gaas = load_model(str(DATA / "GaAs_tb.dat.gz"))
    model = designable(gaas, build_perturbations({"field": {"components": ["z"]}}, gaas))
    shift = np.diag(_onsite(model, _params(model, field__z=0.05)) - _onsite(gaas, None)).real
    np.testing.assert_allclose(shift, 0.05 * (gaas.positions[:, 2] - gaas.positions[:, 2].mean()), atol=1e-15)


def test_exchange_scales_the_spin_splitting_of_a_kramers_pair(fe, fe_design):
    pair = (12, 13)  # dxy up/down at the same centre: the on-site splitting is the exchange splitting
    split = {
        lam: np.diff(np.diag(_onsite(fe_design, _params(fe_design, exchange=lam))).real[list(pair)])[0] for lam in (0.5, 1.0)
    }
    assert abs(split[1.0]) > 1.0
    assert split[0.5] == pytest.approx(0.5 * split[1.0], rel=1e-12)


def test_without_exchange_a_time_reversal_paired_model_has_no_anomalous_hall(fe):
    # Wannier functions of a pair put on one centre, so time reversal Θ = iσ_y K maps the basis onto itself
    pairs = fe.positions.reshape(9, 2, 3).mean(axis=1)
    paired = fe.with_structure(positions=np.repeat(pairs, 2, axis=0), berry_connection_R=None)
    model = designable(paired, build_perturbations({"exchange": {"low": -0.5, "high": 1.5}}, paired))
    k = hd.kmesh(4, 3)
    with use_backend("numpy"):
        magnetic = np.asarray(anomalous_hall_conductivity(model, _params(model, exchange=1.0), k, beta=50.0, mu=FE_MU))
        symmetric = np.asarray(anomalous_hall_conductivity(model, _params(model, exchange=0.0), k, beta=50.0, mu=FE_MU))
    assert np.max(np.abs(magnetic)) > 100.0
    np.testing.assert_allclose(symmetric, 0.0, atol=1e-9 * np.max(np.abs(magnetic)))


@pytest.mark.parametrize("position_matrix", ["diagonal", "full"])
def test_strain_transform_equals_the_strained_crystal_written_out(fe_design, position_matrix):
    params = _params(fe_design, strain__xx=0.015, strain__xy=-0.01, strain__zz=0.005, shift__t2g=0.1, field__z=0.05)
    k = hd.kmesh(4, 3)
    with use_backend("numpy"):
        frame = np.asarray(
            anomalous_hall_conductivity(fe_design, params, k, beta=50.0, mu=FE_MU, position_matrix=position_matrix)
        )
        transformed = np.asarray(strained_pseudovector(fe_design, params, frame))
        crystal = materialize(fe_design, params)
        direct = np.asarray(anomalous_hall_conductivity(crystal, None, k, beta=50.0, mu=FE_MU, position_matrix=position_matrix))
    assert np.max(np.abs(transformed - frame)) > 1.0  # the strain matters
    np.testing.assert_allclose(transformed, direct, rtol=1e-11, atol=1e-9)
    assert crystal.lattice.volume == pytest.approx(
        fe_design.lattice.volume * np.linalg.det(np.eye(3) + np.array([[0.015, -0.01, 0], [-0.01, 0, 0], [0, 0, 0.005]]))
    )


def test_designed_model_exported_gives_wannierberris_ahc(fe_design, tmp_path, monkeypatch):
    params = _params(fe_design, shift__t2g=0.12, shift__hybrids=-0.2, exchange=1.1, strain__xx=0.01, field__x=0.03)
    crystal = materialize(fe_design, params)
    monkeypatch.chdir(tmp_path)
    path = write_tb_dat(crystal, tmp_path / "designed_tb.dat")
    mus = np.array([FE_MU - 0.5, FE_MU, FE_MU + 0.5])
    reference = wannierberri_ahc_of_file(path, nk=4, mus=mus, external=True)
    with use_backend("numpy"):
        frame = np.asarray(
            anomalous_hall_conductivity(fe_design, params, hd.kmesh(4, 3), beta=1e9, mu=mus, position_matrix="full")
        )
        ours = np.asarray(strained_pseudovector(fe_design, params, frame))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-8 * np.max(np.abs(reference)))


def _objective(fe_design, **kw):
    par = Parametrization.build(fe_design, parameter_maps(fe_design))
    return par, ahc_objective(fe_design, par, hd.kmesh(3, 3), mu=FE_MU, penalty_weight=0.3, position_matrix="full", **kw)


def test_ahc_objective_gradient_is_the_same_on_every_backend_and_matches_finite_differences(fe_design):
    par, objective = _objective(fe_design, component="zx")
    theta = np.random.default_rng(3).normal(scale=0.4, size=par.size)
    results = {}
    for name in AUTODIFF:
        with on_backend(name) as be:
            (value, aux), grad = be.value_and_grad(objective, has_aux=True)(be.asarray(theta), be.asarray(30.0))
            results[name] = (float(be.to_numpy(value)), be.to_numpy(grad), float(be.to_numpy(aux["sigma_zx"])))
    reference = results["jax"]
    for name in AUTODIFF:
        assert results[name][0] == pytest.approx(reference[0], rel=1e-10)
        np.testing.assert_allclose(results[name][1], reference[1], rtol=1e-9, atol=1e-10 * np.max(np.abs(reference[1])))
    fd = central_difference(lambda t: objective(t, 30.0)[0], theta, h=1e-5)
    np.testing.assert_allclose(reference[1], fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))
    assert np.all(np.abs(reference[1]) > 0)  # every perturbation reaches the objective


@pytest.mark.parametrize("name", AUTODIFF)
def test_rematerialised_k_chunks_give_the_same_value_and_gradient(fe_design, monkeypatch, name):
    par, objective = _objective(fe_design)
    theta = np.random.default_rng(4).normal(scale=0.3, size=par.size)

    def run():
        with on_backend(name) as be:
            (value, _), grad = be.value_and_grad(objective, has_aux=True)(be.asarray(theta), be.asarray(30.0))
            return float(be.to_numpy(value)), be.to_numpy(grad)

    whole = run()
    monkeypatch.setattr(hall, "DEFAULT_CHUNK_BYTES", 4 * 24 * 18 * 18 * 16)  # 4 k-points per chunk: 7 chunks
    called = []
    from hamdesign import backend as backend_module

    adapter = backend_module.get_backend(name)
    original = adapter.rematerialize
    monkeypatch.setattr(adapter, "rematerialize", lambda fn: called.append(1) or original(fn))
    chunked = run()
    assert len(called) >= 7
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-10, atol=1e-12 * np.max(np.abs(whole[1])))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"shift": {"g": {"orbitals": "1-3", "low": 0.1, "high": 0.2}}}, "DFT model inside"),
        ({"shift": {"g": {"orbitals": ["Fe:fxyz"]}}}, "matches none"),
        ({"shift": {"g": {"orbitals": "17-19"}}}, "outside 1..18"),
        ({"shift": {"g": {}}}, "orbitals: missing"),
        ({"strain": {"components": ["xz"]}}, "strain.components"),
        ({"exchange": {"spin_ordering": "random"}}, "spin_ordering"),
        ({"magnetic_field": {}}, "unknown keys"),
        ({"field": {"low": -0.1, "hi": 0.1}}, "unknown keys"),
        ({"strain": {"eta": -1.0}}, "eta"),
    ],
)
def test_bad_perturbations_are_refused_with_the_key_named(fe, fe_labels, spec, message):
    with pytest.raises(ConfigError, match=message):
        build_perturbations(spec, fe, labels=fe_labels)


def test_orbital_names_need_the_win_file_and_a_parameter_free_model(fe):
    with pytest.raises(ConfigError, match="seedname.win"):
        build_perturbations({"shift": {"g": {"orbitals": ["Fe:d*"]}}}, fe)
    with pytest.raises(ConfigError, match="without parameters"):
        designable(hd.models.haldane(), build_perturbations({}, hd.models.haldane()))
    square = hd.TightBinding.build(
        hd.Lattice([[1.0, 0.0], [0.0, 1.0]]), [[0.0, 0.0]], [(0, 0, (1, 0), -1.0), (0, 0, (0, 1), -1.0)]
    )
    with pytest.raises(ConfigError, match="3D"):
        build_perturbations({"strain": {}}, square)
