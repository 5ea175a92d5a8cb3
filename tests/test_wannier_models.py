"""Real wannier90 models (tests/data/wannier: GaAs and bcc Fe from WannierBerri's test data).

Checked: gzip-compressed files load; the Wigner–Seitz (MDRS) translations (rebuilt from the
centres and ``mp_grid`` of ``seedname.win``, or read from ``seedname_wsvec.dat``) turn GaAs from a
semimetal into a 0.40 eV-gap semiconductor and reproduce WannierBerri's ``do_ws_dist`` to
rounding; the position matrix is kept (Hermitian Berry connection, derivative, round trip); non-finite
numbers are refused with the file and line; the CLI prints what was done.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hamdesign as hd
import numpy as np
from conftest import require_module
from hamdesign.backend import use_backend
from hamdesign.cli import app
from hamdesign.errors import ModelFileError
from hamdesign.io import load_model, read_hr_dat, read_tb_dat, write_hr_dat, write_tb_dat
from hamdesign.io.wsdistance import rebuild_translations
from hamdesign.model import berry_connection_terms, hamiltonian
from hamdesign.models import haldane

DATA = Path(__file__).parent / "data" / "wannier"
GAAS, FE = DATA / "GaAs_tb.dat.gz", DATA / "Fe_tb.dat.gz"
MP_GRID = {"GaAs": (2, 2, 2), "Fe": (3, 3, 3)}
RNG_K = np.random.default_rng(3).random((4, 3))


def bands(model, k) -> np.ndarray:
    with use_backend("numpy"):
        return np.linalg.eigvalsh(np.asarray(hamiltonian(model, None, k)))


@pytest.fixture(scope="module")
def gaas():
    return read_tb_dat(GAAS)


@pytest.fixture(scope="module")
def fe():
    return read_tb_dat(FE)


def copy_model(tmp_path: Path, seed: str, *, win_extra: str | None = "") -> Path:
    """The compressed _tb.dat of ``seed`` in tmp_path, with its .win (plus ``win_extra``) unless None."""
    target = tmp_path / f"{seed}_tb.dat.gz"
    shutil.copy(DATA / target.name, target)
    if win_extra is not None:
        (tmp_path / f"{seed}.win").write_text((DATA / f"{seed}.win").read_text() + win_extra)
    return target


# ------------------------------------------------------------------------------------ MDRS
def test_gaas_gap_with_and_without_mdrs(gaas):
    """The issue's numbers: band gap 8→9 over a 6³ mesh ≈ +0.40 eV with MDRS, ≈ −1.07 eV without."""
    k = hd.kmesh(6, 3)
    plain = read_tb_dat(GAAS, ws_distance=False)
    gap_ws = bands(gaas, k)[:, 8].min() - bands(gaas, k)[:, 7].max()
    gap_plain = bands(plain, k)[:, 8].min() - bands(plain, k)[:, 7].max()
    assert gap_ws == pytest.approx(0.4028, abs=2e-3)
    assert gap_plain == pytest.approx(-1.070, abs=2e-3)
    assert gaas.provenance["ws_distance"] == "applied: rebuilt from the Wannier centres and mp_grid 2x2x2 of GaAs.win"
    assert plain.provenance["ws_distance"].startswith("not applied (switched off")
    assert (gaas.norb, gaas.dim, plain.norb) == (16, 3, 16)


def wannierberri_system(path: Path, tmp_path: Path, mp_grid, tol: float):
    wannierberri = require_module("wannierberri")
    plain = tmp_path / path.name.removesuffix(".gz")
    with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    system = wannierberri.system.System_R.from_tb_dat(tb_file=str(plain), berry=True, silent=True)
    system.do_ws_dist(mp_grid=mp_grid, ws_dist_tol=tol)
    return system


def wannierberri_bloch(system, kred, key: str) -> np.ndarray:
    """Σ_R e^{2πik·(R + τ_n − τ_m)} X(R) for WannierBerri's (MDRS-applied) R-space matrix ``key``."""
    phase = np.exp(2j * np.pi * kred @ system.rvec.iRvec.T)
    shift = np.exp(2j * np.pi * kred @ system.wannier_centers_red.T)
    xr = system.get_R_mat(key)
    out = np.einsum("kr,rmn...->kmn...", phase, xr)
    factor = shift.conj()[:, :, None] * shift[:, None, :]
    return out * factor.reshape(factor.shape + (1,) * (out.ndim - 3))


@pytest.mark.parametrize(("seed", "tol"), [("GaAs", 1e-2), ("Fe", 1e-5)])
def test_mdrs_agrees_with_wannierberri(tmp_path, monkeypatch, seed, tol):
    """H(k) eigenvalues and the Berry connection A(k) against WannierBerri's System_tb + do_ws_dist.

    GaAs's centres are symmetric to ~1e-5 only, so some translations tie to within 1e-4 Å and the
    default tolerance (1e-5 Å) decides them differently in the two codes (WannierBerri rounds the
    centre differences first): 5e-6 eV apart. The comparison therefore uses ws_distance_tol = 0.01 Å
    (read from the .win), far from every near tie (none between 1.05e-4 and 0.1 Å). Fe has no near ties.
    """
    monkeypatch.chdir(tmp_path)
    path = copy_model(tmp_path, seed, win_extra=f"\nws_distance_tol = {tol}\n")
    model = read_tb_dat(path)
    system = wannierberri_system(path, tmp_path, MP_GRID[seed], tol)
    theirs = np.linalg.eigvalsh(wannierberri_bloch(system, RNG_K, "Ham"))
    assert np.max(np.abs(bands(model, RNG_K) - theirs)) < 1e-10
    with use_backend("numpy"):
        A, _ = berry_connection_terms(model, RNG_K)
    aa = wannierberri_bloch(system, RNG_K, "AA")
    aa = 0.5 * (aa + np.conj(np.swapaxes(aa, 1, 2)))  # its Hermitian part, as hamdesign (and postw90) keep
    for b in range(3):
        assert np.max(np.abs(np.asarray(A[b]) - aa[..., b])) < 1e-10
    assert np.max(np.abs(aa)) > 0.1  # a real position matrix, not zeros


def test_fe_mdrs_matters(fe):
    """Fe (18 WFs, SOC): the translations change the bands by more than rounding; dimension and data as shipped."""
    plain = read_tb_dat(FE, ws_distance=False)
    assert (fe.norb, fe.dim) == (18, 3)
    assert np.max(np.abs(bands(fe, RNG_K) - bands(plain, RNG_K))) > 1e-3
    assert fe.provenance["ws_distance"].endswith("mp_grid 3x3x3 of Fe.win")


def write_wsvec(path: Path, model_path: Path, translations, Rs, norb: int) -> None:
    """seedname_wsvec.dat in wannier90's layout (ws_write_vec) from rebuilt translations."""
    lines = ["## written by the hamdesign test suite with use_ws_distance=.true."]
    start = np.concatenate([[0], np.cumsum(np.bincount(translations.element, minlength=len(Rs) * norb * norb))])
    for r, R in enumerate(Rs):
        for m in range(norb):
            for n in range(norb):
                e = (r * norb + m) * norb + n
                lines += ["{:5d}{:5d}{:5d}{:5d}{:5d}".format(*R, m + 1, n + 1), f"{translations.count[e]:5d}"]
                lines += ["{:5d}{:5d}{:5d}".format(*T) for T in translations.shift[start[e] : start[e + 1]]]
    path.write_text("\n".join(lines) + "\n")


def file_R_list(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R list, lattice, centres) of a _tb.dat as written (no translations)."""
    from hamdesign.io.wannier90 import _header_counts, _Lines, _matrix_blocks

    reader = _Lines(path)
    reader.pos = 1
    vectors = np.array(reader.numbers(9)).reshape(3, 3)
    num_wann, nrpts, _ = _header_counts(reader)
    Rs, _ = _matrix_blocks(reader, nrpts, num_wann, 2)
    return Rs, vectors, read_tb_dat(path, ws_distance=False).positions


def test_wsvec_file_is_read(tmp_path, gaas):
    """seedname_wsvec.dat beside the file is used instead of rebuilding (same translations: same bands)."""
    path = copy_model(tmp_path, "GaAs")
    Rs, vectors, centres = file_R_list(path)
    translations = rebuild_translations(vectors, centres, Rs, MP_GRID["GaAs"])
    assert translations.count.max() > 1  # some elements are split between several translations
    write_wsvec(tmp_path / "GaAs_wsvec.dat", path, translations, Rs, 16)
    model = read_tb_dat(path)
    assert model.provenance["ws_distance"] == "applied: GaAs_wsvec.dat"
    assert np.max(np.abs(bands(model, RNG_K) - bands(gaas, RNG_K))) < 1e-12
    text = (tmp_path / "GaAs_wsvec.dat").read_text().splitlines()
    (tmp_path / "GaAs_wsvec.dat").write_text("\n".join(text[:-4]) + "\n")  # the last pair loses its translations
    with pytest.raises(ModelFileError, match="GaAs_wsvec.dat"):
        read_tb_dat(path)


def test_ws_distance_without_win(tmp_path):
    """No .win and no wsvec: by default not applied (and said so); asked for explicitly: an error."""
    path = copy_model(tmp_path, "GaAs", win_extra=None)
    model = read_tb_dat(path)
    assert model.provenance["ws_distance"] == "not applied (no GaAs.win beside the file and no GaAs_wsvec.dat)"
    with pytest.raises(ModelFileError, match="cannot apply the Wigner-Seitz"):
        read_tb_dat(path, ws_distance=True)
    with pytest.raises(ModelFileError, match="wannier90 _tb.dat/_hr.dat files only"):
        load_model("haldane", ws_distance=True)


def test_win_switches_mdrs_off(tmp_path, gaas):
    """use_ws_distance = false in the .win is followed unless overridden."""
    path = copy_model(tmp_path, "GaAs", win_extra="\nuse_ws_distance = .false.\n")
    off = load_model(str(path))
    assert off.provenance["ws_distance"] == "not applied (use_ws_distance = false in GaAs.win)"

    def gap(model):
        e = bands(model, RNG_K)
        return e[:, 8].min() - e[:, 7].max()

    assert gap(off) < gap(gaas) - 0.5
    on = load_model(str(path), ws_distance=True)
    assert np.max(np.abs(bands(on, RNG_K) - bands(gaas, RNG_K))) < 1e-12


def test_hr_dat_mdrs(tmp_path, gaas):
    """_hr.dat + .win (mp_grid) + _centres.xyz: the same translations as the _tb.dat route."""
    plain = read_tb_dat(GAAS, ws_distance=False)
    files = write_hr_dat(plain, tmp_path / "GaAs")
    assert read_hr_dat(files[0]).provenance["ws_distance"] == "not applied (use_ws_distance = false in GaAs.win)"
    shutil.copy(DATA / "GaAs.win", files[1])  # wannier90's own .win: mp_grid, silent on use_ws_distance
    model = read_hr_dat(files[0])
    assert model.provenance["ws_distance"].startswith("applied: rebuilt")
    assert model.provenance["position_matrix"].startswith("diagonal")
    assert model.berry_connection_R is None
    assert np.max(np.abs(bands(model, RNG_K) - bands(gaas, RNG_K))) < 1e-10


# ------------------------------------------------------------------------------ position matrix
@pytest.mark.parametrize("name", ["gaas", "fe"])
def test_berry_connection_hermitian_and_derivative(name, request):
    """A^b(k) Hermitian; ∂_a A^b matches a central difference in Cartesian k."""
    model = request.getfixturevalue(name)
    note = model.provenance["position_matrix"]
    assert note.startswith("full: max |<m0|r|nR> - centre| = ")
    # wannier90's GaAs matrix is not exactly Hermitian; Fe's (from WannierBerri) is
    assert ("Hermitian part taken" in note) == (name == "gaas")
    conn = model.berry_connection_R
    assert conn.values.shape == (len(conn.R), 3, model.norb, model.norb)
    with use_backend("numpy"):
        A, dA = berry_connection_terms(model, RNG_K)
        for b in range(3):
            a_b = np.asarray(A[b])
            assert np.max(np.abs(a_b - np.conj(np.swapaxes(a_b, 1, 2)))) < 1e-12 * np.max(np.abs(a_b)) + 1e-14
        h = 1e-5
        to_fractional = np.linalg.inv(model.lattice.cartesian_k(np.eye(3)))  # Cartesian k → fractional
        for a in range(3):
            step = np.zeros(3)
            step[a] = h
            dk = step @ to_fractional
            plus, _ = berry_connection_terms(model, RNG_K + dk)
            minus, _ = berry_connection_terms(model, RNG_K - dk)
            for b in range(3):
                numeric = (np.asarray(plus[b]) - np.asarray(minus[b])) / (2 * h)
                assert np.max(np.abs(np.asarray(dA[(a, b)]) - numeric)) < 1e-6 * max(1.0, np.max(np.abs(numeric)))


def test_berry_connection_absent():
    assert berry_connection_terms(haldane(), RNG_K[:, :2]) is None
    assert haldane().berry_connection_R is None


def test_write_tb_dat_round_trip_position_matrix(tmp_path, gaas):
    """write_tb_dat writes the full position matrix; reading it back (no .win: no new translations) gives the same model."""
    path = write_tb_dat(gaas, tmp_path / "copy_tb.dat")
    back = read_tb_dat(path)
    assert back.provenance["ws_distance"].startswith("not applied (no copy.win")
    assert np.max(np.abs(bands(back, RNG_K) - bands(gaas, RNG_K))) < 1e-12
    with use_backend("numpy"):
        ours, _ = berry_connection_terms(gaas, RNG_K)
        theirs, _ = berry_connection_terms(back, RNG_K)
    for b in range(3):
        assert np.max(np.abs(np.asarray(ours[b]) - np.asarray(theirs[b]))) < 1e-12
    plain = write_tb_dat(haldane(), tmp_path / "h_tb.dat")
    assert read_tb_dat(plain).berry_connection_R is None


# ------------------------------------------------------------------------------ non-finite numbers
def small_tb_lines(tmp_path: Path) -> list[str]:
    return write_tb_dat(haldane(), tmp_path / "h_tb.dat").read_text().splitlines()


def test_nan_in_conjugate_partner_entry(tmp_path):
    """The issue's case: NaN in the partner of a kept bond used to pass the Hermiticity check."""
    lines = small_tb_lines(tmp_path)
    model = read_tb_dat(tmp_path / "h_tb.dat")
    hop = next(h for h in model.hoppings if not h.is_onsite)
    minus = [-x for x in hop.R] + [0]
    block = next(i for i, line in enumerate(lines) if line.split() == [str(x) for x in minus])
    entry = next(i for i in range(block + 1, len(lines)) if lines[i].split()[:2] == [str(hop.j + 1), str(hop.i + 1)])
    parts = lines[entry].split()
    lines[entry] = f"{parts[0]:>5}{parts[1]:>5}  {parts[2]} nan"
    (tmp_path / "bad_tb.dat").write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelFileError, match=rf"bad_tb.dat: line {entry + 1}: non-finite"):
        read_tb_dat(tmp_path / "bad_tb.dat")


def test_non_finite_in_other_files(tmp_path):
    """.win cell, _centres.xyz, _hr.dat and the lattice header of a _tb.dat (gzip too)."""
    files = write_hr_dat(haldane(), tmp_path / "h")
    for path, new in ((files[2], "inf"), (files[1], None), (files[0], "NaN")):  # centres, .win cell, _hr.dat
        text = path.read_text().splitlines()
        if path == files[1]:
            row = text.index("end unit_cell_cart") - 1
            text[row] = "nan 0 0"
        else:
            row = len(text) - 1
            parts = text[row].split()
            parts[-1] = new
            text[row] = " ".join(parts)
        saved = path.read_text()
        path.write_text("\n".join(text) + "\n")
        with pytest.raises(ModelFileError, match=rf"{path.name}: line {row + 1}: .*non-finite"):
            read_hr_dat(files[0])
        path.write_text(saved)
    lines = small_tb_lines(tmp_path)
    lines[1] = "inf 0 0"
    with gzip.open(tmp_path / "z_tb.dat.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    with pytest.raises(ModelFileError, match=r"z_tb.dat.gz: line 2: non-finite"):
        load_model(str(tmp_path / "z_tb.dat.gz"))


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        (
            "m.toml",
            'name = "x"\n[lattice]\nvectors = [[1.0, 0.0], [0.0, 1.0]]\n[parameters]\nt = inf\n[[orbitals]]\nposition = [0, 0]\n',
            5,
        ),
        ("m.json", '{"lattice": {"vectors": [[1, 0], [0, 1]]},\n "orbitals": [{"position": [0, NaN]}]}\n', 2),
    ],
)
def test_non_finite_in_model_files(tmp_path, name, text, line):
    (tmp_path / name).write_text(text)
    with pytest.raises(ModelFileError, match=rf"{name}: line {line}: .*non-finite"):
        load_model(str(tmp_path / name))
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / name), "--nk", "4"])
    assert result.exit_code == 2


# ------------------------------------------------------------------------------------------ CLI
def test_cli_prints_provenance(tmp_path):
    path = copy_model(tmp_path, "GaAs")
    args = ["evaluate", str(path), "--nk", "2", "--mu", "7.9", "-T", "0.05"]
    result = CliRunner().invoke(app, [*args, "--no-ws-distance", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["provenance"]["ws_distance"].startswith("not applied (switched off")
    assert report["provenance"]["position_matrix"].startswith("full")
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "applied: rebuilt from the Wannier centres" in " ".join(table.stdout.split())
    (tmp_path / "alone").mkdir()
    only = copy_model(tmp_path / "alone", "GaAs", win_extra=None)
    refused = CliRunner().invoke(app, ["evaluate", str(only), "--nk", "2", "--ws-distance"])
    assert refused.exit_code == 2
    assert "cannot apply the Wigner-Seitz" in refused.output


def test_read_win_keywords(tmp_path):
    """The .win keywords hamdesign reads, in wannier90's spellings (=, : or space; Fortran logicals and d exponents)."""
    from hamdesign.io.wannier90 import read_win

    path = tmp_path / "t.win"
    path.write_text(
        "mp_grid : 4, 4, 1\nws_search_size = 3\nuse_ws_distance = F\nws_distance_tol 1d-4\n"
        "begin unit_cell_cart\nbohr\n1 0 0\n0 1 0\n0 0 1\nend unit_cell_cart\n"
    )
    win = read_win(path)
    assert (win.mp_grid, win.ws_search_size, win.use_ws_distance, win.ws_distance_tol) == ((4, 4, 1), (3, 3, 3), False, 1e-4)
    assert win.cell[0, 0] == pytest.approx(0.529177210903)
    path.write_text("num_wann = 2\nmp_grid = 4 x 1\n")
    with pytest.raises(ModelFileError, match=r"t.win: line 2: mp_grid must be 3 positive integers"):
        read_win(path)
    assert read_win(DATA / "GaAs.win").use_ws_distance is True
    assert read_win(DATA / "Fe.win").use_ws_distance is None  # silent: wannier90's default (true) applies
