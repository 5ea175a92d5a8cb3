"""The observable registry drives ``hamdesign evaluate``; the joint density of states (docs/extending.md's
worked example, one module plus one registry entry) is checked against its sum rule."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import hamdesign as hd
import numpy as np
from conftest import AUTODIFF, central_difference, random_model, value_and_grad_on
from hamdesign.backend import use_backend
from hamdesign.cli import app
from hamdesign.models import hbn
from hamdesign.observables import REGISTRY, Request
from hamdesign.observables.jdos import joint_density_of_states

runner = CliRunner()


def test_every_entry_is_named_by_its_key_and_reports_what_the_cli_prints():
    assert set(REGISTRY) >= {"hall", "shift", "injection", "photocurrent", "jdos"}
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.display in ("hall", "spectrum", "current")
        assert callable(spec.report)


@pytest.mark.parametrize("name", ["shift", "injection", "jdos"])
def test_evaluate_runs_each_spectral_observable_from_its_registry_entry(name):
    args = ["--backend", "numpy", "evaluate", "hbn", "-o", name, "--nk", "12", "--beta", "40", "--omega", "2:8:4", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["observable"] == name and len(data["omega"]) == 4
    key = data.get("spectrum_key", "sigma")
    assert len(data[key]) == 4 and np.abs(data[key]).max() > 0


def test_an_observable_not_in_the_registry_is_one_clear_error_and_exit_2():
    result = runner.invoke(app, ["--backend", "numpy", "evaluate", "hbn", "-o", "magnetisation", "--beta", "4"])
    assert result.exit_code == 2
    assert "--observable must be one of hall, shift, injection, photocurrent, jdos" in result.output


def test_report_of_a_request_equals_the_direct_call():
    model = hbn()
    request = Request(model=model, params=None, nk=10, beta=40.0, filling=0.5, omega=np.array([3.0, 5.0]), eta=0.2)
    report = REGISTRY["jdos"].report(request)
    with use_backend("numpy"):
        direct = joint_density_of_states(model, None, hd.kmesh(10, 2), [3.0, 5.0], beta=40.0, filling=0.5, eta=0.2)
    np.testing.assert_allclose(report["jdos"][0], np.asarray(direct.jdos), rtol=1e-13)


def test_jdos_of_an_insulator_integrates_to_one_transition_per_k_point():
    # hBN with a wide gap, μ mid-gap, cold: every k has exactly one occupied → empty transition
    model = hbn(M=2.0)
    k = hd.kmesh(9, 2)
    with use_backend("numpy"):
        e = np.asarray(hd.spectrum.bands(model, None, k))
        mu = 0.5 * (e[:, 0].max() + e[:, 1].min())
        omega = np.linspace(0.0, e[:, 1].max() - e[:, 0].min() + 1.0, 4001)
        res = joint_density_of_states(model, None, k, omega, beta=400.0, mu=mu, eta=0.05)
        integral = np.trapezoid(np.asarray(res.jdos), omega)
    volume = model.lattice.cell_measure * model.lattice.transverse_measure
    assert integral == pytest.approx(1.0 / volume, rel=1e-9)


@pytest.mark.parametrize("backend", AUTODIFF)
def test_jdos_gradient_matches_finite_differences(backend):
    model = random_model(3, dim=2, seed=41, onsite_spread=1.0)
    k = hd.kmesh(4, 2)

    def f(p):
        return hd.backend.current().xp.sum(joint_density_of_states(model, p, k, [1.0, 2.0], beta=5.0, filling=0.5, eta=0.4).jdos)

    _, grad = value_and_grad_on(backend, f, model.default_params)
    np.testing.assert_allclose(grad, central_difference(f, model.default_params), rtol=1e-5, atol=1e-8 * np.abs(grad).max())
