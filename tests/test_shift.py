"""Shift current σ^{abc}(ω): sum rule vs shift vector, symmetries, SI units, gradients on every backend."""

from __future__ import annotations

import pytest

import numpy as np
from conftest import AUTODIFF, central_difference, random_model, require_module, strict_adapter, value_and_grad_on
from hamdesign.backend import current, use_backend
from hamdesign.errors import ParameterError
from hamdesign.lattice import Lattice, kmesh
from hamdesign.model import TightBinding, hamiltonian
from hamdesign.models import hbn
from hamdesign.observables.shift import (
    component_name,
    parse_components,
    shift_conductivity,
    shift_conductivity_shift_vector,
    shift_report,
    shift_vector,
)
from hamdesign.units import ELEMENTARY_CHARGE, HBAR


def sigma_np(model, nk, omega, components, params=None, **kw):
    """σ (ncomp, nomega) on the numpy backend; the exact sum rule (sc_eta = 0) unless asked otherwise."""
    kw = {"beta": 5.0, "eta": 0.2, "sc_eta": 0.0, **kw}
    if "mu" not in kw and "filling" not in kw:
        kw["filling"] = 1 / 3
    with use_backend("numpy") as be:
        res = shift_conductivity(model, params, kmesh(nk, model.dim), omega, components=components, **kw)
        return be.to_numpy(res.sigma)


def rice_mele(*, t1=-1.2, t2=-0.8, delta=0.6, a=4.0, xB=1.2, side=3.0, second=0.0, phase=0.0):
    """Two-site chain along x: sites at 0 and xB (Å), t_AB(0) = t1, t_AB(−a) = t2, on-site ±Δ (eV).

    ``second`` adds t_AA(a) = second·e^{iφ}, t_BB(a) = second·e^{−iφ} (breaks time reversal for φ ≠ 0, π).
    Cross-section: ``side``² Å².
    """
    hops = [(0, 1, (0,), t1), (0, 1, (-1,), t2), (0, 0, (0,), delta), (1, 1, (0,), -delta)]
    if second:
        hops += [(0, 0, (1,), second * np.exp(1j * phase)), (1, 1, (1,), second * np.exp(-1j * phase))]
    return TightBinding.build(Lattice([[a]], spacing=side), [[0.0], [xB / a]], hops, {}, name="rice-mele")


# ------------------------------------------------------------------------------------ input
def test_parse_components():
    assert parse_components("xyy") == [(0, 1, 1)]
    assert parse_components("xxx, yxy") == [(0, 0, 0), (1, 0, 1)]
    assert parse_components([(2, 0, 1), "zzz"]) == [(2, 0, 1), (2, 2, 2)]
    assert parse_components("all", dim=2) == [(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 0, 0), (1, 0, 1), (1, 1, 1)]
    assert len(parse_components("all")) == 18
    assert component_name((1, 0, 2)) == "yxz"
    for bad in ("xy", "xqy", "", [(0, 1)], [(0, 1, 3)]):
        with pytest.raises(ParameterError):
            parse_components(bad)


def test_bad_settings_raise_clear_errors(numpy_backend):
    m = rice_mele()
    k = kmesh(8, 1)
    with pytest.raises(ParameterError, match="eta"):
        shift_conductivity(m, None, k, 1.0, components="xxx", beta=5.0, mu=0.0, eta=0.0)
    with pytest.raises(ParameterError, match="smearing"):
        shift_conductivity(m, None, k, 1.0, components="xxx", beta=5.0, mu=0.0, eta=0.1, smearing="box")
    with pytest.raises(ParameterError, match="exactly one"):
        shift_conductivity(m, None, k, 1.0, components="xxx", beta=5.0, mu=0.0, filling=0.5, eta=0.1)
    with pytest.raises(ParameterError, match="periodic"):  # a DC current cannot flow across a chain
        shift_conductivity(m, None, k, 1.0, components="yxx", beta=5.0, mu=0.0, eta=0.1)
    with pytest.raises(ParameterError, match="kfrac"):
        shift_conductivity(m, None, np.zeros((4, 2)), 1.0, components="xxx", beta=5.0, mu=0.0, eta=0.1)


# ------------------------------------------------------------------------------------ two methods
MODELS = {1: (random_model(3, dim=1, seed=11, onsite_spread=1.5), (40, 80)),
          2: (random_model(3, dim=2, seed=12, onsite_spread=1.5), (10, 20)),
          3: (random_model(3, dim=3, seed=13, onsite_spread=1.5), (5, 10))}  # fmt: skip
OMEGA = np.linspace(1.0, 4.0, 5)


def _min_direct_gap(model, nk):
    with use_backend("numpy") as be:
        e = np.linalg.eigvalsh(be.to_numpy(hamiltonian(model, None, kmesh(nk, model.dim))))
    return float(np.min(e[:, 1:] - e[:, :-1]))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_sum_rule_agrees_with_shift_vector_as_the_step_shrinks(dim):
    model, (nk, _) = MODELS[dim]
    assert _min_direct_gap(model, nk) > 0.1  # the finite-difference method matches bands by order
    for a in range(dim):
        for b in range(dim):
            ref = sigma_np(model, nk, OMEGA, [(a, b, b)])[0]
            errors = []
            for dk in (1e-2, 1e-3, 1e-4):
                with use_backend("numpy"):
                    sv = shift_conductivity_shift_vector(
                        model, None, nk, OMEGA, component_a=a, component_b=b, beta=5.0, filling=1 / 3, eta=0.2, dk=dk
                    )
                errors.append(np.max(np.abs(sv - ref)) / np.max(np.abs(ref)))
            assert errors[-1] < 2e-5, (a, b, errors)
            assert errors[1] < 0.03 * errors[0] and errors[2] < 0.03 * errors[1], (a, b, errors)  # O(dk²)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_shift_vector_on_the_grid_converges_with_the_grid(dim):
    """Default step dk = (mesh spacing)/10: the discrepancy shrinks as the k-grid is refined."""
    model, sizes = MODELS[dim]
    err = []
    for nk in sizes:
        diff = total = 0.0
        for a in range(dim):
            for b in range(dim):
                ref = sigma_np(model, nk, OMEGA, [(a, b, b)])[0]
                with use_backend("numpy"):
                    sv = shift_conductivity_shift_vector(
                        model, None, nk, OMEGA, component_a=a, component_b=b, beta=5.0, filling=1 / 3, eta=0.2
                    )
                diff += np.sum(np.abs(sv - ref))
                total += np.sum(np.abs(ref))
        err.append(diff / total)
    assert err[0] < 0.1
    assert err[1] < 0.5 * err[0], err


def test_shift_vector_is_gauge_invariant(numpy_backend):
    model, _ = MODELS[2]
    k = np.random.default_rng(1).uniform(size=(6, 2))
    e, R, r2 = shift_vector(model, None, k, component_a=0, component_b=1, dk=1e-4)
    # Im[r^b_mn r^b_{nm;a}] = −|r^b_nm|² R^{a,b}_mn  ⇒  R_nm = −R_mn
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(R[:, off], -np.swapaxes(R, 1, 2)[:, off], atol=1e-6 * np.abs(R).max())
    np.testing.assert_allclose(r2, np.swapaxes(r2, 1, 2), rtol=1e-12)


# ------------------------------------------------------------------------------------ symmetries
def test_inversion_symmetric_models_have_no_shift_current(numpy_backend):
    # SSH chain: equal on-site energies, inversion about the bond centre, for any site positions
    ssh = rice_mele(delta=0.0, xB=1.4)
    hbn0 = hbn(M=0.0)  # graphene: D6h
    s_ssh = sigma_np(ssh, 60, [1.0, 2.0, 3.0], "xxx", mu=0.0, beta=20.0, eta=0.15)
    s_gr = sigma_np(hbn0, 24, [2.0, 4.0, 6.0], "all", mu=0.0, beta=20.0, eta=0.15)
    s_rm = sigma_np(rice_mele(delta=0.6, xB=1.4), 60, [1.0, 2.0, 3.0], "xxx", mu=0.0, beta=20.0, eta=0.15)
    s_hbn = sigma_np(hbn(M=1.0), 24, [2.0, 4.0, 6.0], "all", mu=0.0, beta=20.0, eta=0.15)
    assert np.max(np.abs(s_rm)) > 1e-6 and np.max(np.abs(s_hbn)) > 1e-6  # the tests below are not vacuous
    assert np.max(np.abs(s_ssh)) < 1e-12 * np.max(np.abs(s_rm))
    assert np.max(np.abs(s_gr)) < 1e-12 * np.max(np.abs(s_hbn))


def test_symmetric_in_the_field_indices_and_real(backend):
    model = random_model(3, dim=3, seed=4, onsite_spread=1.5)
    comps = ["xyz", "xzy", "yxz", "yzx", "zxy", "zyx", "xxy", "xyx"]
    with use_backend(backend):
        res = shift_conductivity(model, None, kmesh(4, 3), [1.5, 2.5], components=comps, beta=5.0, filling=1 / 3, eta=0.2)
        s = backend.to_numpy(res.sigma)
    assert not np.iscomplexobj(s) and s.dtype == np.float64 and s.shape == (8, 2)
    scale = np.max(np.abs(s))
    assert scale > 0
    for i in range(0, 8, 2):
        np.testing.assert_allclose(s[i], s[i + 1], rtol=0, atol=1e-12 * scale)


def test_hbn_has_one_independent_in_plane_component(numpy_backend):
    """D3h, with a_1 = a(1, 0), a_2 = a(½, √3/2): one NN bond is along −y, so the mirror is x → −x.

    Components odd in x vanish (xxx, xyy, yxy, yyx); C3 leaves one independent component:
    σ^{yyy} = −σ^{yxx} = −σ^{xxy} = −σ^{xyx}.
    """
    m = hbn()
    names = ["yyy", "yxx", "xxy", "xyx", "xxx", "xyy", "yxy", "yyx"]
    s = dict(zip(names, sigma_np(m, 30, [2.5, 3.0, 4.0, 5.5], names, mu=0.0, beta=50.0, eta=0.15), strict=False))
    scale = np.max(np.abs(s["yyy"]))
    assert scale > 1e-6  # A/V²
    for name in ("yxx", "xxy", "xyx"):
        np.testing.assert_allclose(s[name], -s["yyy"], rtol=1e-10, atol=1e-12 * scale)
    for name in ("xxx", "xyy", "yxy", "yyx"):
        np.testing.assert_allclose(s[name], 0.0, atol=1e-12 * scale)
    # light polarised along z does nothing to a planar model; a current along z is refused
    assert np.max(np.abs(sigma_np(m, 12, [3.0], "yzz,xzz,yyz,xxz", mu=0.0, beta=50.0, eta=0.15))) < 1e-14 * scale
    with pytest.raises(ParameterError, match="periodic"):
        sigma_np(m, 12, [3.0], "zyy", mu=0.0, beta=50.0, eta=0.15)


def test_time_reversed_model_has_the_same_shift_current(numpy_backend):
    """H'(k) = H(−k)*: every hopping conjugated; the linear shift current is even under T."""
    model = random_model(3, dim=2, seed=5, onsite_spread=1.5)
    flipped = np.array([-v if n.endswith("i") else v for n, v in zip(model.parameter_names, model.default_params, strict=False)])
    comps = "xxx,xyy,yxx,yyy"
    s = sigma_np(model, 10, OMEGA, comps)
    s_t = sigma_np(model, 10, OMEGA, comps, params=flipped)
    np.testing.assert_allclose(s_t, s, rtol=1e-9, atol=1e-12 * np.abs(s).max())


# ------------------------------------------------------------------------------------ SI units
def _rice_mele_si(omega_ev, *, t1, t2, delta, a, xB, area, eta_ev, nk=400):
    """σ^{xxx} in A/V² from scratch: SI constants, a smooth gauge, Berry connections by finite differences.

    σ = −(πe³/ħ²) ∫dk/2π Σ f_nm R_mn |r_nm|² δ(ω_mn − ω) / area, R_mn = ∂φ_mn − (A_mm − A_nn),
    r_mn = |r_mn|e^{iφ_mn}; T = 0, lower band full. Lengths in m, energies in J, ω in rad/s.
    """
    e, hbar = ELEMENTARY_CHARGE, HBAR
    a, xB = a * 1e-10, xB * 1e-10

    def ham(k):  # tight-binding convention, e^{ik(R + τ_j − τ_i)}
        hab = t1 * np.exp(1j * k * xB) + t2 * np.exp(1j * k * (xB - a))
        dhab = 1j * xB * t1 * np.exp(1j * k * xB) + 1j * (xB - a) * t2 * np.exp(1j * k * (xB - a))
        h = e * np.array([[delta + 0 * k, hab], [np.conj(hab), -delta + 0 * k]]).transpose(2, 0, 1)
        dh = e * np.array([[0 * k, dhab], [np.conj(dhab), 0 * k]]).transpose(2, 0, 1)
        return h, dh

    def bands(k):
        h, dh = ham(k)
        E, U = np.linalg.eigh(h)
        lower = U[:, :, 0] * np.exp(-1j * np.angle(U[:, 1, 0]))[:, None]  # u_B real > 0 (never 0 for Δ > 0)
        upper = U[:, :, 1] * np.exp(-1j * np.angle(U[:, 0, 1]))[:, None]  # u_A real > 0
        vel = np.einsum("ki,kij,kj->k", np.conj(upper), dh, lower)  # <u_2|∂H|u_1>
        r21 = vel / (1j * (E[:, 1] - E[:, 0]))  # r_mn = v_mn / (i ω_mn), m = upper, n = lower
        return E, lower, upper, r21

    k = (np.arange(nk) + 0.5) / nk * 2 * np.pi / a
    h = 1e-4 * 2 * np.pi / a
    E, _, _, r21 = bands(k)
    _, lo_p, up_p, r_p = bands(k + h)
    _, lo_m, up_m, r_m = bands(k - h)
    conn = lambda up, um: np.real(1j * np.sum(np.conj(0.5 * (up + um)) * (up - um), axis=1) / (2 * h))  # noqa: E731
    A_low, A_up = conn(lo_p, lo_m), conn(up_p, up_m)
    dphi = np.angle(r_p / r_m) / (2 * h)
    R21 = dphi - (A_up - A_low)
    w = np.asarray(omega_ev) * e / hbar
    eta_w = eta_ev * e / hbar
    w21 = (E[:, 1] - E[:, 0]) / hbar
    delta_fn = np.exp(-(((w21[:, None] - w[None, :]) / eta_w) ** 2)) / (np.sqrt(np.pi) * eta_w)
    integrand = 1.0 * R21[:, None] * np.abs(r21[:, None]) ** 2 * delta_fn  # f_12 = f_lower − f_upper = 1
    return -np.pi * e**3 / hbar**2 * np.sum(integrand, axis=0) * (2 * np.pi / a / nk) / (2 * np.pi) / (area * 1e-20)


def test_rice_mele_si_value_from_scratch(numpy_backend):
    pars = {"t1": -1.2, "t2": -0.8, "delta": 0.6, "a": 4.0, "xB": 1.2}
    m = rice_mele(**pars, side=3.0)
    omega = [1.5, 2.0, 2.5, 3.0, 3.5]
    rep = shift_report(m, None, 400, omega, components="xxx", beta=200.0, mu=0.0, eta=0.1)
    assert rep["units"]["sigma"] == "A/V^2" and rep["transverse_measure"] == pytest.approx(9.0)
    assert rep["transverse_measure_unit"] == "Å^2" and rep["transverse_measure_meaning"] == "cross-section area"
    ours = np.array(rep["sigma"][0])
    hand = _rice_mele_si(omega, **pars, area=9.0, eta_ev=0.1)
    assert np.max(np.abs(ours)) > 1e-6
    np.testing.assert_allclose(ours, hand, rtol=1e-6, atol=1e-7 * np.abs(hand).max())
    # per chain: A m²/V², bulk × area
    np.testing.assert_allclose(rep["sigma_chain"][0], ours * 9.0e-20, rtol=1e-12)


def test_report_si_prefactor_and_transverse(numpy_backend):
    m = hbn()
    rep = shift_report(m, None, 12, [3.0], components="yyy,xxx", beta=50.0, mu=0.0, eta=0.15)
    keys = {"observable", "components", "omega_ev", "sigma", "sigma_layer", "transverse_measure", "units", "normalisation"}
    keys |= {"backend", "transverse_measure_unit"}
    assert set(rep) >= keys
    assert rep["observable"] == "shift" and rep["components"] == ["yyy", "xxx"] and rep["omega_ev"] == [3.0]
    assert rep["transverse_measure"] == pytest.approx(3.33) and rep["units"]["sigma_layer"] == "A m/V^2"
    np.testing.assert_allclose(rep["sigma_layer"], np.array(rep["sigma"]) * 3.33e-10, rtol=1e-12)
    thin = shift_report(m, None, 12, [3.0], components="yyy,xxx", beta=50.0, mu=0.0, eta=0.15, transverse=6.66)
    np.testing.assert_allclose(thin["sigma"], np.array(rep["sigma"]) / 2, rtol=1e-12)
    np.testing.assert_allclose(thin["sigma_layer"], rep["sigma_layer"], rtol=1e-12)  # per layer does not change
    # internal → SI: e³/(ħ · 1 eV) = e²/ħ
    from hamdesign.observables.shift import shift_si_factor

    assert shift_si_factor(m) == pytest.approx(ELEMENTARY_CHARGE**2 / HBAR, rel=1e-14)
    scipy_constants = require_module("scipy.constants")
    assert shift_si_factor(m) == pytest.approx(scipy_constants.e**2 / scipy_constants.hbar, rel=1e-9)


def test_lorentzian_and_gaussian_smearing_agree_for_narrow_broadening(numpy_backend):
    m = rice_mele()
    g = sigma_np(m, 800, [2.0, 2.5], "xxx", mu=0.0, beta=50.0, eta=0.02, smearing="gaussian")
    lo = sigma_np(m, 800, [2.0, 2.5], "xxx", mu=0.0, beta=50.0, eta=0.02, smearing="lorentzian")
    np.testing.assert_allclose(lo, g, rtol=0.05)


# ------------------------------------------------------------------------------------ gradients
def _objective(model, kfrac, omega, components, **kw):
    def f(p):
        return current().xp.sum(shift_conductivity(model, p, kfrac, omega, components=components, **kw).sigma)

    return f


CASES = {
    "random2d-mu": (random_model(3, dim=2, seed=7, onsite_spread=1.5), 8, {"beta": 3.0, "mu": 0.3, "eta": 0.2}),
    "random2d-filling": (
        random_model(3, dim=2, seed=8, onsite_spread=1.5),
        8,
        {"beta": 3.0, "filling": 1 / 3, "eta": 0.2, "smearing": "lorentzian"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_value_and_gradient_agree_across_backends_and_with_finite_differences(case):
    model, nk, kw = CASES[case]
    f = _objective(model, kmesh(nk, 2), [1.0, 2.0, 3.0], "xxx,xyy,yxy,yyy,xxy", **kw)
    p0 = model.default_params
    results = {name: value_and_grad_on(name, f, p0) for name in AUTODIFF}
    ref_v, ref_g = results["jax"]
    assert abs(ref_v) > 0
    for name, (v, g) in results.items():
        assert v == pytest.approx(ref_v, rel=1e-10), name
        np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-10 * np.abs(ref_g).max(), err_msg=name)
    with use_backend("numpy"):
        assert float(f(p0)) == pytest.approx(ref_v, rel=1e-10)
    fd = central_difference(f, p0, h=1e-6)
    np.testing.assert_allclose(ref_g, fd, rtol=1e-5, atol=1e-6 * np.abs(ref_g).max())


def test_gradient_finite_at_a_band_touching_on_the_mesh(ad_backend):
    # graphene (hbn with M = 0): Dirac points at K = (2/3, 1/3) and K' = (1/3, 2/3), nodes of a 12×12 mesh
    m = hbn(M=0.0)
    k = kmesh(12, 2)
    assert np.any(np.all(np.isclose(k, [2 / 3, 1 / 3]), axis=1))
    f = _objective(m, k, [2.0, 4.0], "yyy", beta=20.0, mu=0.0, eta=0.2)
    v, g = ad_backend.value_and_grad(f)(ad_backend.asarray(m.default_params))
    g = ad_backend.to_numpy(g)
    assert np.all(np.isfinite(g)) and np.isfinite(float(ad_backend.to_numpy(v)))
    # σ is odd in M; dσ/dM at the touching point equals the finite difference across it (gap 2h ≫ regulator)
    fd = central_difference(f, m.default_params, h=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())
    assert abs(g[1]) > 1e-7


def test_forward_path_runs_under_array_api_strict():
    adapter = strict_adapter()
    model = random_model(3, dim=2, seed=3, onsite_spread=1.5)
    kw = {"components": "xxx,xyy,yxy", "beta": 5.0, "filling": 1 / 3, "eta": 0.2, "sc_eta": 0.0}
    with use_backend(adapter):
        s = np.asarray(shift_conductivity(model, None, kmesh(6, 2), [1.0, 2.0], **kw).sigma)
    np.testing.assert_allclose(s, sigma_np(model, 6, [1.0, 2.0], kw.pop("components"), **kw), rtol=1e-12)


def test_k_chunks_do_not_change_the_result(numpy_backend):
    model = random_model(3, dim=2, seed=9, onsite_spread=1.5)
    kw = {"components": "xxx,yxy", "beta": 5.0, "filling": 1 / 3, "eta": 0.2}
    whole = shift_conductivity(model, None, kmesh(9, 2), OMEGA, **kw).sigma
    parts = shift_conductivity(model, None, kmesh(9, 2), OMEGA, chunk=7, **kw).sigma
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-14 * np.abs(whole).max())


@pytest.mark.jax
def test_jit_matches_eager_with_traced_temperature_and_does_not_recompile():
    from conftest import on_backend

    model = random_model(3, dim=2, seed=7, onsite_spread=1.5)
    k = kmesh(6, 2)

    def f(p, beta):
        res = shift_conductivity(model, p, k, [1.0, 2.0], components="xxx,yyy", beta=beta, filling=1 / 3, eta=0.2)
        return current().xp.sum(res.sigma)

    with on_backend("jax") as be:
        import jax

        step = jax.jit(jax.value_and_grad(f))
        p = be.asarray(model.default_params)
        v3, _ = step(p, 3.0)
        v4, _ = step(p, 4.0)
        assert step._cache_size() == 1
        assert float(v3) == pytest.approx(float(f(p, 3.0)), rel=1e-12)
        assert float(v4) == pytest.approx(float(f(p, 4.0)), rel=1e-12)
