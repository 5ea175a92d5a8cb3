"""The design loop: optimizers written once against the array API, schedules, checkpoints.

Optimizers follow optax's contract: a pair of pure functions ``init(θ) -> state`` and
``update(grad, state, θ, lr) -> (new θ, new state)`` on backend arrays, so the same arithmetic runs
on jax, torch and autograd and the trajectories agree to rounding.

RMSprop (decay ρ = 0.99, ε = 1e-8), as in the original work::

    ν ← ρ ν + (1 − ρ) g²,     θ ← θ − lr · g / √(ν + ε)

Adam (β1 = 0.9, β2 = 0.999, ε = 1e-8)::

    m ← β1 m + (1 − β1) g,  ν ← β2 ν + (1 − β2) g²,  θ ← θ − lr · m̂ / (√ν̂ + ε)

Both *minimise* the loss; objectives that maximise return the negative.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import backend as _backend
from .errors import HamdesignError, ParameterError


class NonFiniteError(HamdesignError):
    """NaN or inf appeared in the objective or its gradient; the last good checkpoint is kept."""


# ---------------------------------------------------------------------------------- optimizers
class OptimizerState(NamedTuple):
    count: object
    mu: object
    nu: object


@dataclass(frozen=True)
class Optimizer:
    """``init(θ)`` and ``update(g, state, θ, lr)`` as pure array functions."""

    name: str
    init: Callable
    update: Callable


def rmsprop(decay: float = 0.99, eps: float = 1e-8) -> Optimizer:
    """RMSprop: ν ← ρν + (1−ρ)g², θ ← θ − lr·g/√(ν+ε)."""

    def init(theta):
        zero = 0.0 * theta
        return OptimizerState(0, zero, zero)

    def update(grad, state, theta, lr):
        xp = _backend.current().xp
        nu = decay * state.nu + (1.0 - decay) * grad * grad
        return theta - lr * grad / xp.sqrt(nu + eps), OptimizerState(state.count + 1, state.mu, nu)

    return Optimizer("rmsprop", init, update)


def adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction."""

    def init(theta):
        zero = 0.0 * theta
        return OptimizerState(0, zero, zero)

    def update(grad, state, theta, lr):
        xp = _backend.current().xp
        count = state.count + 1
        mu = b1 * state.mu + (1.0 - b1) * grad
        nu = b2 * state.nu + (1.0 - b2) * grad * grad
        mu_hat = mu / (1.0 - b1**count)
        nu_hat = nu / (1.0 - b2**count)
        return theta - lr * mu_hat / (xp.sqrt(nu_hat) + eps), OptimizerState(count, mu, nu)

    return Optimizer("adam", init, update)


OPTIMIZERS = {"rmsprop": rmsprop, "adam": adam}


# ---------------------------------------------------------------------------------- schedules
def piecewise(values: Sequence[float], boundaries: Sequence[int]) -> Callable[[int], float]:
    """values[0] before boundaries[0], values[1] from there until boundaries[1], …"""
    if len(values) != len(boundaries) + 1:
        raise ParameterError("a piecewise schedule needs one more value than boundaries")

    def schedule(step: int) -> float:
        index = sum(1 for b in boundaries if step >= b)
        return float(values[index])

    return schedule


def cosine_ramp(start: float, end: float, steps: int) -> Callable[[int], float]:
    """start + (end − start)(1 − cos(π i/steps))/2 for i < steps, then end."""
    if steps <= 0:
        raise ParameterError("a cosine ramp needs a positive number of steps")

    def schedule(step: int) -> float:
        if step >= steps:
            return float(end)
        return float(start + (end - start) * 0.5 * (1.0 - math.cos(math.pi * step / steps)))

    return schedule


def log_linear(start: float, end: float, begin: int, finish: int) -> Callable[[int], float]:
    """start until ``begin``, then geometric interpolation to ``end`` at ``finish``, then end."""
    if not (start > 0 and end > 0 and finish > begin):
        raise ParameterError("a log-linear schedule needs positive values and finish > begin")

    def schedule(step: int) -> float:
        if step <= begin:
            return float(start)
        if step >= finish:
            return float(end)
        frac = (step - begin) / (finish - begin)
        return float(math.exp(math.log(start) + frac * (math.log(end) - math.log(start))))

    return schedule


# ---------------------------------------------------------------------------------- the loop
@dataclass
class DesignState:
    """Everything needed to continue a run: step, θ, optimizer state, history so far."""

    step: int
    theta: np.ndarray
    opt_count: int
    opt_mu: np.ndarray
    opt_nu: np.ndarray
    history: dict[str, list] = field(default_factory=dict)


def save_checkpoint(path: Path, state: DesignState, meta: dict) -> None:
    """Write the state atomically (temporary file + rename): a kill mid-write keeps the old one."""
    import io as _io

    from .io.atomic import atomic_write_bytes

    buffer = _io.BytesIO()
    arrays = {f"history__{k}": np.asarray(v) for k, v in state.history.items()}
    np.savez(
        buffer,
        step=state.step,
        theta=state.theta,
        opt_count=state.opt_count,
        opt_mu=state.opt_mu,
        opt_nu=state.opt_nu,
        meta=json.dumps(meta),
        **arrays,
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[DesignState, dict]:
    from .errors import ParameterError as _PE

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise _PE(f"{path}: cannot read checkpoint ({err})") from err
    history = {k[len("history__") :]: data[k].tolist() for k in data.files if k.startswith("history__")}
    state = DesignState(
        step=int(data["step"]),
        theta=np.array(data["theta"], dtype=float),
        opt_count=int(data["opt_count"]),
        opt_mu=np.array(data["opt_mu"], dtype=float),
        opt_nu=np.array(data["opt_nu"], dtype=float),
        history=history,
    )
    return state, json.loads(str(data["meta"]))


def minimise(
    objective: Callable,
    theta0: np.ndarray,
    *,
    steps: int,
    optimizer: Optimizer,
    learning_rate: Callable[[int], float],
    beta: Callable[[int], float],
    state: DesignState | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 10,
    meta: dict | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    variable_names: Sequence[str] = (),
) -> DesignState:
    """Run ``steps`` optimizer steps of ``objective(θ, β) -> (loss, aux)`` from θ0 (or ``state``).

    ``aux`` is a dict of scalars/arrays recorded in the history each step with the loss, β and the
    learning rate. The gradient is taken on the active backend (jit where it has one). A NaN or inf
    in the loss or gradient raises :class:`NonFiniteError` naming the step and the variables, after
    the last good state has been checkpointed.
    """
    be = _backend.current()
    if not be.can_differentiate:
        raise ParameterError(f"designing needs gradients; the {be.name} backend has none (use jax, torch or autograd)")
    step_fn = be.jit(be.value_and_grad(objective, has_aux=True))
    if state is None:
        state = DesignState(
            0, np.asarray(theta0, dtype=float), 0, np.zeros_like(theta0, dtype=float), np.zeros_like(theta0, dtype=float), {}
        )
    theta = be.asarray(state.theta)
    opt_state = OptimizerState(state.opt_count, be.asarray(state.opt_mu), be.asarray(state.opt_nu))
    history = {k: list(v) for k, v in state.history.items()}
    meta = meta or {}

    def snapshot(step: int) -> DesignState:
        return DesignState(
            step,
            be.to_numpy(theta).copy(),
            int(opt_state.count),
            be.to_numpy(opt_state.mu).copy(),
            be.to_numpy(opt_state.nu).copy(),
            {k: list(v) for k, v in history.items()},
        )

    for step in range(state.step, steps):
        b = beta(step)
        lr = learning_rate(step)
        t0 = time.perf_counter()
        (loss, aux), grad = step_fn(theta, be.asarray(b))
        loss_np = float(be.to_numpy(loss))
        grad_np = be.to_numpy(grad)
        if not (np.isfinite(loss_np) and np.all(np.isfinite(grad_np))):
            if checkpoint is not None:
                save_checkpoint(checkpoint, snapshot(step), meta)
            bad = [variable_names[i] if i < len(variable_names) else str(i) for i in np.nonzero(~np.isfinite(grad_np))[0]]
            where = "objective" if not np.isfinite(loss_np) else f"gradient (variables {', '.join(bad[:8])})"
            raise NonFiniteError(
                f"non-finite {where} at step {step} (beta={b:g}); last good state kept"
                + (f" in {checkpoint}" if checkpoint else "")
            )
        record = {"loss": loss_np, "beta": b, "learning_rate": lr, "seconds": 0.0}
        record.update({k: be.to_numpy(v).tolist() for k, v in aux.items()})
        theta, opt_state = optimizer.update(grad, opt_state, theta, lr)
        record["seconds"] = time.perf_counter() - t0
        for k, v in record.items():
            history.setdefault(k, []).append(v)
        if on_step is not None:
            on_step(step, record)
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            save_checkpoint(checkpoint, snapshot(step + 1), meta)
    return snapshot(steps)
