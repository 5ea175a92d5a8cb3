"""The README's Python example runs; src/ never imports an array framework directly."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs(capsys):
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert blocks, "README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    for name in ("jax", "torch", "autograd"):
        assert name in out


def test_quickstart_examples_run(capsys):
    scope: dict = {}
    for block in _python_blocks((ROOT / "docs" / "quickstart.md").read_text()):
        exec(compile(block, "quickstart.md", "exec"), scope)
    assert "-1" in capsys.readouterr().out


def test_src_never_imports_a_framework():
    pattern = re.compile(r"^\s*(import|from)\s+(jax|torch|autograd)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "src").rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders, offenders


def test_docs_build_with_mkdocs_strict(tmp_path):
    """Every page in mkdocs.yml builds; a broken link or anchor is a warning, and --strict fails on it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for page in (
        "index.html",
        "tutorials/haldane/index.html",
        "tutorials/triangular/index.html",
        "tutorials/photovoltaic/index.html",
        "theory/index.html",
    ):
        assert (tmp_path / "site" / page).stat().st_size > 1000
    for image in (root / "docs" / "images" / "tutorials").glob("*.png"):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 10_000
