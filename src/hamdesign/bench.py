"""Speed comparison across the installed backends (``hamdesign bench``).

Two sets of cases: :data:`CASES`, six headline cases (Hall, shift current, photocurrent, one
design step per preset), and the grid of :func:`grid_cases`, every stage (H(k), ``eigh``, σ_xy
value and value-and-gradient, shift spectrum, photocurrent value-and-gradient, one design step)
across the four benchmark models of :data:`GRID_MESHES` at one mesh size. asv_bench/ runs the same
grid at all three sizes.

Each case is timed after a warm-up call (compilation for jax), as the median of ``repeat`` runs;
the warm-up time is reported separately. Only the public API is used, so the numbers are what a
user gets. :func:`default_summary` says which backend a user gets for a case without flags and how
far it is from the fastest: forward-only cases are one-off evaluations (``hamdesign evaluate``),
costed by a fresh process's start-up on the backend plus their first call; gradient cases are
repeated (design steps), costed by the median.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    needs_grad: bool
    build: Callable  # (backend) -> (fn, args)
    mesh: str = ""  # the grid's model and k-mesh, e.g. "haldane 30×30 k"


def _hall_case(nk: int) -> Case:
    def build(be):
        import hamdesign as hd
        from hamdesign.models import haldane

        model, k = haldane(M=0.1, phi=1.0), hd.kmesh(nk, 2)
        fn = be.jit(be.value_and_grad(lambda p: hd.sigma_xy(model, p, k, beta=5.0, filling=0.5)))
        return fn, (be.asarray(model.default_params),)

    return Case(f"hall_vg_haldane_{nk}x{nk}", f"σ_xy value+gradient, Haldane, {nk}×{nk} k, μ at half filling", True, build)


def _shift_case(nk: int) -> Case:
    def build(be):
        import hamdesign as hd
        from hamdesign.models import hbn

        model, k = hbn(), hd.kmesh(nk, 2)
        omega = np.linspace(0.5, 8.0, 200)
        fn = be.jit(
            lambda p: hd.shift_conductivity(model, p, k, omega, components="yyy", beta=100.0, filling=0.5, eta=0.05).sigma
        )
        return fn, (be.asarray(model.default_params),)

    return Case(f"shift_hbn_{nk}x{nk}", f"shift-current spectrum σ^yyy (200 ω), hBN, {nk}×{nk} k", False, build)


def _photocurrent_case(nk: int) -> Case:
    def build(be):
        import hamdesign as hd
        from hamdesign.models import kondo_chain

        model, k = kondo_chain(), hd.kmesh(nk, 1)
        fn = be.jit(be.value_and_grad(lambda p: hd.photocurrent(model, p, k, beta=38.68, filling=0.5)["total"]))
        return fn, (be.asarray(model.default_params),)

    return Case(f"photocurrent_vg_kondo24_{nk}k", f"solar photocurrent value+gradient, 24-band chain, {nk} k", True, build)


def _design_step_case(preset: str) -> Case:
    def build(be):
        from hamdesign.design import DesignRun, load_config

        run = DesignRun(load_config(preset)[0])
        step = be.jit(be.value_and_grad(run.objective, has_aux=True))
        return step, (be.asarray(run.initial_theta(0)), be.asarray(run.beta(0)))

    return Case(
        f"design_step_{preset}", f"one design step (objective + gradient) of the {preset} preset (its own mesh)", True, build
    )


CASES: tuple[Case, ...] = (
    _hall_case(100),
    _shift_case(100),
    _photocurrent_case(64),
    _design_step_case("haldane"),
    _design_step_case("triangular"),
    _design_step_case("photovoltaic"),
)


# ------------------------------------------------------------------------------ the model grid
#: k-mesh per benchmark model and size (points per direction; the models are 2D, 2D, 1D and 3D).
GRID_MESHES: dict[str, dict[str, int]] = {
    "haldane": {"small": 30, "medium": 100, "large": 200},
    "triangular": {"small": 24, "medium": 48, "large": 96},
    "kondo_chain": {"small": 64, "medium": 256, "large": 1024},
    "random3d16": {"small": 4, "medium": 8, "large": 12},
}
GRID_SIZES = ("small", "medium", "large")
GRID_STAGES = (
    "hamiltonian",
    "eigh",
    "hall_value",
    "hall_value_and_grad",
    "shift_spectrum",
    "photocurrent_value_and_grad",
    "design_step",
)
#: The design preset whose model each benchmark model is (the design-step stage).
PRESET_OF_MODEL = {"haldane": "haldane", "triangular": "triangular", "kondo_chain": "photovoltaic"}
#: Photon energies of the shift-spectrum stage, in the model's energy unit.
GRID_OMEGA = np.linspace(0.05, 4.0, 200)


def random3d16(seed: int = 0):
    """A 16-orbital cubic model (eV, Å) with random on-site energies and complex first-neighbour hoppings.

    No symmetry: every tensor component is non-zero, and nothing can be skipped.
    """
    return random_cubic(16, seed=seed)


def random_cubic(norb: int, *, seed: int = 0):
    """An ``norb``-orbital cubic model (eV, Å), named ``random3d<norb>``: random on-site energies, random
    complex first-neighbour hoppings (each present with probability 0.3), random orbital positions."""
    from .lattice import Lattice
    from .model import TightBinding

    rng = np.random.default_rng(seed)
    params, hops = {}, []
    for i in range(norb):
        params[f"e{i}"] = float(rng.normal())
        hops.append((i, i, (0, 0, 0), f"e{i}"))
    for i in range(norb):
        for j in range(norb):
            for R in ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)):
                if (R == (0, 0, 0) and j <= i) or rng.uniform() < 0.7:
                    continue
                name = f"t{i}_{j}_{''.join(map(str, R))}"
                params[name], params[f"a_{name}"] = float(rng.normal(scale=0.5)), float(rng.uniform(-3, 3))
                hops.append((i, j, R, f"{name}*exp(i*a_{name})"))
    lattice = Lattice(3.0 * np.eye(3))
    return TightBinding.build(
        lattice, rng.uniform(0, 1, size=(norb, 3)), hops, params, name=f"random3d{norb}", energy_unit="eV", length_unit="Å"
    )


def grid_model(name: str):
    """A benchmark model by name: a built-in model, or :func:`random3d16`."""
    from .models import get_model

    return random3d16() if name == "random3d16" else get_model(name)


def grid_case(stage: str, model_name: str, size: str) -> Case | None:
    """The benchmark of ``stage`` on ``model_name`` at ``size``, or None where the stage does not apply.

    σ_xy needs a 2D or 3D model; the photocurrent needs a model in eV and Å; the design step exists
    for the models of the presets (:data:`PRESET_OF_MODEL`) and does not depend on ``size``.
    """
    import hamdesign as hd

    nk = GRID_MESHES[model_name][size]
    model = grid_model(model_name)
    label = f"{model_name} {'×'.join([str(nk)] * model.dim)} k"
    k = hd.kmesh(nk, model.dim)
    start = model.default_params
    name = f"{stage}:{model_name}"

    def params(be):
        return (be.asarray(start),)

    def case(description: str, needs_grad: bool, build) -> Case:
        return Case(name, f"{description}, {label}", needs_grad, build, mesh=label)

    if stage == "hamiltonian":
        return case("H(k)", False, lambda be: (be.jit(lambda p: hd.hamiltonian(model, p, k)), params(be)))
    if stage == "eigh":
        return case("eigh of H(k)", False, lambda be: (be.jit(be.eigh), (hd.hamiltonian(model, be.asarray(start), k),)))
    if stage in ("hall_value", "hall_value_and_grad"):
        if model.dim < 2:
            return None

        def hall(p):
            return hd.sigma_xy(model, p, k, beta=5.0, filling=0.5)

        if stage == "hall_value":
            return case("σ_xy at half filling", False, lambda be: (be.jit(hall), params(be)))
        return case("σ_xy value + gradient", True, lambda be: (be.jit(be.value_and_grad(hall)), params(be)))
    if stage == "shift_spectrum":
        component = "yyy" if model.dim == 2 else "xxx"

        def spectrum(p):
            return hd.shift_conductivity(model, p, k, GRID_OMEGA, components=component, beta=38.68, filling=0.5, eta=0.05).sigma

        return case(f"shift spectrum σ^{component} (200 ω)", False, lambda be: (be.jit(spectrum), params(be)))
    if stage == "photocurrent_value_and_grad":
        if (model.energy_unit, model.length_unit) != ("eV", "Å"):
            return None

        def current(p):
            return hd.photocurrent(model, p, k, beta=38.68, filling=0.5)["total"]

        return case("solar photocurrent value + gradient", True, lambda be: (be.jit(be.value_and_grad(current)), params(be)))
    if stage == "design_step":
        preset = PRESET_OF_MODEL.get(model_name)
        if preset is None:
            return None
        step = _design_step_case(preset)
        return Case(name, step.description, True, step.build, mesh=f"{model_name}, `{preset}` preset's mesh")
    raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(GRID_STAGES)}")


def grid_cases(size: str = "small", *, stages=GRID_STAGES, models=tuple(GRID_MESHES)) -> list[Case]:
    """Every applicable (stage, model) case at ``size``, stage by stage."""
    if size not in GRID_SIZES:
        raise ValueError(f"size must be one of {', '.join(GRID_SIZES)}, got {size!r}")
    cases = (grid_case(stage, model, size) for stage in stages for model in models)
    return [c for c in cases if c is not None]


def _block(be, out):
    while isinstance(out, (tuple, list, dict)):
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return be.to_numpy(out)


def is_one_off(case: Case) -> bool:
    """Whether ``case`` stands for a one-off evaluation (forward only), as ``hamdesign evaluate`` runs it."""
    return not case.needs_grad


def start_up_s(backend: str) -> float:
    """Seconds a fresh process takes to import hamdesign's CLI and load ``backend`` (its framework's
    import), as every ``hamdesign`` run pays it; measured in a subprocess so that no backend inherits
    another's imports."""
    code = (
        "import time; t0 = time.perf_counter(); import hamdesign.cli; from hamdesign.backend import get_backend; "
        f"get_backend({backend!r}); print(time.perf_counter() - t0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def user_cost(row: dict, *, one_off: bool) -> float | None:
    """What the case costs a user on that row's backend: a one-off pays the start-up (``start_up_s``,
    0 where not measured) and its first call (compilation included), as a ``hamdesign evaluate`` run
    does; a repeated call (a design step) its steady-state median."""
    if row["median_s"] is None:
        return None
    return (row.get("start_up_s") or 0.0) + row["warmup_s"] if one_off else row["median_s"]


def default_summary(case: Case, rows: list[dict]) -> dict:
    """The backend a user gets for ``case`` without flags (:func:`hamdesign.backend.default_backend_name`),
    its cost (:func:`user_cost`) and the ratio to the fastest benchmarked backend (None where the default
    was not benchmarked)."""
    from .backend import default_backend_name

    one_off = is_one_off(case)
    default = default_backend_name(one_off=one_off)
    costs = {r["backend"]: user_cost(r, one_off=one_off) for r in rows if r["case"] == case.name}
    costs = {name: cost for name, cost in costs.items() if cost is not None}
    fastest = min(costs, key=costs.__getitem__) if costs else None
    ratio = costs[default] / costs[fastest] if default in costs else None
    return {
        "case": case.name,
        "one_off": one_off,
        "default": default,
        "default_cost_s": costs.get(default),
        "fastest": fastest,
        "ratio_to_fastest": ratio,
    }


def run_benchmarks(backends: list[str], *, repeat: int = 5, cases=CASES, progress=None, start_up: bool = False) -> list[dict]:
    """Rows {case, backend, start_up_s, warmup_s, median_s, min_s} (None times where a backend cannot run a case).

    ``start_up_s`` (:func:`start_up_s`, once per backend) only with ``start_up``, else None.
    """
    from .backend import get_backend, use_backend

    rows = []
    loaded = {name: get_backend(name) for name in backends}  # a bad name is a BackendError before any subprocess
    started = {name: start_up_s(name) if start_up else None for name in backends}
    for case in cases:
        for name in backends:
            be = loaded[name]
            row = {
                "case": case.name,
                "description": case.description,
                "backend": name,
                "start_up_s": started[name],
                "warmup_s": None,
                "median_s": None,
                "min_s": None,
            }
            if case.needs_grad and not be.can_differentiate:
                rows.append(row)
                continue
            with use_backend(be):
                fn, args = case.build(be)
                t0 = time.perf_counter()
                _block(be, fn(*args))
                row["warmup_s"] = time.perf_counter() - t0
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    _block(be, fn(*args))
                    times.append(time.perf_counter() - t0)
            row["median_s"], row["min_s"] = statistics.median(times), min(times)
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows
