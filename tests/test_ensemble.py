"""Ensembles and sweeps on standard executors (issue 17): same results everywhere, failures recorded, resume.

Tiny Haldane runs on autograd (quick to import in a fresh worker process), figures off.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from concurrent.futures import Executor
from pathlib import Path

import pytest
from typer.testing import CliRunner

import numpy as np
from conftest import require_module
from hamdesign import ensemble
from hamdesign.cli import app
from hamdesign.design import PRESETS
from hamdesign.ensemble import (
    SerialExecutor,
    make_executor,
    parse_sweep,
    pinned_environment,
    point_folder_name,
    run_ensemble,
    set_dotted,
    sweep_points,
)
from hamdesign.errors import ConfigError, ParameterError, ResultFolderConflict

SEEDS = [0, 1, 2]


def _tiny(steps: int = 3, nk: int = 6) -> dict:
    cfg = copy.deepcopy(PRESETS["haldane"])
    cfg.update(steps=steps, kmesh=[nk, nk], checkpoint_every=1)
    cfg["evaluation"] = {"beta": 200.0, "nk": nk}
    return cfg


def _run(out: Path, executor: Executor | None = None, seeds=SEEDS, **kwargs) -> dict:
    kwargs.setdefault("config", _tiny())
    return run_ensemble(
        kwargs.pop("config"), seeds, out_dir=out, executor=executor, backend="autograd", figures=False, label="tiny", **kwargs
    )


def _variables(folder: Path) -> np.ndarray:
    result = json.loads((folder / "result.json").read_text())
    return np.array(list(result["design_variables"].values()) + [result["final_loss"]])


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory) -> dict[int, np.ndarray]:
    out = tmp_path_factory.mktemp("serial")
    summary = _run(out)
    assert summary["finished"] == len(SEEDS) and summary["failed"] == 0
    return {seed: _variables(out / f"seed_{seed:03d}") for seed in SEEDS}


def _same_as_serial(out: Path, reference: dict[int, np.ndarray]) -> None:
    for seed, expected in reference.items():
        np.testing.assert_allclose(_variables(out / f"seed_{seed:03d}"), expected, rtol=1e-12, atol=1e-14, err_msg=f"seed {seed}")


# ---------------------------------------------------------------------------------- executors agree
def test_serial_runs_repeat_bit_for_bit(tmp_path, serial_reference):
    _run(tmp_path, seeds=[1])
    np.testing.assert_array_equal(_variables(tmp_path / "seed_001"), serial_reference[1])


def test_a_process_pool_gives_the_serial_results_on_pinned_workers(tmp_path, serial_reference):
    with make_executor("process", workers=2) as pool:
        summary = _run(tmp_path, pool)
        env = pool.submit(os.getenv, "OMP_NUM_THREADS").result(), pool.submit(os.getenv, "XLA_FLAGS").result()
    assert summary["finished"] == 3 and summary["failed"] == 0 and summary["executor"] == "ProcessPoolExecutor"
    _same_as_serial(tmp_path, serial_reference)
    assert env[0] == "1" and "--xla_cpu_multi_thread_eigen=false" in env[1]
    assert "XLA_FLAGS" not in pinned_environment({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true"})


def test_a_dask_local_cluster_gives_the_serial_results(tmp_path, serial_reference):
    require_module("distributed")
    with make_executor("dask", workers=2) as pool:
        summary = _run(tmp_path, pool)
        workers = {r["pid"] for r in summary["runs"]}
        env = pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result()
    assert summary["finished"] == 3 and summary["failed"] == 0 and summary["executor"] == "ClientExecutor"
    _same_as_serial(tmp_path, serial_reference)
    assert os.getpid() not in workers and env == "1"


# ---------------------------------------------------------------------------------- failures
class _Faulty(Executor):
    """Wraps an executor; the chosen seeds' tasks are replaced by ``fault(task)`` -> (fn, args)."""

    def __init__(self, inner: Executor, seeds: set[int], fault):
        self.inner, self.seeds, self.fault = inner, seeds, fault

    def submit(self, fn, task, /):
        if task.seed in self.seeds:
            fault_fn, args = self.fault(task)
            return self.inner.submit(fault_fn, *args)
        return self.inner.submit(fn, task)


def _broken_model(task):
    return ensemble.run_one, (dataclasses.replace(task, config={**task.config, "model": {"name": "no_such_model"}}),)


def test_a_run_that_raises_is_recorded_and_the_others_finish(tmp_path, monkeypatch):
    monkeypatch.setattr(ensemble, "SUMMARY_INTERVAL_S", 0.0)
    seen = []

    def arrived(record):  # ensemble.json on disk already counts the run that just arrived
        seen.append(json.loads((tmp_path / "ensemble.json").read_text())["pending"])

    summary = _run(tmp_path, _Faulty(SerialExecutor(), {1}, _broken_model), on_result=arrived)
    assert summary["finished"] == 2 and summary["failed"] == 1 and summary["status"] == "finished"
    (error,) = summary["errors"]
    assert error["seed"] == 1 and error["folder"] == "seed_001" and "no_such_model" in error["error"]
    assert "Traceback" in next(r for r in summary["runs"] if r["seed"] == 1)["traceback"]
    assert (tmp_path / "seed_002" / "result.json").exists()
    assert seen == [2, 1, 0]
    assert json.loads((tmp_path / "ensemble.json").read_text())["errors"] == summary["errors"]


@pytest.mark.filterwarnings("ignore::hamdesign.io.runfolder.StaleLockWarning")
def test_a_killed_worker_loses_no_finished_run_and_resume_runs_only_the_missing(tmp_path):
    seeds = [0, 1, 2, 3]
    with make_executor("process", workers=2) as pool:
        summary = _run(tmp_path, _Faulty(pool, {2}, lambda task: (os._exit, (3,))), seeds=seeds)
    assert summary["failed"] >= 1 and summary["finished"] + summary["failed"] == 4
    assert any("BrokenProcessPool" in e["error"] for e in summary["errors"] if e["seed"] == 2)
    on_disk = {s for s in seeds if (tmp_path / f"seed_{s:03d}" / "result.json").exists()}
    recorded = {r["seed"] for r in summary["runs"] if r["status"] == "ok"}
    assert 2 not in on_disk and recorded <= on_disk
    kept = {s: (tmp_path / f"seed_{s:03d}" / "result.json").read_bytes() for s in on_disk}

    resumed = _run(tmp_path, seeds=seeds, resume=True)
    assert resumed["finished"] == 4 and resumed["failed"] == 0
    assert {r["seed"] for r in resumed["runs"] if r.get("reused")} == on_disk  # only the missing ran
    assert {s: (tmp_path / f"seed_{s:03d}" / "result.json").read_bytes() for s in on_disk} == kept


def test_resume_after_the_driver_stopped_runs_only_new_seeds(tmp_path):
    _run(tmp_path, seeds=[0, 1])
    before = (tmp_path / "seed_000" / "result.json").read_bytes()
    calls = []

    class Counting(SerialExecutor):
        def submit(self, fn, task, /):
            calls.append(task.seed)
            return super().submit(fn, task)

    summary = _run(tmp_path, Counting(), seeds=[0, 1, 2], resume=True)
    assert calls == [2] and summary["finished"] == 3
    assert (tmp_path / "seed_000" / "result.json").read_bytes() == before


# ---------------------------------------------------------------------------------- sweeps
def test_the_sweep_grid_gets_a_folder_per_point_and_a_summary(tmp_path):
    sweep = {"temperature.end": [-1.0, -0.5], "optimizer.name": ["rmsprop", "adam"]}
    summary = _run(tmp_path, seeds=[4], sweep=sweep)
    points = sweep_points(sweep)
    assert len(points) == 4 and summary["finished"] == 4
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == sorted(point_folder_name(p) for p in points)
    assert "temperature.end=-0.5__optimizer.name=adam" in names
    for point in points:
        result = json.loads((tmp_path / point_folder_name(point) / "seed_004" / "result.json").read_text())
        assert result["config"]["temperature"]["end"] == point["temperature.end"]
        assert result["config"]["optimizer"]["name"] == point["optimizer.name"]
    assert [p["point"] for p in summary["points"]] == points
    values = [r["value"] for r in summary["runs"]]
    assert summary["best_value"] == max(values, key=abs) and summary["distribution"]["n"] == 4
    assert summary["distribution"]["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert summary["plan"] == {"seeds": [4], "sweep": sweep}
    # another sweep's keys, or an ensemble without a sweep, cannot join this folder
    with pytest.raises(ResultFolderConflict, match="sweep over temperature.end, optimizer.name"):
        _run(tmp_path, seeds=[4], sweep={"temperature.end": [-1.0]})
    with pytest.raises(ResultFolderConflict):
        _run(tmp_path, seeds=[4])


def test_sweep_parsing_and_config_keys():
    assert parse_sweep(["optimizer.learning_rate=0.1,0.03", "temperature.end=-1"]) == {
        "optimizer.learning_rate": [0.1, 0.03],
        "temperature.end": [-1],
    }
    for bad in ("optimizer.learning_rate", "=1,2", "x="):
        with pytest.raises(ParameterError, match="KEY=V1,V2"):
            parse_sweep([bad])
    with pytest.raises(ParameterError, match="twice"):
        parse_sweep(["steps=1", "steps=2"])
    cfg = _tiny()
    assert set_dotted(cfg, "optimizer.learning_rate", 0.1)["optimizer"]["learning_rate"] == 0.1
    assert cfg["optimizer"]["learning_rate"] == PRESETS["haldane"]["optimizer"]["learning_rate"]  # a copy
    with pytest.raises(ConfigError, match="not a table"):
        set_dotted(cfg, "steps.x", 1)
    with pytest.raises(ConfigError, match="--seeds"):
        set_dotted(cfg, "seeds", [1])


def test_a_sweep_value_the_config_rejects_names_the_point(tmp_path):
    with pytest.raises(ConfigError, match="temperature.schedule=hot.*temperature.schedule"):
        _run(tmp_path, seeds=[0], sweep={"temperature.schedule": ["hot"]})
    with pytest.raises(ConfigError, match="optimizer.bogus"):
        _run(tmp_path, seeds=[0], sweep={"optimizer.bogus": [1]})


# ---------------------------------------------------------------------------------- the command line
def _cli(*args):
    return CliRunner().invoke(app, ["-q", "--backend", "autograd", "design", *map(str, args)])


def test_cli_sweep_on_a_process_pool_then_resume_reruns_nothing(tmp_path):
    import tomli_w

    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps(_tiny(steps=2)))
    out = tmp_path / "S"
    first = _cli(
        config,
        "--seeds",
        "0:2",
        "--sweep",
        "temperature.end=-1,-0.5",
        "--executor",
        "process",
        "--workers",
        "2",
        "--no-figures",
        "--out",
        out,
    )
    assert first.exit_code == 0, first.output
    summary = json.loads((out / "ensemble.json").read_text())
    assert summary["finished"] == 4 and summary["plan"]["sweep"] == {"temperature.end": [-1, -0.5]}
    assert "best seed" in first.output
    files = sorted(out.glob("*/seed_*/result.json"))
    assert len(files) == 4
    kept = [f.read_bytes() for f in files]
    again = _cli(config, "--resume", out, "--json")
    assert again.exit_code == 0, again.output
    assert all(r.get("reused") for r in json.loads(again.output)["runs"])
    assert [f.read_bytes() for f in files] == kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workers", "0", "--executor", "process"), "--workers must be at least 1"),
        (("--workers", "2"), "--workers needs --executor process or dask"),
        (("--scheduler", "tcp://x:1"), "--scheduler needs --executor dask"),
        (("--sweep", "temperature.end"), "--sweep must be KEY=V1,V2"),
        (("--sweep", "optimizer.learning_rate=-1"), "optimizer.learning_rate"),
    ],
)
def test_cli_bad_executor_or_sweep_is_one_line_exit_2(tmp_path, args, message):
    result = _cli("haldane", "--seeds", "0:2", "--out", tmp_path / "X", *args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("hamdesign: error:")]
    assert len(lines) == 1 and message in lines[0], result.output


def test_the_summary_of_runs_that_all_agree():
    """A quantised σ_xy: every run gives 6 to round-off; the histogram still has somewhere to put them."""
    records = [
        {
            "point": {},
            "seed": s,
            "folder": f"seed_{s:03d}",
            "status": "ok",
            "quantity": "sigma_xy",
            "value": 6.0 + 1e-13 * s,
            "final_loss": -6.0,
            "chern_lattice": None,
        }
        for s in range(5)
    ] + [{"point": {}, "seed": 5, "folder": "seed_005", "status": "pending"}]
    summary = ensemble.summarise(records, goal="maximize")
    assert sum(summary["distribution"]["histogram"]["counts"]) == 5 and summary["best_seed"] == 4
    assert summary["status"] == "running" and summary["pending"] == 1


def test_the_ensemble_figure(tmp_path):
    summary = _run(tmp_path, seeds=[0, 1], sweep={"temperature.end": [-1.0, -0.5]}, config=_tiny(steps=1))
    ensemble._draw_summary(summary, tmp_path / "ensemble.png", title="tiny")
    assert (tmp_path / "ensemble.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
