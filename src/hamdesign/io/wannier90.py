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
* Wigner–Seitz (MDRS) translations (:mod:`.wsdistance`): applied to H(R) and the position matrix
  as wannier90's ``use_ws_distance`` says (``seedname.win``; wannier90's default, true, when the
  ``.win`` is silent), from ``seedname_wsvec.dat`` when present, else rebuilt from the centres and
  ``mp_grid``; ``ws_distance=True/False`` overrides. What was done is recorded in
  ``model.provenance["ws_distance"]``.
* Position matrix: ``_tb.dat`` keeps all of it on the model (``model.berry_connection_R``,
  Ã_mn(R) = ⟨m0|r|nR⟩ − τ_m δ_mn δ_R0); ``model.provenance["position_matrix"]`` states its size.
* Every file may be gzip-compressed (``seedname_tb.dat.gz``); any non-finite number is an error
  naming the file and line.
"""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelFileError
from ..lattice import Lattice
from ..model import BerryConnectionR, TightBinding, hopping_amplitudes
from .atomic import atomic_write_text
from .wsdistance import WS_DISTANCE_TOL, WS_SEARCH_SIZE, Translations, expand, rebuild_translations

BOHR_IN_ANGSTROM = 0.529177210903
_TOL = 1e-8


def read_text(path: Path) -> str:
    """The text of a file, gunzipped when its name ends in ``.gz``; ModelFileError when unreadable."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return handle.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise ModelFileError(f"{path}: cannot read ({err})") from err


def seed_of(path: Path, suffix: str) -> str:
    """``seedname`` of ``seedname<suffix>`` or ``seedname<suffix>.gz``."""
    return path.name.removesuffix(".gz").removesuffix(suffix)


def beside(path: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in the folder of ``path``, whichever exists (plain first)."""
    for candidate in (path.with_name(name), path.with_name(name + ".gz")):
        if candidate.exists():
            return candidate
    return None


def _finite(values, fail, what: str = "number") -> None:
    if not all(math.isfinite(v) for v in values):
        fail(f"non-finite {what} ({', '.join(map(str, values))})")


class _Lines:
    """Tokenised lines of a file with the file name and line number in every error."""

    def __init__(self, path: Path):
        self.path = path
        self.lines = read_text(path).splitlines()
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
            _finite(out[-len(tokens) :], self.fail)
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
            _finite(vals, reader.fail)
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


def _dimension(Rs) -> int:
    """3, or 2 when every R has R3 = 0, or 1 when R2 = 0 too."""
    Rs = np.asarray(Rs, dtype=int).reshape(-1, 3)
    if Rs[:, 2].any():
        return 3
    return 2 if Rs[:, 1].any() else 1


def _build(
    path: Path, vectors: np.ndarray, centres: np.ndarray, Rs: np.ndarray, ham: np.ndarray, name: str, also_R=()
) -> TightBinding:
    """Each bond once from full H(R) blocks (already divided by degeneracy), dimension detected.

    ``also_R``: further R vectors (of position-matrix elements) that count for the dimension.
    """
    num_wann = ham.shape[1]
    scale = max(np.abs(ham).max(), 1e-300)
    table = {tuple(int(x) for x in R): ham[r] for r, R in enumerate(Rs)}
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
                        raise ModelFileError(
                            f"{path}: on-site H_{m + 1}{n + 1}(0) = {t} is not real: the Hamiltonian is not Hermitian"
                        )
                    if t != 0:
                        kept.append((m, n, R, float(t.real)))
                    continue
                other = 0.0 if partner is None else partner[n, m]
                if abs(other - np.conj(t)) > _TOL * scale:
                    raise ModelFileError(
                        f"{path}: H_{m + 1}{n + 1}(R={list(R)}) = {t} but "
                        f"H_{n + 1}{m + 1}(R={list(minus)}) = {other}: not Hermitian"
                    )
                if (minus, n, m) < (R, m, n):  # the partner was (or will be) kept instead
                    continue
                if t != 0:
                    kept.append((m, n, R, complex(t)))
    dim = _dimension([R for _, _, R, _ in kept] + [tuple(R) for R in also_R])
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


# ------------------------------------------------------------------------------- seedname.win
@dataclass(frozen=True)
class WinSettings:
    """What hamdesign reads from ``seedname.win``: the cell and the Wigner–Seitz settings."""

    path: Path
    cell: np.ndarray | None = None
    mp_grid: tuple[int, int, int] | None = None
    use_ws_distance: bool | None = None
    ws_distance_tol: float = WS_DISTANCE_TOL
    ws_search_size: tuple[int, int, int] = WS_SEARCH_SIZE
    lines: dict = field(default_factory=dict)


_TRUE, _FALSE = {"true", "t", ".true.", "yes", "y", "1"}, {"false", "f", ".false.", "no", "n", "0"}


def _integers(value: str) -> tuple[int, ...]:
    """The integers of a .win value ('2 2 2' or '2, 2, 2'); () when any is not an integer."""
    try:
        return tuple(int(x) for x in value.replace(",", " ").split())
    except ValueError:
        return ()


def read_win(path: str | Path) -> WinSettings:
    """``unit_cell_cart`` (Å; ``bohr``/``ang`` units line allowed), ``mp_grid``, ``use_ws_distance``,
    ``ws_distance_tol`` and ``ws_search_size`` of a wannier90 ``.win`` file (other keywords ignored)."""
    path = Path(path)

    def fail(number: int, message: str):
        raise ModelFileError(f"{path}: line {number}: {message}")

    body: list[tuple[int, list[str]]] = []
    inside = False
    keys: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        text = line.split("!")[0].split("#")[0].strip()
        low = text.lower().replace(" ", "")
        if low == "beginunit_cell_cart":
            inside = True
        elif low == "endunit_cell_cart":
            inside = False
        elif inside and text:
            body.append((number, text.split()))
        elif text and not low.startswith(("begin", "end")):
            match = re.match(r"([A-Za-z_]\w*)\s*[=:\s]\s*(.*)$", text)
            if match:
                keys[match.group(1).lower()] = (number, match.group(2).strip())
    settings: dict = {}
    if body:
        factor = 1.0
        if len(body[0][1]) == 1:
            number, (unit,) = body.pop(0)
            unit = unit.lower()
            if unit.startswith("bohr"):
                factor = BOHR_IN_ANGSTROM
            elif not unit.startswith("ang"):
                fail(number, f"unit_cell_cart: unknown unit {unit!r} (bohr or ang)")
        rows = []
        for number, tokens in body:
            try:
                row = [float(x) for x in tokens]
            except ValueError as err:
                fail(number, f"unit_cell_cart: {err}")
            _finite(row, lambda message, number=number: fail(number, f"unit_cell_cart: {message}"))
            rows.append(row)
        if len(rows) != 3 or any(len(r) != 3 for r in rows):
            fail(body[0][0], "unit_cell_cart must have 3 rows of 3 numbers")
        settings["cell"] = np.array(rows, dtype=float) * factor
    if "mp_grid" in keys:
        number, value = keys["mp_grid"]
        grid = _integers(value)
        if len(grid) != 3 or min(grid) < 1:
            fail(number, f"mp_grid must be 3 positive integers, got {value!r}")
        settings["mp_grid"] = grid
    if "use_ws_distance" in keys:
        number, value = keys["use_ws_distance"]
        if value.lower() not in _TRUE | _FALSE:
            fail(number, f"use_ws_distance must be true or false, got {value!r}")
        settings["use_ws_distance"] = value.lower() in _TRUE
    if "ws_distance_tol" in keys:
        number, value = keys["ws_distance_tol"]
        try:
            tol = float(value.lower().replace("d", "e"))
        except ValueError:
            tol = math.nan
        if not (math.isfinite(tol) and tol > 0):
            fail(number, f"ws_distance_tol must be a positive finite number, got {value!r}")
        settings["ws_distance_tol"] = tol
    if "ws_search_size" in keys:
        number, value = keys["ws_search_size"]
        size = _integers(value)
        if len(size) == 1:
            size = size * 3
        if len(size) != 3 or min(size) < 0:
            fail(number, f"ws_search_size must be 1 or 3 non-negative integers, got {value!r}")
        settings["ws_search_size"] = size
    return WinSettings(path=path, lines={k: v[0] for k, v in keys.items()}, **settings)


def _read_centres(path: Path, num_wann: int) -> np.ndarray:
    centres = []
    for number, line in enumerate(read_text(path).splitlines()[2:], start=3):
        parts = line.split()
        if len(parts) == 4 and parts[0].upper() == "X":
            try:
                xyz = [float(x) for x in parts[1:]]
            except ValueError as err:
                raise ModelFileError(f"{path}: line {number}: {err}") from err
            _finite(xyz, lambda message, number=number: _raise(f"{path}: line {number}: {message}"))
            centres.append(xyz)
    if len(centres) < num_wann:
        raise ModelFileError(f"{path}: {len(centres)} Wannier centres (X lines) for {num_wann} orbitals")
    return np.array(centres[:num_wann])


def _raise(message: str):
    raise ModelFileError(message)


# ------------------------------------------------------------------------- Wigner–Seitz (MDRS)
def read_wsvec(path: str | Path, Rs: np.ndarray, num_wann: int) -> Translations:
    """The translations in ``seedname_wsvec.dat`` for the R list ``Rs`` of the model file.

    Format (wannier90 ``ws_write_vec``): a header line, then for every R of the model file and every
    pair (m, n): a line 'R1 R2 R3 m n', a line with N_T, and N_T lines 'T1 T2 T3'.
    """
    path = Path(path)
    reader = _Lines(path)
    reader.pos = 1
    index = {tuple(int(x) for x in R): r for r, R in enumerate(Rs)}
    count = np.zeros(len(Rs) * num_wann * num_wann, dtype=np.int64)
    elements, shifts = [], []
    while reader.pos < len(reader.lines) and any(line.strip() for line in reader.lines[reader.pos :]):
        head = reader.numbers(5, int)
        R, m, n = tuple(head[:3]), head[3] - 1, head[4] - 1
        if R not in index:
            reader.fail(f"R = {list(R)} is not in the model file")
        if not (0 <= m < num_wann and 0 <= n < num_wann):
            reader.fail(f"orbital index out of range 1..{num_wann}")
        element = (index[R] * num_wann + m) * num_wann + n
        ndeg = reader.numbers(1, int)[0]
        if ndeg < 1 or count[element]:
            reader.fail(
                f"R = {list(R)}, pair ({m + 1}, {n + 1}): "
                + ("listed twice" if count[element] else "needs at least one translation")
            )
        count[element] = ndeg
        for _ in range(ndeg):
            elements.append(element)
            shifts.append(reader.numbers(3, int))
    if not count.all():
        r, rest = divmod(int(np.flatnonzero(count == 0)[0]), num_wann * num_wann)
        raise ModelFileError(
            f"{path}: no translations for R = {Rs[r].tolist()}, pair ({rest // num_wann + 1}, {rest % num_wann + 1})"
        )
    return Translations(np.array(elements, dtype=np.int64), np.array(shifts, dtype=int).reshape(-1, 3), count)


def _hermitian_part(Rs: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, float]:
    """(X_mn(R) + X_nm(−R)*)/2 for blocks (nR, norb, norb, 3), and the largest |X_mn(R) − X_nm(−R)*|/2 removed.

    wannier90's finite-difference position matrix (Wang et al. 2006, Eq. 44) is not exactly
    Hermitian; postw90 and WannierBerri keep its Hermitian part. A missing −R counts as zero.
    """
    index = {tuple(int(x) for x in R): r for r, R in enumerate(Rs)}
    partner = np.array([index.get(tuple(-int(x) for x in R), -1) for R in Rs])
    padded = np.concatenate([blocks, np.zeros((1,) + blocks.shape[1:], blocks.dtype)])
    mirrored = np.conj(np.swapaxes(padded[partner], 1, 2))
    half = 0.5 * (blocks - mirrored)
    return blocks - half, float(np.abs(half).max()) if half.size else 0.0


def _ws_plan(
    path: Path, seed: str, win: WinSettings | None, ws_distance: bool | None, vectors, centres, Rs
) -> tuple[Translations | None, str]:
    """The translations to apply (or None) and the sentence recorded in ``provenance["ws_distance"]``."""
    if ws_distance is not None and not isinstance(ws_distance, bool):
        raise ModelFileError(f"{path}: ws_distance must be True, False or None, got {ws_distance!r}")
    if ws_distance is False:
        return None, "not applied (switched off: ws_distance=False / --no-ws-distance)"
    if ws_distance is None and win is not None and win.use_ws_distance is False:
        return None, f"not applied (use_ws_distance = false in {win.path.name})"
    wsvec = beside(path, f"{seed}_wsvec.dat")
    if wsvec is not None:
        return read_wsvec(wsvec, Rs, len(centres)), f"applied: {wsvec.name}"
    if win is not None and win.mp_grid is not None:
        translations = rebuild_translations(vectors, centres, Rs, win.mp_grid, tol=win.ws_distance_tol, search=win.ws_search_size)
        grid = "x".join(map(str, win.mp_grid))
        return translations, f"applied: rebuilt from the Wannier centres and mp_grid {grid} of {win.path.name}"
    missing = f"no {seed}.win beside the file" if win is None else f"no mp_grid in {win.path.name}"
    missing += f" and no {seed}_wsvec.dat"
    if ws_distance:
        raise ModelFileError(f"{path}: cannot apply the Wigner-Seitz (MDRS) translations: {missing}")
    return None, f"not applied ({missing})"


def _win_beside(path: Path, seed: str) -> WinSettings | None:
    win = beside(path, f"{seed}.win")
    return None if win is None else read_win(win)


# ----------------------------------------------------------------------------------- readers
def read_tb_dat(path: str | Path, *, ws_distance: bool | None = None) -> TightBinding:
    """A model from wannier90's ``seedname_tb.dat`` (or ``.gz``): lattice, H(R) and the full position matrix.

    ``ws_distance``: apply the Wigner–Seitz (MDRS) translations (True), not (False), or as
    ``seedname.win`` beside the file says (None: wannier90's default, true, when the ``.win`` is
    silent; without a ``.win`` or ``seedname_wsvec.dat`` they cannot be applied and are not).
    """
    path = Path(path)
    reader = _Lines(path)
    if not reader.lines:
        raise ModelFileError(f"{path}: empty file")
    reader.pos = 1  # header line
    vectors = np.array(reader.numbers(9)).reshape(3, 3)
    num_wann, nrpts, degeneracy = _header_counts(reader)
    Rs, ham = _matrix_blocks(reader, nrpts, num_wann, 2)
    Rs_pos, pos = _matrix_blocks(reader, nrpts, num_wann, 6)
    if not np.array_equal(Rs, Rs_pos):
        raise ModelFileError(f"{path}: the position matrix lists other R vectors than the Hamiltonian")
    ham_c = (ham[..., 0] + 1j * ham[..., 1]) / degeneracy[:, None, None]
    pos_c = (pos[..., 0::2] + 1j * pos[..., 1::2]) / degeneracy[:, None, None, None]
    zero = [r for r, R in enumerate(Rs) if not R.any()]
    if not zero:
        raise ModelFileError(f"{path}: no R = 0 block")
    diagonal = np.arange(num_wann)
    centres = pos_c[zero[0]][diagonal, diagonal].real
    berry = pos_c.copy()
    berry[zero[0], diagonal, diagonal] -= centres
    seed = seed_of(path, "_tb.dat")
    translations, ws_note = _ws_plan(path, seed, _win_beside(path, seed), ws_distance, vectors, centres, Rs)
    if translations is not None:
        Rs, both = expand(Rs, np.concatenate([ham_c[..., None], berry], axis=-1), translations)
        ham_c, berry = both[..., 0], both[..., 1:]
    berry, deviation = _hermitian_part(Rs, berry)
    nonzero = np.abs(berry).max(axis=(1, 2, 3)) > 0
    model = _build(path, vectors, centres, Rs, ham_c, seed, also_R=Rs[nonzero])
    largest = float(np.abs(berry).max())
    if largest == 0:
        return model.with_structure(
            provenance={"ws_distance": ws_note, "position_matrix": "diagonal: the file has the centres only"}
        )
    connection = BerryConnectionR(R=Rs[:, : model.dim].copy(), values=np.ascontiguousarray(np.moveaxis(berry, -1, 1)))
    note = f"full: max |<m0|r|nR> - centre| = {largest:.3g} {model.length_unit} (model.berry_connection_R)"
    if deviation > _TOL * largest:
        note += (
            f"; Hermitian part taken (as postw90 does): the file's matrix deviated by up to {deviation:.3g} {model.length_unit}"
        )
    return model.with_structure(berry_connection_R=connection, provenance={"ws_distance": ws_note, "position_matrix": note})


def read_hr_dat(
    hr_path: str | Path,
    win_path: str | Path | None = None,
    centres_path: str | Path | None = None,
    *,
    ws_distance: bool | None = None,
) -> TightBinding:
    """A model from ``seedname_hr.dat`` with the lattice from ``seedname.win`` and centres from ``seedname_centres.xyz``.

    ``ws_distance`` as for :func:`read_tb_dat`. ``_hr.dat`` has no position matrix: the model has
    the centres only (the tight-binding convention).
    """
    hr_path = Path(hr_path)
    seed = seed_of(hr_path, "_hr.dat")
    win_path = Path(win_path) if win_path else beside(hr_path, f"{seed}.win") or hr_path.with_name(f"{seed}.win")
    centres_path = (
        Path(centres_path) if centres_path else beside(hr_path, f"{seed}_centres.xyz") or hr_path.with_name(f"{seed}_centres.xyz")
    )
    for needed, what in ((win_path, "lattice (unit_cell_cart)"), (centres_path, "Wannier centres (they enter the Bloch phase)")):
        if not needed.exists():
            raise ModelFileError(f"{hr_path}: needs {needed.name} for the {what}")
    win = read_win(win_path)
    if win.cell is None:
        raise ModelFileError(f"{win_path}: no 'begin unit_cell_cart' block")
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
            parts = (float(tokens[5]), float(tokens[6]))
        except ValueError:
            reader.fail(f"cannot read {' '.join(tokens)!r}")
        _finite(parts, reader.fail)
        if R not in index:
            if len(index) == nrpts:
                reader.fail(f"more than nrpts = {nrpts} distinct R vectors")
            index[R] = len(index)
            Rs[index[R]] = R
        if not (0 <= m < num_wann and 0 <= n < num_wann):
            reader.fail(f"orbital index out of range 1..{num_wann}")
        ham[index[R], m, n] = complex(*parts)
    ham /= degeneracy[:, None, None]
    centres = _read_centres(centres_path, num_wann)
    translations, ws_note = _ws_plan(hr_path, seed, win, ws_distance, win.cell, centres, Rs)
    if translations is not None:
        Rs, ham = expand(Rs, ham, translations)
    model = _build(hr_path, win.cell, centres, Rs, ham, seed)
    note = f"diagonal: centres from {centres_path.name} (_hr.dat has no position matrix)"
    return model.with_structure(provenance={"ws_distance": ws_note, "position_matrix": note})


# ---------------------------------------------------------------------------------- writing
def _dense_blocks(model: TightBinding, params) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """All R (3 components, ±R and 0 included) and full H(R) blocks at ``params``."""
    from ..backend import use_backend

    with use_backend("numpy"):
        amps = np.asarray(hopping_amplitudes(model, model.default_params if params is None else params))
    pad = 3 - model.dim
    blocks: dict[tuple, np.ndarray] = {(0, 0, 0): np.zeros((model.norb, model.norb), complex)}
    for hop, t in zip(model.hoppings, amps, strict=False):
        R = tuple(hop.R) + (0,) * pad
        minus = tuple(-x for x in R)
        for key in (R, minus):
            blocks.setdefault(key, np.zeros((model.norb, model.norb), complex))
        blocks[R][hop.i, hop.j] += t
        if not hop.is_onsite:
            blocks[minus][hop.j, hop.i] += np.conj(t)
    keys = sorted(blocks)
    return keys, np.array([blocks[k] for k in keys])


def _position_blocks(model: TightBinding, keys: list[tuple[int, int, int]]) -> tuple[list[tuple[int, int, int]], dict]:
    """R list (``keys`` plus those of the position matrix) and ⟨m0|r|nR⟩ blocks (3, norb, norb) by R."""
    pad = 3 - model.dim
    blocks: dict[tuple, np.ndarray] = {}
    conn = model.berry_connection_R
    if conn is not None:
        for R, values in zip(conn.R, conn.values, strict=False):
            key = tuple(int(x) for x in R) + (0,) * pad
            blocks[key] = blocks.get(key, 0) + values
    centres = np.zeros((3, model.norb, model.norb), complex)
    centres[:, np.arange(model.norb), np.arange(model.norb)] = model.positions.T
    blocks[(0, 0, 0)] = blocks.get((0, 0, 0), 0) + centres
    return sorted(set(keys) | set(blocks)), blocks


def write_tb_dat(model: TightBinding, path: str | Path, params=None) -> Path:
    """Write ``seedname_tb.dat`` (degeneracies 1, full H(R); the position matrix: full when the model
    has ``berry_connection_R``, else the centres on the R = 0 diagonal)."""
    keys, ham = _dense_blocks(model, params)
    hblocks = dict(zip(keys, ham, strict=False))
    keys, pblocks = _position_blocks(model, keys)
    n = model.norb
    zero_h, zero_p = np.zeros((n, n), complex), np.zeros((3, n, n), complex)
    out = [f"written by hamdesign: model {model.name} (energy unit {model.energy_unit}, length unit {model.length_unit})"]
    out += ["  ".join(f"{x:22.15e}" for x in row) for row in model.lattice.vectors]
    out += [str(n), str(len(keys))]
    degen = ["1"] * len(keys)
    out += ["  ".join(degen[i : i + 15]) for i in range(0, len(degen), 15)]
    for R in keys:
        block = hblocks.get(R, zero_h)
        out += ["", " ".join(f"{x:5d}" for x in R)]
        out += [f"{m + 1:5d}{k + 1:5d}  {block[m, k].real:23.15e} {block[m, k].imag:23.15e}" for k in range(n) for m in range(n)]
    for R in keys:
        block = pblocks.get(R, zero_p)
        out += ["", " ".join(f"{x:5d}" for x in R)]
        out += [
            f"{m + 1:5d}{k + 1:5d}  " + " ".join(f"{block[a, m, k].real:23.15e} {block[a, m, k].imag:23.15e}" for a in range(3))
            for k in range(n)
            for m in range(n)
        ]
    return atomic_write_text(path, "\n".join(out) + "\n")


def write_hr_dat(model: TightBinding, prefix: str | Path, params=None) -> list[Path]:
    """Write ``<prefix>_hr.dat``, ``<prefix>.win`` (unit_cell_cart, Å) and ``<prefix>_centres.xyz``."""
    prefix = Path(prefix)
    keys, ham = _dense_blocks(model, params)
    n = model.norb
    hr = [f"written by hamdesign: model {model.name} (energy unit {model.energy_unit})", str(n), str(len(keys))]
    degen = ["1"] * len(keys)
    hr += ["  ".join(degen[i : i + 15]) for i in range(0, len(degen), 15)]
    for R, block in zip(keys, ham, strict=False):
        hr += [
            f"{R[0]:5d}{R[1]:5d}{R[2]:5d}{m + 1:5d}{k + 1:5d}  {block[m, k].real:23.15e} {block[m, k].imag:23.15e}"
            for k in range(n)
            for m in range(n)
        ]
    # the model's H(R) is final: no Wigner-Seitz translations to add on reading it back
    win = [f"num_wann = {n}", "use_ws_distance = false", "begin unit_cell_cart", "ang"]
    win += ["  ".join(f"{x:22.15e}" for x in row) for row in model.lattice.vectors]
    win += ["end unit_cell_cart"]
    xyz = [str(n), f"Wannier centres of hamdesign model {model.name}"]
    xyz += ["X  " + "  ".join(f"{c:22.15e}" for c in p) for p in model.positions]
    paths = [
        prefix.with_name(prefix.name + "_hr.dat"),
        prefix.with_name(prefix.name + ".win"),
        prefix.with_name(prefix.name + "_centres.xyz"),
    ]
    for p, lines in zip(paths, (hr, win, xyz), strict=False):
        atomic_write_text(p, "\n".join(lines) + "\n")
    return paths
