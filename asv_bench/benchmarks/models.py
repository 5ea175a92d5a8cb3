"""Every stage across the four benchmark models and three mesh sizes: the grid of ``hamdesign.bench``.

Models: ``haldane`` (2 bands, 2D), ``triangular`` (4 bands, 2D), ``kondo_chain`` (24 bands, 1D)
and ``random3d16`` (16 orbitals, 3D, complex hoppings, no symmetry), each at the k-meshes of
``hamdesign.bench.GRID_MESHES``. Stages: H(k) construction, ``eigh``, σ_xy value and
value-and-gradient, the 200-ω shift spectrum, the photocurrent value-and-gradient and one design
step (``hamdesign.bench.grid_case`` says which apply to which model; asv skips the others).
``hamdesign bench --grid --size S`` prints one size of the same grid as a table.
"""

from __future__ import annotations

from hamdesign.bench import GRID_MESHES, GRID_SIZES, GRID_STAGES, grid_case

from .common import BACKENDS, block, require

MODELS = list(GRID_MESHES)
SIZES = list(GRID_SIZES)
MEMORY_STAGES = ["hall_value_and_grad", "shift_spectrum", "photocurrent_value_and_grad"]


def _build(bench, backend: str, model: str, stage: str, size: str) -> None:
    """Compile and warm up the case; NotImplementedError (asv: skip) where it does not apply."""
    from hamdesign.backend import use_backend

    be = require(backend)
    case = grid_case(stage, model, size)
    if case is None:
        raise NotImplementedError(f"{stage} does not apply to {model}")
    if case.needs_grad and not be.can_differentiate:
        raise NotImplementedError(f"{backend} does not differentiate")
    if stage == "design_step" and size != "small":
        raise NotImplementedError("a design step uses its preset's own mesh: timed once, at size 'small'")
    with use_backend(be):
        bench.fn, bench.args = case.build(be)
        block(be, bench.fn(*bench.args))
    bench.be = be


def _run(bench) -> None:
    from hamdesign.backend import use_backend

    with use_backend(bench.be):
        block(bench.be, bench.fn(*bench.args))


class Stages:
    """Steady-state time of one stage (compiled in setup for jax)."""

    params = (BACKENDS, MODELS, list(GRID_STAGES), SIZES)
    param_names = ["backend", "model", "stage", "size"]
    timeout = 600

    def setup(self, backend, model, stage, size):
        _build(self, backend, model, stage, size)

    def time_stage(self, backend, model, stage, size):
        _run(self)


class PeakMemory:
    """Peak resident memory of the heavy stages at the largest mesh."""

    params = (BACKENDS, MODELS, MEMORY_STAGES)
    param_names = ["backend", "model", "stage"]
    timeout = 900

    def setup(self, backend, model, stage):
        _build(self, backend, model, stage, "large")

    def peakmem_stage(self, backend, model, stage):
        _run(self)
