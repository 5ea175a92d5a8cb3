"""The repository is self-contained: a clone with nothing beside it finds every file its tests and docs read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SCANNED = ("src", "tests", "docs", "scripts", "asv_bench", "backends", ".ci")
SCANNED += ("Makefile", "README.md", "mkdocs.yml", "pyproject.toml")
# Paths of the development machine that a user's clone never has; spelt in pieces so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "shared" + "/reference", "/work" + "/shared")
# Every test that reads tests/data or a generated doc, run again from a bare copy of the repository.
DATA_TESTS = (
    "tests/test_io.py::test_reference_triangular_optimum",
    "tests/test_io.py::test_thickness_override",
    "tests/test_cli.py::test_evaluate_reference_tb_dat_gives_six",
    "tests/test_models.py::test_kondo_chain_reference_texture_round_trips_spins",
    "tests/test_models.py::test_triangular_geometry_matches_the_published_model",
    "tests/test_photocurrent.py::test_published_optimum_reaches_published_order_of_magnitude",
    "tests/test_cli_docs.py::test_cli_reference_in_docs_is_up_to_date",
)


def _text_files(top: Path):
    """Every readable text file at or under ``top`` (binary files and caches skipped)."""
    paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    for path in paths:
        if "__pycache__" in path.parts or any(part.endswith(".egg-info") for part in path.parts):
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def test_no_file_refers_to_the_development_machine():
    offenders = [
        f"{path.relative_to(ROOT)}:{line_no}: {line.strip()}"
        for top in SCANNED
        if (ROOT / top).exists()
        for path, text in _text_files(ROOT / top)
        for line_no, line in enumerate(text.splitlines(), 1)
        if any(needle in line for needle in FORBIDDEN)
    ]
    assert not offenders, "files outside the repository are referenced (move the data into tests/data/):\n" + "\n".join(offenders)


def test_every_data_file_has_a_readme_entry():
    """tests/data/README.md has a heading per file or folder: what it is, its source, its licence."""
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    entries = sorted(p.name for p in DATA.iterdir() if p.name != "README.md" and p.name != "__pycache__")
    assert entries, "tests/data is empty"
    missing = [name for name in entries if f"### `{name}`" not in readme]
    assert not missing, f"add a '### `NAME`' entry (what, source, licence) to tests/data/README.md for: {missing}"
    sections = readme.split("\n### ")[1:]
    assert len(sections) >= len(entries)
    for section in sections:
        assert "**Source:**" in section and "**Licence:**" in section, section.splitlines()[0]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    return [name for name in listed.decode().split("\0") if name]


def _copy_tracked(dest: Path) -> None:
    """What a clone has: the committed (staged) files only, so a data file someone forgot to add is missing here too."""
    for name in _tracked_files():
        source = ROOT / name
        if source.is_file():  # deleted in the work tree but not yet staged
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _pytest_in(folder: Path, *tests: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *tests]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=os.environ.copy())


def test_a_bare_copy_of_the_repository_finds_its_data(tmp_path):
    """The tracked files alone, in a folder with nothing beside it, pass every test that reads data.

    The package itself is imported from the installation (PYTHONPATH unchanged); the tests, their
    conftest and tests/data come from the copy. Removing a data file from the copy must make its
    test fail, which shows the copy reads its own data and not this checkout's.
    """
    copy = tmp_path / "clone"
    _copy_tracked(copy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone"]
    passed = _pytest_in(copy, *DATA_TESTS)
    assert passed.returncode == 0, passed.stdout[-4000:] + passed.stderr[-2000:]
    assert f"{len(DATA_TESTS)} passed" in passed.stdout
    (copy / "tests" / "data" / "triangular_optimum_tb.dat").unlink()
    failed = _pytest_in(copy, DATA_TESTS[0])
    assert failed.returncode == 1 and "triangular_optimum_tb.dat" in failed.stdout, failed.stdout[-3000:]
