"""The anomalous Hall conductivity of 3D models, Fermi-level scans and the Hall path's memory.

The independent reference is WannierBerri's ``AHC`` calculator (Fermi sea, T = 0, S/m, output
(σ_yz, σ_zx, σ_xy) as the pseudovector O with j_a = ε_abc O_c E_b): the model is written as a
``_tb.dat``, both codes integrate over the same Γ-centred mesh, hamdesign at k_BT = 1e-9 eV (a step
function unless a level lies within ~1e-8 eV of μ, which the random models here avoid). The sums
are then the same quadrature of the same integrand, so they agree to rounding (measured 2e-15
relative with WannierBerri 26.10), which also fixes the sign (postw90/WannierBerri: electron
charge −e) and the S/cm conversion.
"""

from __future__ import annotations

import pytest

import hamdesign as hd
import numpy as np
from conftest import AUTODIFF, central_difference, on_backend, random_model, require_module
from hamdesign.backend import use_backend
from hamdesign.errors import MemoryBudgetError, ModelError, ParameterError
from hamdesign.io.wannier90 import write_tb_dat
from hamdesign.observables.hall import (
    anomalous_hall_conductivity,
    check_hall_memory,
    hall_memory_estimate,
    hall_report,
    sigma_xy,
)

BETA_STEP = 1e9  # k_BT = 1e-9 eV: WannierBerri's static calculators use a step function


def wannierberri_ahc(model, tmp_path, monkeypatch, nk: int, mus):
    """WannierBerri's AHC (S/cm, shape (nμ, 3)) on the Γ-centred nk³ mesh, external terms off."""
    wannierberri = require_module("wannierberri")
    from wannierberri import calculators

    monkeypatch.chdir(tmp_path)
    tb = write_tb_dat(model, tmp_path / f"{model.name}_tb.dat")
    system = wannierberri.system.System_R.from_tb_dat(tb_file=str(tb), silent=True)
    grid = wannierberri.Grid(system, NKdiv=1, NKFFT=(nk, nk, nk), use_symmetry=False)
    calc = {"ahc": calculators.static.AHC(Efermi=np.asarray(mus), save_mode="none", kwargs_formula={"external_terms": False})}
    result = wannierberri.run(
        system, grid, calc, parallel=False, use_irred_kpt=False, symmetrize=False, print_progress_step_time=1e9
    )
    return result.results["ahc"].data * 0.01  # S/m → S/cm


@pytest.mark.parametrize("seed", [3, 11])
def test_ahc_pseudovector_matches_wannierberri_for_every_fermi_level(seed, tmp_path, monkeypatch):
    model = random_model(4, dim=3, seed=seed)
    mus = np.linspace(-1.5, 1.5, 9)
    reference = wannierberri_ahc(model, tmp_path, monkeypatch, 5, mus)
    with use_backend("numpy"):
        ours = np.asarray(anomalous_hall_conductivity(model, None, hd.kmesh(5, 3), beta=BETA_STEP, mu=mus))
    assert ours.shape == (len(mus), 3)
    assert np.max(np.abs(reference)) > 100.0  # a metal with a sizeable response: the comparison is not empty
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9 * np.max(np.abs(reference)))


def test_fermi_scan_equals_one_evaluation_per_level(backend):
    model = random_model(3, dim=3, seed=5)
    k = hd.kmesh(4, 3)
    mus = np.array([-0.7, 0.1, 0.4])
    scan = backend.to_numpy(anomalous_hall_conductivity(model, None, k, beta=20.0, mu=mus))
    single = np.array([backend.to_numpy(anomalous_hall_conductivity(model, None, k, beta=20.0, mu=float(m))) for m in mus])
    np.testing.assert_allclose(scan, single, rtol=1e-12, atol=1e-12 * np.abs(single).max())
    sheet = backend.to_numpy(sigma_xy(model, None, k, beta=20.0, mu=mus))
    assert sheet.shape == (3,)
    np.testing.assert_allclose(
        sheet, [float(backend.to_numpy(sigma_xy(model, None, k, beta=20.0, mu=float(m)))) for m in mus], rtol=1e-12
    )


def test_scan_in_small_chunks_equals_one_chunk(numpy_backend, monkeypatch):
    import hamdesign.observables.hall as hall

    model = random_model(3, dim=3, seed=7)
    k = hd.kmesh(5, 3)
    whole = np.asarray(anomalous_hall_conductivity(model, None, k, beta=30.0, mu=np.linspace(-1, 1, 11)))
    monkeypatch.setattr(hall, "hall_chunk_size", lambda *a, **kw: 7)  # 125 k-points in 18 chunks
    chunked = np.asarray(anomalous_hall_conductivity(model, None, k, beta=30.0, mu=np.linspace(-1, 1, 11)))
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())


def test_time_reversal_symmetric_model_has_no_ahc(numpy_backend):
    # real hoppings only: H(k)* = H(−k), Ω(−k) = −Ω(k)
    model = random_model(3, dim=3, seed=2)
    real = model.params_from({n: 0.0 for n in model.parameter_names if n.endswith("i")})
    out = np.asarray(anomalous_hall_conductivity(model, real, hd.kmesh(4, 3), beta=10.0, mu=np.array([-0.5, 0.0, 0.5])))
    assert np.max(np.abs(out)) < 1e-9


def test_ahc_at_filling_matches_ahc_at_the_solved_mu(numpy_backend):
    model = random_model(3, dim=3, seed=4)
    k = hd.kmesh(4, 3)
    report = hall_report(model, None, 4, beta=15.0, filling=0.5)
    at_mu = np.asarray(anomalous_hall_conductivity(model, None, k, beta=15.0, mu=report["mu"]))
    filled = np.asarray(anomalous_hall_conductivity(model, None, k, beta=15.0, filling=0.5))
    np.testing.assert_allclose(filled, at_mu, rtol=1e-10)
    np.testing.assert_allclose([report["sigma_bulk_S_per_cm"][p] for p in ("yz", "zx", "xy")], filled, rtol=1e-12)


def test_3d_report_gives_the_pseudovector_in_s_per_cm_and_no_chern_numbers(numpy_backend):
    model = random_model(3, dim=3, seed=4)
    report = hall_report(model, None, 3, beta=15.0, mu=np.linspace(-0.5, 0.5, 4))
    assert set(report["sigma_bulk_S_per_cm"]) == {"yz", "zx", "xy"}
    assert all(len(v) == 4 for v in report["sigma_bulk_S_per_cm"].values()) and len(report["mu"]) == 4
    assert "chern" not in report and "sigma_xy" not in report
    assert report["units"]["sigma_bulk_S_per_cm"] == "S/cm"


@pytest.mark.parametrize("name", AUTODIFF)
def test_ahc_value_and_gradient_agree_across_backends_and_with_finite_differences(name):
    model = random_model(3, dim=3, seed=8, nshell=1)
    k = hd.kmesh(3, 3)
    p0 = model.default_params

    def f(p):
        out = anomalous_hall_conductivity(model, p, k, beta=8.0, mu=np.array([-0.3, 0.2]))
        return out[0, 0] + 0.5 * out[1, 2] - 0.25 * out[1, 1]

    with on_backend(name) as be:
        value, grad = be.value_and_grad(f)(be.asarray(p0))
        value, grad = float(be.to_numpy(value)), be.to_numpy(grad)
    with on_backend("numpy"):
        reference = float(f(p0))
    fd = central_difference(f, p0, h=1e-6)
    assert value == pytest.approx(reference, rel=1e-10)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


def test_hall_memory_estimate_follows_the_chunk_not_the_mesh():
    # bcc Fe size: 18 bands, 120³ k, 1000 Fermi levels with μ given: bounded by one chunk
    from types import SimpleNamespace

    fe = SimpleNamespace(norb=18, nband=18)
    small = hall_memory_estimate(fe, 64**3, nmu=1000, nplanes=3)
    large = hall_memory_estimate(fe, 120**3, nmu=1000, nplanes=3)
    assert small == large < 2**30
    check_hall_memory(fe, 120**3, nmu=1000, nplanes=3)  # not refused
    with pytest.raises(MemoryBudgetError):
        check_hall_memory(fe, 400**3, nplanes=3, at_filling=True)  # every level of 6.4e7 k kept


def test_hall_memory_estimate_bounds_the_measured_peak(numpy_backend):
    import tracemalloc

    model = random_model(6, dim=3, seed=1)
    k = hd.kmesh(12, 3)
    tracemalloc.start()
    anomalous_hall_conductivity(model, None, k, beta=10.0, mu=np.linspace(-1, 1, 50))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    estimate = hall_memory_estimate(model, len(k), nmu=50, nplanes=3)
    assert peak <= estimate, (peak, estimate)
    assert estimate <= 8 * peak + 2**20, (peak, estimate)  # not wildly pessimistic either


def test_bad_hall_requests_raise(numpy_backend):
    flat = random_model(2, dim=2, seed=0)
    with pytest.raises(ModelError, match="3D"):
        anomalous_hall_conductivity(flat, None, hd.kmesh(4, 2), beta=1.0, mu=0.0)
    model = random_model(2, dim=3, seed=0)
    with pytest.raises(ParameterError, match="mu"):
        anomalous_hall_conductivity(model, None, hd.kmesh(2, 3), beta=1.0, mu=np.array([0.0, np.nan]))
    with pytest.raises(ParameterError, match="position_matrix"):
        anomalous_hall_conductivity(model, None, hd.kmesh(2, 3), beta=1.0, mu=0.0, position_matrix="offdiagonal")
    with pytest.raises(ModelError, match="position matrix"):
        anomalous_hall_conductivity(model, None, hd.kmesh(2, 3), beta=1.0, mu=0.0, position_matrix="full")


@pytest.mark.parametrize("beta", [0.5, 20.0, 1e9])
def test_sorted_fermi_sea_sums_equal_the_dense_contraction(numpy_backend, beta):
    from hamdesign.observables.hall import fermi_sea_sums
    from hamdesign.spectrum import fermi

    rng = np.random.default_rng(1)
    levels = rng.uniform(-3.0, 3.0, 4000)
    levels[:50] = 0.25  # a degenerate cluster exactly at one μ of the grid
    weights = rng.standard_normal((4000, 3))
    mus = np.concatenate([np.linspace(-4.0, 4.0, 33), [0.25]])
    dense = np.asarray(fermi(levels[None, :] - mus[:, None], beta)) @ weights
    fast = fermi_sea_sums(levels, weights, mus, beta=beta)
    np.testing.assert_allclose(fast, dense, rtol=0, atol=1e-12 * np.abs(weights).sum())


def test_report_scan_uses_the_sorted_contraction_and_agrees_with_the_api(numpy_backend):
    model = random_model(3, dim=3, seed=6)
    mus = np.linspace(-1.0, 1.0, 25)
    report = hall_report(model, None, 4, beta=40.0, mu=mus)
    api = np.asarray(anomalous_hall_conductivity(model, None, hd.kmesh(4, 3), beta=40.0, mu=mus))
    table = np.array([report["sigma_bulk_S_per_cm"][p] for p in ("yz", "zx", "xy")]).T
    np.testing.assert_allclose(table, api, rtol=0, atol=1e-12 * np.abs(api).max())
