"""The command line through Typer's CliRunner and through the installed console script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import DATA, preserved_backend_state, require_module
from hamdesign.cli import app

runner = CliRunner()


def console_script() -> str:
    found = shutil.which("hamdesign", path=str(Path(sys.executable).parent))
    assert found, "the hamdesign console script is not installed next to this Python"
    return found


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([console_script(), *args], capture_output=True, text=True, env=full_env, timeout=300)


def test_evaluate_haldane_json_through_console_script():
    out = run_cli("--backend", "numpy", "evaluate", "haldane", "--observable", "hall", "--nk", "100", "--beta", "200", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("observable", "sigma_xy", "chern", "units", "backend"):
        assert key in data
    assert data["observable"] == "hall" and data["backend"] == "numpy"
    assert data["sigma_xy"] == pytest.approx(1.0, abs=1e-6)
    assert [round(c) for c in data["chern"]] == [-1, 1]


@pytest.mark.parametrize("name", ["jax", "torch", "autograd"])
def test_environment_variable_picks_backend(name):
    require_module(name)
    result = runner.invoke(app, ["evaluate", "haldane", "--nk", "30", "--beta", "50", "--json"], env={"HAMDESIGN_BACKEND": name})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"] == name


def test_in_process_backend_option_is_undone_after_the_test(request):
    from hamdesign import backend

    assert "_restore_global_backend" in request.fixturenames  # autouse: wraps every test, this one too
    require_module("torch")
    device = os.environ.get("HAMDESIGN_DEVICE")
    args = ["--backend", "torch", "--device", "cpu", "evaluate", "haldane", "--nk", "6", "--beta", "5", "--json"]
    before = list(backend._default)
    with preserved_backend_state():  # what the autouse fixture does around each test
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        # the CLI changes the process default: without the restore the next test would run on torch
        assert backend.current().name == "torch" and os.environ["HAMDESIGN_DEVICE"] == "cpu"
    assert backend._default == before
    assert os.environ.get("HAMDESIGN_DEVICE") == device


@pytest.mark.parametrize("name", ["jax", "torch", "autograd", "numpy"])
def test_fixed_mu_on_every_backend(name):
    require_module(name)
    result = runner.invoke(app, ["--backend", name, "evaluate", "haldane", "--nk", "30", "--beta", "100", "--mu", "0", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mu"] == 0.0 and data["sigma_xy"] == pytest.approx(1.0, abs=1e-3)


def test_evaluate_reference_tb_dat_gives_six():
    path = DATA / "triangular_optimum_tb.dat"
    result = runner.invoke(
        app, ["--backend", "numpy", "evaluate", str(path), "--nk", "48", "--beta", "200", "--filling", "0.5", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sigma_xy"] == pytest.approx(6.0, abs=0.02)
    assert data["chern_rounded"] == [-5, -1, 3, 3]


def test_temperature_options_and_params(tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"M": 2.0}))  # trivial phase: |M| > 3√3 t2
    result = runner.invoke(
        app,
        ["--backend", "numpy", "evaluate", "haldane", "--nk", "30", "--temperature", "0.005", "--params", str(params), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["beta"] == pytest.approx(200.0)
    assert data["parameters"]["M"] == 2.0
    assert abs(data["sigma_xy"]) < 1e-6
    result = runner.invoke(
        app,
        ["--backend", "numpy", "evaluate", "hbn", "--nk", "12", "--temperature", "300", "--kelvin", "--json", "--set", "M=0.5"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["beta"] == pytest.approx(1 / (8.617333262e-5 * 300), rel=1e-6)


def test_backends_and_models_commands():
    result = runner.invoke(app, ["backends", "--json"])
    assert result.exit_code == 0, result.output
    names = {row["name"]: row for row in json.loads(result.stdout)["backends"]}
    assert set(names) == {"jax", "torch", "autograd", "numpy"}
    assert names["numpy"]["installed"] and names["numpy"]["differentiates"] is False
    table = runner.invoke(app, ["backends"])
    assert table.exit_code == 0 and "numpy" in table.stdout
    models = runner.invoke(app, ["models", "--json"])
    assert models.exit_code == 0
    assert {m["name"] for m in json.loads(models.stdout)["models"]} >= {"haldane", "hbn"}


def test_backends_report_the_installed_distribution_versions():
    """autograd has no __version__: the table must still show the installed version, not "unknown"."""
    from importlib.metadata import version

    result = runner.invoke(app, ["backends", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["backends"] if row["installed"]}
    assert "autograd" in rows
    assert rows["autograd"]["version"] == version("autograd") != "unknown"
    assert all(row["version"] not in ("", "unknown") for row in rows.values()), rows
    table = runner.invoke(app, ["backends"], env={"COLUMNS": "200"})
    assert version("autograd") in table.stdout


def test_autograd_version_falls_back_without_distribution_metadata(monkeypatch):
    from importlib.metadata import PackageNotFoundError

    import hamdesign.backends.autograd as adapter

    def missing(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(adapter, "_distribution_version", missing)
    assert adapter._autograd_version() == getattr(adapter._autograd, "__version__", "unknown")


def test_human_readable_output():
    result = runner.invoke(app, ["--backend", "numpy", "evaluate", "haldane", "--nk", "30", "--beta", "100"])
    assert result.exit_code == 0, result.output
    assert "σ_xy" in result.stdout and "Chern" in result.stdout


@pytest.mark.parametrize(
    ("model", "label", "count"),
    [
        ("haldane", "global gap above band 1 (t1)", 1),
        (str(DATA / "triangular_optimum_tb.dat"), "global gaps above bands 1…3 (eV)", 3),
    ],
)
def test_hall_table_names_which_gaps_and_their_unit(model, label, count):
    """The gap row says which gaps (above which bands) and in which unit, not just "band gaps"."""
    result = runner.invoke(app, ["--backend", "numpy", "evaluate", model, "--nk", "24", "--beta", "100"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "gap" in line)
    assert label in row
    values = row.split("│")[2].split(",")
    assert len(values) == count and all(float(v) > 0.5 for v in values)  # both models are gapped at every band


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "tensorflow", "evaluate", "haldane", "--beta", "1"], "unknown backend 'tensorflow'"),
        (["evaluate", "no_such_model", "--beta", "1"], "no_such_model"),
        (["evaluate", "haldane"], "temperature"),
        (["evaluate", "haldane", "--beta", "-1"], "--beta must be positive"),
        (["evaluate", "haldane", "--beta", "1", "--filling", "1.5"], "filling"),
        (["evaluate", "haldane", "--beta", "1", "--nk", "0"], "k-mesh"),
        (["evaluate", "haldane", "--beta", "1", "--set", "Q=1"], "unknown parameter 'Q'"),
        (["evaluate", "haldane", "--temperature", "300", "--kelvin"], "dimensionless"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    out = run_cli(*args, env={"HAMDESIGN_BACKEND": "numpy"})
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        ("this is [not toml", ".toml", "model.toml"),
        ("[lattice]\nvectors = [[1.0, 0.0], [2.0, 0.0]]\n[[orbitals]]\nposition = [0, 0]\n", ".toml", "singular"),
        (
            "[lattice]\nvectors = [[1.0]]\n[[orbitals]]\nposition = "
            "[0]\n[[hoppings]]\nfrom = 0\nto = 0\nR = [0]\namplitude = [0.0, 1.0]\n",
            ".toml",
            "not real",
        ),
    ],
)
def test_malformed_model_files_exit_2(tmp_path, content, suffix, message):
    path = tmp_path / f"model{suffix}"
    path.write_text(content)
    out = run_cli("evaluate", str(path), "--beta", "1", env={"HAMDESIGN_BACKEND": "numpy"})
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


def test_help_imports_no_framework():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from hamdesign.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "for sub in ('evaluate', 'backends', 'models'):\n"
        "    assert CliRunner().invoke(app, [sub, '--help']).exit_code == 0\n"
        "bad = [m for m in ('jax', 'torch', 'autograd') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    help_out = run_cli("--help")
    assert help_out.returncode == 0 and "evaluate" in help_out.stdout


def test_bench_command_runs_one_case():
    result = runner.invoke(app, ["bench", "--backends", "numpy,autograd", "--case", "hall_vg_haldane", "--repeat", "1", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    by_backend = {r["backend"]: r for r in rows}
    assert by_backend["numpy"]["median_s"] is None  # numpy cannot differentiate
    assert by_backend["autograd"]["median_s"] > 0 and by_backend["autograd"]["warmup_s"] > 0
    bad = runner.invoke(app, ["bench", "--case", "nothing-like-this"])
    assert bad.exit_code == 2


def test_bench_grid_prints_stages_by_model():
    result = runner.invoke(
        app, ["bench", "--grid", "--backends", "numpy,autograd", "--case", "triangular", "--repeat", "1"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for stage in ("hamiltonian", "eigh", "hall_value", "hall_value_and_grad", "shift_spectrum", "design_step"):
        assert stage in result.stdout
    assert "triangular 24×24 k" in result.stdout and "(autograd)" in result.stdout
    assert "photocurrent" not in result.stdout  # the triangular model has no physical units
    bad = runner.invoke(app, ["bench", "--grid", "--size", "huge"])
    assert bad.exit_code == 2 and "small, medium, large" in bad.output


def test_plot_and_export_a_design_result(tmp_path):
    import tomli_w

    from hamdesign.design import PRESETS

    cfg = {**PRESETS["haldane"], "steps": 3, "kmesh": [12, 12], "evaluation": {"beta": 200.0, "nk": 12}}
    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps(cfg))
    folder = tmp_path / "res"
    assert run_cli("--backend", "autograd", "-q", "design", str(config), "--out", str(folder)).returncode == 0
    plotted = run_cli("plot", str(folder))
    assert plotted.returncode == 0, plotted.stderr
    pngs = [Path(p) for p in plotted.stdout.split()]
    assert {p.name for p in pngs} == {"bands.png", "berry_curvature.png", "history.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    from hamdesign.io import load_model, read_model_file
    from hamdesign.lattice import kmesh
    from hamdesign.model import hamiltonian

    original = read_model_file(folder / "model.toml")
    k = kmesh(5, 2)
    with __import__("hamdesign").use_backend("numpy"):
        for fmt in ("tb", "hr", "toml"):
            out = run_cli("export", str(folder), "--format", fmt)
            assert out.returncode == 0, out.stderr
            first = Path(out.stdout.split()[0])
            back = load_model(str(first))
            import numpy as np

            np.testing.assert_allclose(hamiltonian(back, None, k), hamiltonian(original, None, k), atol=1e-12)


def test_plot_rejects_a_folder_without_results(tmp_path):
    out = run_cli("plot", str(tmp_path))
    assert out.returncode == 2 and "no result.json" in out.stderr


def test_verbose_names_the_backend_and_shows_the_traceback_above_the_error_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[lattice]\nvectors = 3\n")
    out = run_cli("--verbose", "--backend", "numpy", "evaluate", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("hamdesign: backend numpy") and "Traceback" in out.stderr
    assert lines[-1].startswith("hamdesign: error:") and str(bad) in lines[-1]
    quiet = run_cli("--backend", "numpy", "evaluate", str(bad))
    assert quiet.returncode == 2 and len(quiet.stderr.strip().splitlines()) == 1


def test_evaluate_defaults_to_numpy_unless_a_backend_is_chosen(monkeypatch):
    """One-off forward evaluations pay no compilation: numpy unless --backend / HAMDESIGN_BACKEND says otherwise."""
    monkeypatch.delenv("HAMDESIGN_BACKEND", raising=False)
    args = ["evaluate", "haldane", "--nk", "8", "--beta", "5", "--json"]
    assert json.loads(runner.invoke(app, args).stdout)["backend"] == "numpy"
    assert json.loads(runner.invoke(app, ["--backend", "autograd", *args]).stdout)["backend"] == "autograd"
    monkeypatch.setenv("HAMDESIGN_BACKEND", "autograd")
    assert json.loads(runner.invoke(app, args).stdout)["backend"] == "autograd"


def test_evaluate_respects_an_explicit_jax_backend(monkeypatch):
    """The one-off rule picks numpy only when nobody chose: --backend jax evaluates on jax."""
    require_module("jax")
    monkeypatch.delenv("HAMDESIGN_BACKEND", raising=False)
    args = ["evaluate", "haldane", "--nk", "8", "--beta", "5", "--json"]
    assert json.loads(runner.invoke(app, ["--backend", "jax", *args]).stdout)["backend"] == "jax"


def test_bench_names_the_default_backend_and_its_ratio_to_the_fastest():
    args = ["bench", "--grid", "--backends", "numpy,autograd", "--case", "eigh:haldane", "--repeat", "1"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "default (÷ fastest)" in result.stdout and re.search(r"numpy \(\d+\.\d\d×\)", result.stdout)
    assert re.search(r"start-up of a fresh process: numpy \d+\.\d\d s, autograd \d+\.\d\d s", result.stdout)
    as_json = runner.invoke(app, ["bench", "--backends", "autograd", "--case", "design_step_haldane", "--repeat", "1", "--json"])
    (summary,) = json.loads(as_json.stdout)["defaults"]
    unknown = runner.invoke(app, ["bench", "--grid", "--backends", "numpy,nosuch", "--case", "eigh:haldane"])
    assert unknown.exit_code == 2 and "nosuch" in unknown.output
    assert summary["one_off"] is False and summary["fastest"] == "autograd"
