"""A design run's result folder: result.json, history.npz, the designed model, the history figure.

Written by :func:`write_result` (all files atomically, under the folder rules of
:mod:`hamdesign.io.runfolder`); :func:`headline` reads the design's headline number back from a
result.
"""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import backend as _backend

if TYPE_CHECKING:
    from ..design import DesignRun


def provenance() -> dict:
    """Versions and platform for result files."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("hamdesign", "numpy", "jax", "torch", "autograd", "array-api-compat"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def write_result(
    run: DesignRun, state, out_dir: Path, *, seed: int, label: str, overwrite: bool = False, figures: bool = True
) -> dict:
    """result.json, history.npz, the model (TOML and wannier90 _tb.dat), figures (unless not ``figures``); all atomic.

    The folder is locked while writing and may hold only this run's files (its checkpoint, an
    earlier result of the same configuration and seed); another run's raise ResultFolderConflict
    unless ``overwrite``.
    """
    from .runfolder import RunIdentity, claim_run_folder

    identity = RunIdentity.of(run.cfg, seed=seed, design=label)
    # same_length=False: a resumed run may have been extended past an earlier result's steps
    with claim_run_folder(out_dir, identity, overwrite=overwrite, same_length=False):
        return _write_result(run, state, Path(out_dir), seed=seed, label=label, identity=identity, figures=figures)


def _write_result(run: DesignRun, state, out_dir: Path, *, seed: int, label: str, identity, figures: bool = True) -> dict:
    from ..perturbations import materialize, perturbed_blocks_of
    from . import atomic_write_bytes, atomic_write_text, write_model_file, write_tb_dat

    physical = run.par.physical_values(state.theta)
    evaluation = run.evaluate(state.theta)
    history = {k: np.asarray(v) for k, v in state.history.items()}
    result = {
        "design": label,
        "seed": seed,
        "steps": state.step,
        "backend": _backend.current().name,
        "device": str(_backend.current().device),
        "objective": dict(run.cfg["objective"]),
        "final_loss": float(history["loss"][-1]) if len(history.get("loss", [])) else None,
        "design_variables": dict(zip(run.par.variable_names, map(float, state.theta), strict=False)),
        "parameters": physical,
        "parametrization": run.par.describe(),
        "evaluation": evaluation,
        "model": {
            "name": run.model.name,
            "energy_unit": run.model.energy_unit,
            "length_unit": run.model.length_unit,
            "norb": run.model.norb,
            "dim": run.model.dim,
        },
        "config": run.cfg,
        "performance": _performance(history),
        "run": identity.to_dict(),
        "versions": provenance(),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **history)
    atomic_write_bytes(out_dir / "history.npz", buffer.getvalue())
    params = run.model.params_from(physical)
    if perturbed_blocks_of(run.model) is not None:
        # the designed crystal itself: hoppings at the optimum, strained geometry, position matrix
        designed = materialize(run.model, params)
        write_model_file(designed, out_dir / "model.toml")
        write_tb_dat(designed, out_dir / "model_tb.dat")
    else:
        write_model_file(run.model.with_structure(default_params=params), out_dir / "model.toml")
        write_tb_dat(run.model, out_dir / "model_tb.dat", params=params)
    drawn = []
    try:
        from ..plotting import plot_history

        if figures:  # a large ensemble may skip them: a figure can take longer than a small run
            drawn.append(str(plot_history(history, out_dir / "history.png", title=f"{label} design, seed {seed}")))
            if "scan" in evaluation:
                from ..plotting import plot_ahc_design

                title = f"{label}, seed {seed}: {evaluation['component']} before and after"
                drawn.append(str(plot_ahc_design(result, out_dir / "ahc_design.png", title=title)))
    except ImportError:  # matplotlib missing: results are complete without figures
        pass
    result["figures"] = drawn
    atomic_write_text(out_dir / "result.json", json.dumps(result, indent=2, default=json_default))
    return result


def _performance(history: dict) -> dict:
    """Median seconds per step (the first, which compiles, apart) and the process's peak resident memory."""
    import resource
    import sys

    seconds = np.asarray(history.get("seconds", []), dtype=float)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return {
        "first_step_seconds": float(seconds[0]) if seconds.size else None,
        "seconds_per_step": float(np.median(seconds[1:])) if seconds.size > 1 else None,
        "peak_memory_MiB": float(peak),
    }


def json_default(obj):
    """numpy arrays and scalars for ``json.dumps(default=…)``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def headline(result: dict) -> tuple[str, float]:
    """The design's headline number: ("sigma_xy", e²/h), ("current_density", A/m²) or (the AHC component, S/cm)."""
    ev = result["evaluation"]
    if "current_density" in ev:
        return "current_density", ev["current_density"]
    if "component" in ev:
        return ev["component"], ev["sigma"]
    return "sigma_xy", ev["sigma_xy"]
