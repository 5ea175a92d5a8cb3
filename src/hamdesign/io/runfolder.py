"""Result folders that hold exactly one run: identity checks and an exclusive lock.

A design run writes into a folder (``result.json``, ``history.npz``, ``checkpoint.npz``, the model,
figures). Two things must never happen there: a run replacing or mixing with *another* run's files,
and two processes writing the same folder at once. This module is the single place that decides
both, so the CLI, :class:`hamdesign.design.DesignRun` and any ensemble executor apply the same
rules to every run folder (one per seed, one per sweep point):

* :class:`RunIdentity` says which run a folder holds: the configuration's content hash (without
  ``steps``, ``seeds`` and ``checkpoint_every``), the model, the seed and the number of steps.
* :func:`claim_run_folder` takes the folder's lock, then checks what is there against the request:
  another run's files raise :class:`~hamdesign.errors.ResultFolderConflict` unless ``overwrite``
  (which removes the design's files first); ``resume`` needs a checkpoint of the same run.
* :func:`claim_ensemble_root` does the same for the folder above the per-seed subfolders, and
  :func:`claim_sweep_root` for the folder above a sweep's per-point subfolders (each of them an
  ensemble root).

The lock is a file created atomically (``O_CREAT | O_EXCL``) holding pid, host, start time and the
run identity. A lock whose process is gone (same host, pid not alive, or the pid now belongs to a
newer process) is stale and is taken over with a :class:`StaleLockWarning`; a live one raises
:class:`~hamdesign.errors.ResultFolderLocked`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import NoCheckpointError, ParameterError, ResultFolderConflict, ResultFolderLocked

LOCK_NAME = ".hamdesign.lock"
RESULT_FILES = ("result.json", "history.npz", "checkpoint.npz", "model.toml", "model_tb.dat", "history.png")
ENSEMBLE_FILE = "ensemble.json"
# Keys that say how long or how often, not what is optimised: a resumed run may extend `steps`.
_NOT_HASHED = ("steps", "seeds", "checkpoint_every")
# An unreadable lock younger than this is being written by its creator right now.
_UNREADABLE_LOCK_GRACE_S = 30.0
# How long to wait for a just-created lock's content before calling it unreadable.
_WRITE_WAIT_S = 1.0
# A takeover guard older than this was left by a process killed mid-takeover.
_GUARD_STALE_S = 60.0


class StaleLockWarning(UserWarning):
    """A result folder's lock was left by a process that no longer runs; it was taken over."""


class OverwriteWarning(UserWarning):
    """``overwrite=True`` removed another run's files from a result folder."""


# ---------------------------------------------------------------------------------- identity
def config_hash(cfg: Mapping) -> str:
    """The first 12 hex digits of the SHA-256 of the canonical JSON of ``cfg`` without steps, seeds, checkpoint_every."""
    core = {k: v for k, v in cfg.items() if k not in _NOT_HASHED}
    text = json.dumps(core, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class RunIdentity:
    """Which run a folder holds. ``design`` (preset name or config file stem) only labels messages."""

    design: str
    config_hash: str
    model: str
    seed: int | None
    steps: int

    @classmethod
    def of(cls, cfg: Mapping, *, seed: int | None, design: str) -> RunIdentity:
        """The identity of running ``cfg`` from ``seed`` (None: any seed, for an ensemble root)."""
        return cls(
            design=str(design),
            config_hash=config_hash(cfg),
            model=str(cfg["model"]["name"]),
            seed=seed,
            steps=int(cfg.get("steps", 100)),
        )

    @classmethod
    def from_record(cls, record: Mapping, *, fallback_design: str = "?") -> RunIdentity | None:
        """The identity stored in a checkpoint's meta or a result.json (older ones: derived from config and seed)."""
        stored = record.get("run")
        if isinstance(stored, Mapping):
            try:
                return cls(**{k: stored[k] for k in ("design", "config_hash", "model", "seed", "steps")})
            except (KeyError, TypeError):
                pass
        cfg = record.get("config")
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("model"), Mapping):
            return None
        seed = record.get("seed")
        return cls.of(cfg, seed=None if seed is None else int(seed), design=str(record.get("design", fallback_design)))

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.design} (config {self.config_hash}, model {self.model}){seed}, {self.steps} steps"

    def differences(self, other: RunIdentity, *, same_length: bool) -> list[str]:
        """Names of the fields that make ``other`` a different run (seed None matches any seed)."""
        fields = ["config_hash", "model", "seed"] + (["steps"] if same_length else [])
        return [
            f for f in fields if not (f == "seed" and None in (self.seed, other.seed)) and getattr(self, f) != getattr(other, f)
        ]


@dataclass(frozen=True)
class FolderContent:
    """A run found in a folder: who it is and how far it got."""

    identity: RunIdentity
    finished: bool
    step: int | None  # the checkpoint's step, None without a checkpoint

    def describe(self) -> str:
        if self.step is not None and self.step < self.identity.steps:
            state = f"unfinished, checkpoint at step {self.step}"
        elif self.finished:
            state = "finished"
        else:
            state = f"checkpoint at step {self.step}, result not written yet"
        return f"{self.identity.describe()}, {state}"


def _read_checkpoint_meta(path: Path) -> tuple[int, dict] | None:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return int(data["step"]), json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError):
        return None


def inspect_run_folder(folder: str | os.PathLike) -> FolderContent | None:
    """The run whose files ``folder`` holds, from its checkpoint and result.json; None if it holds none.

    A checkpoint describes the run more recently than result.json (a resumed run extends it), so it
    wins where both exist; unreadable files count as another run's (their owner is unknown).
    """
    folder = Path(folder)
    result_file, checkpoint_file = folder / "result.json", folder / "checkpoint.npz"
    identity, step = None, None
    finished = result_file.exists()
    if checkpoint_file.exists():
        read = _read_checkpoint_meta(checkpoint_file)
        if read is not None:
            step, meta = read
            identity = RunIdentity.from_record(meta)
    if identity is None and finished:
        try:
            identity = RunIdentity.from_record(json.loads(result_file.read_text()))
        except (OSError, ValueError):
            identity = None
    if identity is None and (finished or checkpoint_file.exists()):
        identity = RunIdentity(design="unreadable files", config_hash="?", model="?", seed=None, steps=0)
    if identity is None:
        return None
    return FolderContent(identity, finished, step)


def seed_folder(root: str | os.PathLike, seed: int) -> Path:
    """Where one seed of a multi-seed run lives: ``root/seed_NNN``."""
    return Path(root) / f"seed_{seed:03d}"


def _seed_subfolders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("seed_") and p.name[5:].isdigit())


def _sweep_subfolders(root: Path) -> list[Path]:
    """Subfolders of a sweep root: the ones (not seed_NNN/) that hold seed_NNN/ subfolders themselves."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("seed_") and _seed_subfolders(p))


def read_ensemble_record(root: str | os.PathLike) -> dict | None:
    """``root/ensemble.json`` as a dict, or None if absent or unreadable."""
    try:
        record = json.loads((Path(root) / ENSEMBLE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _check_ensemble_record(root: Path, request: RunIdentity, sweep_keys: list[str]) -> None:
    """An ensemble.json of another configuration, or of another sweep's keys, makes ``root`` another run's."""
    record = read_ensemble_record(root)
    if record is None or not isinstance(record.get("run"), Mapping):
        return  # none, or written before ensembles recorded their plan: the subfolders decide
    found = RunIdentity.from_record(record)
    plan = record.get("plan") if isinstance(record.get("plan"), Mapping) else {}
    found_keys = list(plan.get("sweep") or {})
    fields = [] if found is None else found.differences(RunIdentity(**{**request.to_dict(), "seed": None}), same_length=False)
    if fields or found_keys != sweep_keys:
        what = f"a sweep over {', '.join(found_keys)}" if found_keys else "an ensemble without a sweep"
        mine = f"a sweep over {', '.join(sweep_keys)}" if sweep_keys else "an ensemble without a sweep"
        differs = f"differs in {_differing(fields)}" if fields else f"this run is {mine}"
        raise ResultFolderConflict(
            f"{root} holds another run ({what}: {found.describe() if found else '?'}); "
            f"this one is {request.describe()} ({differs}): {_ways_out(root)}"
        )


def ensemble_seeds(root: str | os.PathLike) -> list[int]:
    """The seeds whose subfolders ``root`` holds."""
    return [int(p.name[5:]) for p in _seed_subfolders(Path(root))]


# ---------------------------------------------------------------------------------- checks
def _ways_out(folder: Path) -> str:
    return (
        f"use --overwrite (overwrite=True) to replace it, another --out, "
        f"or --resume {folder} with that run's own preset or config to continue it"
    )


_FIELD_WORDS = {"config_hash": "config", "model": "model", "seed": "seed", "steps": "number of steps"}


def _differing(fields: list[str]) -> str:
    return ", ".join(_FIELD_WORDS[f] for f in fields)


def _conflict(folder: Path, found: FolderContent, request: RunIdentity, fields: list[str]) -> ResultFolderConflict:
    return ResultFolderConflict(
        f"{folder} holds another run ({found.describe()}); "
        f"this run is {request.describe()} (differs in {_differing(fields)}): {_ways_out(folder)}"
    )


def check_run_folder(
    folder: str | os.PathLike, request: RunIdentity, *, resume: bool = False, same_length: bool | None = None
) -> FolderContent | None:
    """Raise unless ``folder`` may receive ``request``'s files; returns what it holds.

    A new run (``resume=False``) may write where nothing is, or where the same run is (same config,
    model, seed and number of steps: it is repeated). ``resume`` needs a checkpoint of the same run
    (the number of steps may differ: a resumed run may be extended). ``same_length`` overrides
    whether the number of steps must agree. Ensemble files directly in a run folder conflict too.
    """
    folder = Path(folder)
    same_length = (not resume) if same_length is None else same_length
    if (folder / ENSEMBLE_FILE).exists() or _seed_subfolders(folder):
        raise ResultFolderConflict(
            f"{folder} holds a multi-seed run ({', '.join(p.name for p in _seed_subfolders(folder)) or ENSEMBLE_FILE}); "
            f"this single run is {request.describe()}: {_ways_out(folder)}"
        )
    found = inspect_run_folder(folder)
    if resume and (found is None or found.step is None):
        if (folder / "checkpoint.npz").exists():
            raise ResultFolderConflict(
                f"cannot resume {folder}: its checkpoint.npz cannot be read; "
                "start the run again with --overwrite or another --out"
            )
        raise NoCheckpointError(
            f"cannot resume {folder}: no checkpoint.npz there"
            + (" (it holds a finished result without one)" if found is not None else "")
        )
    if found is None:
        return None
    fields = found.identity.differences(request, same_length=same_length)
    if fields:
        if resume:
            raise ResultFolderConflict(
                f"cannot resume {folder} as {request.describe()}: it holds {found.describe()} (differs in {_differing(fields)}); "
                "resume it with its own preset or config, or start the new run with another --out"
            )
        raise _conflict(folder, found, request, fields)
    return found


def check_ensemble_root(
    root: str | os.PathLike, request: RunIdentity, *, same_length: bool = True, sweep_keys: list[str] | None = None
) -> None:
    """Raise unless ``root`` may receive a multi-seed run of ``request`` (its seed is ignored).

    The root must not hold a single run's files, and every ``seed_NNN/`` there must belong to the
    same configuration (other seeds of the same run are kept: the ensemble grows). With
    ``sweep_keys`` (``[]``: no sweep) its ensemble.json, if any, must record the same plan's keys.
    """
    root = Path(root)
    if sweep_keys is not None:
        _check_ensemble_record(root, request, sweep_keys)
    found = inspect_run_folder(root)
    if found is not None:
        raise ResultFolderConflict(
            f"{root} holds a single run ({found.describe()}), not seed_NNN/ subfolders; "
            f"this multi-seed run is {request.describe()}: {_ways_out(root)}"
        )
    for sub in _seed_subfolders(root):
        found = inspect_run_folder(sub)
        if found is None:
            continue
        fields = found.identity.differences(RunIdentity(**{**request.to_dict(), "seed": None}), same_length=same_length)
        if fields:
            raise _conflict(root, found, request, fields)


def clear_run_folder(folder: str | os.PathLike) -> list[Path]:
    """Remove the files a design writes (and their half-written temporaries) from ``folder``; returns them.

    Other files (``figures/`` from ``hamdesign plot``, ``export/``, anything of the user's) stay.
    Multi-seed layouts are cleared too: ``ensemble.json`` and the design files of every ``seed_NNN/``,
    also inside a sweep's per-point subfolders.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    names = (*RESULT_FILES, ENSEMBLE_FILE)
    for path in folder.iterdir():
        temporary = (
            path.name.startswith(".") and path.name.endswith(".tmp") and any(path.name.startswith(f".{n}.") for n in names)
        )
        if path.is_file() and (path.name in names or temporary):
            path.unlink()
            removed.append(path)
    for sub in _seed_subfolders(folder) + _sweep_subfolders(folder):
        removed += clear_run_folder(sub)
        with contextlib.suppress(OSError):  # not empty: the user's files stay, and so does the folder
            sub.rmdir()
    return removed


# ---------------------------------------------------------------------------------- the lock
_HELD: dict[str, tuple[int, int]] = {}  # resolved folder -> (thread id, depth): re-entry by the owning thread
_HELD_GUARD = threading.Lock()


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), telling a reused pid from the original process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x100000, False, pid)  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return ctypes.windll.kernel32.WaitForSingleObject(handle, 0) == 0x102  # WAIT_TIMEOUT: still running
        finally:
            ctypes.windll.kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _read_lock(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def lock_is_stale(record: dict | None, *, age_s: float) -> bool:
    """True when the lock's process is certainly gone: same host and pid dead or reused, or unreadable for long."""
    if record is None:
        return age_s > _UNREADABLE_LOCK_GRACE_S
    if record.get("host") != socket.gethostname():
        return False  # cannot see another machine's processes; the message says how to remove it
    pid = record.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return True
    started = record.get("pid_start")
    return started is not None and _process_start(pid) not in (None, started)


def _describe_lock(path: Path, record: dict | None) -> str:
    if record is None:
        return f"{path.parent} is locked by {path} (being written, or unreadable); if no run uses it, remove that file"
    run = record.get("run") or {}
    what = f"{run.get('design', '?')} seed {run.get('seed')}" if run else "a run"
    return (
        f"{path.parent} is in use by another hamdesign run "
        f"(pid {record.get('pid')} on {record.get('host')}, {what}, since {record.get('started')}): "
        f"wait for it to finish or use another --out; if that process is gone, remove {path}"
    )


def _create_lock(path: Path, record: dict) -> bool:
    """Create ``path`` with ``record`` atomically; False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(record))
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _take_over(path: Path, seen: dict | None, record: dict) -> bool:
    """Replace the stale lock ``seen`` by ours; False if another process got there first.

    A guard file (O_EXCL) makes the check-remove-create sequence one process's at a time, so two
    processes finding the same stale lock cannot both remove it and both believe they hold it.
    """
    guard = path.with_name(path.name + ".takeover")
    if not _create_lock(guard, {"pid": os.getpid()}):
        with contextlib.suppress(OSError):
            if time.time() - guard.stat().st_mtime > _GUARD_STALE_S:
                guard.unlink()
        return False
    try:
        if _read_lock(path) != seen:
            return False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return _create_lock(path, record)
    finally:
        guard.unlink()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, identity: RunIdentity | None = None) -> Iterator[Path]:
    """Hold ``folder``'s exclusive lock for the block (re-entrant in the owning thread).

    Released on any exit, exceptions and KeyboardInterrupt included. A kill -9 leaves the lock
    behind; the next run finds its process gone and takes it over with a StaleLockWarning.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held[0] == me:
            _HELD[key] = (me, held[1] + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield folder / LOCK_NAME
        finally:
            with _HELD_GUARD:
                owner, depth = _HELD[key]
                _HELD[key] = (owner, depth - 1)
        return
    path = folder / LOCK_NAME
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pid_start": _process_start(os.getpid()),
        "token": uuid.uuid4().hex,
        "run": None if identity is None else identity.to_dict(),
    }
    while not _create_lock(path, record):
        seen = _read_lock(path)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            continue  # released between our attempt and the read: try again
        waited = 0.0
        while seen is None and age + waited < _UNREADABLE_LOCK_GRACE_S and waited < _WRITE_WAIT_S:
            # created but not yet written (O_EXCL create, then write): its content comes within moments
            time.sleep(0.02)
            waited += 0.02
            seen = _read_lock(path)
        with _HELD_GUARD:
            held_here = seen is not None and seen.get("pid") == os.getpid() and key in _HELD
        if held_here or not lock_is_stale(seen, age_s=age):
            raise ResultFolderLocked(_describe_lock(path, seen))
        if _take_over(path, seen, record):
            who = (
                "an unreadable lock"
                if seen is None
                else f"the lock of pid {seen.get('pid')} (started {seen.get('started')}), which no longer runs"
            )
            warnings.warn(f"{folder}: took over {who}", StaleLockWarning, stacklevel=3)
            break
        if _read_lock(path) == seen:  # another process is taking over right now
            raise ResultFolderLocked(_describe_lock(path, seen))
    with _HELD_GUARD:
        _HELD[key] = (me, 1)
    try:
        yield path
    finally:
        with _HELD_GUARD:
            _HELD.pop(key, None)
        if (_read_lock(path) or {}).get("token") == record["token"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# ---------------------------------------------------------------------------------- claims
_RESUME_AND_OVERWRITE = (
    "--resume and --overwrite contradict each other: resume continues the run in the folder, overwrite replaces it"
)


def _replace_note(folder: Path, removed: list[Path]) -> None:
    if removed:
        warnings.warn(f"{folder}: --overwrite removed {len(removed)} file(s) of the previous run", OverwriteWarning, stacklevel=4)


@contextlib.contextmanager
def claim_run_folder(
    folder: str | os.PathLike,
    request: RunIdentity,
    *,
    resume: bool = False,
    overwrite: bool = False,
    same_length: bool | None = None,
) -> Iterator[FolderContent | None]:
    """Lock ``folder`` and make sure it holds nothing but ``request``'s run for the block.

    Yields what the folder held (after ``overwrite``: None when another run's files were removed).
    Raises ResultFolderLocked, ResultFolderConflict or NoCheckpointError (see :func:`check_run_folder`).
    """
    if resume and overwrite:
        raise ParameterError(_RESUME_AND_OVERWRITE)
    if resume and not Path(folder).is_dir():
        raise NoCheckpointError(f"cannot resume {folder}: no such folder")
    with folder_lock(folder, request):
        try:
            found = check_run_folder(folder, request, resume=resume, same_length=same_length)
        except ResultFolderConflict:
            if not overwrite:
                raise
            _replace_note(Path(folder), clear_run_folder(folder))
            found = None
        yield found


@contextlib.contextmanager
def claim_ensemble_root(
    root: str | os.PathLike,
    request: RunIdentity,
    *,
    resume: bool = False,
    overwrite: bool = False,
    sweep_keys: list[str] | None = None,
) -> Iterator[None]:
    """Lock the folder above a multi-seed run's ``seed_NNN/`` subfolders and check its layout.

    Each seed subfolder is then claimed on its own with :func:`claim_run_folder` (by the process
    that runs that seed), so the per-seed rules are the same as for a single run. ``sweep_keys``:
    see :func:`check_ensemble_root`.
    """
    if resume and overwrite:
        raise ParameterError(_RESUME_AND_OVERWRITE)
    with folder_lock(root, request):
        try:
            check_ensemble_root(root, request, same_length=not resume, sweep_keys=sweep_keys)
        except ResultFolderConflict:
            if not overwrite:
                raise
            _replace_note(Path(root), clear_run_folder(root))
        yield


def check_sweep_root(root: str | os.PathLike, request: RunIdentity, sweep_keys: list[str]) -> None:
    """Raise unless ``root`` may receive a sweep over ``sweep_keys`` of ``request``'s configuration.

    The root must hold neither a single run nor seed_NNN/ subfolders of an ensemble without a sweep,
    and its ensemble.json, if any, must be this configuration's sweep over the same keys (more
    values of them are welcome: the grid grows). Each point's folder is then an ensemble root.
    """
    root = Path(root)
    found = inspect_run_folder(root)
    if found is not None or _seed_subfolders(root):
        what = found.describe() if found is not None else ", ".join(p.name for p in _seed_subfolders(root))
        raise ResultFolderConflict(
            f"{root} holds {'a single run' if found is not None else 'an ensemble without a sweep'} ({what}); "
            f"this sweep is {request.describe()} over {', '.join(sweep_keys)}: {_ways_out(root)}"
        )
    _check_ensemble_record(root, request, sweep_keys)


@contextlib.contextmanager
def claim_sweep_root(
    root: str | os.PathLike, request: RunIdentity, sweep_keys: list[str], *, resume: bool = False, overwrite: bool = False
) -> Iterator[None]:
    """Lock the folder above a sweep's per-point subfolders and check it (:func:`check_sweep_root`)."""
    if resume and overwrite:
        raise ParameterError(_RESUME_AND_OVERWRITE)
    with folder_lock(root, request):
        try:
            check_sweep_root(root, request, sweep_keys)
        except ResultFolderConflict:
            if not overwrite:
                raise
            _replace_note(Path(root), clear_run_folder(root))
        yield
