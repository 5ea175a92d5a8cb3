"""Design on a real material from the command line: config → run → result folder → export → WannierBerri.

The designed bcc Fe model is exported with ``hamdesign export`` and WannierBerri's AHC of the
exported file must equal what the design's result.json reports (the strained crystal, the full
position matrix, the shifted μ and the σ(μ) scan included).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hamdesign as hd
import numpy as np
from conftest import wannierberri_ahc_of_file
from hamdesign.backend import use_backend
from hamdesign.cli import app
from hamdesign.design import DesignRun, load_config
from hamdesign.errors import ConfigError
from hamdesign.io import load_model
from hamdesign.observables.hall import anomalous_hall_conductivity

ROOT = Path(__file__).resolve().parents[1]
FE = ROOT / "tests" / "data" / "wannier" / "Fe_tb.dat.gz"
EXAMPLE = ROOT / "examples" / "real-material" / "fe_maximize_ahc.toml"
TINY = f"""
model = {{ name = "{FE.as_posix()}" }}
steps = 3
kmesh = [3, 3, 3]
init_scale = 0.0
[perturbations.shift.t2g]
orbitals = ["Fe:dxy", "Fe:dxz", "Fe:dyz"]
[perturbations.shift.up]
orbitals = ["Fe:*:up"]
low = -0.1
high = 0.1
[perturbations.exchange]
[perturbations.strain]
components = ["xx", "xy"]
[perturbations.mu_shift]
[objective]
observable = "ahc"
component = "zx"
mu = 18.0
position_matrix = "full"
penalty_weight = 0.5
scan_window = 0.5
scan_points = 3
[optimizer]
name = "adam"
learning_rate = 0.2
[temperature]
schedule = "constant_beta"
start = 3.0
[evaluation]
beta = 1e9
nk = 4
"""


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def designed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fe_design")
    config = folder / "tiny.toml"
    config.write_text(TINY)
    code, output = _invoke("--backend", "jax", "design", str(config), "--out", str(folder / "result"))
    assert code == 0, output
    return folder / "result", json.loads((folder / "result" / "result.json").read_text())


def test_result_records_the_start_the_design_and_the_perturbations(designed):
    _, result = designed
    ev = result["evaluation"]
    assert ev["component"] == "sigma_zx" and ev["units"]["sigma"] == "S/cm"
    assert ev["initial"]["perturbation_norm"] == 0.0 and ev["initial"]["mu"] == 18.0
    assert ev["final"]["perturbation_norm"] > 0.0
    assert ev["final"]["mu"] == pytest.approx(18.0 + result["parameters"]["mu_shift"], abs=1e-12)
    assert set(result["parameters"]) == {"shift:t2g", "shift:up", "exchange", "strain:xx", "strain:xy", "mu_shift"}
    assert all(-0.2 < result["parameters"][k] < 0.2 for k in ("shift:t2g", "mu_shift"))
    # the starting point is the DFT model: hamdesign's plain AHC of the file at the same mesh and β
    with use_backend("numpy"):
        plain = np.asarray(
            anomalous_hall_conductivity(load_model(str(FE)), None, hd.kmesh(4, 3), beta=1e9, mu=18.0, position_matrix="full")
        )
    np.testing.assert_allclose(list(ev["initial"]["sigma_S_per_cm"].values()), plain, rtol=1e-12)


def test_the_design_raises_the_objective_in_training(designed):
    folder, _ = designed
    with np.load(folder / "history.npz") as history:
        assert history["sigma"][-1] > history["sigma"][0]
        assert history["perturbation_norm"][0] < 1e-12 < history["perturbation_norm"][-1]


def test_exported_designed_model_gives_wannierberris_ahc(designed, tmp_path, monkeypatch):
    folder, result = designed
    exported = tmp_path / "designed_tb.dat"
    code, output = _invoke("export", str(folder), "--format", "tb", "--out", str(exported))
    assert code == 0, output
    ev = result["evaluation"]
    monkeypatch.chdir(tmp_path)
    # two runs: WannierBerri bins the levels on its Efermi grid, which must be evenly spaced
    reference = np.concatenate(
        [wannierberri_ahc_of_file(exported, nk=4, mus=m, external=True) for m in ([ev["final"]["mu"]], ev["scan"]["mu"])]
    )
    ours = np.array([list(ev["final"]["sigma_S_per_cm"].values())])
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(ours, reference[:1], rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(ev["scan"]["final"], reference[1:, 1], rtol=0, atol=1e-8 * scale)  # σ_zx


def test_example_config_loads_from_anywhere_and_starts_at_the_dft_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, label = load_config(str(EXAMPLE))
    assert Path(cfg["model"]["name"]).resolve() == FE.resolve()
    run = DesignRun(cfg, label=label)
    assert run.par.variable_names == ("shift:t2g", "shift:sp3d2", "exchange", "mu_shift")
    start = run.par.physical_values(run.initial_theta(0))
    assert start == pytest.approx({"shift:t2g": 0.0, "shift:sp3d2": 0.0, "exchange": 1.0, "mu_shift": 0.0}, abs=1e-12)
    assert os.fspath(run.model.name) == "Fe"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('orbitals = ["Fe:*:up"]', 'orbitals = ["Fe:f*"]'), "perturbations.shift.up.orbitals"),
        (lambda t: t.replace("[perturbations.exchange]", "[perturbations.exchange]\nlow = 1.05"), "exchange needs low"),
        (lambda t: t.replace('component = "zx"', 'component = "xz"'), "objective.component"),
        (lambda t: t.replace(f'"{FE.as_posix()}"', '"haldane"'), "without parameters"),
        (lambda t: t.replace("[perturbations.shift.t2g]", "[perturbations.shift.t2g]\nsize = 1"), "unknown keys"),
    ],
)
def test_bad_real_material_configs_exit_2_naming_the_key(tmp_path, edit, message):
    config = tmp_path / "bad.toml"
    config.write_text(edit(TINY))
    code, output = _invoke("design", str(config), "--out", str(tmp_path / "out"))
    assert code == 2, output
    assert message in " ".join(output.split())
    with pytest.raises(ConfigError, match=message.split(".")[-1]):
        DesignRun(*load_config(str(config))[:1])
