"""`backends/` must be importable as `hamdesign.backends` from an editable install and from a wheel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_maps_backends_into_the_package():
    import hamdesign.backends

    assert Path(hamdesign.backends.__file__).resolve() == ROOT / "backends" / "__init__.py"


@pytest.mark.wheel
def test_wheel_installs_and_runs(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheels = list((tmp_path / "dist").glob("hamdesign-*.whl"))
    assert len(wheels) == 1
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheels[0]), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import hamdesign, hamdesign.backends\n"
        f"assert hamdesign.__file__.startswith({str(site)!r}), hamdesign.__file__\n"
        f"assert hamdesign.backends.__file__.startswith({str(site)!r}), hamdesign.backends.__file__\n"
        "from hamdesign.backend import use_backend\n"
        "from hamdesign.models import haldane\n"
        "from hamdesign import kmesh, sigma_xy\n"
        "m = haldane()\n"
        "with use_backend('numpy'):\n"
        "    s = float(sigma_xy(m, m.default_params, kmesh(30, 2), beta=100.0, mu=0.0))\n"
        "assert abs(s - 1) < 1e-3, s  # Haldane at φ = +π/2: C = (−1, +1), σ_xy = +1\n"
        "print('ok')\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert ran.returncode == 0 and "ok" in ran.stdout, ran.stderr
