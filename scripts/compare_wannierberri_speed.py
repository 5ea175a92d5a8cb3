"""Shift-current throughput of hamdesign (every backend) against WannierBerri on the same model and mesh.

Both codes evaluate the same Γ-centred quadrature of σ^{abc}(ω) (see tests/test_wannierberri.py):
the model is written with :func:`hamdesign.io.wannier90.write_tb_dat`, read by WannierBerri
(``System_R.from_tb_dat``) and integrated on ``Grid(NKdiv=1, NKFFT=mesh)`` with ``ShiftCurrent``;
hamdesign integrates over ``kmesh(N, dim)``. Same μ, k_BT, Lorentzian η and ω grid; the spectra are
checked to agree (max |Δ| / max |σ_WB| < --rtol) before any number is reported.

Timed: WannierBerri ``wannierberri.run(...)`` (Fourier transform to k, diagonalisation, formula,
ω/μ sum; the system file and the grid are built outside the timer). It has no option to restrict
``ShiftCurrent`` to one component and always builds all 27 σ^{abc}. hamdesign: one
``shift_conductivity(..., components=<one>)`` call (``yyy`` for 2D hBN; ``xxx`` for the 1D chain, the
only allowed current direction; ``xxx`` for the 3D ``random3d4``), converted to NumPy; with
``--tensor``, one ``components="all"`` call (the 18 σ^{abc} with b ≤ c, which fix all 27 since
σ^{abc} = σ^{acb}) compared entry by entry with WannierBerri's whole tensor. jax is jitted, its first
(compiling) call is reported separately as warm-up. Every code (WannierBerri too) gets one untimed first call, then the
median of --repeat runs is reported. Each hamdesign measurement runs in a fresh
child process (same thread settings), killed and retried if it hangs (--case-timeout, --tries).

Everything runs single-threaded on one pinned core (sched_setaffinity; thread variables set below before
any import, torch.set_num_threads(1), XLA without its multi-threaded Eigen pool). The process CPU time is recorded too:
the reported
k-points/s/core is N_k / max(wall, cpu), so any extra thread that did run is charged.

Usage::

    python scripts/compare_wannierberri_speed.py [--models hbn,kondo_chain] [--nk hbn=60,120 --nk kondo_chain=256,1024]
        [--omegas 200] [--repeat 3] [--backends numpy,jax,torch,autograd] [--json out.json]
    python scripts/compare_wannierberri_speed.py --models random3d4 --tensor --omegas 59   # the full tensor, 40³ k
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ[_var] = "1"
# XLA has no intra-op thread-count flag (a bare "intra_op_parallelism_threads=1" token in XLA_FLAGS made
# jaxlib 0.10.2 hang for good on the 1024-k chain); without the affinity below its thunk executor runs
# independent ops on every core (CPU/wall ≈ 2 on this machine), so the whole process is pinned instead.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false"
).strip()
# One core for everything (child processes inherit it): thread pools sized from the affinity (XLA, torch,
# BLAS) get one thread, so "per core" is exact. HAMDESIGN_BENCH_CPU picks the core (default: the last one).
if hasattr(os, "sched_setaffinity"):
    _cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {int(os.environ.get("HAMDESIGN_BENCH_CPU", _cores[-1]))})

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import hamdesign  # noqa: E402
import numpy as np  # noqa: E402
from hamdesign.backend import get_backend, use_backend  # noqa: E402
from hamdesign.bench import random_cubic  # noqa: E402
from hamdesign.io.wannier90 import write_tb_dat  # noqa: E402
from hamdesign.models import hbn, kondo_chain  # noqa: E402
from hamdesign.spectrum import bands, chemical_potential  # noqa: E402

SC_ETA = 1e-9  # WannierBerri's principal-value broadening of 1/(ε_n − ε_m), as in tests/test_wannierberri.py
ETA = 0.05  # Lorentzian width, eV
KBT = 0.01  # eV
DEFAULT_NK = {"hbn": (60, 120), "kondo_chain": (256, 1024), "random3d4": (40,)}
AXES = "xyz"


def build_model(name: str):
    if name == "hbn":
        return hbn(), "yyy"  # D3h: σ^{yyy} is the independent in-plane component
    if name == "kondo_chain":
        # 12 sites, 24 bands. Random spin directions (seed 7): the default umbrella texture has a symmetry that
        # makes σ^{xxx} vanish (~1e-19 A/V², pure rounding noise), which would compare nothing; random spins
        # break every symmetry and leave a gapped insulator at half filling. 1D along x: the current index is x.
        return kondo_chain(12, spins=np.random.default_rng(7).normal(size=(12, 3))), "xxx"
    if name == "random3d4":
        return random_cubic(4, seed=0), "xxx"  # no symmetry: every σ^{abc} is non-zero
    raise SystemExit(f"unknown model {name!r}; choose hbn, kondo_chain or random3d4")


def full_tensor(sigma: np.ndarray, dim: int) -> np.ndarray:
    """(nω, 3, 3, 3) from the ``components="all"`` rows (a, b ≤ c < dim), σ^{acb} = σ^{abc}; 0 outside ``dim``."""
    out = np.zeros((sigma.shape[-1], 3, 3, 3))
    rows = [(a, b, c) for a in range(dim) for b in range(dim) for c in range(b, dim)]
    for (a, b, c), row in zip(rows, sigma, strict=True):
        out[:, a, b, c] = out[:, a, c, b] = row
    return out


def timed(fn):
    """(result, wall seconds, process CPU seconds) of fn()."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def median_timing(fn, repeat: int):
    runs = [timed(fn) for _ in range(repeat)]
    wall = statistics.median(r[1] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    return runs[-1][0], wall, cpu


def wannierberri_runner(model, workdir: Path, nk: int, omega, mu: float, comp):
    """A callable returning (σ^{comp}(ω) or, with comp None, the whole (nω, 3, 3, 3) tensor, max |σ| of all 27)."""
    import wannierberri
    from wannierberri import calculators

    tb = write_tb_dat(model, workdir / f"{model.name}_tb.dat")
    periodic = tuple(i < model.dim for i in range(3))
    with contextlib.redirect_stdout(io.StringIO()):
        system = wannierberri.system.System_R.from_tb_dat(tb_file=str(tb), periodic=periodic, silent=True)
        grid = wannierberri.Grid(system, NKdiv=1, NKFFT=tuple(nk if p else 1 for p in periodic), use_symmetry=False)
    assert np.all(grid.dense == [nk if p else 1 for p in periodic])

    def run():
        calc = calculators.dynamic.ShiftCurrent(
            sc_eta=SC_ETA,
            Efermi=np.array([mu]),
            omega=np.asarray(omega, dtype=float),
            kBT=KBT,
            smr_fixed_width=ETA,
            smr_type="Lorentzian",
            save_mode="none",
            kwargs_formula={"external_terms": False},  # diagonal position matrix: no AA terms
        )
        with contextlib.redirect_stdout(io.StringIO()):
            res = wannierberri.run(
                system, grid, {"shift": calc}, parallel=False, use_irred_kpt=False, symmetrize=False, print_progress_step_time=1e9
            )
        full = res.results["shift"].data[0]  # [iEF][iω, a, b, c]
        picked = full if comp is None else full[:, comp[0], comp[1], comp[2]]
        return picked, float(np.max(np.abs(full)))

    return run


def hamdesign_runner(backend: str, model, nk: int, omega, mu: float, comps: str):
    be = get_backend(backend)
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
    k = hamdesign.kmesh(nk, model.dim)
    settings = {"components": comps, "beta": 1.0 / KBT, "mu": mu, "eta": ETA, "smearing": "lorentzian", "sc_eta": SC_ETA}
    with use_backend(be):
        params = be.asarray(model.default_params)

    def sigma(p):
        return hamdesign.shift_conductivity(model, p, k, omega, **settings).sigma

    fn = be.jit(sigma) if backend == "jax" else sigma

    def run():
        with use_backend(be):
            sigma = np.asarray(be.to_numpy(fn(params)))
        return full_tensor(sigma, model.dim) if comps == "all" else sigma[0]

    return run


def worker() -> int:
    """One hamdesign measurement (case as JSON on stdin, result as JSON on stdout), in its own process."""
    case = json.loads(sys.stdin.read())
    model, comp_name = build_model(case["model"])
    comps = "all" if case.get("tensor") else comp_name
    run = hamdesign_runner(case["backend"], model, case["nk"], np.asarray(case["omega"]), case["mu"], comps)
    _, warm, _ = timed(run)  # untimed first call (jax: trace + compile + run), reported as warm-up
    sigma, wall, cpu = median_timing(run, case["repeat"])
    print(json.dumps({"sigma": sigma.tolist(), "wall": wall, "cpu": cpu, "warm": warm}))
    return 0


def measure_hamdesign(case: dict, timeout: float, tries: int):
    """Run :func:`worker` in a child process; a child that exceeds ``timeout`` is killed and retried.

    jaxlib 0.10's CPU runtime occasionally never returns from a jitted call (all threads parked on a
    futex, 0 % CPU; see backends/jax.py); a child process lets the comparison survive that.
    """
    hangs = 0
    for _ in range(tries):
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--worker"], input=json.dumps(case), capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            hangs += 1
            print(f"{'':<28}  ({case['backend']}: no result after {timeout:.0f} s, killed and retried)", flush=True)
            continue
        if done.returncode != 0:
            raise RuntimeError(f"hamdesign {case['backend']} worker failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]), hangs
    return None, hangs


def half_filling_mu(model, nk: int) -> float:
    with use_backend("numpy"):
        e = bands(model, None, hamdesign.kmesh(nk, model.dim))
        return float(chemical_potential(e, filling=0.5, beta=1.0 / KBT))


def parse_nk(items: list[str] | None, models: list[str]) -> dict[str, list[int]]:
    out = {m: list(DEFAULT_NK[m]) for m in models}
    for item in items or []:
        if "=" in item:
            name, sizes = item.split("=", 1)
            out[name.strip()] = [int(s) for s in sizes.split(",") if s]
        else:  # bare sizes apply to every model
            for m in models:
                out[m] = [int(s) for s in item.split(",") if s]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="hbn,kondo_chain")
    ap.add_argument(
        "--nk", action="append", help="mesh sizes per direction, e.g. hbn=60,120 (repeatable) or 64,128 for all models"
    )
    ap.add_argument("--omegas", type=int, default=200, help="number of photon energies across the band range")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per case (median reported)")
    ap.add_argument("--wb-repeat", type=int, default=None, help="timed WannierBerri runs (default: --repeat)")
    ap.add_argument("--backends", default="numpy,jax,torch,autograd")
    ap.add_argument(
        "--tensor", action="store_true", help="hamdesign computes the whole tensor (components='all'), compared entry by entry"
    )
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--case-timeout", type=float, default=120.0, help="seconds before a hamdesign measurement is presumed hung")
    ap.add_argument("--tries", type=int, default=2, help="attempts per hamdesign measurement")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker()

    warnings.filterwarnings("ignore")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    meshes = parse_nk(args.nk, models)
    import wannierberri

    rows, spectra_ok = [], True
    header = (
        f"{'model':<12}{'bands':>6}{'k-pts':>8}  "
        f"{'code/backend':<22}{'seconds':>10}{'cpu/wall':>9}{'k/s/core':>11}{'vs WB':>8}{'rel.err':>10}"
    )
    what = "the whole tensor σ^{abc} (27 entries)" if args.tensor else "one component σ^{abc}"
    print(
        f"shift current, {what}: {args.omegas} ω, Lorentzian η = {ETA} eV, kBT = {KBT} eV; single thread; median of {args.repeat}"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, wannierberri "
        f"{wannierberri.__version__}, hamdesign {getattr(hamdesign, '__version__', '?')}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # anything WannierBerri writes lands here
        try:
            for name in models:
                model, comp_name = build_model(name)
                comp = tuple(AXES.index(c) for c in comp_name)
                if args.tensor:
                    comp_name, comp = "all", None
                mu = 0.0 if name == "hbn" else half_filling_mu(model, max(meshes[name]))
                with use_backend("numpy"):
                    e = np.asarray(bands(model, None, hamdesign.kmesh(max(meshes[name]), model.dim)))
                width = float(e.max() - e.min())
                omega = np.linspace(width / args.omegas, width, args.omegas)
                for nk in meshes[name]:
                    npts = nk**model.dim
                    base = {
                        "model": name,
                        "bands": model.nband,
                        "kpoints": npts,
                        "mesh": [nk] * model.dim,
                        "component": comp_name,
                        "tensor": bool(args.tensor),
                        "mu": mu,
                    }
                    wb_run = wannierberri_runner(model, Path(tmp), nk, omega, mu, comp)
                    _, wb_warm, _ = timed(wb_run)  # untimed first call (imports, numba caches)
                    (ref, full_max), wall, cpu = median_timing(wb_run, args.wb_repeat or args.repeat)
                    wb_rate = npts / max(wall, cpu)
                    row = {
                        **base,
                        "code": "wannierberri (all 27 σ^abc)",
                        "seconds": wall,
                        "cpu_seconds": cpu,
                        "kpts_per_s_core": wb_rate,
                        "ratio": 1.0,
                        "rel_err": 0.0,
                        "warmup_seconds": wb_warm,
                    }
                    row["sigma_max"], row["sigma_max_all_components"] = float(np.max(np.abs(ref))), full_max
                    rows.append(row)
                    print(
                        f"{name:<12}{model.nband:>6}{npts:>8}  "
                        f"{'wannierberri (27 comp)':<22}{wall:>10.3f}{cpu / wall:>9.2f}{wb_rate:>11.0f}{1.0:>8.2f}{'':>10}",
                        flush=True,
                    )
                    scale = float(np.max(np.abs(ref)))
                    print(
                        f"{'':<28}  max|σ^{comp_name}| = {scale:.3g} A/V² (largest of all 27: "
                        f"{full_max:.3g}); μ = {mu:.5f} eV, ω ∈ [{omega[0]:.3f}, {omega[-1]:.3f}] eV"
                    )
                    if scale < 1e-3 * full_max:
                        print(f"warning: σ^{comp_name} is ~0 here; the agreement check is weak", file=sys.stderr)
                    for backend in backends:
                        case = {
                            "model": name,
                            "backend": backend,
                            "nk": nk,
                            "omega": omega.tolist(),
                            "mu": mu,
                            "repeat": args.repeat,
                            "tensor": bool(args.tensor),
                        }
                        got, hangs = measure_hamdesign(case, args.case_timeout, args.tries)
                        label = f"hamdesign {backend}" + (" (jit)" if backend == "jax" else "")
                        if got is None:
                            spectra_ok = False
                            rows.append({**base, "code": label, "seconds": None, "hangs": hangs})
                            print(f"{'':<12}{'':>6}{'':>8}  {label:<22}{'no result (hung every try)':>30}", flush=True)
                            continue
                        ours, wall, cpu, warm = np.asarray(got["sigma"]), got["wall"], got["cpu"], got["warm"]
                        err = float(np.max(np.abs(ours - ref)) / scale)
                        ok = err < args.rtol
                        spectra_ok &= ok
                        rate = npts / max(wall, cpu)
                        rows.append(
                            {
                                **base,
                                "code": label,
                                "seconds": wall,
                                "cpu_seconds": cpu,
                                "kpts_per_s_core": rate,
                                "ratio": rate / wb_rate,
                                "rel_err": err,
                                "agrees": ok,
                                "warmup_seconds": warm,
                                "hangs": hangs,
                            }
                        )
                        flag = "" if ok else "  MISMATCH"
                        print(
                            f"{'':<12}{'':>6}{'':>8}  "
                            f"{label:<22}{wall:>10.3f}{cpu / wall:>9.2f}{rate:>11.0f}{rate / wb_rate:>8.2f}{err:>10.1e}{flag}",
                            flush=True,
                        )
                        if backend == "jax":
                            print(f"{'':<28}{'  jax warm-up (compile)':<22}{warm:>10.3f}", flush=True)
        finally:
            os.chdir(cwd)
    print("k/s/core = k-points / max(wall, process CPU) seconds; vs WB = ratio of k/s/core; rel.err = max|σ−σ_WB|/max|σ_WB|")
    if args.json:
        meta = {
            "omegas": args.omegas,
            "eta_eV": ETA,
            "kBT_eV": KBT,
            "smearing": "lorentzian",
            "repeat": args.repeat,
            "threads": 1,
            "xla_flags": os.environ["XLA_FLAGS"],
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "wannierberri": wannierberri.__version__,
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
        }
        args.json.write_text(json.dumps({"settings": meta, "rows": rows}, indent=2))
    if not spectra_ok:
        print(f"spectra disagree beyond rtol {args.rtol}: the timings do not compare the same computation", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
