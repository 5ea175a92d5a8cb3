"""Inverse-design runs: configurations (presets or TOML), the run itself, result folders.

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
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import platform
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from . import backend as _backend
from .errors import ConfigError, HamdesignError, NoCheckpointError
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

_TOP_KEYS = {
    "model",
    "steps",
    "kmesh",
    "seeds",
    "init_scale",
    "parameters",
    "objective",
    "optimizer",
    "temperature",
    "evaluation",
    "checkpoint_every",
}
_MAP_KEYS = {"map", "low", "high", "max", "value", "tie"}
_OBJECTIVE_KEYS = {
    "observable",
    "goal",
    "target",
    "mu",
    "filling",
    "gap_weight",
    "gap_min",
    "spectrum",
    "direction",
    "polarisation",
    "parts",
    "tau",
    "sc_eta",
    "degen_thresh",
}
_OPTIMIZER_KEYS = {"name", "decay", "learning_rate"}
_TEMPERATURE_KEYS = {"schedule", "start", "end", "ramp_steps", "hold_steps", "start_kelvin", "end_kelvin", "begin", "finish"}
_SCHEDULES = ("cosine_log_beta", "constant_beta", "log_linear_kelvin")


# ---------------------------------------------------------------------------------- configuration
def load_config(source: str) -> tuple[dict, str]:
    """(validated config, label) from a preset name or a TOML/JSON file path."""
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
    validate_config(cfg, str(source))
    return cfg, path.stem


def _require(cond: bool, where: str, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {key}: {message}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_config(cfg: Mapping, where: str) -> None:
    """Check keys, types and ranges; the first problem raises ConfigError naming file and key."""
    _require(isinstance(cfg, Mapping), where, "(top level)", "expected a table")
    unknown = sorted(set(cfg) - _TOP_KEYS)
    _require(not unknown, where, unknown[0] if unknown else "", f"unknown key; allowed: {', '.join(sorted(_TOP_KEYS))}")
    for key in ("model", "objective", "optimizer", "temperature"):
        _require(key in cfg, where, key, "missing")
    model = cfg["model"]
    _require(
        isinstance(model, Mapping) and isinstance(model.get("name"), str),
        where,
        "model.name",
        "expected a built-in model name or a model file path",
    )
    _require(set(model) <= {"name", "thickness"}, where, "model", "allowed keys: name, thickness")
    steps = cfg.get("steps", 100)
    _require(
        isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= 10**6,
        where,
        "steps",
        f"expected an integer 1..1000000, got {steps!r}",
    )
    kmesh = cfg.get("kmesh", 60)
    ok = (isinstance(kmesh, int) and not isinstance(kmesh, bool) and kmesh >= 1) or (
        isinstance(kmesh, list)
        and 1 <= len(kmesh) <= 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in kmesh)
    )
    _require(ok, where, "kmesh", f"expected a positive integer or a list of 1-3 positive integers, got {kmesh!r}")
    seeds = cfg.get("seeds", [0])
    _require(
        isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds),
        where,
        "seeds",
        "expected a non-empty list of non-negative integers",
    )
    _require(
        _number(cfg.get("init_scale", 1.0)) and cfg.get("init_scale", 1.0) > 0, where, "init_scale", "expected a positive number"
    )
    params = cfg.get("parameters", {})
    _require(isinstance(params, Mapping), where, "parameters", "expected a table of pattern = {map = …}")
    for pattern, spec in params.items():
        key = f"parameters.{pattern}"
        _require(isinstance(spec, Mapping), where, key, 'expected a table like { map = "phase" }')
        bad = sorted(set(spec) - _MAP_KEYS)
        _require(not bad, where, f"{key}.{bad[0] if bad else ''}", f"unknown key; allowed: {', '.join(sorted(_MAP_KEYS))}")
        kind = spec.get("map", "free")
        _require(
            kind in ("free", "bounded", "magnitude", "phase", "fixed"),
            where,
            f"{key}.map",
            f"expected free, bounded, magnitude, phase or fixed, got {kind!r}",
        )
        for num in ("low", "high", "max", "value"):
            if num in spec:
                _require(_number(spec[num]), where, f"{key}.{num}", f"expected a finite number, got {spec[num]!r}")
        if kind == "bounded":
            _require(spec.get("low", -1.0) < spec.get("high", 1.0), where, key, "bounded map needs low < high")
        if kind == "magnitude":
            _require(spec.get("max", 1.0) > 0, where, f"{key}.max", "must be positive")
        if kind == "fixed":
            _require("value" in spec, where, f"{key}.value", "a fixed map needs a value")
    obj = cfg["objective"]
    _require(isinstance(obj, Mapping), where, "objective", "expected a table")
    bad = sorted(set(obj) - _OBJECTIVE_KEYS)
    _require(not bad, where, f"objective.{bad[0] if bad else ''}", f"unknown key; allowed: {', '.join(sorted(_OBJECTIVE_KEYS))}")
    _require(
        obj.get("observable") in ("sigma_xy", "photocurrent"),
        where,
        "objective.observable",
        f"expected sigma_xy or photocurrent, got {obj.get('observable')!r}",
    )
    _require(
        obj.get("goal", "maximize") in ("maximize", "minimize", "maximize_abs", "target"),
        where,
        "objective.goal",
        "expected maximize, minimize, maximize_abs or target",
    )
    if obj.get("observable") == "photocurrent":
        from .solar import SPECTRA

        _require(
            obj.get("spectrum", "blackbody5500") in SPECTRA, where, "objective.spectrum", f"expected one of {', '.join(SPECTRA)}"
        )
        _require(obj.get("direction", "x") in ("x", "y", "z"), where, "objective.direction", "expected x, y or z")
        _require(
            obj.get("polarisation", "along") in ("along", "unpolarised"),
            where,
            "objective.polarisation",
            "expected along or unpolarised",
        )
        _require(
            obj.get("parts", "both") in ("both", "shift", "injection"),
            where,
            "objective.parts",
            "expected both, shift or injection",
        )
        _require(
            _number(obj.get("tau", 1e-13)) and obj.get("tau", 1e-13) >= 0,
            where,
            "objective.tau",
            "expected a non-negative relaxation time in seconds",
        )
        for key in ("sc_eta", "degen_thresh"):
            value = obj.get(key, 0.0)
            _require(
                _number(value) and 0 <= value < float("inf"),
                where,
                f"objective.{key}",
                "expected a non-negative energy in the model's unit",
            )
    else:
        extra = sorted({"spectrum", "direction", "polarisation", "parts", "tau", "sc_eta", "degen_thresh"} & set(obj))
        _require(not extra, where, f"objective.{extra[0] if extra else ''}", "only for observable = photocurrent")
    if obj.get("goal") == "target":
        _require(_number(obj.get("target")), where, "objective.target", "goal = target needs a numeric target")
    _require(("mu" in obj) != ("filling" in obj), where, "objective", "give exactly one of mu or filling")
    if "filling" in obj:
        _require(
            _number(obj["filling"]) and 0 <= obj["filling"] <= 1,
            where,
            "objective.filling",
            f"expected a number in [0, 1], got {obj['filling']!r}",
        )
    if "mu" in obj:
        _require(_number(obj["mu"]), where, "objective.mu", f"expected a finite number, got {obj['mu']!r}")
    for num in ("gap_weight", "gap_min"):
        if num in obj:
            _require(_number(obj[num]) and obj[num] >= 0, where, f"objective.{num}", "expected a non-negative number")
    opt = cfg["optimizer"]
    _require(isinstance(opt, Mapping), where, "optimizer", "expected a table")
    bad = sorted(set(opt) - _OPTIMIZER_KEYS)
    _require(not bad, where, f"optimizer.{bad[0] if bad else ''}", f"unknown key; allowed: {', '.join(sorted(_OPTIMIZER_KEYS))}")
    _require(opt.get("name", "rmsprop") in OPTIMIZERS, where, "optimizer.name", f"expected one of {', '.join(OPTIMIZERS)}")
    if "decay" in opt:
        _require(_number(opt["decay"]) and 0 < opt["decay"] < 1, where, "optimizer.decay", "expected a number in (0, 1)")
    lr = opt.get("learning_rate", 0.1)
    if isinstance(lr, Mapping):
        vals, bounds = lr.get("values"), lr.get("boundaries", [])
        _require(
            isinstance(vals, list) and all(_number(v) and v > 0 for v in vals),
            where,
            "optimizer.learning_rate.values",
            "expected a list of positive numbers",
        )
        _require(
            isinstance(bounds, list) and len(bounds) == len(vals) - 1 and all(isinstance(b, int) for b in bounds),
            where,
            "optimizer.learning_rate.boundaries",
            "expected one integer step fewer than values",
        )
    else:
        _require(
            _number(lr) and lr > 0,
            where,
            "optimizer.learning_rate",
            f"expected a positive number or {{values, boundaries}}, got {lr!r}",
        )
    temp = cfg["temperature"]
    _require(isinstance(temp, Mapping), where, "temperature", "expected a table")
    bad = sorted(set(temp) - _TEMPERATURE_KEYS)
    _require(
        not bad, where, f"temperature.{bad[0] if bad else ''}", f"unknown key; allowed: {', '.join(sorted(_TEMPERATURE_KEYS))}"
    )
    _require(temp.get("schedule") in _SCHEDULES, where, "temperature.schedule", f"expected one of {', '.join(_SCHEDULES)}")
    for num in ("start", "end", "start_kelvin", "end_kelvin"):
        if num in temp:
            _require(_number(temp[num]), where, f"temperature.{num}", "expected a finite number")
    ev = cfg.get("evaluation", {})
    _require(
        isinstance(ev, Mapping) and set(ev) <= {"beta", "kelvin", "nk"}, where, "evaluation", "allowed keys: beta, kelvin, nk"
    )
    for num in ("beta", "kelvin"):
        if num in ev:
            _require(_number(ev[num]) and ev[num] > 0, where, f"evaluation.{num}", "expected a positive number")


def build_parametrization(model, spec: Mapping) -> Parametrization:
    """ParamMaps from glob patterns (later patterns win; unmatched parameters are free)."""
    maps: dict[str, ParamMap] = {}
    for pattern, entry in spec.items():
        matched = [n for n in model.parameter_names if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            raise ConfigError(
                f"parameters.{pattern}: matches no parameter of model {model.name} ({', '.join(model.parameter_names[:12])}…)"
            )
        kwargs = {k: v for k, v in entry.items() if k != "map"}
        for name in matched:
            maps[name] = ParamMap(entry.get("map", "free"), **kwargs)
    return Parametrization.build(model, maps)


def temperature_schedule(cfg: Mapping, energy_unit: str) -> Callable[[int], float]:
    """β(step) in inverse model energy units."""
    kind = cfg["schedule"]
    if kind == "cosine_log_beta":
        ramp = cosine_ramp(cfg.get("start", -2.0), cfg.get("end", -1.0), cfg.get("ramp_steps", 100))
        return lambda step: math.exp(ramp(step))
    if kind == "constant_beta":
        return lambda step: math.exp(cfg.get("start", 0.0))
    from .units import kelvin_to_energy

    kelvin = log_linear(
        cfg.get("start_kelvin", 30000.0), cfg.get("end_kelvin", 300.0), cfg.get("begin", 100), cfg.get("finish", 350)
    )
    return lambda step: 1.0 / kelvin_to_energy(kelvin(step), energy_unit)


def learning_rate_schedule(cfg: Mapping) -> Callable[[int], float]:
    lr = cfg.get("learning_rate", 0.1)
    if isinstance(lr, Mapping):
        return piecewise(lr["values"], lr.get("boundaries", []))
    return lambda step: float(lr)


# ---------------------------------------------------------------------------------- running
class DesignRun:
    """A configured design problem: model, parametrization, objective, schedules."""

    def __init__(self, cfg: Mapping, *, label: str | None = None):
        from .io import load_model
        from .objectives import hall_objective, photocurrent_objective

        self.cfg = cfg
        self.label = label or str(cfg["model"]["name"])  # preset name or config stem, for messages and result.json
        self.model = load_model(cfg["model"]["name"], thickness=cfg["model"].get("thickness"))
        self.par = build_parametrization(self.model, cfg.get("parameters", {}))
        self.nk = parse_nk(cfg.get("kmesh", 60) if not isinstance(cfg.get("kmesh"), list) else cfg["kmesh"], self.model.dim)
        self.kfrac = make_kmesh(self.nk, self.model.dim)
        obj = cfg["objective"]
        self.observable = obj["observable"]
        if self.observable == "photocurrent":
            self.objective = photocurrent_objective(
                self.model,
                self.par,
                self.kfrac,
                spectrum=obj.get("spectrum", "blackbody5500"),
                direction=obj.get("direction", "x"),
                polarisation=obj.get("polarisation", "along"),
                parts=obj.get("parts", "both"),
                tau=obj.get("tau", 1e-13),
                mu=obj.get("mu"),
                filling=obj.get("filling"),
                **_interband_keys(obj),
                goal=obj.get("goal", "maximize_abs"),
                target=obj.get("target"),
            )
        else:
            self.objective = hall_objective(
                self.model,
                self.par,
                self.kfrac,
                mu=obj.get("mu"),
                filling=obj.get("filling"),
                goal=obj.get("goal", "maximize"),
                target=obj.get("target"),
                gap_weight=obj.get("gap_weight", 0.0),
                gap_min=obj.get("gap_min", 0.0),
            )
        opt = cfg["optimizer"]
        name = opt.get("name", "rmsprop")
        self.optimizer = OPTIMIZERS[name](decay=opt.get("decay", 0.99)) if name == "rmsprop" else OPTIMIZERS[name]()
        self.learning_rate = learning_rate_schedule(opt)
        self.beta = temperature_schedule(cfg["temperature"], self.model.energy_unit)
        self.steps = cfg.get("steps", 100)

    def initial_theta(self, seed: int) -> np.ndarray:
        return self.par.initial(seed, scale=self.cfg.get("init_scale", 1.0))

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
            checkpoint_every=self.cfg.get("checkpoint_every", 10),
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
        ev = self.cfg.get("evaluation", {})
        if "kelvin" in ev:
            from .units import kelvin_to_energy

            return 1.0 / kelvin_to_energy(ev["kelvin"], self.model.energy_unit)
        return ev.get("beta", 200.0)

    def evaluate(self, theta: np.ndarray) -> dict:
        """Observables of the designed model re-evaluated at the evaluation β (and the final training β)."""
        if self.observable == "photocurrent":
            return self._evaluate_photocurrent(theta)
        from .backend import use_backend
        from .observables.hall import chern_numbers_lattice, hall_report

        ev = self.cfg.get("evaluation", {})
        obj = self.cfg["objective"]
        with use_backend("numpy"):
            p = np.asarray(self.par.physical(np.asarray(theta, dtype=float)))
            nk_eval = ev.get("nk", self.nk)
            low_t = hall_report(self.model, p, nk_eval, beta=ev.get("beta", 200.0), mu=obj.get("mu"), filling=obj.get("filling"))
            final_beta = self.beta(self.steps - 1)
            train = hall_report(self.model, p, self.nk, beta=final_beta, mu=obj.get("mu"), filling=obj.get("filling"))
            lattice = chern_numbers_lattice(self.model, p, nk_eval) if self.model.dim == 2 else None
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


def _photocurrent_at(run: DesignRun, theta, beta: float, nk) -> dict:
    from .backend import use_backend
    from .observables.photocurrent import photocurrent_report
    from .observables.shift import InterbandSettings

    obj = run.cfg["objective"]
    with use_backend("numpy"):
        p = np.asarray(run.par.physical(np.asarray(theta, dtype=float)))
        return photocurrent_report(
            run.model,
            p,
            nk,
            spectrum=obj.get("spectrum", "blackbody5500"),
            direction=obj.get("direction", "x"),
            polarisation=obj.get("polarisation", "along"),
            parts=obj.get("parts", "both"),
            tau=obj.get("tau", 1e-13),
            beta=beta,
            mu=obj.get("mu"),
            filling=obj.get("filling"),
            interband=InterbandSettings(**_interband_keys(obj)),
        )


def _interband_keys(objective: dict) -> dict:
    """The objective's sc_eta and degen_thresh where given (the observables' defaults otherwise)."""
    return {key: float(objective[key]) for key in ("sc_eta", "degen_thresh") if key in objective}


def _evaluate_photocurrent(self: DesignRun, theta) -> dict:
    from .models import spin_directions

    ev = self.cfg.get("evaluation", {})
    beta = self.evaluation_beta()
    out = _photocurrent_at(self, theta, beta, ev.get("nk", self.nk))
    if self.model.name == "kondo_chain":
        physical = self.par.physical_values(theta)
        spins = spin_directions(self.model, [physical[n] for n in self.model.parameter_names])
        out["spins"] = spins.tolist()
        out.update(texture_summary(spins))
    return out


DesignRun._evaluate_photocurrent = _evaluate_photocurrent


def texture_summary(spins: np.ndarray) -> dict:
    """Net moment |m|, mean scalar chirality S_i·(S_{i+1}×S_{i+2}) and cone angle about m."""
    s = np.asarray(spins, dtype=float)
    chir = np.einsum("ij,ij->i", s, np.cross(np.roll(s, -1, axis=0), np.roll(s, -2, axis=0)))
    m = s.mean(axis=0)
    axis = m / np.linalg.norm(m) if np.linalg.norm(m) > 1e-12 else np.array([0.0, 0.0, 1.0])
    cone = np.degrees(np.arccos(np.clip(s @ axis, -1, 1)))
    return {"net_moment": float(np.linalg.norm(m)), "scalar_chirality": float(chir.mean()), "cone_angle_deg": float(cone.mean())}


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
    from .io.runfolder import RunIdentity, claim_run_folder

    identity = RunIdentity.of(run.cfg, seed=seed, design=label)
    # same_length=False: a resumed run may have been extended past an earlier result's steps
    with claim_run_folder(out_dir, identity, overwrite=overwrite, same_length=False):
        return _write_result(run, state, Path(out_dir), seed=seed, label=label, identity=identity, figures=figures)


def _write_result(run: DesignRun, state, out_dir: Path, *, seed: int, label: str, identity, figures: bool = True) -> dict:
    import io as _io

    from .io import atomic_write_bytes, atomic_write_text, write_model_file, write_tb_dat

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
        "run": identity.to_dict(),
        "versions": provenance(),
    }
    buffer = _io.BytesIO()
    np.savez(buffer, **history)
    atomic_write_bytes(out_dir / "history.npz", buffer.getvalue())
    params = run.model.params_from(physical)
    write_model_file(run.model.with_structure(default_params=params), out_dir / "model.toml")
    write_tb_dat(run.model, out_dir / "model_tb.dat", params=params)
    drawn = []
    try:
        from .plotting import plot_history

        if figures:  # a large ensemble may skip them: a figure can take longer than a small run
            drawn.append(str(plot_history(history, out_dir / "history.png", title=f"{label} design, seed {seed}")))
    except ImportError:  # matplotlib missing: results are complete without figures
        pass
    result["figures"] = drawn
    atomic_write_text(out_dir / "result.json", json.dumps(result, indent=2, default=_json_default))
    return result


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def headline(result: dict) -> tuple[str, float]:
    """The design's headline number: ("sigma_xy", e²/h) or ("current_density", A/m²)."""
    ev = result["evaluation"]
    return ("current_density", ev["current_density"]) if "current_density" in ev else ("sigma_xy", ev["sigma_xy"])
