"""Result folders hold one run: conflicts refused, --overwrite replaces, --resume checks identity, locks.

The three reports of issue 19 are reproduced here: two runs started at once into one folder, a later
run with another seed into a finished folder, and ``--resume`` with another preset.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import numpy as np
from hamdesign.cli import app
from hamdesign.design import PRESETS, DesignRun, write_result
from hamdesign.errors import NoCheckpointError, ParameterError, ResultFolderConflict, ResultFolderLocked
from hamdesign.io.runfolder import (
    LOCK_NAME,
    RunIdentity,
    StaleLockWarning,
    claim_run_folder,
    folder_lock,
    inspect_run_folder,
    lock_is_stale,
)


def _tiny(steps: int = 3, nk: int = 6, **changes) -> dict:
    cfg = copy.deepcopy(PRESETS["haldane"])
    cfg.update({"steps": steps, "kmesh": [nk, nk], "checkpoint_every": 1, **changes})
    cfg["evaluation"] = {"beta": 200.0, "nk": nk}
    return cfg


def _config_file(path: Path, cfg: dict) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(cfg))
    return path


@pytest.fixture(autouse=True)
def _autograd_is_the_default(monkeypatch):
    """In-process runs use the backend the CLI calls below name, so their checkpoints resume there."""
    import hamdesign.backend as hb

    monkeypatch.setattr(hb, "_default", [hb.get_backend("autograd")])


def _design(*args: str):
    return CliRunner().invoke(app, ["-q", "--backend", "autograd", "design", *map(str, args)])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("hamdesign: error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    return _config_file(tmp_path / "tiny.toml", _tiny())


# ---------------------------------------------------------------------------------- the reports
def test_a_later_run_with_another_seed_is_refused_and_the_finished_result_kept(tmp_path, tiny_config):
    out = tmp_path / "X"
    assert _design(tiny_config, "--out", out).exit_code == 0
    before = _snapshot(out)
    refused = _design(tiny_config, "--seeds", "2", "--out", out)
    assert refused.exit_code == 2
    line = _error_line(refused)
    for words in (
        "holds another run",
        "seed 0",
        "finished",
        "seed 2",
        "differs in seed",
        "--overwrite",
        "another --out",
        "--resume",
    ):
        assert words in line, words
    assert _snapshot(out) == before  # not a byte changed
    assert not (out / LOCK_NAME).exists()


def test_resume_with_another_preset_is_refused_naming_both(tmp_path, tiny_config):
    out = tmp_path / "X"
    assert _design(tiny_config, "--out", out).exit_code == 0
    before = _snapshot(out)
    refused = _design("triangular", "--resume", out)
    assert refused.exit_code == 2
    line = _error_line(refused)
    assert "cannot resume" in line and "triangular" in line and "tiny" in line and "haldane_general" in line
    assert "differs in config, model" in line
    assert _snapshot(out) == before


def _cli() -> list[str]:
    script = shutil.which("hamdesign", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "hamdesign.cli"]


def test_two_processes_started_at_once_one_runs_the_other_is_refused(tmp_path):
    config = _config_file(tmp_path / "race.toml", _tiny(steps=200, nk=24, checkpoint_every=5))
    out = tmp_path / "X"
    env = {**os.environ, "HAMDESIGN_BACKEND": "autograd"}
    procs = {
        seed: subprocess.Popen(
            [*_cli(), "-q", "design", str(config), "--seeds", str(seed), "--out", str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    }
    done = {seed: (p.wait(timeout=600), p.stderr.read()) for seed, p in procs.items()}
    for p in procs.values():
        p.stdout.close()
        p.stderr.close()
    assert sorted(rc for rc, _ in done.values()) == [0, 2], done
    winner = next(seed for seed, (rc, _) in done.items() if rc == 0)
    loser = 1 - winner
    lines = done[loser][1].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hamdesign: error:"), lines
    assert f"in use by another hamdesign run (pid {procs[winner].pid} on {socket.gethostname()}" in lines[0]
    result = json.loads((out / "result.json").read_text())
    assert result["seed"] == winner and result["run"]["seed"] == winner
    with np.load(out / "history.npz") as history:
        assert len(history["loss"]) == 200
    assert inspect_run_folder(out).identity.seed == winner and inspect_run_folder(out).step == 200
    assert not (out / LOCK_NAME).exists()


# ---------------------------------------------------------------------------------- overwrite, repeat, resume
def test_overwrite_replaces_another_run_entirely(tmp_path, tiny_config):
    out = tmp_path / "X"
    assert _design(tiny_config, "--out", out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    replaced = _design(tiny_config, "--seeds", "2", "--steps", "4", "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert "hamdesign: warning:" in replaced.output and "removed 6 file(s)" in replaced.output
    result = json.loads((out / "result.json").read_text())
    assert result["seed"] == 2 and result["steps"] == 4
    with np.load(out / "history.npz") as history:
        assert len(history["loss"]) == 4
    assert inspect_run_folder(out).identity.seed == 2
    assert (out / "notes.txt").read_text() == "mine"  # only the design's own files are removed


def test_repeating_the_same_run_into_its_folder_is_allowed(tmp_path, tiny_config):
    out = tmp_path / "X"
    assert _design(tiny_config, "--out", out).exit_code == 0
    first = json.loads((out / "result.json").read_text())
    again = _design(tiny_config, "--out", out)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "result.json").read_text())["design_variables"] == first["design_variables"]


def test_another_number_of_steps_is_another_run(tmp_path, tiny_config):
    out = tmp_path / "X"
    assert _design(tiny_config, "--out", out).exit_code == 0
    refused = _design(tiny_config, "--steps", "5", "--out", out)
    assert refused.exit_code == 2 and "differs in number of steps" in _error_line(refused)


def test_resume_without_a_checkpoint_says_so(tmp_path, tiny_config):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = _design(tiny_config, "--resume", empty)
    assert refused.exit_code == 2 and "no checkpoint.npz" in _error_line(refused)
    missing = _design(tiny_config, "--resume", tmp_path / "nowhere")
    assert missing.exit_code == 2 and "no checkpoint.npz" in _error_line(missing)
    assert not (tmp_path / "nowhere").exists()


def test_resume_refuses_another_seed_and_overwrite(tmp_path, tiny_config):
    out = tmp_path / "X"
    assert _design(tiny_config, "--out", out).exit_code == 0
    other_seed = _design(tiny_config, "--resume", out, "--seeds", "3")
    assert other_seed.exit_code == 2 and "differs in seed" in _error_line(other_seed)
    both = _design(tiny_config, "--resume", out, "--overwrite")
    assert both.exit_code == 2 and "contradict" in _error_line(both)


def test_resume_of_a_config_edited_since_is_refused(tmp_path):
    config = _config_file(tmp_path / "tiny.toml", _tiny())
    out = tmp_path / "X"
    assert _design(config, "--out", out).exit_code == 0
    _config_file(config, _tiny(init_scale=0.5))
    refused = _design(config, "--resume", out)
    assert refused.exit_code == 2 and "differs in config" in _error_line(refused)


def test_resume_continues_to_the_runs_own_length(tmp_path, tiny_config):
    out = tmp_path / "X"
    run = DesignRun(_tiny(steps=6), label="tiny")
    run.run(0, out_dir=out, steps=2)  # interrupted after 2 of 6 steps
    resumed = _design(_config_file(tmp_path / "tiny.toml", _tiny(steps=6)), "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    with np.load(out / "history.npz") as history:
        assert len(history["loss"]) == 6


# ---------------------------------------------------------------------------------- multi-seed folders
def test_multi_seed_rules_per_seed_subfolder(tmp_path, tiny_config):
    out = tmp_path / "E"
    assert _design(tiny_config, "--seeds", "0:2", "--out", out).exit_code == 0
    grown = _design(tiny_config, "--seeds", "2,3", "--out", out)  # more seeds of the same run: the ensemble grows
    assert grown.exit_code == 0, grown.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["seed_000", "seed_001", "seed_002", "seed_003"]
    before = _snapshot(out / "seed_000")
    other = _config_file(tmp_path / "other.toml", _tiny(init_scale=0.5))
    refused = _design(other, "--seeds", "0:2", "--out", out)
    assert refused.exit_code == 2 and "holds another run" in _error_line(refused) and "differs in config" in _error_line(refused)
    single = _design(tiny_config, "--out", out)  # a single run into a multi-seed folder
    assert single.exit_code == 2 and "multi-seed run" in _error_line(single)
    assert _snapshot(out / "seed_000") == before
    single_folder = tmp_path / "S"
    assert _design(tiny_config, "--out", single_folder).exit_code == 0
    mixed = _design(tiny_config, "--seeds", "0:2", "--out", single_folder)
    assert mixed.exit_code == 2 and "holds a single run" in _error_line(mixed)
    replaced = _design(other, "--seeds", "0:2", "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    # seeds 2 and 3 of the old run are gone
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["seed_000", "seed_001"]
    assert json.loads((out / "seed_000" / "result.json").read_text())["config"]["init_scale"] == 0.5


def test_multi_seed_resume_continues_started_seeds_and_runs_missing_ones(tmp_path, tiny_config):
    out = tmp_path / "E"
    run = DesignRun(_tiny(steps=5), label="tiny")
    run.run(0, out_dir=out / "seed_000", steps=2)  # killed during seed 0; seed 1 never started
    config = _config_file(tmp_path / "tiny.toml", _tiny(steps=5))
    resumed = _design(config, "--seeds", "0:2", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    straight = tmp_path / "straight"
    assert _design(config, "--seeds", "0:2", "--out", straight).exit_code == 0
    for seed in ("seed_000", "seed_001"):
        a = json.loads((out / seed / "result.json").read_text())["design_variables"]
        b = json.loads((straight / seed / "result.json").read_text())["design_variables"]
        assert a == pytest.approx(b, rel=1e-12, abs=1e-14)
    assert json.loads((out / "ensemble.json").read_text())["seeds"] == [0, 1]


# ---------------------------------------------------------------------------------- the API
def test_api_raises_specific_exceptions(tmp_path, numpy_backend):
    cfg = _tiny()
    finished = tmp_path / "X"
    with claim_run_folder(finished, RunIdentity.of(cfg, seed=0, design="tiny")):
        # a result without "run", as older versions wrote
        (finished / "result.json").write_text(json.dumps({"config": cfg, "seed": 0, "design": "tiny"}))
    other = RunIdentity.of(cfg, seed=4, design="tiny")
    with pytest.raises(ResultFolderConflict, match="seed 0, 3 steps, finished.*differs in seed"):
        with claim_run_folder(finished, other):
            pass
    with pytest.raises(NoCheckpointError, match="no checkpoint.npz"):
        with claim_run_folder(finished, RunIdentity.of(cfg, seed=0, design="tiny"), resume=True):
            pass
    with pytest.raises(ParameterError, match="contradict"):
        with claim_run_folder(finished, other, resume=True, overwrite=True):
            pass
    with pytest.warns(UserWarning, match="removed 1 file"):
        with claim_run_folder(finished, other, overwrite=True) as found:
            assert found is None and not (finished / "result.json").exists()


def test_write_result_refuses_another_runs_folder(tmp_path):
    from conftest import on_backend

    with on_backend("autograd"):
        run = DesignRun(_tiny(steps=2), label="tiny")
        state = run.run(1)
        occupied = tmp_path / "X"
        run.run(0, out_dir=occupied)
        with pytest.raises(ResultFolderConflict, match="differs in seed"):
            write_result(run, state, occupied, seed=1, label="tiny")
        assert inspect_run_folder(occupied).identity.seed == 0


# ---------------------------------------------------------------------------------- the lock
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(folder: Path, **record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = {
        "pid": 1,
        "host": socket.gethostname(),
        "started": "2000-01-01T00:00:00+00:00",
        "pid_start": None,
        "token": "x",
        "run": {"design": "old", "seed": 7},
    }
    path = folder / LOCK_NAME
    path.write_text(json.dumps({**base, **record}))
    return path


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, tiny_config):
    out = tmp_path / "X"
    dead = _dead_pid()
    _write_lock(out, pid=dead)
    result = _design(tiny_config, "--out", out)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("hamdesign: warning:")]
    assert len(warnings) == 1 and f"took over the lock of pid {dead}" in warnings[0] and "no longer runs" in warnings[0]
    assert json.loads((out / "result.json").read_text())["seed"] == 0
    assert not (out / LOCK_NAME).exists()


def test_a_live_lock_is_refused_naming_the_pid(tmp_path, tiny_config):
    out = tmp_path / "X"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _write_lock(out, pid=holder.pid)
        refused = _design(tiny_config, "--out", out)
        assert refused.exit_code == 2
        line = _error_line(refused)
        assert f"pid {holder.pid}" in line and "in use by another hamdesign run" in line and "old seed 7" in line
        assert lock.exists() and not (out / "result.json").exists()
        with pytest.raises(ResultFolderLocked, match=f"pid {holder.pid}"):
            with folder_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_rules():
    here = socket.gethostname()
    assert lock_is_stale({"pid": _dead_pid(), "host": here}, age_s=0)
    assert not lock_is_stale({"pid": os.getpid(), "host": here}, age_s=1e6)
    assert (
        lock_is_stale({"pid": os.getpid(), "host": here, "pid_start": "not-this-process"}, age_s=0)
        == Path("/proc/self/stat").exists()
    )
    assert not lock_is_stale({"pid": _dead_pid(), "host": here + "-elsewhere"}, age_s=1e6)  # another machine: cannot tell
    assert not lock_is_stale(None, age_s=1.0)  # being written by its creator
    assert lock_is_stale(None, age_s=3600.0)


def test_an_unreadable_lock_is_refused_while_young_and_taken_over_when_old(tmp_path):
    folder = tmp_path / "X"
    folder.mkdir()
    lock = folder / LOCK_NAME
    lock.write_text("")
    with pytest.raises(ResultFolderLocked, match="being written, or unreadable"):
        with folder_lock(folder):
            pass
    old = time.time() - 3600
    os.utime(lock, (old, old))
    with pytest.warns(StaleLockWarning, match="unreadable lock"):
        with folder_lock(folder):
            assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_the_lock_is_released_on_exceptions_and_keyboard_interrupt(tmp_path):
    folder = tmp_path / "X"
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with folder_lock(folder, RunIdentity.of(_tiny(), seed=0, design="tiny")):
                record = json.loads((folder / LOCK_NAME).read_text())
                assert (
                    record["pid"] == os.getpid()
                    and record["host"] == socket.gethostname()
                    and record["run"]["seed"] == 0
                    and record["started"]
                )
                raise exc
        assert not (folder / LOCK_NAME).exists()


def test_a_run_interrupted_by_ctrl_c_releases_its_lock_and_keeps_its_checkpoint(tmp_path):
    from conftest import on_backend

    def interrupt(step, record):
        if step == 1:
            raise KeyboardInterrupt

    with on_backend("autograd"):
        run = DesignRun(_tiny(steps=4), label="tiny")
        with pytest.raises(KeyboardInterrupt):
            run.run(0, out_dir=tmp_path / "X", on_step=interrupt)
    assert not (tmp_path / "X" / LOCK_NAME).exists()
    assert inspect_run_folder(tmp_path / "X").step == 1


def test_the_lock_is_reentrant_in_its_thread_only(tmp_path):
    import threading

    folder = tmp_path / "X"
    outcome = []

    def other_thread():
        try:
            with folder_lock(folder):
                outcome.append("entered")
        except ResultFolderLocked:
            outcome.append("refused")

    with folder_lock(folder):
        with folder_lock(folder):  # nested: the CLI holds the folder, DesignRun.run claims it again
            pass
        assert (folder / LOCK_NAME).exists()  # still held by the outer block
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert outcome == ["refused"] and not (folder / LOCK_NAME).exists()
