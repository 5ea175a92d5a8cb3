"""Injection rate η^{abc}(ω): time-reversal parity, golden rule with numerical band velocities, gradients."""

from __future__ import annotations

import pytest

import numpy as np
from conftest import AUTODIFF, central_difference, random_model, strict_adapter, value_and_grad_on
from hamdesign.backend import current, use_backend
from hamdesign.errors import ParameterError
from hamdesign.lattice import kmesh
from hamdesign.model import hamiltonian
from hamdesign.models import hbn
from hamdesign.observables.injection import DEFAULT_TAU_S, INJECTION_SI_FACTOR, injection_rate, injection_report
from hamdesign.spectrum import eigensystem
from hamdesign.units import ELEMENTARY_CHARGE, HBAR

OMEGA = np.linspace(1.0, 4.0, 5)


def eta_np(model, nk, omega, components, params=None, **kw):
    kw = {"beta": 5.0, "eta": 0.2, "filling": 1 / 3, **kw}
    with use_backend("numpy") as be:
        return be.to_numpy(injection_rate(model, params, kmesh(nk, model.dim), omega, components=components, **kw).rate)


def time_reversed(model):
    """Parameters of the model with every hopping conjugated: H'(k) = H(−k)* (random_model's '…i' entries)."""
    return np.array([-v if n.endswith("i") else v for n, v in zip(model.parameter_names, model.default_params, strict=False)])


def real_hoppings(model):
    return np.array([0.0 if n.endswith("i") else v for n, v in zip(model.parameter_names, model.default_params, strict=False)])


def test_vanishes_with_time_reversal_and_flips_under_it(numpy_backend):
    model = random_model(3, dim=2, seed=21, onsite_spread=1.5)
    comps = "xxx,xyy,yxx,yyy"
    broken = eta_np(model, 12, OMEGA, comps)
    flipped = eta_np(model, 12, OMEGA, comps, params=time_reversed(model))
    real = eta_np(model, 12, OMEGA, comps, params=real_hoppings(model))
    scale = np.max(np.abs(broken))
    assert scale > 1e6  # A V⁻² s⁻¹
    np.testing.assert_allclose(flipped, -broken, rtol=1e-9, atol=1e-10 * scale)  # T-odd
    assert np.max(np.abs(real)) < 1e-10 * scale
    # hBN: real hoppings, time-reversal symmetric, but no inversion (it has a shift current)
    s = eta_np(hbn(), 24, [3.0, 4.0], "all", mu=0.0, filling=None, beta=50.0, eta=0.15)
    assert np.max(np.abs(s)) < 1e-10 * scale


def test_real_part_symmetric_imaginary_part_antisymmetric_in_field_indices(numpy_backend):
    model = random_model(3, dim=3, seed=22, onsite_spread=1.5)
    comps = ["xyz", "xzy", "zxy", "zyx"]
    re = eta_np(model, 4, [2.0, 3.0], comps)
    im = eta_np(model, 4, [2.0, 3.0], comps, part="imag")
    assert re.dtype == np.float64 and im.dtype == np.float64
    np.testing.assert_allclose(re[0::2], re[1::2], rtol=1e-10, atol=1e-12 * np.abs(re).max())
    np.testing.assert_allclose(im[0::2], -im[1::2], rtol=1e-10, atol=1e-12 * np.abs(im).max())
    assert np.abs(im).max() > 0
    with pytest.raises(ParameterError, match="part"):
        eta_np(model, 4, [2.0], comps, part="both")


def _golden_rule_rate(model, nk, omega_ev, *, a, b, mu, beta, eta_ev, h=1e-5):
    """dJ^a/dt per |E^b(ω)|² in A V⁻² s⁻¹ from Fermi's golden rule in SI, band velocities by finite differences.

    E(t) = E e^{−iωt} + c.c., H' = −q r·E(t), q = −e: rate n → m is (2π q²/ħ²)|r^b_mn|²|E^b|² δ(ω_mn − ω)
    (δ in seconds), and each transition changes the current by q (v^a_m − v^a_n), v = (1/ħ) dε/dk.
    """
    e_c, hbar = ELEMENTARY_CHARGE, HBAR
    q = -e_c
    length = 1e-10  # Å
    k = kmesh(nk, model.dim)
    step = h * model.lattice.vectors[: model.dim, a] / (2 * np.pi)  # fractional step for Cartesian h ê_a (1/Å)
    with use_backend("numpy") as be:
        energies, _, vb, _ = eigensystem(model, None, k, order=1, components=(b,))
        E = be.to_numpy(energies)
        vbb = be.to_numpy(vb[b])
        e_plus = np.linalg.eigvalsh(be.to_numpy(hamiltonian(model, None, k + step)))
        e_minus = np.linalg.eigvalsh(be.to_numpy(hamiltonian(model, None, k - step)))
    vel = (e_plus - e_minus) / (2 * h) * e_c * length / hbar  # m/s
    gaps = E[:, :, None] - E[:, None, :]
    off = ~np.eye(E.shape[1], dtype=bool)
    r2 = np.where(off, np.abs(vbb) ** 2 / np.where(off, gaps, 1.0) ** 2, 0.0) * length**2  # |r^b_nm|², m²
    occ = 1.0 / (1.0 + np.exp(beta * (E - mu)))
    f_nm = occ[:, :, None] - occ[:, None, :]
    dv = vel[:, None, :] - vel[:, :, None]  # v_m − v_n at [k, n, m]
    w_mn = (E[:, None, :] - E[:, :, None]) * e_c / hbar  # rad/s
    w = np.asarray(omega_ev) * e_c / hbar
    eta_w = eta_ev * e_c / hbar
    delta = np.exp(-(((w_mn[..., None] - w) / eta_w) ** 2)) / (np.sqrt(np.pi) * eta_w)  # s
    rate = 2 * np.pi * q**2 / hbar**2 * (f_nm * r2)[..., None] * delta
    per_k = q * np.sum(dv[..., None] * rate, axis=(1, 2))  # A V⁻² s⁻¹ × m^d per k-point
    cell = model.lattice.cell_measure * length**model.dim
    volume_factor = 1.0 / (len(k) * cell)  # ∫d^dk/(2π)^d → mean over k / cell
    transverse = model.lattice.transverse_measure * length ** (3 - model.dim)
    return np.sum(per_k, axis=0) * volume_factor / transverse


@pytest.mark.parametrize("dim, nk", [(1, 60), (2, 12)])
def test_golden_rule_with_numerical_band_velocities(numpy_backend, dim, nk):
    """dJ^a/dt = 2 η^{abb} |E^b|², checked against the golden rule with Δ from dε/dk by finite differences."""
    model = random_model(3, dim=dim, seed=23 + dim, onsite_spread=1.5)
    for a in range(dim):
        for b in range(dim):
            ours = eta_np(model, nk, OMEGA, [(a, b, b)], mu=0.5, filling=None)[0]
            rule = _golden_rule_rate(model, nk, OMEGA, a=a, b=b, mu=0.5, beta=5.0, eta_ev=0.2)
            assert np.max(np.abs(ours)) > 1e6
            np.testing.assert_allclose(rule, 2 * ours, rtol=1e-6, atol=1e-8 * np.abs(ours).max())


def test_report_tau_and_units(numpy_backend):
    model = random_model(2, dim=1, seed=31, onsite_spread=1.5)
    rep = injection_report(model, None, 40, [1.0, 2.0], components="xxx", beta=5.0, mu=0.5, eta=0.2)
    assert rep["observable"] == "injection" and rep["tau_s"] == DEFAULT_TAU_S
    assert rep["units"]["injection_rate"] == "A V^-2 s^-1" and rep["units"]["sigma"].startswith("A/V^2")
    np.testing.assert_allclose(rep["sigma"], np.array(rep["injection_rate"]) * DEFAULT_TAU_S, rtol=1e-14)
    area = model.lattice.transverse_measure
    np.testing.assert_allclose(rep["sigma_chain"], np.array(rep["sigma"]) * area * 1e-20, rtol=1e-12)
    assert rep["transverse_measure_meaning"] == "cross-section area"
    assert INJECTION_SI_FACTOR == pytest.approx(3.6984e11, rel=1e-4)
    with pytest.raises(ParameterError, match="tau"):
        injection_report(model, None, 10, [1.0], components="xxx", beta=5.0, mu=0.5, eta=0.2, tau=0.0)


CASES = {
    "random2d-mu": (random_model(3, dim=2, seed=27, onsite_spread=1.5), 8, {"beta": 3.0, "mu": 0.3, "eta": 0.2}),
    "random2d-filling": (random_model(3, dim=2, seed=28, onsite_spread=1.5), 8, {"beta": 3.0, "filling": 1 / 3, "eta": 0.2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_value_and_gradient_agree_across_backends_and_with_finite_differences(case):
    model, nk, kw = CASES[case]
    kfrac = kmesh(nk, 2)

    def f(p):
        res = injection_rate(model, p, kfrac, [1.0, 2.0, 3.0], components="xxx,xyy,yxx,yyy", **kw)
        return current().xp.sum(res.rate) * 1e-9

    p0 = model.default_params
    results = {name: value_and_grad_on(name, f, p0) for name in AUTODIFF}
    ref_v, ref_g = results["jax"]
    assert abs(ref_v) > 0
    for name, (v, g) in results.items():
        assert v == pytest.approx(ref_v, rel=1e-10), name
        np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-10 * np.abs(ref_g).max(), err_msg=name)
    fd = central_difference(f, p0, h=1e-6)
    np.testing.assert_allclose(ref_g, fd, rtol=1e-5, atol=1e-6 * np.abs(ref_g).max())


def test_forward_path_runs_under_array_api_strict():
    adapter = strict_adapter()
    model = random_model(3, dim=2, seed=3, onsite_spread=1.5)
    kw = {"components": "xxx,xyy,yxy", "beta": 5.0, "filling": 1 / 3, "eta": 0.2}
    with use_backend(adapter):
        strict = np.asarray(injection_rate(model, None, kmesh(6, 2), [1.0, 2.0], **kw).rate)
    with use_backend("numpy") as be:
        reference = be.to_numpy(injection_rate(model, None, kmesh(6, 2), [1.0, 2.0], **kw).rate)
    assert np.abs(reference).max() > 0
    np.testing.assert_allclose(strict, reference, rtol=1e-12, atol=1e-12 * np.abs(reference).max())
