"""Berry curvature, Chern numbers and σ_xy: physics checks, cross-backend agreement, gradients."""

from __future__ import annotations

import pytest

import numpy as np
from conftest import AUTODIFF, central_difference, on_backend, random_model, require_module, strict_adapter, value_and_grad_on
from hamdesign.backend import use_backend
from hamdesign.lattice import kmesh
from hamdesign.models import haldane
from hamdesign.observables.hall import chern_numbers, chern_numbers_lattice, hall_report, sigma_xy

CRITICAL = 3 * np.sqrt(3)  # |M_c| = 3√3 |t2 sin φ|


@pytest.mark.parametrize(
    "M_over_c, phi, expected",
    [
        (0.0, np.pi / 2, (-1, 1)),
        (0.5, np.pi / 2, (-1, 1)),
        (0.95, np.pi / 2, (-1, 1)),
        (1.05, np.pi / 2, (0, 0)),
        (-1.05, np.pi / 2, (0, 0)),
        (-0.5, np.pi / 2, (-1, 1)),
        (0.0, -np.pi / 2, (1, -1)),
        (0.5, -np.pi / 3, (1, -1)),
        (1.5, -np.pi / 3, (0, 0)),
    ],
)
def test_haldane_phase_diagram(numpy_backend, M_over_c, phi, expected):
    t2 = 0.1
    m = haldane(t2=t2, phi=phi, M=M_over_c * CRITICAL * abs(t2 * np.sin(phi)))
    lattice_c = chern_numbers_lattice(m, m.default_params, 36)
    np.testing.assert_allclose(lattice_c, expected, atol=1e-9)
    if abs(abs(M_over_c) - 1) > 0.1:  # Kubo sums converge slowly right next to the transition
        kubo = numpy_backend.to_numpy(chern_numbers(m, m.default_params, kmesh(90, 2)))
        np.testing.assert_allclose(kubo, expected, atol=2e-3)


def test_sigma_xy_tends_to_chern_number_as_beta_grows(numpy_backend):
    m = haldane()
    k = kmesh(90, 2)
    values = [float(sigma_xy(m, m.default_params, k, beta=b, mu=0.0)) for b in (0.5, 2.0, 10.0, 200.0)]
    assert abs(values[-1] - 1.0) < 1e-6
    assert np.all(np.diff(np.abs(values)) > 0)  # |σ| grows monotonically towards |C| = 1


def perturbed_haldane(seed: int, *, scale: float = 0.15):
    """3-orbital Chern insulator: Haldane (A, B) plus a far orbital C, all bonds randomly perturbed."""
    from itertools import product

    from hamdesign.model import TightBinding
    from hamdesign.models import HALDANE_NNN, HONEYCOMB_NN

    rng = np.random.default_rng(seed)
    base = haldane()
    bonds: dict[tuple, complex] = {}

    def add(i, j, R, t):
        key, partner = (i, j, tuple(R)), (j, i, tuple(-r for r in R))
        if partner < key:
            key, t = partner, np.conj(t)
        bonds[key] = bonds.get(key, 0.0) + t

    phi = rng.uniform(0.6, 2.5) * rng.choice([-1, 1])
    for R in HONEYCOMB_NN:
        add(0, 1, R, 1.0)
    for R in HALDANE_NNN:
        add(0, 0, R, 0.3 * np.exp(1j * phi))
        add(1, 1, R, 0.3 * np.exp(-1j * phi))
    for i, e in enumerate((rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), 8.0)):
        add(i, i, (0, 0), e)
    for R in product((-1, 0, 1), repeat=2):
        for i in range(3):
            for j in range(3):
                t = complex(*(scale * rng.standard_normal(2)))
                add(i, j, R, t.real if (i == j and not any(R)) else t)
    hops = [(i, j, R, t) for (i, j, R), t in bonds.items()]
    positions = [[0, 0], [1 / 3, 1 / 3], [2 / 3, 2 / 3]]
    return TightBinding.build(base.lattice, positions, hops, {}, name=f"perturbed-haldane-{seed}")


@pytest.mark.parametrize("seed, topological", [(1, True), (2, True), (3, False), (5, True), (8, True), (9, False)])
def test_kubo_chern_numbers_match_fukui_hatsugai(numpy_backend, seed, topological):
    import hamdesign as hd

    m = perturbed_haldane(seed)
    e = np.linalg.eigvalsh(numpy_backend.to_numpy(hd.hamiltonian(m, None, kmesh(40, 2))))
    direct_gaps = np.min(e[:, 1:] - e[:, :-1], axis=0)  # Chern numbers need each band isolated at every k
    assert np.all(direct_gaps > 0.05), f"model {seed} has touching bands: {direct_gaps}"
    fhs = chern_numbers_lattice(m, m.default_params, 60)
    kubo = numpy_backend.to_numpy(chern_numbers(m, m.default_params, kmesh(120, 2)))
    assert np.allclose(fhs, np.round(fhs), atol=1e-9)
    assert np.any(np.abs(fhs) > 0.5) == topological
    np.testing.assert_allclose(kubo, fhs, atol=0.02)
    assert abs(fhs.sum()) < 1e-9


def _hall_objective(model, kfrac, **kw):
    return lambda p: sigma_xy(model, p, kfrac, **kw)


CASES = {
    "haldane-mu": (haldane(M=0.2, phi=1.0), 24, {"beta": 5.0, "mu": 0.1}),
    "haldane-filling": (haldane(M=0.1, phi=0.7, t2=0.3), 24, {"beta": 3.0, "filling": 0.5}),
    "random3-filling": (random_model(3, dim=2, seed=7), 16, {"beta": 2.0, "filling": 1 / 3}),
    "random3-3d": (random_model(3, dim=3, seed=8), 6, {"beta": 2.0, "mu": 0.2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_value_and_gradient_agree_across_backends_and_with_finite_differences(case):
    model, nk, kw = CASES[case]
    k = kmesh(nk, model.dim)
    p0 = model.default_params
    f = _hall_objective(model, k, **kw)
    results = {name: value_and_grad_on(name, f, p0) for name in AUTODIFF}
    ref_v, ref_g = results["jax"]
    for name, (v, g) in results.items():
        assert v == pytest.approx(ref_v, rel=1e-10, abs=1e-13), name
        np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-11 * max(1.0, np.abs(ref_g).max()), err_msg=name)
    with use_backend("numpy"):
        assert float(f(p0)) == pytest.approx(ref_v, rel=1e-10, abs=1e-13)
    fd = central_difference(f, p0, h=1e-6)
    np.testing.assert_allclose(ref_g, fd, rtol=1e-5, atol=1e-7)


def test_hamiltonian_and_bands_agree_across_backends():
    import hamdesign as hd

    model = random_model(3, dim=2, seed=9)
    k = np.random.default_rng(0).uniform(size=(11, 2))
    ref = None
    for name in AUTODIFF + ("numpy",):
        with on_backend(name) as be:
            h = be.to_numpy(hd.hamiltonian(model, model.default_params, k))
            e = be.to_numpy(hd.bands(model, model.default_params, k))
        if ref is None:
            ref = (h, e)
        np.testing.assert_allclose(h, ref[0], rtol=0, atol=1e-13)
        np.testing.assert_allclose(e, ref[1], rtol=0, atol=1e-12)


def _tangent_to_the_critical_manifold(p0: np.ndarray) -> dict[str, callable]:
    """Curves s ↦ p(s) through p0 = (t1, t2, φ, M) along which the gap at K' stays closed (M = 3√3 t2 sin φ)."""
    t1, t2, phi, _ = p0

    def critical(t1, t2, phi):
        return np.array([t1, t2, phi, 3 * np.sqrt(3) * t2 * np.sin(phi)])

    return {
        "t1": lambda s: critical(t1 + s, t2, phi),
        "t2": lambda s: critical(t1, t2 + s, phi),
        "phi": lambda s: critical(t1, t2, phi + s),
    }


@pytest.mark.parametrize("kw", [{"mu": 0.0, "beta": 20.0}, {"filling": 0.5, "beta": 20.0}])
def test_gradient_finite_where_bands_touch_on_the_mesh(ad_backend, kw):
    """At a gap closing on a mesh node the AD gradient is the derivative of the rest of the mesh.

    Along the critical manifold (t1, or t2 and φ with M following) the node stays degenerate and
    contributes exactly nothing, so σ_xy is smooth there and its central differences must equal
    g·p'(0). Across it (M alone) the node's term is 2β m³/δ⁴-like for |m| ≪ δ = 1e-6 (g(Δ) and |d| are
    flat at d = 0) but grows like 1/|m| beyond the regulator: σ_xy on the mesh is differentiable
    only inside a window no finite-difference step can resolve, so there the gradient is compared
    with the one-sided limit from inside the window: the node contributes no value and no slope (up
    to the round-off of d; checked on the node alone), and the rest of the mesh, gapped and smooth,
    gives the central differences.
    """
    # at M = 3√3 t2 (φ = π/2) the gap closes exactly at K' = (1/3, 2/3), a node of a 30×30 mesh
    # (at K = (2/3, 1/3) the mass is M + 3√3 t2: the gap there stays 4M)
    m = haldane(M=CRITICAL * 0.1)
    k = kmesh(30, 2)
    node = np.all(np.isclose(k, [1 / 3, 2 / 3]), axis=1)
    assert node.sum() == 1
    p0 = m.default_params
    v, g = ad_backend.value_and_grad(lambda p: sigma_xy(m, p, k, **kw))(ad_backend.asarray(p0))
    v, g = float(ad_backend.to_numpy(v)), ad_backend.to_numpy(g)
    assert np.isfinite(v)
    assert np.all(np.isfinite(g))

    from hamdesign.spectrum import bands, chemical_potential

    with use_backend("numpy"):
        e_node = bands(m, p0, k[node])
        assert float(e_node[0, 1] - e_node[0, 0]) < 1e-12  # the bands do touch there

        def mu_of(p):  # μ as the implementation finds it: from every level of the mesh, the node's too
            return kw["mu"] if "mu" in kw else float(chemical_potential(bands(m, p, k), filling=kw["filling"], beta=kw["beta"]))

        def rest(p):  # σ_xy with the node's term dropped, in the whole mesh's normalisation
            return float(sigma_xy(m, p, k[~node], beta=kw["beta"], mu=mu_of(p))) * (~node).sum() / len(k)

        assert rest(p0) == pytest.approx(v, rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(g, central_difference(rest, p0, h=1e-6), rtol=1e-5, atol=1e-7)
        for name, curve in _tangent_to_the_critical_manifold(p0).items():
            h = 1e-6
            along = (float(sigma_xy(m, curve(h), k, **kw)) - float(sigma_xy(m, curve(-h), k, **kw))) / (2 * h)
            tangent = (curve(h) - curve(-h)) / (2 * h)
            assert g @ tangent == pytest.approx(along, rel=1e-5, abs=1e-7), name
    # the node alone: |d| there is round-off (~1e-16, not 0), which g(Δ) ~ Δ²/δ⁴ turns into a value
    # ~1e-21 and a slope ~1e-4 per node, i.e. ~1e-8 of the gradient once divided by the 900 nodes
    vn, gn = ad_backend.value_and_grad(lambda p: sigma_xy(m, p, k[node], beta=kw["beta"], mu=mu_of(p0)))(ad_backend.asarray(p0))
    assert abs(float(ad_backend.to_numpy(vn))) < 1e-18
    assert np.abs(ad_backend.to_numpy(gn)).max() / len(k) < 1e-6 * np.abs(g).max()


@pytest.mark.parametrize("two_band_closed_form", [True, False])
def test_forward_path_runs_under_array_api_strict(two_band_closed_form, monkeypatch):
    from hamdesign.observables import hall

    monkeypatch.setattr(hall, "TWO_BAND_CLOSED_FORM", two_band_closed_form)
    adapter = strict_adapter()
    m = haldane(M=0.1, phi=1.2)
    k = kmesh(18, 2)
    with use_backend(adapter):
        s_mu = float(sigma_xy(m, m.default_params, k, beta=10.0, mu=0.05))
        s_fill = float(sigma_xy(m, m.default_params, k, beta=10.0, filling=0.5))
    with use_backend("numpy"):
        assert s_mu == pytest.approx(float(sigma_xy(m, m.default_params, k, beta=10.0, mu=0.05)), rel=1e-12)
        assert s_fill == pytest.approx(float(sigma_xy(m, m.default_params, k, beta=10.0, filling=0.5)), rel=1e-12)


def test_hall_report_units_and_bulk_value(numpy_backend):
    from hamdesign.models import hbn

    m = hbn()
    report = hall_report(m, None, 30, beta=50.0, filling=0.5)
    assert report["sigma_xy"] == pytest.approx(0.0, abs=1e-10)  # time-reversal symmetric
    assert report["chern_rounded"] == [0, 0]
    assert report["layer_spacing"] == pytest.approx(3.33)
    assert report["units"]["sigma_xy"] == "e^2/h per layer"
    h = haldane()
    rep = hall_report(h, None, 60, beta=200.0, mu=0.0)
    assert rep["sigma_xy"] == pytest.approx(1.0, abs=1e-6)
    assert rep["sigma_xy_bulk_S_per_cm"] is None  # dimensionless Haldane units have no S/cm


def test_bulk_conversion_matches_conductance_quantum():
    from hamdesign.units import E2_OVER_H, sheet_to_bulk_s_per_cm

    scipy_constants = require_module("scipy.constants")
    assert E2_OVER_H == pytest.approx(scipy_constants.e**2 / scipy_constants.h, rel=1e-12)
    # one quantum per 10 Å layer = 3.874e-5 S / 1e-7 cm
    assert sheet_to_bulk_s_per_cm(1.0, 10.0, "Å") == pytest.approx(E2_OVER_H / 1e-7, rel=1e-12)
