"""Inverse-design runs: presets, loading a configuration, the run itself.

A configuration is a nested mapping (TOML on disk)::

    model = { name = "haldane_general" }            # built-in name or a model file path
    steps = 100
    kmesh = [100, 100]
    seeds = [0]
    init_scale = 1.0                                  # std of the random initial θ (phases uniform)
    [parameters]                                      # glob pattern -> map (unnamed parameters: free)
    "t1" = { map = "fixed", value = 1.0 }
    "M_*" = { map = "bounded", low = -1.0, high = 1.0 }
    "t2_*" = { map = "magnitude", max = 1.0 }          # add tie = "t2" to share one variable
    "phi_*" = { map = "phase" }
    [objective]
    observable = "sigma_xy"                           # or "photocurrent"
    goal = "maximize"                                 # maximize | minimize | target (with target = …)
    mu = 0.0                                          # or filling = 0.5
    [optimizer]
    name = "rmsprop"                                  # rmsprop | adam
    learning_rate = { values = [0.1, 0.03], boundaries = [50] }
    [temperature]
    schedule = "cosine_log_beta"                      # cosine ramp of ln β, then constant
    start = -2.0
    end = -1.0
    ramp_steps = 100
    [evaluation]
    beta = 200.0                                      # re-evaluation of the final model
    nk = 100

:mod:`hamdesign.config` parses it into a :class:`~hamdesign.config.DesignConfig` (every default and
check lives there); :data:`OBJECTIVE_PATHS` says how each observable is optimised and re-evaluated;
:mod:`hamdesign.io.results` writes the result folder.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import backend as _backend
from .config import DesignConfig, LearningRate, OptimizerSpec, TemperatureSpec, parse_config
from .errors import ConfigError, HamdesignError, NoCheckpointError
from .io.results import headline as headline  # result files moved to io.results: the names stay importable here
from .io.results import provenance as provenance
from .io.results import write_result as write_result
from .lattice import kmesh as make_kmesh
from .lattice import parse_nk
from .optimize import OPTIMIZERS, cosine_ramp, load_checkpoint, log_linear, minimise, piecewise
from .parametrize import Parametrization, ParamMap

_HALDANE_PRESET = {
    "model": {"name": "haldane_general"},
    "steps": 100,
    "kmesh": [100, 100],
    "seeds": [0],
    "init_scale": 1.0,
    "parameters": {
        "t1": {"map": "fixed", "value": 1.0},
        "M_*": {"map": "bounded", "low": -1.0, "high": 1.0},
        "t2_*": {"map": "magnitude", "max": 1.0},
        "phi_*": {"map": "phase"},
    },
    "objective": {"observable": "sigma_xy", "goal": "maximize", "mu": 0.0},
    "optimizer": {"name": "rmsprop", "decay": 0.99, "learning_rate": {"values": [0.1, 0.03], "boundaries": [50]}},
    "temperature": {"schedule": "cosine_log_beta", "start": -2.0, "end": -1.0, "ramp_steps": 100},
    "evaluation": {"beta": 200.0, "nk": 100},
}

_TRIANGULAR_PRESET = {
    "model": {"name": "triangular"},
    "steps": 300,
    "kmesh": [48, 48],
    "seeds": [0],
    "init_scale": 1.0,
    "parameters": {
        "t1": {"map": "fixed", "value": 1.0},
        "t2": {"map": "magnitude", "max": 1.0},
        "t3": {"map": "magnitude", "max": 1.0},
        "p*": {"map": "phase"},
    },
    "objective": {"observable": "sigma_xy", "goal": "maximize", "filling": 0.5},
    "optimizer": {"name": "rmsprop", "decay": 0.99, "learning_rate": {"values": [0.1, 0.03], "boundaries": [200]}},
    "temperature": {"schedule": "cosine_log_beta", "start": -2.0, "end": -1.0, "ramp_steps": 200},
    "evaluation": {"beta": 200.0, "nk": 96},
}

_PHOTOVOLTAIC_PRESET = {
    "model": {"name": "kondo_chain"},
    "steps": 600,
    "kmesh": [32],
    "seeds": [0],
    "init_scale": 1.0,
    "parameters": {
        "t1": {"map": "magnitude", "max": 0.5},
        "t2": {"map": "magnitude", "max": 0.5},
        "J": {"map": "magnitude", "max": 0.5},
        "theta*": {"map": "phase"},
        "phi*": {"map": "phase"},
    },
    "objective": {
        "observable": "photocurrent",
        "goal": "maximize_abs",
        "filling": 0.5,
        "spectrum": "blackbody5500",
        "direction": "x",
        "polarisation": "along",
        "parts": "both",
        "tau": 1e-13,
        # the original work's formulas: unbroadened virtual-transition denominators (postw90's
        # default 0.04 eV sends this 600-step anneal to a nearly coplanar optimum, chirality −0.03)
        "sc_eta": 0.0,
    },
    "optimizer": {"name": "rmsprop", "decay": 0.99, "learning_rate": {"values": [0.05, 0.02], "boundaries": [350]}},
    "temperature": {"schedule": "log_linear_kelvin", "start_kelvin": 30000.0, "end_kelvin": 300.0, "begin": 100, "finish": 350},
    "evaluation": {"kelvin": 300.0, "nk": 128},
}

PRESETS: dict[str, dict] = {"haldane": _HALDANE_PRESET, "triangular": _TRIANGULAR_PRESET, "photovoltaic": _PHOTOVOLTAIC_PRESET}


# ---------------------------------------------------------------------------------- configuration
def load_config(source: str) -> tuple[dict, str]:
    """(validated config mapping, label) from a preset name or a TOML/JSON file path.

    The mapping is what result files record; :func:`parse_config` (or :class:`DesignRun`) turns it
    into a :class:`~hamdesign.config.DesignConfig`.
    """
    if source in PRESETS:
        cfg = copy.deepcopy(PRESETS[source])
        validate_config(cfg, f"preset {source}")
        return cfg, source
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{source}: no such config file or preset (presets: {', '.join(PRESETS)})")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            cfg = json.loads(text)
        else:
            import tomllib

            cfg = tomllib.loads(text)
    except ValueError as err:
        raise ConfigError(f"{source}: cannot parse: {err}") from err
    _model_beside_config(cfg, path)
    validate_config(cfg, str(source))
    return cfg, path.stem


def _model_beside_config(cfg: Any, path: Path) -> None:
    """A model file named relative to the config file (not found from here) is renamed relative to here."""
    model = cfg.get("model") if isinstance(cfg, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    if not isinstance(name, str) or Path(name).is_absolute() or Path(name).exists():
        return
    from .models import MODELS

    beside = path.parent / name
    if name not in MODELS and beside.exists():
        model["name"] = os.path.relpath(beside)


def validate_config(cfg: Any, where: str) -> DesignConfig:
    """Check keys, types and ranges of the mapping ``cfg`` (ConfigError naming ``where`` and the key); its DesignConfig."""
    return parse_config(cfg, where)


def build_parametrization(model, patterns: Iterable[tuple[str, ParamMap]]) -> Parametrization:
    """The Parametrization of (glob pattern, map) pairs (later patterns win; unmatched parameters are free)."""
    maps: dict[str, ParamMap] = {}
    for pattern, param_map in patterns:
        matched = [n for n in model.parameter_names if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            raise ConfigError(
                f"parameters.{pattern}: matches no parameter of model {model.name} ({', '.join(model.parameter_names[:12])}…)"
            )
        maps.update(dict.fromkeys(matched, param_map))
    return Parametrization.build(model, maps)


def temperature_schedule(spec: TemperatureSpec, energy_unit: str) -> Callable[[int], float]:
    """β(step) in inverse model energy units."""
    if spec.schedule == "cosine_log_beta":
        ramp = cosine_ramp(spec.start, spec.end, spec.ramp_steps)
        return lambda step: math.exp(ramp(step))
    if spec.schedule == "constant_beta":
        return lambda step: math.exp(spec.start)
    from .units import kelvin_to_energy

    kelvin = log_linear(spec.start_kelvin, spec.end_kelvin, spec.begin, spec.finish)
    return lambda step: 1.0 / kelvin_to_energy(kelvin(step), energy_unit)


def learning_rate_schedule(spec: LearningRate) -> Callable[[int], float]:
    """The learning rate at each step."""
    return piecewise(spec.values, spec.boundaries)


def make_optimizer(spec: OptimizerSpec):
    """The optimizer the spec names (RMSprop with its ``decay``)."""
    return OPTIMIZERS[spec.name](decay=spec.decay) if spec.name == "rmsprop" else OPTIMIZERS[spec.name]()


def _check_kelvin(config: DesignConfig, energy_unit: str, where: str) -> None:
    """Temperatures in kelvin need a model whose energy unit is physical (eV, meV, …, not t1)."""
    from .units import energy_in_j

    if energy_in_j(energy_unit) is not None:
        return
    for key, in_kelvin in (
        ("temperature.schedule", config.temperature.schedule == "log_linear_kelvin"),
        ("evaluation.kelvin", config.evaluation.kelvin is not None),
    ):
        if in_kelvin:
            message = f"kelvin cannot be converted to the model's dimensionless energy unit {energy_unit!r}"
            raise ConfigError(f"{where}: {key}: {message}")


def _perturbed(model, config: DesignConfig, where: str):
    """The model made designable by ``[perturbations]`` (orbital names from ``seedname.win`` beside the file)."""
    from .io.projections import read_orbital_labels
    from .io.wannier90 import beside, seed_of
    from .perturbations import build_perturbations, designable

    source = Path(config.model.name)
    labels = None
    if source.exists():
        seed = seed_of(source, "_tb.dat" if "_tb.dat" in source.name else "_hr.dat")
        win = beside(source, f"{seed}.win")
        if win is not None and "begin projections" in win.read_text().lower():
            labels = read_orbital_labels(win, model.norb)
    try:
        return designable(model, build_perturbations(config.perturbations, model, labels=labels))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


# ---------------------------------------------------------------------------------- running
class DesignRun:
    """A configured design problem: model, parametrization, objective, schedules.

    ``cfg`` is a configuration mapping (parsed here, errors naming ``label``) or a
    :class:`~hamdesign.config.DesignConfig`; ``run.config`` is the parsed one and ``run.cfg`` the
    mapping it came from (what result files and the run identity record).
    """

    def __init__(self, cfg: Any, *, label: str | None = None):
        from .io import load_model

        config = cfg if isinstance(cfg, DesignConfig) else parse_config(cfg, label or "configuration")
        self.config = config
        self.cfg = config.raw
        self.label = label or config.model.name  # preset name or config stem, for messages and result.json
        self.model = load_model(config.model.name, thickness=config.model.thickness)
        _check_kelvin(config, self.model.energy_unit, self.label)
        patterns = tuple(config.parameters)
        if config.perturbations is not None:
            self.model = _perturbed(self.model, config, self.label)
            from .perturbations import parameter_maps

            patterns = tuple(parameter_maps(self.model).items()) + patterns
        self.par = build_parametrization(self.model, patterns)
        self.nk = parse_nk(config.kmesh, self.model.dim)
        self.kfrac = make_kmesh(self.nk, self.model.dim)
        self.observable = config.objective.observable
        self.objective = OBJECTIVE_PATHS[self.observable].build(self)
        self.optimizer = make_optimizer(config.optimizer)
        self.learning_rate = learning_rate_schedule(config.optimizer.learning_rate)
        self.beta = temperature_schedule(config.temperature, self.model.energy_unit)
        self.steps = config.steps

    def initial_theta(self, seed: int) -> np.ndarray:
        """Random θ; for a perturbed model, the unperturbed one plus ``init_scale`` × a standard normal."""
        if self.config.perturbations is None:
            return self.par.initial(seed, scale=self.config.init_scale)
        start = self.par.from_physical(dict(zip(self.model.parameter_names, self.model.default_params, strict=True)))
        return start + self.config.init_scale * np.random.default_rng(seed).standard_normal(self.par.size)

    def identity(self, seed: int | None):
        """The :class:`~hamdesign.io.runfolder.RunIdentity` a result folder of this run records."""
        from .io.runfolder import RunIdentity

        return RunIdentity.of(self.cfg, seed=seed, design=self.label)

    def run(
        self,
        seed: int,
        *,
        out_dir: Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        on_step=None,
        steps: int | None = None,
    ):
        """Optimise from ``seed`` (or resume ``out_dir``'s checkpoint); returns the final DesignState.

        With ``out_dir`` the folder is locked for the run and must hold nothing but this run
        (:func:`~hamdesign.io.runfolder.claim_run_folder`): another run's files raise
        ResultFolderConflict unless ``overwrite``, a live run there raises ResultFolderLocked, and
        ``resume`` needs a checkpoint of this same configuration, model and seed.
        """
        if out_dir is None:
            if resume:
                raise NoCheckpointError("cannot resume without a result folder (out_dir)")
            return self._minimise(seed, state=None, checkpoint=None, on_step=on_step, steps=steps)
        from .io.runfolder import claim_run_folder

        out_dir = Path(out_dir)
        checkpoint = out_dir / "checkpoint.npz"
        with claim_run_folder(out_dir, self.identity(seed), resume=resume, overwrite=overwrite):
            state = None
            if resume:
                state, meta = load_checkpoint(checkpoint)
                if meta.get("backend") not in (None, _backend.current().name):
                    raise HamdesignError(
                        f"checkpoint in {out_dir} was written on {meta.get('backend')}; "
                        f"resume it with --backend {meta.get('backend')}"
                    )
            return self._minimise(seed, state=state, checkpoint=checkpoint, on_step=on_step, steps=steps)

    def _minimise(self, seed: int, *, state, checkpoint: Path | None, on_step, steps: int | None):
        return minimise(
            self.objective,
            self.initial_theta(seed),
            steps=steps or self.steps,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            beta=self.beta,
            state=state,
            checkpoint=checkpoint,
            checkpoint_every=self.config.checkpoint_every,
            meta={
                "seed": seed,
                "backend": _backend.current().name,
                "config": dict(self.cfg),
                "design": self.label,
                "run": self.identity(seed).to_dict(),
            },
            on_step=on_step,
            variable_names=self.par.variable_names,
        )

    def evaluation_beta(self) -> float:
        """β of the re-evaluation (``[evaluation]`` kelvin or beta) in inverse model energy units."""
        return self.config.evaluation.inverse_temperature(self.model.energy_unit)

    def evaluation_nk(self) -> tuple[int, ...] | int:
        """The k-mesh of the re-evaluation (``[evaluation] nk``, else the training mesh)."""
        nk = self.config.evaluation.nk
        return self.nk if nk is None else nk

    def physical(self, theta) -> np.ndarray:
        """The model's parameter vector (numpy) at design variables ``theta``."""
        return np.asarray(self.par.physical(np.asarray(theta, dtype=float)))

    def evaluate(self, theta: np.ndarray) -> dict:
        """Observables of the designed model re-evaluated at the evaluation β (see the observable's path).

        A model with classical spins (:func:`~hamdesign.models.spin_sites`) also reports its texture:
        the spin directions and :func:`texture_summary`.
        """
        from .models import spin_directions, spin_sites

        out = OBJECTIVE_PATHS[self.observable].evaluate(self, theta)
        if spin_sites(self.model):
            physical = self.par.physical_values(theta)
            spins = spin_directions(self.model, [physical[n] for n in self.model.parameter_names])
            out["spins"] = spins.tolist()
            out.update(texture_summary(spins))
        return out


# ---------------------------------------------------------------------------------- objectives
@dataclass(frozen=True)
class ObjectivePath:
    """How a run optimises one observable: ``build(run)`` is the objective f(θ, β) -> (loss, aux) that
    :func:`~hamdesign.optimize.minimise` descends, ``evaluate(run, θ)`` the re-evaluation for result.json."""

    build: Callable[[DesignRun], Callable]
    evaluate: Callable[[DesignRun, np.ndarray], dict]


def _goal_and_mu(run: DesignRun) -> dict:
    """mu, filling, goal and target: the keywords every objective factory takes."""
    obj = run.config.objective
    return {"mu": obj.mu, "filling": obj.filling, "goal": obj.goal, "target": obj.target}


def _hall_objective(run: DesignRun):
    from .objectives import hall_objective

    obj = run.config.objective
    return hall_objective(run.model, run.par, run.kfrac, **_goal_and_mu(run), gap_weight=obj.gap_weight, gap_min=obj.gap_min)


def _evaluate_hall(run: DesignRun, theta) -> dict:
    """σ_xy, Chern numbers and gaps at the evaluation β, and σ_xy at the final training β."""
    from .backend import use_backend
    from .observables.hall import chern_numbers_lattice, hall_report

    obj = run.config.objective
    with use_backend("numpy"):
        p = run.physical(theta)
        nk_eval = run.evaluation_nk()
        low_t = hall_report(run.model, p, nk_eval, beta=run.evaluation_beta(), mu=obj.mu, filling=obj.filling)
        final_beta = run.beta(run.steps - 1)
        train = hall_report(run.model, p, run.nk, beta=final_beta, mu=obj.mu, filling=obj.filling)
        lattice = chern_numbers_lattice(run.model, p, nk_eval) if run.model.dim == 2 else None
    return {
        "sigma_xy": low_t["sigma_xy"],
        "chern": low_t["chern"],
        "chern_lattice": None if lattice is None else [int(round(c)) for c in lattice],
        "gaps_above_band": low_t["gaps_above_band"],
        "mu": low_t["mu"],
        "beta": low_t["beta"],
        "nk": low_t["nk"],
        "sigma_xy_at_final_training_beta": train["sigma_xy"],
        "final_training_beta": final_beta,
        "units": low_t["units"],
        "conventions": low_t["conventions"],
    }


def _photocurrent_objective(run: DesignRun):
    from .objectives import photocurrent_objective

    opt = run.config.objective.options
    return photocurrent_objective(run.model, run.par, run.kfrac, **_goal_and_mu(run), **opt.keywords(), **opt.interband())


def _photocurrent_at(run: DesignRun, theta, beta: float, nk) -> dict:
    """The photocurrent report of the designed model at ``beta`` on an ``nk`` mesh."""
    from .backend import use_backend
    from .observables.photocurrent import photocurrent_report
    from .observables.shift import InterbandSettings

    obj = run.config.objective
    opt = obj.options
    with use_backend("numpy"):
        return photocurrent_report(
            run.model,
            run.physical(theta),
            nk,
            **opt.keywords(),
            beta=beta,
            mu=obj.mu,
            filling=obj.filling,
            interband=InterbandSettings(**opt.interband()),
        )


def _evaluate_photocurrent(run: DesignRun, theta) -> dict:
    return _photocurrent_at(run, theta, run.evaluation_beta(), run.evaluation_nk())


def _ahc_objective(run: DesignRun):
    from .objectives import ahc_objective

    obj = run.config.objective
    return ahc_objective(run.model, run.par, run.kfrac, **_goal_and_mu(run), **obj.options.keywords())


def _ahc_state(run: DesignRun, params: np.ndarray, levels: np.ndarray) -> dict:
    """AHC pseudovector (S/cm, in the strained crystal) at the objective's μ and on a μ scan, with ‖ΔH‖."""
    from .objectives import AHC_COMPONENTS
    from .observables.hall import HALL_DEGEN_THRESH, PLANES, anomalous_hall_conductivity
    from .perturbations import mu_shift_of, perturbation_norm_squared, strained_pseudovector
    from .spectrum import chemical_potential

    obj, opt = run.config.objective, run.config.objective.options
    beta, nk = run.evaluation_beta(), run.evaluation_nk()
    kfrac = make_kmesh(parse_nk(nk, run.model.dim), run.model.dim)
    settings = {
        "position_matrix": opt.position_matrix,
        "degen_thresh": HALL_DEGEN_THRESH if opt.degen_thresh is None else opt.degen_thresh,
    }
    if obj.filling is not None:
        from .spectrum import bands

        mu = float(chemical_potential(np.asarray(bands(run.model, params, kfrac)), filling=obj.filling, beta=beta))
    else:
        shift = mu_shift_of(run.model, params)
        mu = obj.mu + (0.0 if shift is None else float(shift))
    mus = np.concatenate([[mu], levels])
    sigma = np.asarray(anomalous_hall_conductivity(run.model, params, kfrac, beta=beta, mu=mus, **settings))
    sigma = np.asarray(strained_pseudovector(run.model, params, sigma))
    index = AHC_COMPONENTS[opt.component]
    return {
        "sigma_S_per_cm": dict(zip((f"sigma_{p}" for p in PLANES), map(float, sigma[0]), strict=True)),
        "sigma": float(sigma[0, index]),
        "mu": mu,
        "perturbation_norm": float(np.sqrt(perturbation_norm_squared(run.model, params))),
        "scan": sigma[1:, index].tolist(),
    }


def _evaluate_ahc(run: DesignRun, theta) -> dict:
    """σ of the starting model (``initial``: the perturbations at their DFT values) and of the design
    (``final``) at the evaluation β and mesh, with σ(μ) on a window around the objective's μ."""
    from .backend import use_backend

    opt = run.config.objective.options
    with use_backend("numpy"):
        final_params = run.physical(theta)
        centre = run.config.objective.mu
        if centre is None:
            centre = _ahc_state(run, run.model.default_params, np.zeros(0))["mu"]
        levels = np.linspace(centre - opt.scan_window, centre + opt.scan_window, opt.scan_points)
        initial = _ahc_state(run, run.model.default_params, levels)
        final = _ahc_state(run, final_params, levels)
    return {
        "component": f"sigma_{opt.component}",
        "sigma": final["sigma"],
        "initial": {k: v for k, v in initial.items() if k != "scan"},
        "final": {k: v for k, v in final.items() if k != "scan"},
        "scan": {"mu": levels.tolist(), "initial": initial["scan"], "final": final["scan"]},
        "beta": run.evaluation_beta(),
        "nk": list(parse_nk(run.evaluation_nk(), run.model.dim)),
        "units": {"sigma": "S/cm", "mu": run.model.energy_unit, "perturbation_norm": run.model.energy_unit},
        "position_matrix": opt.position_matrix,
    }


#: The build and evaluate functions of each observable of :data:`hamdesign.config.OBSERVABLES`.
OBJECTIVE_PATHS: dict[str, ObjectivePath] = {
    "sigma_xy": ObjectivePath(_hall_objective, _evaluate_hall),
    "photocurrent": ObjectivePath(_photocurrent_objective, _evaluate_photocurrent),
    "ahc": ObjectivePath(_ahc_objective, _evaluate_ahc),
}


def texture_summary(spins: np.ndarray) -> dict:
    """Net moment |m|, mean scalar chirality S_i·(S_{i+1}×S_{i+2}) and cone angle about m."""
    s = np.asarray(spins, dtype=float)
    chir = np.einsum("ij,ij->i", s, np.cross(np.roll(s, -1, axis=0), np.roll(s, -2, axis=0)))
    m = s.mean(axis=0)
    axis = m / np.linalg.norm(m) if np.linalg.norm(m) > 1e-12 else np.array([0.0, 0.0, 1.0])
    cone = np.degrees(np.arccos(np.clip(s @ axis, -1, 1)))
    return {"net_moment": float(np.linalg.norm(m)), "scalar_chirality": float(chir.mean()), "cone_angle_deg": float(cone.mean())}
