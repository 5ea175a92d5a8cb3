"""wannier90 tight-binding files: ``seedname_tb.dat``, ``seedname_hr.dat`` + ``.win`` + ``_centres.xyz``.

Conventions (wannier90 ≥ 2.1):

* H_mn(R) = ⟨m,0|H|n,R⟩ on a list of Wigner–Seitz R with degeneracies N_R;
  H(k) = Σ_R e^{ik·R} H(R) / N_R, so every H(R) read is divided by its degeneracy.
* The files list both H(R) and H(−R) = H(R)†. hamdesign keeps each bond once: on-site terms
  (R = 0, m = n) must be real, and of each pair {(m, n, R), (n, m, −R)} the first in the order
  (R, m, n) is kept after checking that the other is its conjugate (to 1e-8 of max|H|).
* Orbital centres: the R = 0 diagonal of the position matrix in ``_tb.dat``; the first num_wann
  ``X`` lines of ``_centres.xyz``. Lattice vectors (Å, Cartesian rows) from the ``_tb.dat`` header
  or the ``unit_cell_cart`` block of ``seedname.win`` (``bohr`` or ``ang`` units line allowed).
* Dimension: when every kept hopping has R3 = 0 the model is 2D (and 1D if R2 = 0 too); k-meshes
  then have one point along the missing directions and the cell's extent along the remaining
  lattice vectors is the layer thickness (or chain cross-section) for bulk numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelFileError
from ..lattice import Lattice
from ..model import TightBinding, hopping_amplitudes
from .atomic import atomic_write_text

BOHR_IN_ANGSTROM = 0.529177210903
_TOL = 1e-8


class _Lines:
    """Tokenised lines of a file with the file name and line number in every error."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ModelFileError(f"{path}: cannot read ({err})") from err
        self.pos = 0

    def fail(self, message: str):
        raise ModelFileError(f"{self.path}: line {self.pos}: {message}")

    def next_nonblank(self) -> list[str]:
        while self.pos < len(self.lines):
            line = self.lines[self.pos].split("#")[0].split("!")[0].strip()
            self.pos += 1
            if line:
                return line.split()
        raise ModelFileError(f"{self.path}: unexpected end of file after line {self.pos}")

    def numbers(self, count: int, kind=float) -> list:
        out: list = []
        while len(out) < count:
            tokens = self.next_nonblank()
            try:
                out += [kind(t) for t in tokens]
            except ValueError:
                self.fail(f"expected {count} numbers, got {' '.join(tokens)!r}")
        if len(out) != count:
            self.fail(f"expected {count} numbers, got {len(out)}")
        return out


def _matrix_blocks(reader: _Lines, nrpts: int, num_wann: int, ncols: int):
    """nrpts blocks of 'R1 R2 R3' followed by num_wann² lines 'm n v1 … v_ncols'."""
    Rs = np.zeros((nrpts, 3), dtype=int)
    values = np.zeros((nrpts, num_wann, num_wann, ncols), dtype=float)
    for r in range(nrpts):
        Rs[r] = reader.numbers(3, int)
        for _ in range(num_wann * num_wann):
            tokens = reader.next_nonblank()
            if len(tokens) != 2 + ncols:
                reader.fail(f"expected 'm n' and {ncols} numbers, got {' '.join(tokens)!r}")
            try:
                m, n = int(tokens[0]) - 1, int(tokens[1]) - 1
                vals = [float(t) for t in tokens[2:]]
            except ValueError:
                reader.fail(f"cannot read {' '.join(tokens)!r}")
            if not (0 <= m < num_wann and 0 <= n < num_wann):
                reader.fail(f"orbital index out of range 1..{num_wann}")
            values[r, m, n] = vals
    return Rs, values


def _header_counts(reader: _Lines) -> tuple[int, int, np.ndarray]:
    num_wann = reader.numbers(1, int)[0]
    nrpts = reader.numbers(1, int)[0]
    if num_wann < 1 or nrpts < 1:
        reader.fail("num_wann and nrpts must be positive")
    degeneracy = np.array(reader.numbers(nrpts, int))
    if np.any(degeneracy < 1):
        reader.fail("Wigner-Seitz degeneracies must be positive integers")
    return num_wann, nrpts, degeneracy


def _build(path: Path, vectors: np.ndarray, centres: np.ndarray, Rs: np.ndarray, ham: np.ndarray, name: str) -> TightBinding:
    """Each bond once from full H(R) blocks (already divided by degeneracy), dimension detected."""
    num_wann = ham.shape[1]
    scale = max(np.abs(ham).max(), 1e-300)
    table = {tuple(R): ham[r] for r, R in enumerate(Rs)}
    kept = []
    for R in sorted(table):
        block = table[R]
        minus = tuple(-x for x in R)
        partner = table.get(minus)
        for m in range(num_wann):
            for n in range(num_wann):
                t = block[m, n]
                if R == (0, 0, 0) and m == n:
                    if abs(t.imag) > _TOL * scale:
                        raise ModelFileError(f"{path}: on-site H_{m + 1}{n + 1}(0) = {t} is not real: the Hamiltonian is not Hermitian")
                    if t != 0:
                        kept.append((m, n, R, float(t.real)))
                    continue
                other = 0.0 if partner is None else partner[n, m]
                if abs(other - np.conj(t)) > _TOL * scale:
                    raise ModelFileError(
                        f"{path}: H_{m + 1}{n + 1}(R={list(R)}) = {t} but H_{n + 1}{m + 1}(R={list(minus)}) = {other}: not Hermitian"
                    )
                if (minus, n, m) < (R, m, n):  # the partner was (or will be) kept instead
                    continue
                if t != 0:
                    kept.append((m, n, R, complex(t)))
    dim = 3
    if all(R[2] == 0 for _, _, R, _ in kept):
        dim = 1 if all(R[1] == 0 for _, _, R, _ in kept) else 2
    try:
        lattice = Lattice(vectors, dim=dim)
        return TightBinding.build(
            lattice,
            centres,
            [(m, n, R[:dim], t) for m, n, R, t in kept],
            {},
            positions_are="cartesian",
            orbital_names=[f"w{i + 1}" for i in range(num_wann)],
            name=name,
            energy_unit="eV",
            length_unit="Å",
        )
    except ModelError as err:
        raise ModelFileError(f"{path}: {err}") from err


def read_tb_dat(path: str | Path) -> TightBinding:
    """A model from wannier90's ``seedname_tb.dat`` (lattice, H(R), position matrix)."""
    path = Path(path)
    reader = _Lines(path)
    if not reader.lines:
        raise ModelFileError(f"{path}: empty file")
    reader.pos = 1  # header line
    vectors = np.array(reader.numbers(9)).reshape(3, 3)
    num_wann, nrpts, degeneracy = _header_counts(reader)
    Rs, ham = _matrix_blocks(reader, nrpts, num_wann, 2)
    _, pos = _matrix_blocks(reader, nrpts, num_wann, 6)
    ham_c = (ham[..., 0] + 1j * ham[..., 1]) / degeneracy[:, None, None]
    zero = [r for r, R in enumerate(Rs) if not R.any()]
    if not zero:
        raise ModelFileError(f"{path}: no R = 0 block")
    centres = pos[zero[0]][np.arange(num_wann), np.arange(num_wann)][:, [0, 2, 4]] / degeneracy[zero[0]]
    return _build(path, vectors, centres, Rs, ham_c, path.name.removesuffix("_tb.dat"))


def _read_win_cell(path: Path) -> np.ndarray:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: cannot read ({err})") from err
    body, inside = [], False
    for line in lines:
        text = line.split("!")[0].split("#")[0].strip()
        low = text.lower().replace(" ", "")
        if low == "beginunit_cell_cart":
            inside = True
            continue
        if low == "endunit_cell_cart":
            break
        if inside and text:
            body.append(text.split())
    if not body:
        raise ModelFileError(f"{path}: no 'begin unit_cell_cart' block")
    factor = 1.0
    if len(body[0]) == 1:
        unit = body.pop(0)[0].lower()
        if unit.startswith("bohr"):
            factor = BOHR_IN_ANGSTROM
        elif not unit.startswith("ang"):
            raise ModelFileError(f"{path}: unit_cell_cart: unknown unit {unit!r} (bohr or ang)")
    try:
        cell = np.array([[float(x) for x in row] for row in body])
    except ValueError as err:
        raise ModelFileError(f"{path}: unit_cell_cart: {err}") from err
    if cell.shape != (3, 3):
        raise ModelFileError(f"{path}: unit_cell_cart must have 3 rows of 3 numbers")
    return cell * factor


def _read_centres(path: Path, num_wann: int) -> np.ndarray:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: cannot read ({err})") from err
    centres = []
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 4 and parts[0].upper() == "X":
            try:
                centres.append([float(x) for x in parts[1:]])
            except ValueError as err:
                raise ModelFileError(f"{path}: {err}") from err
    if len(centres) < num_wann:
        raise ModelFileError(f"{path}: {len(centres)} Wannier centres (X lines) for {num_wann} orbitals")
    return np.array(centres[:num_wann])


def read_hr_dat(hr_path: str | Path, win_path: str | Path | None = None, centres_path: str | Path | None = None) -> TightBinding:
    """A model from ``seedname_hr.dat`` with the lattice from ``seedname.win`` and centres from ``seedname_centres.xyz``."""
    hr_path = Path(hr_path)
    seed = hr_path.name.removesuffix("_hr.dat")
    win_path = Path(win_path) if win_path else hr_path.with_name(f"{seed}.win")
    centres_path = Path(centres_path) if centres_path else hr_path.with_name(f"{seed}_centres.xyz")
    for needed, what in ((win_path, "lattice (unit_cell_cart)"), (centres_path, "Wannier centres (they enter the Bloch phase)")):
        if not needed.exists():
            raise ModelFileError(f"{hr_path}: needs {needed.name} for the {what}")
    reader = _Lines(hr_path)
    reader.pos = 1
    num_wann, nrpts, degeneracy = _header_counts(reader)
    Rs = np.zeros((nrpts, 3), dtype=int)
    ham = np.zeros((nrpts, num_wann, num_wann), dtype=complex)
    index: dict[tuple, int] = {}
    for _ in range(nrpts * num_wann * num_wann):
        tokens = reader.next_nonblank()
        if len(tokens) != 7:
            reader.fail(f"expected 'R1 R2 R3 m n Re Im', got {' '.join(tokens)!r}")
        try:
            R = tuple(int(t) for t in tokens[:3])
            m, n = int(tokens[3]) - 1, int(tokens[4]) - 1
            value = complex(float(tokens[5]), float(tokens[6]))
        except ValueError:
            reader.fail(f"cannot read {' '.join(tokens)!r}")
        if R not in index:
            if len(index) == nrpts:
                reader.fail(f"more than nrpts = {nrpts} distinct R vectors")
            index[R] = len(index)
            Rs[index[R]] = R
        if not (0 <= m < num_wann and 0 <= n < num_wann):
            reader.fail(f"orbital index out of range 1..{num_wann}")
        ham[index[R], m, n] = value
    ham /= degeneracy[:, None, None]
    return _build(hr_path, _read_win_cell(win_path), _read_centres(centres_path, num_wann), Rs, ham, seed)


# ---------------------------------------------------------------------------------- writing
def _dense_blocks(model: TightBinding, params) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """All R (3 components, ±R and 0 included) and full H(R) blocks at ``params``."""
    from ..backend import use_backend

    with use_backend("numpy"):
        amps = np.asarray(hopping_amplitudes(model, model.default_params if params is None else params))
    pad = 3 - model.dim
    blocks: dict[tuple, np.ndarray] = {(0, 0, 0): np.zeros((model.norb, model.norb), complex)}
    for hop, t in zip(model.hoppings, amps):
        R = tuple(hop.R) + (0,) * pad
        minus = tuple(-x for x in R)
        for key in (R, minus):
            blocks.setdefault(key, np.zeros((model.norb, model.norb), complex))
        blocks[R][hop.i, hop.j] += t
        if not hop.is_onsite:
            blocks[minus][hop.j, hop.i] += np.conj(t)
    keys = sorted(blocks)
    return keys, np.array([blocks[k] for k in keys])


def write_tb_dat(model: TightBinding, path: str | Path, params=None) -> Path:
    """Write ``seedname_tb.dat`` (degeneracies 1, full H(R), diagonal position matrix at R = 0)."""
    keys, ham = _dense_blocks(model, params)
    n = model.norb
    out = [f"written by hamdesign: model {model.name} (energy unit {model.energy_unit}, length unit {model.length_unit})"]
    out += ["  ".join(f"{x:22.15e}" for x in row) for row in model.lattice.vectors]
    out += [str(n), str(len(keys))]
    degen = ["1"] * len(keys)
    out += ["  ".join(degen[i : i + 15]) for i in range(0, len(degen), 15)]
    for R, block in zip(keys, ham):
        out += ["", " ".join(f"{x:5d}" for x in R)]
        out += [f"{m + 1:5d}{k + 1:5d}  {block[m, k].real:23.15e} {block[m, k].imag:23.15e}" for k in range(n) for m in range(n)]
    for R in keys:
        out += ["", " ".join(f"{x:5d}" for x in R)]
        for k in range(n):
            for m in range(n):
                xyz = model.positions[m] if (m == k and not any(R)) else np.zeros(3)
                out.append(f"{m + 1:5d}{k + 1:5d}  " + " ".join(f"{c:23.15e} {0.0:23.15e}" for c in xyz))
    return atomic_write_text(path, "\n".join(out) + "\n")


def write_hr_dat(model: TightBinding, prefix: str | Path, params=None) -> list[Path]:
    """Write ``<prefix>_hr.dat``, ``<prefix>.win`` (unit_cell_cart, Å) and ``<prefix>_centres.xyz``."""
    prefix = Path(prefix)
    keys, ham = _dense_blocks(model, params)
    n = model.norb
    hr = [f"written by hamdesign: model {model.name} (energy unit {model.energy_unit})", str(n), str(len(keys))]
    degen = ["1"] * len(keys)
    hr += ["  ".join(degen[i : i + 15]) for i in range(0, len(degen), 15)]
    for R, block in zip(keys, ham):
        hr += [f"{R[0]:5d}{R[1]:5d}{R[2]:5d}{m + 1:5d}{k + 1:5d}  {block[m, k].real:23.15e} {block[m, k].imag:23.15e}" for k in range(n) for m in range(n)]
    win = [f"num_wann = {n}", "begin unit_cell_cart", "ang"]
    win += ["  ".join(f"{x:22.15e}" for x in row) for row in model.lattice.vectors]
    win += ["end unit_cell_cart"]
    xyz = [str(n), f"Wannier centres of hamdesign model {model.name}"]
    xyz += ["X  " + "  ".join(f"{c:22.15e}" for c in p) for p in model.positions]
    paths = [prefix.with_name(prefix.name + "_hr.dat"), prefix.with_name(prefix.name + ".win"), prefix.with_name(prefix.name + "_centres.xyz")]
    for p, lines in zip(paths, (hr, win, xyz)):
        atomic_write_text(p, "\n".join(lines) + "\n")
    return paths
