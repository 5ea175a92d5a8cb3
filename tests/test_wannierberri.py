"""Cross-check of the shift and injection currents against WannierBerri (an independent code).

Needs WannierBerri (``pip install wannierberri numba``, in the ``test`` extra): skipped where it is not
installed, a collection error under HAMDESIGN_REQUIRE_ALL_BACKENDS=1 (CI).

Each model is written with :func:`hamdesign.io.wannier90.write_tb_dat`, read back by WannierBerri
(``System_R.from_tb_dat``) and both codes integrate over the *same* Γ-centred mesh (WannierBerri:
NKdiv = 1, NKFFT = mesh; hamdesign: :func:`hamdesign.kmesh`) with the same Fermi–Dirac occupation,
broadening and cell volume (WannierBerri divides by the volume of the three lattice vectors in the
file; hamdesign by the in-plane cell times ``transverse``, the same third vector). The two
evaluations are then the same quadrature of the same integrand written two ways (hamdesign's sum rule
for r^b_{nm;a} against WannierBerri's ``ShiftCurrentFormula``), so they must agree to rounding, not
merely to the discretisation error of the mesh (which is large here: σ^{yyy} of hBN at 2.5 eV changes
by a factor 2 between 24² and 48² meshes). Both broaden the virtual transitions with the same
sc_eta = 1e-9; the remaining difference is WannierBerri's cut of f at |ε − μ| > 30 k_BT (e^-30 ≈ 1e-13). Measured
agreement (WannierBerri 26.10): max|difference| ≤ 2e-14 of the largest value compared, ≤ 2e-12 entry by entry
for every entry above 1e-3 of it; RTOL = 1e-10 leaves room for BLAS/eigensolver rounding only.

Conventions checked: WannierBerri's ``ShiftCurrent`` is σ^{abc} in A/V² with the current index first
(``data[iEF, iω, a, b, c]``); ``InjectionCurrent`` reports τη in A/V² for τ = 1 fs, i.e. hamdesign's
η (A V⁻² s⁻¹) × 1e-15. WannierBerri's injection integrand is Δ^a_mn r^b_mn r^c_nm (Lihm & Park,
PRB 105, 045201 (2022), Eq. (10)), hamdesign's Δ^a_mn r^b_nm r^c_mn: the complex conjugate, so the
real (linear-light) parts agree and the imaginary (circular) parts have opposite signs.
"""

from __future__ import annotations

import pytest

import numpy as np
from conftest import random_model, require_module

wannierberri = require_module("wannierberri")

from hamdesign import kmesh  # noqa: E402
from hamdesign.backend import use_backend  # noqa: E402
from hamdesign.io.wannier90 import write_tb_dat  # noqa: E402
from hamdesign.models import hbn, kondo_chain  # noqa: E402
from hamdesign.observables.injection import injection_rate  # noqa: E402
from hamdesign.observables.shift import shift_conductivity  # noqa: E402

RTOL = 1e-10
WB_TAU_S = 1e-15  # WannierBerri's InjectionCurrent is per femtosecond of relaxation time
SC_ETA = 1e-9  # WannierBerri's principal-value broadening of 1/(ε_n − ε_m) in the shift current

SMEARINGS = [("lorentzian", "Lorentzian"), ("gaussian", "Gaussian")]


def wannierberri_tensors(model, tmp_path, monkeypatch, nk, omega, *, mu, kbt, eta, smr_type):
    """(shift σ^{abc}, injection τη^{abc}) from WannierBerri, arrays (nω, 3, 3, 3), same mesh as kmesh(nk, dim)."""
    from wannierberri import calculators

    monkeypatch.chdir(tmp_path)  # anything WannierBerri still writes lands in tmp_path
    tb = write_tb_dat(model, tmp_path / f"{model.name}_tb.dat")
    periodic = tuple(i < model.dim for i in range(3))
    system = wannierberri.system.System_R.from_tb_dat(tb_file=str(tb), periodic=periodic, silent=True)
    grid = wannierberri.Grid(system, NKdiv=1, NKFFT=tuple(nk if p else 1 for p in periodic), use_symmetry=False)
    common = {
        "Efermi": np.array([mu]),
        "omega": np.asarray(omega, dtype=float),
        "kBT": kbt,
        "smr_fixed_width": eta,
        "smr_type": smr_type,
        "save_mode": "none",  # its text writer leaves files open (ResourceWarning, an error under our filterwarnings)
        # a tight-binding model with diagonal position matrix: the external (AA) terms vanish
        "kwargs_formula": {"external_terms": False},
    }
    calcs = {
        "shift": calculators.dynamic.ShiftCurrent(sc_eta=SC_ETA, **common),
        "injection": calculators.dynamic.InjectionCurrent(**common),
    }
    result = wannierberri.run(
        system, grid, calcs, parallel=False, use_irred_kpt=False, symmetrize=False, print_progress_step_time=1e9
    )
    assert np.all(grid.dense == [nk if p else 1 for p in periodic])
    return result.results["shift"].data[0], result.results["injection"].data[0]


def hamdesign_values(model, nk, omega, comps, *, mu, kbt, eta, smearing, transverse):
    settings = {
        "components": comps,
        "beta": 1 / kbt,
        "mu": mu,
        "eta": eta,
        "smearing": smearing,
        "transverse": transverse,
        "sc_eta": SC_ETA,
    }
    with use_backend("numpy") as be:
        k = kmesh(nk, model.dim)
        sigma = be.to_numpy(shift_conductivity(model, None, k, omega, **settings).sigma)
        rate = be.to_numpy(injection_rate(model, None, k, omega, **settings).rate)
        rate_imag = be.to_numpy(injection_rate(model, None, k, omega, part="imag", **settings).rate)
    return np.asarray(sigma), np.asarray(rate), np.asarray(rate_imag)


def assert_close(ours, theirs, what):
    """Agreement relative to the largest value of the compared set (entries near zero included)."""
    scale = np.max(np.abs(theirs))
    assert scale > 0, f"{what}: WannierBerri gives zero; the comparison would be empty"
    err = np.max(np.abs(ours - theirs)) / scale
    assert err < RTOL, f"{what}: max |hamdesign − WannierBerri| / max|WannierBerri| = {err:.2e}\n{ours}\n{theirs}"


@pytest.mark.parametrize(("smearing", "smr_type"), SMEARINGS)
def test_hbn_shift_current(tmp_path, monkeypatch, smearing, smr_type):
    """hBN (D3h): σ^{abc}(ω), a, b, c in-plane (σ^{yyy} = −σ^{yxx} = −σ^{xxy}), below, at and across the gap (2 eV)."""
    thickness = 3.33
    model = hbn(thickness=thickness)
    omega = np.array([1.5, 2.0, 2.5, 4.0, 6.0])
    settings = {"mu": 0.0, "kbt": 0.01, "eta": 0.1}
    sc_wb, _ = wannierberri_tensors(model, tmp_path, monkeypatch, 24, omega, smr_type=smr_type, **settings)
    comps = [(a, b, c) for a in range(2) for b in range(2) for c in range(2)]
    sigma, _, _ = hamdesign_values(model, 24, omega, comps, smearing=smearing, transverse=thickness, **settings)
    theirs = np.stack([sc_wb[:, a, b, c] for a, b, c in comps])
    assert_close(sigma, theirs, f"hBN shift current ({smearing})")
    yyy = comps.index((1, 1, 1))
    assert np.max(np.abs(sigma[yyy])) > 0.5 * np.max(np.abs(sigma))  # σ^{yyy} is among the largest compared, not a zero


@pytest.mark.parametrize(("smearing", "smr_type"), SMEARINGS)
def test_kondo_chain_injection_and_shift(tmp_path, monkeypatch, smearing, smr_type):
    """1D kondo_chain(3) with random spins (time reversal broken, metallic at μ): η^{xxx} and σ^{xxx}."""
    area = 2.0  # cross-section: WannierBerri's cell volume is (3 × spacing) × area
    model = kondo_chain(3, spins=np.random.default_rng(7).normal(size=(3, 3)), cross_section=area)
    omega = np.linspace(0.1, 1.0, 5)
    settings = {"mu": 0.05, "kbt": 0.02, "eta": 0.05}
    sc_wb, inj_wb = wannierberri_tensors(model, tmp_path, monkeypatch, 60, omega, smr_type=smr_type, **settings)
    sigma, rate, _ = hamdesign_values(model, 60, omega, "xxx", smearing=smearing, transverse=area, **settings)
    assert_close(rate[0], inj_wb[:, 0, 0, 0].real / WB_TAU_S, f"kondo chain injection η^xxx ({smearing})")
    assert np.max(np.abs(inj_wb[:, 0, 0, 0].imag)) < 1e-12 * np.max(np.abs(inj_wb[:, 0, 0, 0]))  # b = c: η real
    assert_close(sigma[0], sc_wb[:, 0, 0, 0], f"kondo chain shift current σ^xxx ({smearing})")


def test_random_2d_injection_all_components(tmp_path, monkeypatch):
    """A 3-band 2D model with complex hoppings (no symmetry): every in-plane η^{abc} and σ^{abc}.

    Re η agrees component by component (b ≠ c included); Im η^{abc} (b ≠ c, circular light) is minus
    WannierBerri's imaginary part, because WannierBerri's integrand r^b_mn r^c_nm is the complex
    conjugate of hamdesign's r^b_nm r^c_mn (module docstring).
    """
    model = random_model(3, dim=2, seed=21, onsite_spread=1.5)
    omega = np.linspace(1.0, 4.0, 4)
    settings = {"mu": 0.0, "kbt": 0.2, "eta": 0.2}
    sc_wb, inj_wb = wannierberri_tensors(model, tmp_path, monkeypatch, 16, omega, smr_type="Gaussian", **settings)
    comps = [(a, b, c) for a in range(2) for b in range(2) for c in range(2)]
    sigma, rate, rate_imag = hamdesign_values(model, 16, omega, comps, smearing="gaussian", transverse=None, **settings)
    theirs = np.stack([inj_wb[:, a, b, c] for a, b, c in comps]) / WB_TAU_S
    assert_close(rate, theirs.real, "random 2D model: Re η^{abc}")
    off = [i for i, (_, b, c) in enumerate(comps) if b != c]
    assert_close(rate_imag[off], -theirs.imag[off], "random 2D model: Im η^{abc}, b ≠ c (opposite convention)")
    assert_close(sigma, np.stack([sc_wb[:, a, b, c] for a, b, c in comps]), "random 2D model: σ^{abc}")
