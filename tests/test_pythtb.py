"""Exported wannier90 files open in PythTB (an independent reader) and give hamdesign's bands.

Needs PythTB (``pip install pythtb``; 1.8 on Python 3.11, in the ``test`` extra): skipped where it is not
installed, a collection error under HAMDESIGN_REQUIRE_ALL_BACKENDS=1 (CI).

Each model is written with :func:`hamdesign.io.wannier90.write_hr_dat` (``<prefix>_hr.dat``,
``<prefix>.win``, ``<prefix>_centres.xyz``, the three files ``pythtb.w90`` reads), loaded with
``pythtb.w90(folder, prefix).model()`` and diagonalised by PythTB at random k (reduced
coordinates of the file's three lattice vectors). hamdesign's own bands come from
:func:`hamdesign.bands` on the numpy backend. Band energies do not depend on the Bloch-phase
convention (PythTB puts the orbital positions in the phase; they are a diagonal unitary gauge) nor
on which of the pair H(R), H(-R) = H(R)† a reader keeps (PythTB keeps the one with the first
nonzero component of R positive), so the two must agree to rounding. Also checked once through the
command line: ``hamdesign export RESULT --format hr`` on a tiny design result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import numpy as np
from conftest import random_model, require_module

pythtb = require_module("pythtb")

from typer.testing import CliRunner  # noqa: E402

import hamdesign  # noqa: E402
from hamdesign.backend import use_backend  # noqa: E402
from hamdesign.io import load_model  # noqa: E402
from hamdesign.io.wannier90 import write_hr_dat  # noqa: E402
from hamdesign.models import haldane, hbn, triangular  # noqa: E402

NK = 20
# write_hr_dat prints every Re/Im of H(R) as %23.15e: 16 significant digits, a relative rounding of
# at most 5e-16 per entry, and the centres to the same relative precision (they only change the
# gauge). Weyl's inequality bounds each band's shift by ||δH(k)||₂ ≤ Σ_R ||δH(R)||_F, a few 1e-15 of
# the band width for these models, the same size as the eigensolvers' own rounding (measured
# max|Δε| ≤ 5e-15 with PythTB 1.8, bands up to 8 in size). RTOL leaves 1e4 of headroom for other
# BLAS/LAPACK builds while still catching real errors (one hopping of the file changed by 1e-8 of
# its value fails every case).
RTOL = 1e-10


def pythtb_bands(folder, prefix: str, kfrac: np.ndarray) -> np.ndarray:
    """Bands (nk, nband) of the exported files, read and diagonalised by PythTB."""
    tb = pythtb.w90(str(folder), prefix).model()
    k3 = np.zeros((len(kfrac), 3))
    k3[:, : kfrac.shape[1]] = kfrac  # the files are 3D; a 2D/1D model has no R3 (R2) hoppings
    return np.asarray(tb.solve_all(k3)).T  # PythTB: (nband, nk), ascending per k


def hamdesign_bands(model, params, kfrac: np.ndarray) -> np.ndarray:
    with use_backend("numpy"):
        return np.asarray(hamdesign.bands(model, params, kfrac))


def assert_same_bands(model, params, folder, prefix, seed=0):
    kfrac = np.random.default_rng(seed).uniform(-1.0, 1.0, (NK, model.dim))
    ours = hamdesign_bands(model, params, kfrac)
    theirs = pythtb_bands(folder, prefix, kfrac)
    assert theirs.shape == ours.shape == (NK, model.norb)
    scale = max(1.0, float(np.abs(ours).max()))
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=RTOL * scale)
    # not a constant or degenerate spectrum that would agree trivially
    assert np.ptp(ours) > 0.1 * scale


def _triangular_random_phases():
    model = triangular(t1=1.0, t2=0.4, t3=0.3)
    rng = np.random.default_rng(7)
    return model, model.params_from({f"p{b}": rng.uniform(-np.pi, np.pi) for b in range(36)})


CASES = {
    "haldane": lambda: (haldane(t1=1.0, t2=0.15, phi=0.7, M=0.3), None),
    "hbn": lambda: (hbn(), None),
    "triangular": _triangular_random_phases,
    "random3d": lambda: (random_model(3, dim=3, seed=4, nshell=1), None),
    "random2d": lambda: (random_model(4, dim=2, seed=5, nshell=2), None),
    "random1d": lambda: (random_model(3, dim=1, seed=6, nshell=2), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hr_export_gives_same_bands_in_pythtb(case, tmp_path):
    model, params = CASES[case]()
    params = model.default_params if params is None else params
    paths = write_hr_dat(model, tmp_path / "seed", params)
    assert [p.name for p in paths] == ["seed_hr.dat", "seed.win", "seed_centres.xyz"]
    assert_same_bands(model, params, tmp_path, "seed", seed=len(case))


def test_cli_export_of_a_design_result_opens_in_pythtb(tmp_path):
    """``hamdesign export RESULT --format hr`` on a (2-step) design result: PythTB gives its bands."""
    require_module("autograd")  # the design needs an autodiff backend
    import tomli_w

    from hamdesign.cli import app
    from hamdesign.design import PRESETS

    cfg = {**PRESETS["triangular"], "steps": 2, "kmesh": [6, 6], "evaluation": {"beta": 20.0, "nk": 6}}
    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps(cfg))
    folder = tmp_path / "res"
    runner = CliRunner()
    designed = runner.invoke(app, ["--backend", "autograd", "-q", "design", str(config), "--out", str(folder)])
    assert designed.exit_code == 0, designed.output
    out = runner.invoke(app, ["export", str(folder), "--format", "hr", "--out", str(tmp_path / "exp" / "tri")])
    assert out.exit_code == 0, out.output
    assert sorted(Path(p).name for p in out.stdout.split()) == ["tri.win", "tri_centres.xyz", "tri_hr.dat"]
    model = load_model(str(folder / "model.toml"))
    assert not np.allclose(np.asarray(model.default_params)[3:], 0.0)  # designed phases, not the plain lattice
    assert_same_bands(model, model.default_params, tmp_path / "exp", "tri")
