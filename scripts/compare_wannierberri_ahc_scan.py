"""Anomalous Hall Fermi-level scan of bcc Fe: hamdesign against WannierBerri, side by side in one run.

The workload of issue 16: the AHC pseudovector of the 18-band bcc Fe model of tests/data/wannier
(diagonal position matrix; no MDRS, 27 R-vectors, or with ``--ws-distance`` the MDRS-corrected
model, 95 R-vectors, which WannierBerri builds with ``do_ws_dist``) on an N³
Γ-centred mesh at ``--levels`` Fermi levels. WannierBerri: ``System_R.from_tb_dat`` + ``AHC(Efermi=…)``
on ``Grid(NK=N)``, the FFT grid and divisions WannierBerri chooses itself (``--wb-fft F`` sets
NKFFT = F, NKdiv = N/F instead; T = 0, its Fermi-sea calculator); hamdesign: ``hall_report`` (what
``hamdesign evaluate --mu START:STOP:COUNT`` runs) at k_BT = 1e-9 eV on the numpy backend (the
default of ``evaluate``). The results are checked to agree before any time is reported. Everything
runs on one pinned core with single-threaded BLAS; loading the model is outside the timers.
Timings on a shared machine drift by ±10–20 %: ``--repeat R`` times both codes R times,
alternating, each round on a freshly loaded model, and reports the median ratio and its range.

Usage: ``python scripts/compare_wannierberri_ahc_scan.py [--nk 48] [--levels 1000] [--ws-distance] [--threads 2] [--repeat 3]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
ALL_CORES = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
if ALL_CORES is not None:
    os.sched_setaffinity(0, {max(ALL_CORES)})

import argparse  # noqa: E402
import gzip  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FE = ROOT / "tests" / "data" / "wannier" / "Fe_tb.dat.gz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nk", type=int, default=48)
    ap.add_argument("--levels", type=int, default=1000)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--ws-distance", action="store_true", help="the MDRS-corrected model (Fe.win: mp_grid 3×3×3)")
    ap.add_argument("--wb-fft", type=int, default=None, help="WannierBerri's NKFFT (N/F divisions); default: its own choice")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="also time hamdesign on this many cores (HAMDESIGN_THREADS), after the one-core runs",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time both codes this many times, alternating, and report the median and range of the ratio",
    )
    args = ap.parse_args(argv)

    import wannierberri
    from wannierberri import calculators

    from hamdesign.backend import use_backend
    from hamdesign.io import load_model
    from hamdesign.observables.hall import hall_report

    mus = np.linspace(16.0, 20.0, args.levels)

    def ours_timed():
        model = load_model(str(FE), ws_distance=args.ws_distance)  # a fresh model: no k-factors cached from a last round
        with use_backend("numpy"):
            start = time.perf_counter()
            report = hall_report(model, None, args.nk, beta=1e9, mu=mus)
            seconds = time.perf_counter() - start
        return seconds, np.array([report["sigma_bulk_S_per_cm"][p] for p in ("yz", "zx", "xy")]).T, model

    workdir = Path(tempfile.mkdtemp())
    with gzip.open(FE, "rb") as src, open(workdir / "Fe_tb.dat", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chdir(workdir)

    def theirs_timed():
        system = wannierberri.system.System_R.from_tb_dat(tb_file="Fe_tb.dat", silent=True)
        if args.ws_distance:
            system.do_ws_dist(mp_grid=(3, 3, 3), ws_dist_tol=1e-5)
        if args.wb_fft is None:
            grid = wannierberri.Grid(system, NK=(args.nk,) * 3, use_symmetry=False)
        else:
            grid = wannierberri.Grid(system, NKdiv=args.nk // args.wb_fft, NKFFT=(args.wb_fft,) * 3, use_symmetry=False)
        calc = {"ahc": calculators.static.AHC(Efermi=mus, save_mode="none", kwargs_formula={"external_terms": False})}
        start = time.perf_counter()
        result = wannierberri.run(
            system, grid, calc, parallel=False, use_irred_kpt=False, symmetrize=False, print_progress_step_time=1e9
        )
        return time.perf_counter() - start, result.results["ahc"].data * 0.01, grid

    if args.wb_fft is not None and args.nk % args.wb_fft:
        ap.error(f"--wb-fft {args.wb_fft} does not divide --nk {args.nk}")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    os.environ["HAMDESIGN_THREADS"] = "1"
    ours_times, theirs_times, differences = [], [], []
    for round_ in range(1, args.repeat + 1):
        ours_s, ours, model = ours_timed()
        theirs_s, theirs, grid = theirs_timed()
        ours_times.append(ours_s)
        theirs_times.append(theirs_s)
        differences.append(float(np.abs(ours - theirs).max() / np.abs(theirs).max()))
        if args.repeat > 1:
            print(f"round {round_}: hamdesign {ours_s:.1f} s, WannierBerri {theirs_s:.1f} s, ratio {theirs_s / ours_s:.1f}x")
    difference = max(differences)
    ratios = np.array(theirs_times) / np.array(ours_times)

    def spread(values, unit):
        if len(values) == 1:
            return f"{values[0]:.1f}{unit}"
        return f"median {np.median(values):.1f}{unit} ({min(values):.1f}–{max(values):.1f})"

    print(
        f"bcc Fe ({len(model.tables()['n_R'])} R-vectors), {args.nk}³ k, {args.levels} Fermi levels: "
        f"hamdesign {spread(ours_times, ' s')}, WannierBerri {spread(theirs_times, ' s')} "
        f"(NKFFT {grid.FFT[0]}, NKdiv {grid.div[0]}), ratio {spread(list(ratios), 'x')}; "
        f"max |Δσ| / max |σ| = {difference:.1e}"
    )
    if args.threads > 1 and ALL_CORES is not None:
        os.sched_setaffinity(0, ALL_CORES)
        os.environ["HAMDESIGN_THREADS"] = str(args.threads)
        threaded_s, threaded, _ = ours_timed()
        same = np.array_equal(threaded, ours)
        print(
            f"hamdesign on {args.threads} threads: {threaded_s:.1f} s "
            f"({np.median(ours_times) / threaded_s:.2f}x its median one-core time; same numbers: {same})"
        )
        if not same:
            return 1
    return 0 if difference < args.rtol else 1


if __name__ == "__main__":
    raise SystemExit(main())
