"""Maps from unbounded real design variables θ to a model's physical parameters p.

A :class:`Parametrization` assigns every model parameter one :class:`ParamMap`:

============  =========================================  ==================
map           physical value                              design variables
============  =========================================  ==================
``free``      p = θ                                       1
``bounded``   p = c + h·tanh(θ), c = (lo+hi)/2, h = (hi−lo)/2   1
``magnitude`` p = max·sigmoid(θ) ∈ (0, max)               1
``phase``     p = θ (an angle, reported modulo 2π)        1
``fixed``     p = value                                   0
============  =========================================  ==================

Parameters with the same ``tie`` label share one design variable (e.g. one |t2| for all
second-neighbour bonds). Classical spins are two ``phase`` maps (θ_i, φ_i) per site. The map is a
pure array function, so gradients flow from p back to θ on every backend; ``physical_values``
reports p for result files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import backend as _backend
from .errors import ParameterError
from .model import TightBinding

KINDS = ("free", "bounded", "magnitude", "phase", "fixed")


@dataclass(frozen=True)
class ParamMap:
    """How one physical parameter follows from a design variable."""

    kind: str = "free"
    low: float = -1.0
    high: float = 1.0
    max: float = 1.0
    value: float = 0.0
    tie: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ParameterError(f"unknown parameter map {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind == "bounded" and not self.low < self.high:
            raise ParameterError(f"bounded map needs low < high, got {self.low}, {self.high}")
        if self.kind == "magnitude" and not self.max > 0:
            raise ParameterError(f"magnitude map needs max > 0, got {self.max}")

    def inverse(self, p: float) -> float:
        """θ that gives the physical value ``p`` (clipped just inside open bounds)."""
        if self.kind == "bounded":
            c, h = 0.5 * (self.low + self.high), 0.5 * (self.high - self.low)
            return float(np.arctanh(np.clip((p - c) / h, -1 + 1e-12, 1 - 1e-12)))
        if self.kind == "magnitude":
            x = np.clip(p / self.max, 1e-12, 1 - 1e-12)
            return float(np.log(x / (1 - x)))
        return float(p)


FREE = ParamMap("free")


@dataclass(frozen=True, eq=False)
class Parametrization:
    """Design variables θ (flat, real) → physical parameters p of ``model``."""

    model: TightBinding
    maps: tuple[ParamMap, ...]
    variable_names: tuple[str, ...]
    _slot: tuple[int, ...] = field(repr=False)  # design-variable index per physical parameter (−1: fixed)

    @classmethod
    def build(cls, model: TightBinding, maps: Mapping[str, ParamMap] | None = None) -> Parametrization:
        """Assign maps by parameter name (unnamed parameters are ``free``)."""
        maps = dict(maps or {})
        unknown = [n for n in maps if n not in model.parameter_names]
        if unknown:
            raise ParameterError(
                f"parametrization names unknown parameters {unknown}; model {model.name} has {list(model.parameter_names)}"
            )
        per_param = tuple(maps.get(n, FREE) for n in model.parameter_names)
        slots, names, tie_slot, tie_map = [], [], {}, {}
        for name, pm in zip(model.parameter_names, per_param, strict=False):
            if pm.kind == "fixed":
                slots.append(-1)
                continue
            if pm.tie is not None:
                if pm.tie in tie_slot:
                    if tie_map[pm.tie] != pm:
                        raise ParameterError(f"parameters tied as {pm.tie!r} must share the same map")
                    slots.append(tie_slot[pm.tie])
                    continue
                tie_slot[pm.tie], tie_map[pm.tie] = len(names), pm
                names.append(pm.tie)
            else:
                names.append(name)
            slots.append(len(names) - 1)
        return cls(model=model, maps=per_param, variable_names=tuple(names), _slot=tuple(slots))

    @property
    def size(self) -> int:
        return len(self.variable_names)

    def physical(self, theta, /):
        """p(θ) as a backend array of length ``model.nparams`` (differentiable)."""
        be = _backend.current()
        xp = be.xp
        theta = be.asarray(np.asarray(theta, dtype=float)) if isinstance(theta, (np.ndarray, list, tuple)) else theta
        gathered = (
            xp.take(theta, be.asarray(np.array([max(s, 0) for s in self._slot], dtype=np.int64)), axis=0) if self.size else None
        )
        columns = []
        for n, (pm, slot) in enumerate(zip(self.maps, self._slot, strict=False)):
            if slot < 0:
                columns.append(be.asarray(np.array([pm.value], dtype=float)))
                continue
            t = gathered[n : n + 1]
            if pm.kind == "bounded":
                c, h = 0.5 * (pm.low + pm.high), 0.5 * (pm.high - pm.low)
                columns.append(c + h * xp.tanh(t))
            elif pm.kind == "magnitude":
                columns.append(pm.max * 0.5 * (1.0 + xp.tanh(0.5 * t)))  # max·sigmoid(θ), overflow-free
            else:
                columns.append(t)
        return xp.concat(columns, axis=0)

    def initial(self, seed: int, *, scale: float = 1.0) -> np.ndarray:
        """Random θ: standard normal × ``scale`` for amplitudes, uniform angles for phases."""
        rng = np.random.default_rng(seed)
        theta = np.zeros(self.size)
        kinds = {}
        for pm, slot in zip(self.maps, self._slot, strict=False):
            if slot >= 0:
                kinds[slot] = pm.kind
        for slot in range(self.size):
            theta[slot] = rng.uniform(-np.pi, np.pi) if kinds[slot] == "phase" else scale * rng.standard_normal()
        return theta

    def from_physical(self, values: Mapping[str, float]) -> np.ndarray:
        """θ reproducing given physical values (for starting a design from a known point)."""
        theta = np.zeros(self.size)
        for name, pm, slot in zip(self.model.parameter_names, self.maps, self._slot, strict=False):
            if slot >= 0 and name in values:
                theta[slot] = pm.inverse(float(values[name]))
        return theta

    def physical_values(self, theta) -> dict[str, float]:
        """{parameter name: physical value} at θ (NumPy; angles wrapped to (−π, π])."""
        from .backend import use_backend

        with use_backend("numpy"):
            p = np.asarray(self.physical(np.asarray(theta, dtype=float)))
        out = {}
        for name, pm, value in zip(self.model.parameter_names, self.maps, p, strict=False):
            out[name] = float(np.angle(np.exp(1j * value))) if pm.kind == "phase" else float(value)
        return out

    def describe(self) -> dict:
        """The maps as plain data for result files."""
        return {
            name: {k: v for k, v in vars(pm).items() if v is not None and (k in ("kind", "tie") or _relevant(pm.kind, k))}
            for name, pm in zip(self.model.parameter_names, self.maps, strict=False)
        }


def _relevant(kind: str, key: str) -> bool:
    return {"bounded": ("low", "high"), "magnitude": ("max",), "fixed": ("value",)}.get(kind, ()).__contains__(key)
