"""Write ``tests/data/wannier/Fe_tb.dat.gz``: bcc Fe with spin–orbit (18 Wannier functions) as a plain wannier90 ``_tb.dat``.

Source: WannierBerri's test data ``tests/data/Fe_Wannier90`` (``Fe.win``, ``Fe.chk``, ``Fe.eig``,
``Fe.mmn.tar.gz``, ``Fe.nnkp``; a Quantum ESPRESSO + wannier90 run on a 3×3×3 k-grid). WannierBerri
(``pip install wannierberri numba``) reads them and builds H(R) and the position matrix
A(R) = ⟨m0|r|nR⟩ (``berry=True``). WannierBerri always applies the Wigner–Seitz (MDRS)
translations while doing so, on R vectors that depend on the orbital pair; a wannier90 ``_tb.dat``
does not. This script therefore undoes them:

1. fold WannierBerri's R-space matrices back onto the periodic k-grid supercell (sum over all R in
   each class R mod mp_grid: the MDRS copies of one element carry weights 1/N_T that add up to 1);
2. list the R of the Wigner–Seitz supercell of mp_grid around the origin with their degeneracies,
   as wannier90's ``hamiltonian_wigner_seitz`` does (distance with the real-space metric,
   tolerance ``ws_distance_tol`` = 1e-5 Å);
3. write each folded block at every listed R (wannier90 stores the undivided value; readers divide
   by the degeneracy), with the position matrix in wannier90's convention (centres on the R = 0
   diagonal).

Reading the result with MDRS (hamdesign with ``Fe.win`` beside it, or WannierBerri's
``System_R.from_tb_dat(...).do_ws_dist(mp_grid=3)``) reproduces WannierBerri's own system; the script
checks that before writing, on random k-points.

Usage::

    git -C WANNIERBERRI show HEAD:tests/data/Fe_Wannier90/Fe.chk > DIR/Fe.chk   # likewise .eig .nnkp .win .mmn.tar.gz
    python scripts/make_fe_tb_dat.py DIR [--out tests/data/wannier/Fe_tb.dat.gz]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

WS_TOL = 1e-5  # wannier90's ws_distance_tol default (Å)
SEARCH = 2  # wannier90's ws_search_size default


def wannierberri_system(source: Path, work: Path):
    """WannierBerri's System_R (Ham and AA, MDRS applied) from the wannier90 files in ``source``."""
    import wannierberri
    from wannierberri.system.needed_data import NeededData

    for name in ("Fe.chk", "Fe.eig", "Fe.nnkp", "Fe.win"):
        shutil.copy(source / name, work / name)
    if (source / "Fe.mmn").exists():
        shutil.copy(source / "Fe.mmn", work / "Fe.mmn")
    else:
        with tarfile.open(source / "Fe.mmn.tar.gz") as tar:
            tar.extract("Fe.mmn", work, filter="data")
    seed = str(work / "Fe")
    files = sorted(NeededData(berry=True).files | {"eig"})
    wandata = wannierberri.w90files.WannierData.from_w90_files(seedname=seed, files=files, readnnkp=False)
    system = wannierberri.system.System_R.from_wannierdata(wandata, berry=True, ws_dist_tol=WS_TOL)
    return system, np.array(wandata.mp_grid, dtype=int)


def fold(iR: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sum R-space blocks into the periodic supercell: out[R mod grid] = Σ values[R]."""
    out = np.zeros(tuple(grid) + values.shape[1:], dtype=complex)
    np.add.at(out, tuple((iR % grid).T), values)
    return out


def wigner_seitz(lattice: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R of the Wigner–Seitz supercell of ``grid`` around the origin and their degeneracies."""
    span = [np.arange(-SEARCH * g, SEARCH * g + 1) for g in grid]
    R = np.array(list(itertools.product(*span)))
    shifts = np.array(list(itertools.product(range(-SEARCH - 1, SEARCH + 2), repeat=3))) * grid
    cart = (R[:, None, :] - shifts[None, :, :]) @ lattice
    dist = np.linalg.norm(cart, axis=-1)
    dmin = dist.min(axis=1)
    home = np.all(shifts == 0, axis=1)
    keep = np.abs(dist[:, home][:, 0] - dmin) < WS_TOL
    degen = np.sum(np.abs(dist - dmin[:, None]) < WS_TOL, axis=1)
    R, degen = R[keep], degen[keep]
    if not np.isclose(np.sum(1.0 / degen), np.prod(grid)):
        raise RuntimeError("Wigner–Seitz weights do not add up to the number of k-points")
    return R, degen


def tb_dat_text(lattice, R, degen, ham, pos, comment) -> str:
    """wannier90 ``_tb.dat`` text (Fortran column order: n slowest, m fastest)."""
    n = ham.shape[-1]
    out = [comment]
    out += ["  ".join(f"{x:.16e}" for x in row) for row in lattice]
    out += [str(n), str(len(R))]
    out += ["  ".join(f"{d:d}" for d in degen[i : i + 15]) for i in range(0, len(degen), 15)]
    for r, block in zip(R, ham, strict=True):
        out += ["", "{:5d}{:5d}{:5d}".format(*r)]
        out += [f"{m + 1:5d}{k + 1:5d}  {block[m, k].real:.16e} {block[m, k].imag:.16e}" for k in range(n) for m in range(n)]
    for r, block in zip(R, pos, strict=True):
        out += ["", "{:5d}{:5d}{:5d}".format(*r)]
        out += [
            f"{m + 1:5d}{k + 1:5d}  " + " ".join(f"{block[m, k, a].real:.16e} {block[m, k, a].imag:.16e}" for a in range(3))
            for k in range(n)
            for m in range(n)
        ]
    return "\n".join(out) + "\n"


def check_against_wannierberri(system, tb_path: Path, grid: np.ndarray, nk: int = 5) -> float:
    """Largest |ΔE| between WannierBerri's system and the written file read back by WannierBerri with MDRS."""
    import wannierberri

    back = wannierberri.system.System_R.from_tb_dat(tb_file=str(tb_path), berry=True, silent=True)
    back.do_ws_dist(mp_grid=tuple(grid))
    k = np.random.default_rng(0).random((nk, 3))
    ours = np.array([np.linalg.eigvalsh(bloch(system, q)) for q in k])
    theirs = np.array([np.linalg.eigvalsh(bloch(back, q)) for q in k])
    return float(np.max(np.abs(ours - theirs)))


def bloch(system, kred) -> np.ndarray:
    """H(k) up to a diagonal phase (eigenvalues only): Σ_R e^{2πi k·R} H(R)."""
    phase = np.exp(2j * np.pi * (system.rvec.iRvec @ kred))
    return np.einsum("r,rmn->mn", phase, system.Ham_R)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with WannierBerri's Fe_Wannier90 files")
    parser.add_argument("--out", type=Path, default=Path("tests/data/wannier/Fe_tb.dat.gz"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        system, grid = wannierberri_system(args.source.resolve(), Path(tmp))
        lattice = np.asarray(system.real_lattice, dtype=float)
        iR = np.asarray(system.rvec.iRvec, dtype=int)
        ham = fold(iR, system.Ham_R, grid)
        aa = fold(iR, system.get_R_mat("AA"), grid)  # convention I: the centres are off the R = 0 diagonal
        R, degen = wigner_seitz(lattice, grid)
        cells = tuple((R % grid).T)
        ham_R = ham[cells]
        pos_R = aa[cells]
        centres = np.asarray(system.wannier_centers_cart, dtype=float)
        zero = np.flatnonzero(~R.any(axis=1))[0]
        pos_R[zero, np.arange(len(centres)), np.arange(len(centres))] += centres
        comment = "bcc Fe with SOC, 18 WFs: WannierBerri test data Fe_Wannier90 via scripts/make_fe_tb_dat.py (no MDRS)"
        text = tb_dat_text(lattice, R, degen, ham_R, pos_R, comment)
        plain = Path(tmp) / "Fe_tb.dat"
        plain.write_text(text)
        worst = check_against_wannierberri(system, plain, grid)
        print(f"mp_grid {grid.tolist()}, {len(R)} R vectors, max |ΔE| vs WannierBerri's own system: {worst:.2e} eV")
        if worst > 1e-8:
            raise SystemExit("the written file does not reproduce WannierBerri's system")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(args.out, "wb", mtime=0) as gz:  # mtime=0: the same bytes on every run
            gz.write(text.encode())
        print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
