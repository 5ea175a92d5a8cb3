"""Ensembles and sweeps: many seeds × a grid of configuration values on any ``concurrent.futures.Executor``.

The seam is the standard :class:`concurrent.futures.Executor`, so the same call runs serially, in a
local :class:`~concurrent.futures.ProcessPoolExecutor`, on Dask (``Client.get_executor()``) or on
MPI (``mpi4py.futures.MPIPoolExecutor``)::

    from concurrent.futures import ProcessPoolExecutor
    from hamdesign.ensemble import run_ensemble

    with ProcessPoolExecutor(4) as pool:
        summary = run_ensemble("triangular", range(64), out_dir="results/tri", executor=pool,
                               sweep={"optimizer.learning_rate": [0.1, 0.03]})

Layout: without a sweep, ``out_dir/seed_NNN/`` per seed; with one, ``out_dir/<point>/seed_NNN/`` per
sweep point and seed (``<point>`` like ``optimizer.learning_rate=0.1``). Each run writes its own
folder atomically under the rules of :mod:`hamdesign.io.runfolder` (identity checks and a lock per
folder). The driver writes ``out_dir/ensemble.json`` (best run, the objective's distribution over
seeds and sweep points, errors) atomically as results arrive. A run that raises is recorded there
and the others go on; a worker that dies loses no finished run, and ``resume=True`` runs only what
is missing (finished runs are read back from their folders, started ones continue from their
checkpoints).

Workers are pinned to one BLAS/OpenMP/XLA thread each (:data:`THREAD_ENV`): N single-threaded
processes on N cores beat N processes each spawning N threads.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import math
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, ParameterError

#: Environment of a worker process: one thread per BLAS/OpenMP/XLA pool and per k-chunk map. Set before the frameworks load.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "HAMDESIGN_THREADS": "1",
}
#: XLA's CPU flags for one intra-op thread (appended to any XLA_FLAGS already set, e.g. a device count).
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
EXECUTORS = ("serial", "process", "dask")
# ensemble.json is rewritten at most this often (and always at the end): thousands of fast runs would
# otherwise spend their time rewriting a growing file.
SUMMARY_INTERVAL_S = 0.5


class ExecutorError(ParameterError):
    """An executor that cannot be made here (unknown kind, Dask not installed, bad worker count)."""


# ---------------------------------------------------------------------------------- threads
def pinned_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to ``environ`` (default ``os.environ``) so a process uses one thread per pool."""
    environ = os.environ if environ is None else environ
    out = {k: v for k, v in THREAD_ENV.items() if k not in environ}
    xla = environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in xla:
        out["XLA_FLAGS"] = f"{xla} {XLA_SINGLE_THREAD}".strip()
    return out


def pin_threads() -> None:
    """Pin this process to one BLAS/OpenMP/XLA thread; effective for frameworks not imported yet.

    A worker calls it first thing. Values the user set already are kept.
    """
    os.environ.update(pinned_environment())


@contextlib.contextmanager
def _environment(extra: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``extra`` for the block (child processes started in it inherit it)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class SerialExecutor(Executor):
    """Runs each call at once in this process, in submission order (the default; no threads pinned)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - a Future carries whatever the call raised
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(err)
        return future


@contextlib.contextmanager
def make_executor(kind: str = "serial", *, workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """An executor of ``kind`` (serial, process or dask) for the block, shut down afterwards.

    ``process``: a spawn-context ProcessPoolExecutor of ``workers`` processes (default: the CPU count),
    started with :data:`THREAD_ENV`. ``dask``: a ``distributed.LocalCluster(n_workers=workers,
    threads_per_worker=1)`` with the same environment, or the cluster at ``scheduler`` (its workers
    are pinned by :func:`pin_threads` when they start a run; start them with THREAD_ENV to pin BLAS too).
    """
    if kind not in EXECUTORS:
        raise ExecutorError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ExecutorError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None and kind != "dask":
        raise ExecutorError("--scheduler needs --executor dask")
    if kind == "serial":
        if workers not in (None, 1):
            raise ExecutorError("--workers needs --executor process or dask (the serial executor runs one run at a time)")
        yield SerialExecutor()
        return
    if kind == "process":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Spawned workers inherit the environment at start-up, before numpy loads its BLAS.
        with _environment(pinned_environment()):
            pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=pin_threads
            )
            try:
                yield pool
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ExecutorError(f"--executor dask needs Dask: pip install 'hamdesign[dask]' ({err})") from err
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            env = {**pinned_environment({}), **THREAD_ENV}
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers or os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    env=env,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(scheduler))
        # pure=False: two submissions are two runs, never merged by Dask's key hashing.
        yield client.get_executor(pure=False)


# ---------------------------------------------------------------------------------- sweeps
def _parse_value(text: str):
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_sweep(items: Iterable[str]) -> dict[str, list]:
    """``["optimizer.learning_rate=0.1,0.03", …]`` → ``{"optimizer.learning_rate": [0.1, 0.03], …}``."""
    sweep: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        parsed = [_parse_value(v) for v in values.split(",") if v.strip()]
        if not sep or not key or not parsed:
            raise ParameterError(
                f"--sweep must be KEY=V1,V2,… (KEY a dotted config key like optimizer.learning_rate), got {item!r}"
            )
        if key in sweep:
            raise ParameterError(f"--sweep {key} given twice; list all its values in one --sweep {key}=V1,V2,…")
        sweep[key] = parsed
    return sweep


def set_dotted(cfg: Mapping, key: str, value) -> dict:
    """A deep copy of ``cfg`` with ``key`` (dotted, like ``temperature.end``) set to ``value``."""
    if key.split(".")[0] == "seeds":
        raise ConfigError("--sweep seeds: give seeds with --seeds, not as a sweep")
    out = copy.deepcopy(dict(cfg))
    node = out
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            raise ConfigError(f"--sweep {key}: {'.'.join(parts[: i + 1])} is not a table of the configuration")
        node = child
    node[parts[-1]] = value
    return out


def sweep_points(sweep: Mapping[str, Sequence] | None) -> list[dict]:
    """The grid (Cartesian product, first key slowest) as a list of {key: value}; [{}] without a sweep."""
    if not sweep:
        return [{}]
    keys = list(sweep)
    return [dict(zip(keys, values, strict=False)) for values in itertools.product(*(sweep[k] for k in keys))]


def _format_value(value) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in text)


def point_folder_name(point: Mapping) -> str:
    """The subfolder of one sweep point: ``key=value`` pairs joined by ``__``."""
    return "__".join(f"{key}={_format_value(value)}" for key, value in point.items())


# ---------------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (picklable: plain data)."""

    config: dict
    label: str
    seed: int
    folder: str
    point: dict = field(default_factory=dict)
    resume: bool = False
    overwrite: bool = False
    backend: str | None = None
    device: str | None = None
    in_worker: bool = True
    figures: bool = True


_RUN_CACHE: dict[tuple, object] = {}  # a worker builds a configuration's DesignRun once, then reuses it per seed
_RUN_CACHE_SIZE = 8


def _design_run(cfg: dict, label: str, backend: str):
    from .design import DesignRun

    key = (json.dumps(cfg, sort_keys=True, default=str), label, backend)
    if key not in _RUN_CACHE:
        if len(_RUN_CACHE) >= _RUN_CACHE_SIZE:
            _RUN_CACHE.pop(next(iter(_RUN_CACHE)))
        _RUN_CACHE[key] = DesignRun(cfg, label=label)
    return _RUN_CACHE[key]


def _record_from_result(result: Mapping, task: RunTask) -> dict:
    from .io.results import headline

    quantity, value = headline(result)
    return {
        "point": dict(task.point),
        "seed": task.seed,
        "folder": task.folder,
        "status": "ok",
        "quantity": quantity,
        "value": float(value),
        "final_loss": result.get("final_loss"),
        "chern_lattice": result["evaluation"].get("chern_lattice"),
        "steps": result.get("steps"),
    }


def run_one(task: RunTask) -> dict:
    """Run and write one seed of one sweep point; a record for the summary (errors are records too).

    Called in the worker. Warnings (a stale lock taken over, files overwritten) come back in the
    record for the driver to show; an exception becomes ``status = "error"`` with its traceback.
    """
    if task.in_worker:
        pin_threads()
        if task.device:
            os.environ["HAMDESIGN_DEVICE"] = task.device
    started = time.perf_counter()
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from .backend import current, use_backend
            from .io.results import write_result

            with use_backend(task.backend or current().name):
                run = _design_run(task.config, task.label, task.backend or current().name)
                folder = Path(task.folder)
                resume = task.resume and (folder / "checkpoint.npz").exists()
                state = run.run(task.seed, out_dir=folder, resume=resume, overwrite=task.overwrite)
                result = write_result(run, state, folder, seed=task.seed, label=task.label, figures=task.figures)
            record = _record_from_result(result, task)
        except Exception as err:  # noqa: BLE001 - one failed run must not stop the ensemble; its error is recorded
            record = {
                "point": dict(task.point),
                "seed": task.seed,
                "folder": task.folder,
                "status": "error",
                "error": f"{type(err).__name__}: {err}",
                "traceback": "".join(traceback.format_exception(err))[-4000:],
            }
    record.update(where, wall_s=round(time.perf_counter() - started, 3))
    record["warnings"] = [(w.category, str(w.message)) for w in caught]
    return record


# ---------------------------------------------------------------------------------- the summary
def _best_index(records: list[dict], goal: str) -> int:
    """Largest |value| for maximize goals, else the lowest final loss (first in plan order on ties)."""
    if goal.startswith("maximize"):
        return max(range(len(records)), key=lambda i: (abs(records[i]["value"]), -i))
    return min(range(len(records)), key=lambda i: (records[i]["final_loss"], i))


def _distribution(values: list[float]) -> dict:
    import numpy as np

    v = np.asarray(values, dtype=float)
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 1e-9 * max(1.0, abs(hi)):  # all runs agree (a quantised σ_xy): bins over a unit range around it
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=max(1, min(20, len(v))), range=(lo, hi))
    return {
        "n": len(v),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
        "quantiles": {q: float(np.quantile(v, float(q))) for q in ("0.1", "0.25", "0.5", "0.75", "0.9")},
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
    }


def summarise(records: list[dict], *, goal: str, header: Mapping | None = None) -> dict:
    """The ensemble summary: counts, best run, distribution of the objective (overall and per point), errors."""
    done = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") == "error"]
    summary = dict(header or {})
    summary.update(
        status="finished" if len(done) + len(failed) == len(records) else "running",
        total=len(records),
        finished=len(done),
        failed=len(failed),
        pending=len(records) - len(done) - len(failed),
        goal=goal,
    )
    if done:
        best = done[_best_index(done, goal)]
        summary.update(
            quantity=best["quantity"],
            best=best,
            best_seed=best["seed"],
            best_point=best["point"],
            best_value=best["value"],
            best_folder=best["folder"],
            distribution=_distribution([r["value"] for r in done]),
        )
        if best.get("chern_lattice") is not None:
            summary["best_chern"] = best["chern_lattice"]
    points = []
    for point in _unique_points(records):
        mine = [r for r in done if r["point"] == point]
        entry = {"point": point, "finished": len(mine), "failed": sum(r["point"] == point for r in failed)}
        if mine:
            top = mine[_best_index(mine, goal)]
            entry.update(best_seed=top["seed"], best_value=top["value"], distribution=_distribution([r["value"] for r in mine]))
        points.append(entry)
    summary["points"] = points
    summary["errors"] = [{k: r[k] for k in ("point", "seed", "folder", "error")} for r in failed]
    summary["runs"] = records
    return summary


def _unique_points(records: list[dict]) -> list[dict]:
    seen: list[dict] = []
    for r in records:
        if r["point"] not in seen:
            seen.append(r["point"])
    return seen


def _portable(record: dict, root: Path) -> dict:
    """A record for ensemble.json: the folder relative to the root, warnings dropped (they were shown)."""
    out = {k: v for k, v in record.items() if k != "warnings"}
    with contextlib.suppress(ValueError):
        out["folder"] = str(Path(record["folder"]).relative_to(root))
    return out


# ---------------------------------------------------------------------------------- the driver
def _finished_here(folder: Path, identity) -> dict | None:
    """result.json of ``identity``'s run if ``folder`` holds it finished (to its full length), else None."""
    from .io.runfolder import inspect_run_folder

    found = inspect_run_folder(folder)
    if found is None or not found.finished or found.identity.differences(identity, same_length=False):
        return None
    if found.step is not None and found.step < identity.steps:
        return None  # checkpoint short of this run's length: it continues
    try:
        result = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return result if int(result.get("steps") or 0) >= identity.steps else None


def _plan(
    cfg: Mapping, label: str, seeds: Sequence[int], sweep: Mapping | None, root: Path
) -> list[tuple[dict, dict, int, Path]]:
    """(point, configuration, seed, folder) for every run, sweep points outermost."""
    from .design import validate_config
    from .io.runfolder import seed_folder

    plan = []
    for point in sweep_points(sweep):
        point_cfg = dict(cfg)
        for key, value in point.items():
            point_cfg = set_dotted(point_cfg, key, value)
        if point:
            validate_config(point_cfg, f"--sweep {point_folder_name(point)}")
        base = root / point_folder_name(point) if point else root
        plan.extend((point, point_cfg, seed, seed_folder(base, seed)) for seed in seeds)
    return plan


def run_ensemble(
    config: Mapping | str,
    seeds: Iterable[int],
    *,
    out_dir: str | os.PathLike,
    executor: Executor | None = None,
    sweep: Mapping[str, Sequence] | None = None,
    label: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    backend: str | None = None,
    progress: bool = False,
    on_result: Callable[[dict], None] | None = None,
    figures: bool = True,
) -> dict:
    """Run every seed at every sweep point on ``executor`` (default: serially here); the summary.

    ``config`` is a preset name, a config file path or a validated configuration; ``sweep`` maps
    dotted config keys to lists of values (grid × seeds). ``resume`` skips finished runs and continues
    started ones from their checkpoints; ``overwrite`` replaces another run's files. ``on_result`` is
    called in this process with each run's record as it arrives; ``out_dir/ensemble.json`` is rewritten
    (atomically) each time. A run that fails is recorded (``status = "error"``) and the rest go on.
    ``figures=False`` skips each run's history.png (drawing it can outlast a small run) and the
    summary's ensemble.png (histogram of the objective, value against seed per sweep point).
    """
    from .backend import current
    from .design import load_config, validate_config
    from .io import atomic_write_text
    from .io.runfolder import RunIdentity, claim_ensemble_root, claim_sweep_root

    if isinstance(config, str):
        cfg, default_label = load_config(config)
    else:
        cfg, default_label = dict(config), str(config["model"]["name"])
        validate_config(cfg, label or "configuration")
    label = label or default_label
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ParameterError(f"seeds must be distinct non-negative integers, got {seeds}")
    sweep = {k: list(v) for k, v in (sweep or {}).items()}
    if any(not values for values in sweep.values()):
        raise ParameterError("every sweep key needs at least one value")
    root = Path(out_dir).absolute()
    plan = _plan(cfg, label, seeds, sweep, root)
    base_identity = RunIdentity.of(cfg, seed=None, design=label)
    serial = executor is None or isinstance(executor, SerialExecutor)
    executor = executor or SerialExecutor()
    backend = backend or current().name
    header = {
        "design": label,
        "run": base_identity.to_dict(),
        "plan": {"seeds": seeds, "sweep": sweep},
        "seeds": seeds,  # as ensemble.json always had it
        "backend": backend,
        "executor": type(executor).__name__,
    }
    records: list[dict] = [
        {"point": point, "seed": seed, "folder": str(folder), "status": "pending"} for point, _, seed, folder in plan
    ]
    goal = cfg["objective"].get("goal", "maximize")
    summary_path = root / "ensemble.json"
    last_write = [0.0]

    def write_summary(force: bool = False) -> dict:
        summary = summarise([_portable(r, root) for r in records], goal=goal, header=header)
        now = time.monotonic()
        if force or now - last_write[0] >= SUMMARY_INTERVAL_S:
            atomic_write_text(summary_path, json.dumps(summary, indent=2, default=str))
            last_write[0] = now
        return summary

    with contextlib.ExitStack() as stack:
        if sweep:
            stack.enter_context(claim_sweep_root(root, base_identity, list(sweep), resume=resume, overwrite=overwrite))
            for point in sweep_points(sweep):
                point_cfg = plan[[p for p, *_ in plan].index(point)][1]
                stack.enter_context(
                    claim_ensemble_root(
                        root / point_folder_name(point),
                        RunIdentity.of(point_cfg, seed=None, design=label),
                        resume=resume,
                        overwrite=overwrite,
                    )
                )
        else:
            stack.enter_context(claim_ensemble_root(root, base_identity, resume=resume, overwrite=overwrite, sweep_keys=[]))
        bar = stack.enter_context(_ProgressBar(len(plan), label, enabled=progress))
        futures: dict[Future, int] = {}
        to_run = []
        for i, (point, point_cfg, seed, folder) in enumerate(plan):
            done = _finished_here(folder, RunIdentity.of(point_cfg, seed=seed, design=label)) if resume else None
            if done is not None:
                task = RunTask(point_cfg, label, seed, str(folder), point)
                records[i] = {**_record_from_result(done, task), "reused": True}
                bar.advance(records[i])
            else:
                to_run.append(i)
        write_summary(force=True)

        def arrive(future: Future) -> None:
            i = futures.pop(future)
            try:
                record = future.result()
            except Exception as err:  # noqa: BLE001 - the worker died or the executor broke: recorded, the rest go on
                point, _, seed, folder = plan[i]
                record = {
                    "point": point,
                    "seed": seed,
                    "folder": str(folder),
                    "status": "error",
                    "error": f"{type(err).__name__}: {err}",
                }
            for category, message in record.get("warnings", []):
                warnings.warn(
                    message,
                    category if isinstance(category, type) and issubclass(category, Warning) else UserWarning,
                    stacklevel=3,
                )
            records[i] = record
            bar.advance(record)
            write_summary()
            if on_result is not None:
                on_result(_portable(record, root))

        try:
            for i in to_run:
                point, point_cfg, seed, folder = plan[i]
                task = RunTask(
                    point_cfg,
                    label,
                    seed,
                    str(folder),
                    point,
                    resume=resume,
                    overwrite=overwrite,
                    backend=backend,
                    device=os.environ.get("HAMDESIGN_DEVICE"),
                    in_worker=not serial,
                    figures=figures,
                )
                futures[executor.submit(run_one, task)] = i
                for future in [f for f in futures if f.done()]:  # the serial executor: results arrive at submission
                    arrive(future)
            from concurrent.futures import FIRST_COMPLETED, wait

            while futures:
                finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for future in finished:
                    arrive(future)
        finally:
            for future in futures:
                future.cancel()
            summary = write_summary(force=True)
        if figures and summary["finished"]:
            _draw_summary(summary, root / "ensemble.png", title=f"{label}: {summary['finished']} runs")
    return summary


def _draw_summary(summary: dict, path: Path, *, title: str) -> None:
    try:
        from .plotting import plot_ensemble
    except ImportError:  # matplotlib missing: the summary is complete without the figure
        return
    plot_ensemble(summary, path, title=title)


class _ProgressBar:
    """A rich progress bar over runs: finished/total, failures, the best value so far."""

    def __init__(self, total: int, label: str, *, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled
        self.failed, self.best = 0, -math.inf

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn(f"[bold]{self.label}[/] ensemble"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self.progress.__enter__()
            self.task = self.progress.add_task("runs", total=self.total, info="")
        return self

    def advance(self, record: dict) -> None:
        if record["status"] == "error":
            self.failed += 1
        elif abs(record["value"]) > self.best:
            self.best = abs(record["value"])
        if self.enabled:
            info = (f"best |{record.get('quantity', 'value')}| {self.best:.4g}" if self.best > -math.inf else "") + (
                f"  [red]{self.failed} failed[/]" if self.failed else ""
            )
            self.progress.update(self.task, advance=1, info=info)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)
