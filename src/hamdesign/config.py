"""Design configurations, parsed once into frozen dataclasses.

A configuration is a nested mapping (a preset, a TOML or JSON file, or a mapping built by code,
such as a ``--sweep`` point); :func:`parse_config` checks all of it and returns a
:class:`DesignConfig`. Every default lives on a field here, once, and every problem is one
:class:`~hamdesign.errors.ConfigError` naming the source and the dotted key
(``my.toml: objective.goal: expected one of maximize, …, got 'biggest'``).

Each section is a frozen dataclass whose fields say how their key is read (:func:`option`,
:func:`section`); :func:`parse_table` reads any such class: unknown keys are refused, each key is
checked and converted, and the class's ``__post_init__`` adds checks across keys (raising
:class:`InvalidKey` with the key it blames). Extending the format:

- a new section is one dataclass of :func:`option` fields plus one field of :class:`DesignConfig`,
  e.g. ``perturbations: PerturbationsSpec = section(PerturbationsSpec)``;
- a new objective observable is one entry of :data:`OBSERVABLES` (its default goal and, if it takes
  keys of its own in ``[objective]``, the dataclass of those keys) plus its build and evaluate
  functions in :data:`hamdesign.design.OBJECTIVE_PATHS`.

``DesignConfig.raw`` keeps the mapping as given: result files and the run identity (the content
hash of :mod:`hamdesign.io.runfolder`) are made from it, so adding a default never changes them.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError
from .optimize import OPTIMIZERS
from .parametrize import KINDS, ParamMap
from .solar import SPECTRA

Check = Callable[[Any], Any]  # a key's raw value -> its parsed value, or raise InvalidKey


class InvalidKey(ConfigError):
    """A problem with the key at ``path`` (keys from the table being read down); :func:`parse_config` adds the rest."""

    def __init__(self, message: str, *path: str):
        super().__init__(message)
        self.message = message
        self.path = path

    def under(self, key: str) -> InvalidKey:
        """The same problem seen from the table that holds ``key``."""
        return InvalidKey(self.message, key, *self.path)

    def __str__(self) -> str:
        return f"{'.'.join(self.path)}: {self.message}" if self.path else self.message


# ---------------------------------------------------------------------------------- field declarations
def option(default: Any = MISSING, check: Check | None = None, *, key: str | None = None) -> Any:
    """A dataclass field read from configuration key ``key`` (default: the field's name) by ``check``.

    Without a default the key is required.
    """
    meta = {"check": check, "key": key}
    return field(metadata=meta) if default is MISSING else field(default=default, metadata=meta)


def section(cls: type, *, required: bool = False) -> Any:
    """A field holding the sub-table read into ``cls`` by :func:`parse_table` (absent: ``cls()``, unless ``required``)."""
    meta = {"check": functools.partial(parse_table, cls), "key": None}
    return field(metadata=meta) if required else field(default_factory=cls, metadata=meta)


@functools.cache
def config_keys(cls: type) -> dict[str, Field]:
    """{configuration key: field} of a section class (fields without a check are not keys)."""
    return {f.metadata.get("key") or f.name: f for f in fields(cls) if f.metadata.get("check")}


def parse_table(cls: type, raw: Any) -> Any:
    """An instance of the section class ``cls`` read from the table ``raw``; InvalidKey on the first problem."""
    if not isinstance(raw, Mapping):
        raise InvalidKey("expected a table")
    readers = config_keys(cls)
    unknown = sorted(map(str, set(raw) - set(readers)))
    if unknown:
        raise InvalidKey(f"unknown key; allowed: {', '.join(sorted(readers))}", unknown[0])
    values = {}
    for key, f in readers.items():
        if key in raw:
            try:
                values[f.name] = f.metadata["check"](raw[key])
            except InvalidKey as err:
                raise err.under(key) from None
        elif f.default is MISSING and f.default_factory is MISSING:
            raise InvalidKey("missing", key)
    return cls(**values)


# ---------------------------------------------------------------------------------- checks
def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def integer(low: int, high: int | None = None) -> Check:
    """An integer in low..high (no upper bound without ``high``)."""

    def check(x):
        if _is_int(x) and x >= low and (high is None or x <= high):
            return x
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidKey(f"expected an integer {span}, got {x!r}")

    return check


def real(what: str = "a finite number", ok: Callable[[float], bool] = lambda x: True) -> Check:
    """A finite number (int or float, not bool) for which ``ok`` holds, as a float; ``what`` describes it."""

    def check(x):
        if _is_number(x) and ok(x):
            return float(x)
        raise InvalidKey(f"expected {what}, got {x!r}")

    return check


FINITE = real()
POSITIVE = real("a positive number", lambda x: x > 0)
NON_NEGATIVE = real("a non-negative number", lambda x: x >= 0)
ENERGY = real("a non-negative energy in the model's unit", lambda x: x >= 0)


def one_of(names: Collection[str]) -> Check:
    """One of ``names`` (read when checking, so a name registered later counts)."""

    def check(x):
        if isinstance(x, str) and x in names:
            return x
        raise InvalidKey(f"expected one of {', '.join(names)}, got {x!r}")

    return check


def text(what: str) -> Check:
    """A string (``what`` says what it names)."""

    def check(x):
        if isinstance(x, str):
            return x
        raise InvalidKey(f"expected {what}, got {x!r}")

    return check


def table(what: str) -> Check:
    """A table (mapping), kept as given (``what`` says what it holds)."""

    def check(x):
        if isinstance(x, Mapping):
            return copy.deepcopy(dict(x))
        raise InvalidKey(f"expected {what}, got {x!r}")

    return check


def kmesh_sizes(x: Any) -> int | tuple[int, ...]:
    """A k-mesh: one positive integer, or 1–3 of them (a tuple)."""
    if _is_int(x) and x >= 1:
        return x
    if isinstance(x, (list, tuple)) and 1 <= len(x) <= 3 and all(_is_int(n) and n >= 1 for n in x):
        return tuple(x)
    raise InvalidKey(f"expected a positive integer or a list of 1-3 positive integers, got {x!r}")


def seed_list(x: Any) -> tuple[int, ...]:
    """A non-empty list of non-negative integers."""
    if isinstance(x, (list, tuple)) and x and all(_is_int(s) and s >= 0 for s in x):
        return tuple(x)
    raise InvalidKey("expected a non-empty list of non-negative integers")


# ---------------------------------------------------------------------------------- sections
@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """``model``: a built-in model name or a model file path; ``thickness`` for bulk numbers of 1D/2D models."""

    name: str = option(check=text("a built-in model name or a model file path"))
    thickness: float | None = option(None, POSITIVE)


_MAP_DEFAULTS = ParamMap()


@dataclass(frozen=True, kw_only=True)
class ParamMapSpec:
    """One ``pattern = { map = …, … }`` entry of ``[parameters]``; absent numbers take ParamMap's defaults."""

    kind: str = option(_MAP_DEFAULTS.kind, one_of(KINDS), key="map")
    low: float = option(_MAP_DEFAULTS.low, FINITE)
    high: float = option(_MAP_DEFAULTS.high, FINITE)
    max: float = option(_MAP_DEFAULTS.max, FINITE)
    value: float | None = option(None, FINITE)  # required by a fixed map
    tie: str | None = option(None, text("a label shared by the tied parameters"))

    def __post_init__(self):
        if self.kind == "bounded" and not self.low < self.high:
            raise InvalidKey("bounded map needs low < high")
        if self.kind == "magnitude" and not self.max > 0:
            raise InvalidKey("must be positive", "max")
        if self.kind == "fixed" and self.value is None:
            raise InvalidKey("a fixed map needs a value", "value")

    def param_map(self) -> ParamMap:
        """The :class:`~hamdesign.parametrize.ParamMap` it describes."""
        value = _MAP_DEFAULTS.value if self.value is None else self.value
        return ParamMap(self.kind, low=self.low, high=self.high, max=self.max, value=value, tie=self.tie)


def parameter_maps(raw: Any) -> tuple[tuple[str, ParamMap], ...]:
    """``[parameters]``: (glob pattern, map) in the file's order (later patterns win)."""
    if not isinstance(raw, Mapping):
        raise InvalidKey("expected a table of pattern = {map = …}")
    out = []
    for pattern, entry in raw.items():
        try:
            out.append((str(pattern), parse_table(ParamMapSpec, entry).param_map()))
        except InvalidKey as err:
            raise err.under(str(pattern)) from None
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class PhotocurrentOptions:
    """The ``[objective]`` keys of ``observable = "photocurrent"`` (see :func:`hamdesign.photocurrent`)."""

    spectrum: str = option("blackbody5500", one_of(SPECTRA))
    direction: str = option("x", one_of(("x", "y", "z")))
    polarisation: str = option("along", one_of(("along", "unpolarised")))
    parts: str = option("both", one_of(("both", "shift", "injection")))
    tau: float = option(1e-13, real("a non-negative relaxation time in seconds", lambda x: x >= 0))
    sc_eta: float | None = option(None, ENERGY)  # None: the observable's own default
    degen_thresh: float | None = option(None, ENERGY)

    def keywords(self) -> dict[str, Any]:
        """spectrum, direction, polarisation, parts and tau: keyword arguments of the observable."""
        return {key: getattr(self, key) for key in ("spectrum", "direction", "polarisation", "parts", "tau")}

    def interband(self) -> dict[str, float]:
        """The interband knobs the configuration sets (keyword arguments of the observable)."""
        return {key: getattr(self, key) for key in ("sc_eta", "degen_thresh") if getattr(self, key) is not None}


@dataclass(frozen=True, kw_only=True)
class AhcOptions:
    """The ``[objective]`` keys of ``observable = "ahc"``: the bulk AHC of a 3D model in S/cm.

    ``component`` is the Hall plane (σ_yz, σ_zx or σ_xy); ``penalty_weight`` multiplies ‖ΔH‖² (eV²,
    see :func:`~hamdesign.perturbations.perturbation_norm_squared`); ``scan_window``/``scan_points``
    set the σ(μ) scan (μ ± window) recorded before and after the design.
    """

    component: str = option("xy", one_of(("yz", "zx", "xy")))
    penalty_weight: float = option(0.0, NON_NEGATIVE)
    position_matrix: str = option("diagonal", one_of(("diagonal", "full")))
    degen_thresh: float | None = option(None, ENERGY)
    scan_window: float = option(1.0, POSITIVE)
    scan_points: int = option(201, integer(2, 100_000))

    def keywords(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~hamdesign.objectives.ahc_objective`."""
        return {k: getattr(self, k) for k in ("component", "penalty_weight", "position_matrix", "degen_thresh")}


@dataclass(frozen=True)
class Observable:
    """What the parser knows of an objective's observable: its default goal and the class of its own keys."""

    default_goal: str
    options: type | None = None


#: The observables a design can optimise; :data:`hamdesign.design.OBJECTIVE_PATHS` has the same names.
OBSERVABLES: dict[str, Observable] = {
    "sigma_xy": Observable("maximize"),
    "photocurrent": Observable("maximize_abs", PhotocurrentOptions),
    "ahc": Observable("maximize", AhcOptions),
}
GOALS = ("maximize", "minimize", "maximize_abs", "target")


@dataclass(frozen=True, kw_only=True)
class ObjectiveSpec:
    """``[objective]``: the observable, the goal, the chemical potential, and the observable's own options.

    ``goal`` defaults to the observable's (:data:`OBSERVABLES`); ``options`` is an instance of the
    observable's options class (None for an observable without keys of its own).
    """

    observable: str = option(check=one_of(OBSERVABLES))
    goal: str | None = option(None, one_of(GOALS))
    target: float | None = option(None, FINITE)
    mu: float | None = option(None, FINITE)
    filling: float | None = option(None, real("a number in [0, 1]", lambda x: 0 <= x <= 1))
    gap_weight: float = option(0.0, NON_NEGATIVE)
    gap_min: float = option(0.0, NON_NEGATIVE)
    options: Any = None

    def __post_init__(self):
        kind = OBSERVABLES[self.observable]
        if self.goal is None:
            object.__setattr__(self, "goal", kind.default_goal)
        if self.options is None and kind.options is not None:
            object.__setattr__(self, "options", kind.options())
        if self.goal == "target" and self.target is None:
            raise InvalidKey("goal = target needs a numeric target", "target")
        if (self.mu is None) == (self.filling is None):
            raise InvalidKey("give exactly one of mu or filling")


def objective_spec(raw: Any) -> ObjectiveSpec:
    """``[objective]``: the common keys, then the keys of the chosen observable's options class."""
    if not isinstance(raw, Mapping):
        raise InvalidKey("expected a table")
    owners: dict[str, list[str]] = {}  # option key -> the observables that take it
    for name, kind in OBSERVABLES.items():
        for key in config_keys(kind.options) if kind.options else ():
            owners.setdefault(key, []).append(name)
    allowed = set(config_keys(ObjectiveSpec)) | set(owners)
    unknown = sorted(map(str, set(raw) - allowed))
    if unknown:
        raise InvalidKey(f"unknown key; allowed: {', '.join(sorted(allowed))}", unknown[0])
    spec = parse_table(ObjectiveSpec, {k: v for k, v in raw.items() if k not in owners})
    kind = OBSERVABLES[spec.observable]
    own = set(config_keys(kind.options)) if kind.options else set()
    misplaced = sorted(set(raw) & set(owners) - own)
    if misplaced:
        raise InvalidKey(f"only for observable = {' or '.join(owners[misplaced[0]])}", misplaced[0])
    if kind.options is None:
        return spec
    return replace(spec, options=parse_table(kind.options, {k: v for k, v in raw.items() if k in own}))


def _positive_list(x: Any) -> tuple[float, ...]:
    if isinstance(x, (list, tuple)) and x and all(_is_number(v) and v > 0 for v in x):
        return tuple(float(v) for v in x)
    raise InvalidKey("expected a list of positive numbers")


def _step_list(x: Any) -> tuple[int, ...]:
    if isinstance(x, (list, tuple)) and all(_is_int(b) for b in x):
        return tuple(x)
    raise InvalidKey("expected one integer step fewer than values")


@dataclass(frozen=True, kw_only=True)
class LearningRate:
    """``values[0]`` before step ``boundaries[0]``, ``values[1]`` from there, …; one number: constant."""

    values: tuple[float, ...] = option(check=_positive_list)
    boundaries: tuple[int, ...] = option((), _step_list)

    def __post_init__(self):
        if len(self.boundaries) != len(self.values) - 1:
            raise InvalidKey("expected one integer step fewer than values", "boundaries")


def learning_rate(x: Any) -> LearningRate:
    """``learning_rate``: a positive number or a table ``{values, boundaries}``."""
    if isinstance(x, Mapping):
        return parse_table(LearningRate, x)
    if _is_number(x) and x > 0:
        return LearningRate(values=(float(x),))
    raise InvalidKey(f"expected a positive number or {{values, boundaries}}, got {x!r}")


@dataclass(frozen=True, kw_only=True)
class OptimizerSpec:
    """``[optimizer]``: rmsprop (with ``decay``) or adam, and the learning-rate schedule."""

    name: str = option("rmsprop", one_of(OPTIMIZERS))
    decay: float = option(0.99, real("a number in (0, 1)", lambda x: 0 < x < 1))  # rmsprop only
    learning_rate: LearningRate = option(LearningRate(values=(0.1,)), learning_rate)


SCHEDULE_DEFAULTS: dict[str, dict[str, float | int]] = {
    "cosine_log_beta": {"start": -2.0, "end": -1.0, "ramp_steps": 100},
    "constant_beta": {"start": 0.0},
    "log_linear_kelvin": {"start_kelvin": 30000.0, "end_kelvin": 300.0, "begin": 100, "finish": 350},
}


@dataclass(frozen=True, kw_only=True)
class TemperatureSpec:
    """``[temperature]``: the annealing schedule; absent keys take the schedule's defaults (:data:`SCHEDULE_DEFAULTS`).

    ``cosine_log_beta``: ln β from ``start`` to ``end`` on a cosine over ``ramp_steps``, then ``end``;
    ``constant_beta``: ln β = ``start``; ``log_linear_kelvin``: ``start_kelvin`` until ``begin``,
    geometric to ``end_kelvin`` at ``finish``, then constant. ``hold_steps`` is accepted and unused.
    """

    schedule: str = option(check=one_of(SCHEDULE_DEFAULTS))
    start: float | None = option(None, FINITE)
    end: float | None = option(None, FINITE)
    ramp_steps: int | None = option(None, integer(1))
    hold_steps: int | None = option(None, integer(0))
    start_kelvin: float | None = option(None, POSITIVE)
    end_kelvin: float | None = option(None, POSITIVE)
    begin: int | None = option(None, integer(0))
    finish: int | None = option(None, integer(0))

    def __post_init__(self):
        for key, value in SCHEDULE_DEFAULTS[self.schedule].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if self.schedule == "log_linear_kelvin" and not self.finish > self.begin:
            raise InvalidKey(f"must be after begin ({self.begin}), got {self.finish}", "finish")


@dataclass(frozen=True, kw_only=True)
class EvaluationSpec:
    """``[evaluation]``: the re-evaluation of the designed model (``kelvin``, if given, wins over ``beta``)."""

    beta: float = option(200.0, POSITIVE)
    kelvin: float | None = option(None, POSITIVE)
    nk: int | tuple[int, ...] | None = option(None, kmesh_sizes)  # None: the training mesh

    def inverse_temperature(self, energy_unit: str) -> float:
        """β in inverse ``energy_unit``."""
        if self.kelvin is None:
            return self.beta
        from .units import kelvin_to_energy

        return 1.0 / kelvin_to_energy(self.kelvin, energy_unit)


@dataclass(frozen=True, kw_only=True)
class DesignConfig:
    """A whole design configuration; build it with :func:`parse_config` (``raw`` is the mapping it was read from)."""

    model: ModelSpec = section(ModelSpec, required=True)
    steps: int = option(100, integer(1, 10**6))
    kmesh: int | tuple[int, ...] = option(60, kmesh_sizes)
    seeds: tuple[int, ...] = option((0,), seed_list)
    init_scale: float = option(1.0, NON_NEGATIVE)  # std of the random initial θ (0: start at the model's values)
    checkpoint_every: int = option(10, integer(1))
    parameters: tuple[tuple[str, ParamMap], ...] = option((), parameter_maps)
    objective: ObjectiveSpec = option(check=objective_spec)
    optimizer: OptimizerSpec = section(OptimizerSpec, required=True)
    temperature: TemperatureSpec = section(TemperatureSpec, required=True)
    evaluation: EvaluationSpec = section(EvaluationSpec)
    #: ``[perturbations]`` of a wannier90 model, checked against the model when the run is built
    #: (:func:`hamdesign.perturbations.build_perturbations`); None: the model's own parameters.
    perturbations: Mapping | None = option(None, table("a table of perturbations (shift, field, exchange, strain, mu_shift)"))
    raw: Mapping = field(default_factory=dict, repr=False, compare=False)


def parse_config(raw: Any, where: str = "configuration") -> DesignConfig:
    """The :class:`DesignConfig` of the mapping ``raw``; the first problem raises ConfigError ``"{where}: {key}: …"``.

    Also the check of a mapping edited after loading (a ``--sweep`` point): parse it again.
    The error's ``key`` attribute is the dotted key (``"(top level)"`` when ``raw`` is not a table).
    """
    try:
        config = parse_table(DesignConfig, raw)
    except InvalidKey as err:
        key = ".".join(err.path) or "(top level)"
        error = ConfigError(f"{where}: {key}: {err.message}")
        error.key = key
        raise error from None
    return replace(config, raw=copy.deepcopy(dict(raw)))
