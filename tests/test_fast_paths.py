"""Every fast path against the general path it replaces (performance issue: identical results).

- closed-form 1×1 / 2×2 ``eigh`` (``backends/_small_matrices.py``) against LAPACK;
- the adapters' ``matmul`` (broadcast products in jax, element-wise 2×2 products in NumPy and
  autograd) against the library's ``matmul``, values and gradients;
- the two-band Berry curvature (Pauli vector, no eigenvectors) against the eigenvector route;
- μ at a filling (band-edge start, early exit) against root finding by SciPy;
- the cache of k-dependent factors against recomputation;
- the Bloch sums without orbital phases (what ``eigensystem`` diagonalises) against P X P†, and
  its eigenvectors against H(k) in the tight-binding convention;
- the adapters' preferred chunk size within the memory plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hamdesign.backends import _small_matrices, eager_while_loop

import hamdesign as hd
import numpy as np
from conftest import on_backend, random_model, require_module, strict_adapter
from hamdesign.models import haldane
from hamdesign.observables import hall

DATA = Path(__file__).parent / "data"


def _hermitian_batch(seed: int = 0, n: int = 2, count: int = 400) -> np.ndarray:
    """Random Hermitian matrices plus the awkward ones: degenerate, nearly so, zero, tiny, huge."""
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(count, n, n)) + 1j * rng.normal(size=(count, n, n))
    h = h + np.conj(np.swapaxes(h, -1, -2))
    h[0] = 3.0 * np.eye(n)
    h[1] = 0.0
    h[2] = np.diag(1.0 + 1e-13 * np.arange(n))
    h[3] = 1e-200 * h[10]
    h[4] = 1e150 * h[11]
    h[5] = np.eye(n) + 1e-17 * h[12]
    h[6] = np.diag(-np.arange(n, dtype=float))  # already diagonal, descending
    h[7] = 1e8 * np.eye(n) + h[13]  # large shift, order-one splitting
    return h


@pytest.mark.parametrize("n", [1, 2])
def test_closed_form_eigh_is_an_eigendecomposition(backend, n):
    h = _hermitian_batch(n=n)
    w, u = (backend.to_numpy(x) for x in backend.eigh(backend.asarray(h)))
    scale = np.abs(h).max(axis=(1, 2)) + 1e-300
    assert np.all(np.diff(w, axis=-1) >= 0)
    assert np.max(np.abs(w - np.linalg.eigvalsh(h)) / scale[:, None]) < 4e-16 * 8
    residual = np.abs(h @ u - u * w[:, None, :]).max(axis=(1, 2)) / scale
    assert residual.max() < 4e-15
    assert np.abs(np.conj(np.swapaxes(u, -1, -2)) @ u - np.eye(n)).max() < 4e-15


def test_closed_form_is_taken_and_can_be_turned_off(monkeypatch):
    assert _small_matrices.uses_closed_form(2) and not _small_matrices.uses_closed_form(3)
    monkeypatch.setattr(_small_matrices, "CLOSED_FORM_MAX_SIZE", 0)
    assert not _small_matrices.uses_closed_form(1)


def test_closed_form_eigh_is_array_api_code():
    strict = require_module("array_api_strict")
    h = _hermitian_batch(count=20)
    w, u = _small_matrices.eigh_small(strict.asarray(h), xp=strict)
    assert np.allclose(np.asarray(w), np.linalg.eigvalsh(h), rtol=0, atol=1e-13 * np.abs(h).max())
    u = np.asarray(u)
    assert np.allclose(h @ u, u * np.asarray(w)[:, None, :], atol=1e-13 * np.abs(h).max())


def _observables(be, model, params, k):
    """σ_xy value and gradient, and a shift spectrum: everything that passes through eigh."""
    p = be.asarray(params)
    out = {}
    if be.can_differentiate:
        value, grad = be.value_and_grad(lambda q: hd.sigma_xy(model, q, k, beta=20.0, filling=0.5))(p)
        out["sigma_xy"], out["grad"] = float(be.to_numpy(value)), be.to_numpy(grad)
    omega = np.linspace(0.5, 6.0, 12)
    out["shift"] = be.to_numpy(hd.shift_conductivity(model, p, k, omega, components="yyy", beta=50.0, filling=0.5, eta=0.1).sigma)
    return out


@pytest.mark.parametrize("two_band_closed_form", [True, False])
def test_closed_form_eigh_leaves_observables_unchanged(backend, monkeypatch, two_band_closed_form):
    monkeypatch.setattr(hall, "TWO_BAND_CLOSED_FORM", two_band_closed_form)
    model, k = random_model(2, dim=2, seed=3, onsite_spread=1.0), hd.kmesh(12, 2)
    params = model.default_params
    fast = _observables(backend, model, params, k)
    monkeypatch.setattr(_small_matrices, "CLOSED_FORM_MAX_SIZE", 0)
    general = _observables(backend, model, params, k)
    for key, value in general.items():
        assert np.max(np.abs(value)) > 1e-6, key  # a symmetry would make the comparison empty
        assert np.allclose(fast[key], value, rtol=1e-11, atol=1e-12 * np.max(np.abs(value))), key


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [
        ((50, 2, 2), (50, 2, 2)),
        ((50, 3, 3), (50, 3, 3)),
        ((50, 8, 8), (50, 8, 8)),
        ((50, 9, 9), (50, 9, 9)),
        ((50, 2, 2), (2, 2)),
        ((4, 50, 2, 2), (4, 50, 2, 2)),
        ((50, 7), (7, 4)),
        ((50, 20), (20, 4)),
        ((50, 2, 3), (50, 3, 2)),
    ],
)
def test_adapter_matmul_matches_the_library(backend, shape_a, shape_b):
    rng = np.random.default_rng(1)
    a = rng.normal(size=shape_a) + 1j * rng.normal(size=shape_a)
    b = rng.normal(size=shape_b) + 1j * rng.normal(size=shape_b)
    got = backend.to_numpy(backend.matmul(backend.asarray(a), backend.asarray(b)))
    assert got.shape == np.matmul(a, b).shape
    assert np.allclose(got, np.matmul(a, b), rtol=1e-14, atol=1e-14)


def test_adapter_matmul_gradient_matches_the_library(ad_backend):
    rng = np.random.default_rng(2)
    a0, a1, b0, b1, c = (rng.normal(size=(30, 2, 2)) + 1j * rng.normal(size=(30, 2, 2)) for _ in range(5))
    xp = ad_backend.xp

    def loss(p, product):
        a = ad_backend.asarray(a0) + p[0] * ad_backend.asarray(a1)
        b = ad_backend.asarray(b0) + p[1] * ad_backend.asarray(b1)
        return xp.sum(xp.real(product(a, b) * ad_backend.asarray(c)))

    p = ad_backend.asarray(np.array([0.3, -0.7]))
    fast = ad_backend.value_and_grad(lambda q: loss(q, ad_backend.matmul))(p)
    library = ad_backend.value_and_grad(lambda q: loss(q, xp.matmul))(p)
    for x, y in zip(fast, library, strict=False):
        assert np.allclose(ad_backend.to_numpy(x), ad_backend.to_numpy(y), rtol=1e-13)


def test_while_loop_contract(backend):
    xp = backend.xp

    def cond(state):
        return state[0] < 5

    def body(state):
        return state[0] + 1, state[1] * 2.0

    start = (xp.asarray(0, device=backend.device), xp.asarray(1.0, device=backend.device))
    steps, value = backend.while_loop(cond, body, start)
    assert int(backend.to_numpy(steps)) == 5 and float(backend.to_numpy(value)) == 32.0
    steps, value = backend.while_loop(lambda s: s[0] < 0, body, start)
    assert int(backend.to_numpy(steps)) == 0 and float(backend.to_numpy(value)) == 1.0
    assert eager_while_loop(lambda s: s < 3, lambda s: s + 1, 0) == 3


def _two_orbital_models():
    return [
        (haldane(M=0.1, phi=1.0), 24),
        (random_model(2, dim=2, seed=3), 16),
        (random_model(2, dim=3, seed=4), 6),
    ]


@pytest.mark.parametrize("case", range(3))
def test_two_band_curvature_matches_eigenvector_route(backend, monkeypatch, case):
    model, nk = _two_orbital_models()[case]
    k = hd.kmesh(nk, model.dim)
    p = backend.asarray(model.default_params)
    energies, omega = (backend.to_numpy(x) for x in hall.berry_curvature(model, p, k))
    monkeypatch.setattr(hall, "TWO_BAND_CLOSED_FORM", False)
    energies_ref, omega_ref = (backend.to_numpy(x) for x in hall.berry_curvature(model, p, k))
    assert np.allclose(energies, energies_ref, rtol=0, atol=1e-13 * np.abs(energies_ref).max())
    assert np.allclose(omega, omega_ref, rtol=1e-10, atol=1e-12 * np.abs(omega_ref).max())


@pytest.mark.parametrize("case", range(3))
def test_two_band_sigma_gradient_matches_eigenvector_route(ad_backend, monkeypatch, case):
    model, nk = _two_orbital_models()[case]
    k = hd.kmesh(nk, model.dim)
    p = ad_backend.asarray(model.default_params)
    f = ad_backend.value_and_grad(lambda q: hd.sigma_xy(model, q, k, beta=20.0, filling=0.5))
    value, grad = (ad_backend.to_numpy(x) for x in f(p))
    monkeypatch.setattr(hall, "TWO_BAND_CLOSED_FORM", False)
    value_ref, grad_ref = (ad_backend.to_numpy(x) for x in f(p))
    assert value == pytest.approx(float(value_ref), rel=1e-11, abs=1e-13)
    assert np.allclose(grad, grad_ref, rtol=1e-9, atol=1e-11 * np.abs(grad_ref).max())


def test_two_band_curvature_is_finite_at_a_band_touching(ad_backend, monkeypatch):
    # M = 0, φ = 0: graphene, Dirac points at K and K', which a 12×12 mesh contains
    model, k = haldane(M=0.0, phi=0.0), hd.kmesh(12, 2)
    p = ad_backend.asarray(model.default_params)
    energies, omega = (ad_backend.to_numpy(x) for x in hall.berry_curvature(model, p, k))
    assert np.min(energies[:, 1] - energies[:, 0]) == pytest.approx(0.0, abs=1e-12)
    value, grad = ad_backend.value_and_grad(lambda q: hd.sigma_xy(model, q, k, beta=20.0, mu=0.0))(p)
    assert np.isfinite(float(ad_backend.to_numpy(value))) and np.all(np.isfinite(ad_backend.to_numpy(grad)))
    monkeypatch.setattr(hall, "TWO_BAND_CLOSED_FORM", False)
    assert np.allclose(omega, ad_backend.to_numpy(hall.berry_curvature(model, p, k)[1]), atol=1e-10)


@pytest.mark.parametrize(
    ("model_case", "filling", "beta"),
    [
        ("haldane", 0.5, 5.0),
        ("haldane", 0.5, 1e4),
        ("metal", 0.5, 30.0),
        ("metal", 0.5, 1e4),
        ("metal", 0.3, 30.0),
        ("metal", 1 / 3, 200.0),
    ],
)
def test_chemical_potential_matches_root_finding(numpy_backend, model_case, filling, beta):
    optimize = require_module("scipy.optimize")
    from hamdesign.spectrum import bands, chemical_potential, fermi

    model = haldane(M=0.1, phi=1.0) if model_case == "haldane" else random_model(3, seed=5, onsite_scale=0.2)
    energies = np.asarray(bands(model, model.default_params, hd.kmesh(20, 2)))
    mu = float(chemical_potential(energies, filling=filling, beta=beta))
    target = filling * model.nband

    def excess(m):
        return float(np.sum(fermi(energies - m, beta))) / len(energies) - target

    assert abs(excess(mu)) <= 1e-13 * model.nband
    if model_case == "metal":  # a unique root: μ itself must agree
        root = optimize.brentq(excess, energies.min() - 1, energies.max() + 1, xtol=1e-15, rtol=1e-15)
        assert mu == pytest.approx(root, abs=1e-10)


def test_k_factor_cache_follows_the_mesh_and_stays_bounded(numpy_backend, monkeypatch):
    from hamdesign import model as model_module

    model = haldane(M=0.1, phi=1.0)
    k = hd.kmesh(10, 2)
    first = float(hd.sigma_xy(model, None, k, beta=20.0, mu=0.0))
    k += 0.5 / 10  # the same array object, now a shifted mesh: must not be served from the cache
    shifted = float(hd.sigma_xy(model, None, k, beta=20.0, mu=0.0))
    model_module._k_factor_cache.clear()
    assert shifted == float(hd.sigma_xy(model, None, k, beta=20.0, mu=0.0))
    assert shifted != first
    monkeypatch.setattr(model_module, "K_FACTOR_CACHE_BYTES", 30_000)  # a 7×7 mesh takes 7056 bytes
    model_module._k_factor_cache.clear()
    for shift in range(10):
        hd.sigma_xy(model, None, hd.kmesh(7, 2) + 0.01 * shift, beta=20.0, mu=0.0)
    hd.sigma_xy(model, None, hd.kmesh(12, 2), beta=20.0, mu=0.0)  # above a quarter of the budget: not kept
    entries = model_module._k_factor_cache[model]
    assert [key[0] for key in entries] == [(49, 2)] * 4
    assert sum(entry[1] for entry in entries.values()) <= 30_000


def test_same_results_across_backends_with_all_fast_paths():
    model, k = haldane(M=0.1, phi=1.0), hd.kmesh(30, 2)
    results = {}
    for name in ("jax", "torch", "autograd"):
        with on_backend(name) as be:
            value, grad = be.value_and_grad(lambda q: hd.sigma_xy(model, q, k, beta=5.0, filling=0.5))(
                be.asarray(model.default_params)
            )
            results[name] = (float(be.to_numpy(value)), be.to_numpy(grad))
    for name in ("torch", "autograd"):
        assert results[name][0] == pytest.approx(results["jax"][0], rel=1e-12)
        assert np.allclose(results[name][1], results["jax"][1], rtol=1e-10)


@pytest.mark.parametrize("smearing", ["gaussian", "lorentzian"])
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_transitions_sum_matches_the_dense_sum(backend, smearing, chunk):
    from hamdesign.observables.shift import smearing_function, transitions_sum

    rng = np.random.default_rng(7)
    nk, n, omega = 23, 3, np.linspace(-1.0, 3.0, 17)
    energies = np.sort(rng.normal(size=(nk, n)), axis=1)
    weights = rng.normal(size=(2, nk, n, n)) * (1 - np.eye(n))  # f_nm = 0 on the diagonal, as for every caller
    got = backend.to_numpy(
        transitions_sum(backend.asarray(weights), backend.asarray(energies), omega, eta=0.3, smearing=smearing, chunk=chunk)
    )
    with on_backend("numpy"):
        gaps = energies[:, None, :] - energies[:, :, None]  # ε_m − ε_n at [k, n, m]
        delta = np.asarray(smearing_function(gaps[..., None] - omega, eta=0.3, kind=smearing))
    dense = np.sum(weights[..., None] * delta[None], axis=(1, 2, 3))
    assert np.allclose(got, dense, rtol=1e-13, atol=1e-13 * np.abs(dense).max())


def test_unsymmetrised_bloch_terms_are_hermitian_to_round_off(numpy_backend):
    from hamdesign.model import bloch_terms

    model, k = random_model(3, dim=2, seed=11), hd.kmesh(9, 2)
    exact = bloch_terms(model, None, k, order=2, components=(0, 1))
    raw = bloch_terms(model, None, k, order=2, components=(0, 1), symmetrise=False)
    for x, y in [(exact[0], raw[0]), *((exact[1][a], raw[1][a]) for a in (0, 1)), *((exact[2][p], raw[2][p]) for p in exact[2])]:
        x, y = np.asarray(x), np.asarray(y)
        assert np.allclose(x, np.conj(np.swapaxes(x, -1, -2)), rtol=0, atol=0)  # (X + X†)/2 is exactly Hermitian
        assert np.max(np.abs(y - x)) <= 1e-14 * np.max(np.abs(x))


def test_bloch_terms_without_orbital_phases_are_the_same_operators(backend):
    """orbital_phase=False gives P X P† with P = diag(e^{ik·τ}): same eigenvalues, same band-basis matrices."""
    from hamdesign.model import bloch_terms

    be = backend
    model, k = random_model(3, dim=3, seed=4), hd.kmesh(4, 3) + 0.13
    tb = bloch_terms(model, None, k, order=2)
    cell = bloch_terms(model, None, k, order=2, symmetrise=False, orbital_phase=False)
    p = np.exp(1j * (model.lattice.cartesian_k(k) @ model.positions.T))[:, :, None]  # P as a column of phases
    pairs = [(tb[0], cell[0]), *((tb[1][a], cell[1][a]) for a in range(3)), *((tb[2][q], cell[2][q]) for q in tb[2])]
    for x, y in pairs:
        x, y = be.to_numpy(x), be.to_numpy(y)
        assert np.allclose(p * x * np.conj(np.swapaxes(p, -1, -2)), y, rtol=0, atol=1e-13 * np.abs(x).max())


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_bloch_terms_carry_two_derivatives_each(backend, order, seed):
    """X = ∂_a H + i ∂_b H (one Bloch sum) unpacks to ∂_a H and ∂_b H: odd ones out, first and second orders kept apart."""
    from hamdesign.model import bloch_terms, paired_bloch_terms, unpack_pair

    be = backend
    components = [(0, 1, 2), (2, 0), (1,)][seed]
    model, k = random_model(3, dim=3, seed=seed), hd.kmesh(3, 3) + 0.17
    h, v, w = bloch_terms(model, None, k, order=order, components=components, symmetrise=False, orbital_phase=False)
    h2, pairs = paired_bloch_terms(model, None, k, order=order, components=components)
    assert np.array_equal(be.to_numpy(h), be.to_numpy(h2))
    single = {**v, **{key: x for key, x in w.items() if key[0] <= key[1]}}
    seen = {}
    for pair in pairs:
        assert pair.second is None or type(pair.first) is type(pair.second)  # ∂H with ∂H, ∂∂H with ∂∂H
        if pair.second is None:
            seen[pair.first] = be.to_numpy(pair.matrix)
        else:
            seen[pair.first], seen[pair.second] = (be.to_numpy(x) for x in unpack_pair(pair.matrix, be.xp))
    assert sorted(seen, key=str) == sorted(single, key=str)
    assert len(pairs) == (len(v) + 1) // 2 + (len(single) - len(v) + 1) // 2
    for key, x in single.items():
        x = be.to_numpy(x)
        assert np.allclose(seen[key], x, rtol=0, atol=1e-13 * np.abs(x).max())


@pytest.mark.parametrize("components", [(0, 1, 2), (2, 0), (1,)], ids=["xyz", "zx", "y"])
def test_eigensystem_states_are_tight_binding_eigenvectors(backend, components):
    """The eigensystem solves the phase-free matrices but returns eigenvectors of H(k) in the tight-binding convention,
    and its band-basis matrices (two derivatives to a product, unpacked) are U†∂H U and U†∂∂H U."""
    from hamdesign.model import hamiltonian_derivatives
    from hamdesign.spectrum import eigensystem

    be = backend
    model, k = random_model(4, dim=3, seed=6), hd.kmesh(3, 3) + 0.21
    h, v, w = (be.to_numpy(x) for x in hamiltonian_derivatives(model, None, k, order=2))
    energies, states, vb, wb = eigensystem(model, None, k, order=2, components=components)
    energies, states = be.to_numpy(energies), be.to_numpy(states)
    assert np.allclose(h @ states, states * energies[:, None, :], atol=1e-12)
    ud = np.conj(np.swapaxes(states, -1, -2))
    assert sorted(vb) == sorted(components) and sorted(wb) == sorted((a, b) for a in components for b in components)
    band = {**vb, **wb}
    for key, x in band.items():
        x = be.to_numpy(x)
        reference = ud @ (v[key] if isinstance(key, int) else w[key]) @ states
        assert np.allclose(reference, x, atol=1e-12)
        assert np.allclose(x, np.conj(np.swapaxes(x, -1, -2)), rtol=0, atol=1e-14 * np.abs(x).max())
    assert eigensystem(model, None, k, order=1, vectors=False)[1] is None


def test_numpy_prefers_cache_sized_chunks_within_the_budget(monkeypatch):
    """The adapter's chunk_bytes sets the chunk; DEFAULT_CHUNK_BYTES (the memory plan) still caps it."""
    from hamdesign import spectrum

    with on_backend("jax") as be:
        assert spectrum.chunk_budget() == min(be.chunk_bytes, spectrum.DEFAULT_CHUNK_BYTES)
    with on_backend("numpy") as be:
        assert spectrum.chunk_budget() == be.chunk_bytes < spectrum.DEFAULT_CHUNK_BYTES
        assert spectrum.chunk_size(18) == be.chunk_bytes // (spectrum.MATRICES_PER_K[1] * 18 * 18 * 16)
        monkeypatch.setattr(spectrum, "DEFAULT_CHUNK_BYTES", be.chunk_bytes // 4)
        assert spectrum.chunk_budget() == be.chunk_bytes // 4


def test_mesh_rows_are_recognised_only_where_the_bloch_sum_factorises():
    from hamdesign.lattice import mesh_row_length, mesh_rows

    k = hd.kmesh((3, 4, 5), 3)
    assert mesh_row_length(k) == 5 and mesh_rows(k) == (12, 5)
    assert mesh_rows(k[10:40]) == (6, 5)  # whole rows of the mesh
    assert mesh_rows(k[3:28]) is None  # starts inside a row
    assert mesh_rows(k[:7]) is None
    assert mesh_rows(hd.kmesh(8, 2)) == (8, 8)
    assert mesh_rows(hd.kmesh(8, 1)) is None
    rng = np.random.default_rng(0)
    assert mesh_rows(rng.permutation(k)) is None
    assert mesh_rows(np.concatenate([k[:5], k[5:10] + [0, 0, 0.01]])) is None  # last coordinates differ between rows


@pytest.mark.parametrize("dim, nshell", [(2, 2), (3, 1), (3, 2)])
def test_row_factorised_bloch_sum_equals_the_direct_one(backend, monkeypatch, dim, nshell):
    """Chunks of whole mesh rows take RowFactors; H, ∂H, ∂²H equal the direct e_R product to round-off."""
    from hamdesign import model as model_module

    be = backend
    model = random_model(3, dim=dim, seed=3, nshell=nshell)
    k = hd.kmesh(6, dim)[6 * 6 ** (dim - 2) :] + 0.05  # whole rows, shifted off Γ
    model_module._k_factor_cache.clear()
    assert isinstance(model_module._k_factors(model, k, be)[0], model_module.RowFactors)
    fast = model_module.bloch_terms(model, None, k, order=2)
    monkeypatch.setattr(model_module, "mesh_rows", lambda kfrac: None)
    model_module._k_factor_cache.clear()
    direct = model_module.bloch_terms(model, None, k, order=2)
    pairs = [(fast[0], direct[0]), *((fast[1][a], direct[1][a]) for a in fast[1]), *((fast[2][q], direct[2][q]) for q in fast[2])]
    for x, y in pairs:
        x, y = be.to_numpy(x), be.to_numpy(y)
        assert np.max(np.abs(x - y)) <= 1e-13 * np.max(np.abs(y))
    model_module._k_factor_cache.clear()


def test_chunks_hold_whole_mesh_rows():
    from hamdesign.spectrum import k_chunks

    k = hd.kmesh((4, 5, 7), 3)
    assert [len(c) for c in k_chunks(k, 30)] == [28] * 5
    assert [len(c) for c in k_chunks(k, 5)] == [5] * 28  # a row longer than the chunk: plain chunks
    assert np.array_equal(np.concatenate(list(k_chunks(k, 30))), k)


def test_row_factorised_gradients_match_the_direct_path(ad_backend, monkeypatch):
    from hamdesign import model as model_module

    be = ad_backend
    model, k = random_model(3, dim=3, seed=8, nshell=2), hd.kmesh(5, 3)
    x = be.asarray(model.default_params)

    def value_and_grad():
        model_module._k_factor_cache.clear()
        value, grad = be.value_and_grad(lambda p: hd.anomalous_hall_conductivity(model, p, k, beta=4.0, mu=0.1)[2])(x)
        return float(be.to_numpy(value)), be.to_numpy(grad)

    fast = value_and_grad()
    monkeypatch.setattr(model_module, "mesh_rows", lambda kfrac: None)
    direct = value_and_grad()
    assert fast[0] == pytest.approx(direct[0], rel=1e-11)
    assert np.allclose(fast[1], direct[1], rtol=1e-9, atol=1e-11 * np.abs(direct[1]).max())


def test_row_factorised_bloch_sum_is_array_api_code():
    from hamdesign import model as model_module
    from hamdesign.backend import use_backend

    model, k = random_model(3, dim=3, seed=3, nshell=2), hd.kmesh(6, 3)
    with use_backend("numpy"):
        model_module._k_factor_cache.clear()
        expected = hd.anomalous_hall_conductivity(model, None, k, beta=4.0, mu=0.1)
    with use_backend(strict_adapter()) as be:
        model_module._k_factor_cache.clear()
        assert isinstance(model_module._k_factors(model, k, be)[0], model_module.RowFactors)
        got = np.asarray(hd.anomalous_hall_conductivity(model, None, k, beta=4.0, mu=0.1))
    model_module._k_factor_cache.clear()
    assert np.allclose(got, expected, rtol=1e-12)


def test_freed_chunk_memory_is_reused_instead_of_faulted_back_in():
    """A Fermi-level scan of bcc Fe, 16³ in 8 chunks: with the allocator setting a chunk reuses the last chunk's pages.

    MALLOC_ARENA_MAX (a MALLOC_* variable that leaves the thresholds alone) switches the setting
    off, as any user's MALLOC_* choice does, so the two runs differ only in it.
    """
    import os
    import subprocess
    import sys

    from hamdesign import memory

    if not sys.platform.startswith("linux") or not memory._glibc():
        pytest.fail("the allocator setting is for Linux with glibc; this test machine should be one")
    code = (
        "import resource, numpy as np\n"
        "import hamdesign.memory as m\n"
        "from hamdesign.backend import use_backend\n"
        "from hamdesign.io import load_model\n"
        "from hamdesign.observables.hall import hall_report\n"
        f"model = load_model({str(DATA / 'wannier' / 'Fe_tb.dat.gz')!r}, ws_distance=False)\n"
        "with use_backend('numpy'):\n"
        "    hall_report(model, None, 8, beta=1e3, mu=np.linspace(16, 20, 50))\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    hall_report(model, None, 16, beta=1e3, mu=np.linspace(16, 20, 50))\n"
        "print(m.freed_chunks_kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )

    def faults(**env):
        # an earlier Dask cluster may have left MALLOC_TRIM_THRESHOLD_ in this process's environment
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        environment = {**inherited, "HAMDESIGN_THREADS": "1", **env}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)
        kept, count = run.stdout.split()
        return kept, int(count)

    tuned, untuned = faults(), faults(MALLOC_ARENA_MAX="8")
    assert tuned[0] == "True" and untuned[0] == "False"
    assert tuned[1] * 5 < untuned[1], (tuned, untuned)


def test_a_users_malloc_settings_are_left_alone():
    import os
    import subprocess
    import sys

    code = (
        "import hamdesign.memory as m; from hamdesign.backend import get_backend; "
        "get_backend('numpy'); print(m.freed_chunks_kept)"
    )
    env = {**os.environ, "MALLOC_TOP_PAD_": "1048576"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
