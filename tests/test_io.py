"""Model files and wannier90 files: round trips, degeneracies, dimension detection, bad input."""

from __future__ import annotations

import os

import pytest

import numpy as np
from conftest import DATA, random_model
from hamdesign.errors import ModelFileError
from hamdesign.io import (
    atomic_write_text,
    load_model,
    read_hr_dat,
    read_model_file,
    read_tb_dat,
    write_hr_dat,
    write_model_file,
    write_tb_dat,
)
from hamdesign.model import hamiltonian
from hamdesign.models import haldane, hbn, kondo_chain

MODELS = {
    "haldane": lambda: haldane(M=0.2, phi=0.7),
    "hbn": hbn,
    "kondo3": lambda: kondo_chain(3),
    "random1d": lambda: random_model(3, dim=1, seed=1),
    "random2d": lambda: random_model(3, dim=2, seed=2),
    "random3d": lambda: random_model(2, dim=3, seed=3),
}


def _same_h(a, b, pa=None, pb=None):
    k = np.random.default_rng(0).uniform(-1, 1, size=(9, a.dim))
    np.testing.assert_allclose(hamiltonian(b, pb, k), hamiltonian(a, pa, k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_model_file_round_trip(numpy_backend, tmp_path, name, suffix):
    model = MODELS[name]()
    path = write_model_file(model, tmp_path / f"model{suffix}")
    back = read_model_file(path)
    assert back.parameter_names == model.parameter_names and back.dim == model.dim
    np.testing.assert_allclose(back.lattice.vectors, model.lattice.vectors, atol=1e-14)
    _same_h(model, back)


@pytest.mark.parametrize("name", list(MODELS))
def test_wannier90_round_trips(numpy_backend, tmp_path, name):
    model = MODELS[name]()
    tb = read_tb_dat(write_tb_dat(model, tmp_path / "seed_tb.dat"))
    assert tb.dim == model.dim
    _same_h(model, tb)
    write_hr_dat(model, tmp_path / "seed")
    hr = read_hr_dat(tmp_path / "seed_hr.dat")
    assert hr.dim == model.dim
    _same_h(model, hr)
    np.testing.assert_allclose(hr.lattice.transverse_measure, model.lattice.transverse_measure, rtol=1e-12)


def test_wigner_seitz_degeneracy_divides_the_hopping(numpy_backend, tmp_path):
    # one orbital on a chain: e = 0.3 on site, t(±a) = -1 + 0.2i listed with degeneracy 2
    t = complex(-1.0, 0.2)
    blocks = [((-1, 0, 0), np.conj(t)), ((0, 0, 0), 0.3), ((1, 0, 0), t)]
    text = ["hand-written", "2.0 0 0", "0 5.0 0", "0 0 5.0", "1", "3", "2 1 2"]
    for R, h in blocks:
        text += ["", " ".join(map(str, R)), f"1 1 {complex(h).real} {complex(h).imag}"]
    for R, _ in blocks:
        text += ["", " ".join(map(str, R)), "1 1 0.5 0 0 0 0 0" if R == (0, 0, 0) else "1 1 0 0 0 0 0 0"]
    path = tmp_path / "chain_tb.dat"
    path.write_text("\n".join(text) + "\n")
    model = read_tb_dat(path)
    assert model.dim == 1
    k = np.array([[0.1], [0.35]])
    expected = 0.3 + 2 * (t * np.exp(2j * np.pi * k[:, 0])).real / 2  # each R counted once: t/2 + c.c.
    np.testing.assert_allclose(hamiltonian(model, None, k)[:, 0, 0], expected, atol=1e-14)
    assert model.positions[0, 0] == pytest.approx(0.5)


def test_reference_triangular_optimum(numpy_backend):
    from hamdesign.observables.hall import chern_numbers_lattice, hall_report

    model = load_model(str(DATA / "triangular_optimum_tb.dat"))
    assert model.dim == 2 and model.norb == 4
    assert model.lattice.transverse_measure == pytest.approx(10.0)
    report = hall_report(model, None, 48, beta=200.0, filling=0.5)
    assert report["sigma_xy"] == pytest.approx(6.0, abs=0.02)
    assert report["chern_rounded"] == [-5, -1, 3, 3]
    assert chern_numbers_lattice(model, None, 48).round().tolist() == [-5, -1, 3, 3]


def test_thickness_override(numpy_backend):
    model = load_model(str(DATA / "triangular_optimum_tb.dat"), thickness=3.0)
    assert model.lattice.transverse_measure == pytest.approx(3.0)


def _broken_hr(tmp_path, edit):
    write_hr_dat(haldane(), tmp_path / "b")
    path = tmp_path / "b_hr.dat"
    path.write_text(edit(path.read_text()))
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        ("this is [not toml", "not valid TOML"),
        ("[[orbitals]]\nposition = [0]\n", r"missing \[lattice\]"),
        ("[lattice]\nvectors = [[1.0, 0.0], [2.0, 0.0]]\n[[orbitals]]\nposition = [0, 0]\n", "singular"),
        (
            "[lattice]\nvectors = [[1.0]]\n[[orbitals]]\nposition = "
            "[0]\n[[hoppings]]\nfrom = 0\nto = 0\nR = [0]\namplitude = [0.0, 1.0]\n",
            "not real",
        ),
        (
            "[lattice]\nvectors = [[1.0]]\n[[orbitals]]\nposition = [0]\n"
            '[[hoppings]]\nfrom = "Q"\nto = 0\nR = [1]\namplitude = 1\n',
            "unknown orbital 'Q'",
        ),
        (
            "[lattice]\nvectors = [[1.0]]\n[[orbitals]]\nposition = [0]\n[[hoppings]]\nfrom = 0\nto = 0\nR = [1]\n",
            "amplitude: missing",
        ),
        ("colour = 3\n[lattice]\nvectors = [[1.0]]\n[[orbitals]]\nposition = [0]\n", "unknown key 'colour'"),
    ],
)
def test_malformed_model_files(tmp_path, content, message):
    path = tmp_path / "model.toml"
    path.write_text(content)
    with pytest.raises(ModelFileError, match=message) as info:
        read_model_file(path)
    assert str(path) in str(info.value)


def test_inconsistent_hr_pair_is_not_hermitian(tmp_path):
    def edit(text):
        lines = text.splitlines()
        for n, line in enumerate(lines):
            parts = line.split()
            if len(parts) == 7 and parts[:5] == ["1", "0", "0", "1", "1"]:
                parts[5] = "0.5"
                lines[n] = " ".join(parts)
                break
        return "\n".join(lines) + "\n"

    with pytest.raises(ModelFileError, match="not Hermitian"):
        read_hr_dat(_broken_hr(tmp_path, edit))


def test_truncated_tb_dat(tmp_path):
    path = write_tb_dat(haldane(), tmp_path / "t_tb.dat")
    path.write_text("\n".join(path.read_text().splitlines()[:40]))
    with pytest.raises(ModelFileError, match="t_tb.dat"):
        read_tb_dat(path)


def test_missing_companion_files(tmp_path):
    write_hr_dat(haldane(), tmp_path / "c")
    (tmp_path / "c_centres.xyz").unlink()
    with pytest.raises(ModelFileError, match="c_centres.xyz"):
        read_hr_dat(tmp_path / "c_hr.dat")


def test_win_in_bohr(numpy_backend, tmp_path):
    model = hbn()
    write_hr_dat(model, tmp_path / "w")
    win = tmp_path / "w.win"
    rows = [line for line in win.read_text().splitlines()]
    start = rows.index("ang")
    rows[start] = "Bohr"
    for i in range(start + 1, start + 4):
        rows[i] = "  ".join(f"{float(x) / 0.529177210903:.15e}" for x in rows[i].split())
    win.write_text("\n".join(rows) + "\n")
    np.testing.assert_allclose(read_hr_dat(tmp_path / "w_hr.dat").lattice.vectors, model.lattice.vectors, atol=1e-12)


def test_unknown_source():
    with pytest.raises(ModelFileError, match="no such file or built-in model"):
        load_model("nope")


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
