"""Shared fixtures: one parametrised ``backend`` fixture yielding adapter modules.

A backend whose framework is missing is skipped, unless HAMDESIGN_REQUIRE_ALL_BACKENDS=1 (set by
.ci/run), in which case the test fails: CI must exercise every backend. Optional modules (reference
codes, optional dependencies) go through :func:`require_module`, which follows the same rule; the
suite has no ``pytest.importorskip``, which would skip silently in CI too.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hamdesign.backends import FRAMEWORK_MODULE

import numpy as np
from hamdesign.backend import use_backend

AUTODIFF = ("jax", "torch", "autograd")
ALL = AUTODIFF + ("numpy",)
REQUIRE_ALL = os.environ.get("HAMDESIGN_REQUIRE_ALL_BACKENDS", "0") == "1"
# Reference data of the original work, inside the repository so that a bare clone tests itself (tests/data/README.md).
DATA = Path(__file__).resolve().parent / "data"


def _unavailable(what: str, detail: str = "") -> None:
    """Skip for a missing ``what`` locally; fail where every backend and reference code is required (CI)."""
    if REQUIRE_ALL:
        pytest.fail(f"{what} is not installed but HAMDESIGN_REQUIRE_ALL_BACKENDS=1{detail}", pytrace=False)
    pytest.skip(f"{what} not installed{detail}", allow_module_level=True)


def require_module(name: str) -> ModuleType:
    """Import ``name``, or skip the test (the whole file if called at import time) where it is missing.

    Under HAMDESIGN_REQUIRE_ALL_BACKENDS=1 a missing module fails instead: at module level that is a
    collection error, so a file of cross-checks against a reference code cannot vanish from CI.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        _unavailable(name, f" ({err})")
        raise  # unreachable: _unavailable raises


def _enter(name: str):
    if importlib.util.find_spec(FRAMEWORK_MODULE[name]) is None:
        _unavailable(f"backend {name}")
    return use_backend(name)


@contextlib.contextmanager
def preserved_backend_state() -> Iterator[None]:
    """Undo what an in-process CLI call leaves behind: ``--backend`` (``set_backend``) and ``--device``.

    Both are process-wide: ``set_backend`` replaces the process default backend, ``--device`` writes
    HAMDESIGN_DEVICE into the environment.
    """
    from hamdesign import backend

    saved, device = list(backend._default), os.environ.get("HAMDESIGN_DEVICE")
    try:
        yield
    finally:
        backend._default[:] = saved
        if device is None:
            os.environ.pop("HAMDESIGN_DEVICE", None)
        else:
            os.environ["HAMDESIGN_DEVICE"] = device


@pytest.fixture(autouse=True)
def _restore_global_backend():
    """Every test leaves the active backend and device as it found them, so the order of tests does not matter.

    Without it a test that invokes the Typer app with ``--backend torch`` would leave every later test
    of the session on torch, and results would depend on the order the tests run in.
    """
    with preserved_backend_state():
        yield


@pytest.fixture(params=[pytest.param(n, marks=getattr(pytest.mark, n)) for n in ALL])
def backend(request):
    """Every backend (numpy included): for forward values."""
    with _enter(request.param) as be:
        yield be


@pytest.fixture(params=[pytest.param(n, marks=getattr(pytest.mark, n)) for n in AUTODIFF])
def ad_backend(request):
    """Every backend that differentiates."""
    with _enter(request.param) as be:
        yield be


@pytest.fixture
def numpy_backend():
    with use_backend("numpy") as be:
        yield be


def on_backend(name: str):
    """Context manager for tests that compare backends explicitly."""
    return _enter(name)


def value_and_grad_on(name: str, f, x: np.ndarray):
    """(value, grad) of f at x on backend ``name``, as NumPy."""
    with _enter(name) as be:
        v, g = be.value_and_grad(f)(be.asarray(x))
        return float(be.to_numpy(v)), be.to_numpy(g)


def central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient of a scalar NumPy-valued f, evaluated on the numpy backend."""
    with use_backend("numpy"):
        out = np.zeros_like(x)
        for i in range(len(x)):
            e = np.zeros_like(x)
            e[i] = h
            out[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return out


def wannierberri_ahc_of_file(tb_dat: Path, *, nk: int, mus, external: bool, mp_grid=None) -> np.ndarray:
    """WannierBerri's AHC (S/cm, (nμ, 3)) of a ``_tb.dat`` file on a Γ-centred nk³ mesh at T = 0.

    ``mp_grid`` applies the MDRS translations (``do_ws_dist``); ``external`` adds the off-diagonal
    position-matrix terms. ``mus`` must be evenly spaced (WannierBerri bins the levels on that grid;
    an uneven grid gives wrong numbers without a warning), or a single level. Run it in a scratch
    directory: WannierBerri writes files beside it.
    """
    wannierberri = require_module("wannierberri")
    from wannierberri import calculators

    system = wannierberri.system.System_R.from_tb_dat(tb_file=str(tb_dat), berry=True, silent=True)
    if mp_grid is not None:
        system.do_ws_dist(mp_grid=mp_grid, ws_dist_tol=1e-5)
    grid = wannierberri.Grid(system, NKdiv=1, NKFFT=(nk, nk, nk), use_symmetry=False)
    calc = {"ahc": calculators.static.AHC(Efermi=np.asarray(mus), save_mode="none", kwargs_formula={"external_terms": external})}
    result = wannierberri.run(
        system, grid, calc, parallel=False, use_irred_kpt=False, symmetrize=False, print_progress_step_time=1e9
    )
    return result.results["ahc"].data * 0.01  # S/m → S/cm


def random_model(
    norb: int = 3,
    *,
    dim: int = 2,
    seed: int = 0,
    nshell: int = 1,
    onsite_scale: float = 1.0,
    onsite_spread: float = 0.0,
    hop_scale: float = 0.5,
    spin_degenerate: bool = False,
):
    """A random complex-hopping model (no symmetry) with every bond a named parameter pair.

    Hoppings to all R with |R_i| <= nshell; each bond t = a_b + i c_b with parameters a_b, c_b.
    On-site energies: ``onsite_spread · i`` plus Gaussian noise of width ``onsite_scale``.
    ``spin_degenerate``: every orbital twice (orbitals 2i, 2i+1, same position, same bonds, no
    coupling between the copies), so every band is exactly twice degenerate for every parameter value.
    """
    from itertools import product

    from hamdesign.lattice import Lattice
    from hamdesign.model import TightBinding

    rng = np.random.default_rng(seed)
    vecs = np.eye(dim) + 0.2 * rng.standard_normal((dim, dim))
    lattice = Lattice(vecs)
    positions = rng.uniform(0, 1, (norb, dim))
    params: dict[str, float] = {}
    hops = []
    for i in range(norb):
        params[f"e{i}"] = onsite_spread * i + onsite_scale * rng.standard_normal()
        hops.append((i, i, (0,) * dim, f"e{i}"))
    for R in product(range(-nshell, nshell + 1), repeat=dim):
        for i in range(norb):
            for j in range(norb):
                key = (i, j, R)
                partner = (j, i, tuple(-r for r in R))
                if (i == j and not any(R)) or partner < key:
                    continue
                name = f"h{len(hops)}"
                params[name + "r"], params[name + "i"] = hop_scale * rng.standard_normal(2) / (1 + sum(abs(r) for r in R))
                hops.append((i, j, R, f"{name}r"))
                hops.append((i, j, R, f"1j*{name}i"))
    if spin_degenerate:
        positions = np.repeat(positions, 2, axis=0)
        hops = [(2 * i + s, 2 * j + s, R, a) for i, j, R, a in hops for s in (0, 1)]
    suffix = "_spin" if spin_degenerate else ""
    return TightBinding.build(lattice, positions, hops, params, name=f"random{norb}_{dim}d_{seed}{suffix}")


def strict_adapter():
    """A forward-only backend on ``array_api_strict``: runs the physics with no NumPy habits allowed."""
    from types import SimpleNamespace

    from hamdesign.backends import eager_while_loop

    strict = require_module("array_api_strict")
    return SimpleNamespace(
        name="array_api_strict",
        xp=strict,
        device=strict.asarray(0.0).device,
        asarray=lambda x, dtype=None: strict.asarray(np.asarray(x), dtype=dtype),
        to_numpy=lambda x: np.asarray(x),
        eigh=lambda h: tuple(strict.linalg.eigh(h)),
        matmul=strict.matmul,
        while_loop=eager_while_loop,
        stop_gradient=lambda x: x,
        sequence_after=lambda x, previous: x,
        rematerialize=lambda fn: fn,
        can_differentiate=False,
        can_compile=False,
        chunk_bytes=64 * 2**20,
    )
