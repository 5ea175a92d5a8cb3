"""k-chunks of forward-only evaluations on several threads (``spectrum.map_chunks``, ``HAMDESIGN_THREADS``).

The chunks are independent and their results are summed in chunk order, so every number is the same,
bit for bit, whatever the thread count; the workers see the caller's backend; at most 2 × threads
chunks are alive at once; a bad ``HAMDESIGN_THREADS`` is a clear error (exit code 2 from the CLI).
"""

from __future__ import annotations

import threading
import time

import pytest

import hamdesign as hd
import numpy as np
from conftest import random_model, strict_adapter
from hamdesign import spectrum
from hamdesign.backend import use_backend
from hamdesign.errors import ParameterError
from hamdesign.observables import hall


def _small_chunks(monkeypatch):
    monkeypatch.setattr(hall, "DEFAULT_CHUNK_BYTES", 9 * 24 * 3 * 3 * 16)  # 9 k-points per chunk
    monkeypatch.setattr(spectrum, "DEFAULT_CHUNK_BYTES", 9 * 24 * 3 * 3 * 16)


@pytest.mark.parametrize("threads", ["2", "5"])
def test_hall_scan_is_the_same_bit_for_bit_on_several_threads(numpy_backend, monkeypatch, threads):
    _small_chunks(monkeypatch)
    model, mus = random_model(3, dim=3, seed=2), np.linspace(-1.0, 1.0, 7)

    def evaluate():
        report = hall.hall_report(model, None, 6, beta=30.0, mu=mus)
        api = hd.anomalous_hall_conductivity(model, None, hd.kmesh(6, 3), beta=30.0, mu=mus)
        return np.array([report["sigma_bulk_S_per_cm"][p] for p in ("yz", "zx", "xy")]), np.asarray(api)

    monkeypatch.setenv("HAMDESIGN_THREADS", "1")
    serial = evaluate()
    monkeypatch.setenv("HAMDESIGN_THREADS", threads)
    parallel = evaluate()
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])
    assert np.abs(serial[1]).max() > 0


def test_shift_spectrum_is_the_same_bit_for_bit_on_several_threads(numpy_backend, monkeypatch):
    model, k, omega = random_model(3, dim=3, seed=5), hd.kmesh(5, 3), np.linspace(0.2, 3.0, 9)

    def evaluate():
        return np.asarray(
            hd.shift_conductivity(model, None, k, omega, components="all", beta=20.0, mu=0.0, eta=0.1, chunk=None).sigma
        )

    monkeypatch.setattr(spectrum, "DEFAULT_CHUNK_BYTES", 6 * 60 * 3 * 3 * 16)
    from hamdesign.observables import response

    monkeypatch.setattr(response, "DEFAULT_CHUNK_BYTES", 6 * 60 * 3 * 3 * 16)
    monkeypatch.setenv("HAMDESIGN_THREADS", "1")
    serial = evaluate()
    monkeypatch.setenv("HAMDESIGN_THREADS", "3")
    assert np.array_equal(serial, evaluate())
    assert np.abs(serial).max() > 0


def test_workers_run_on_the_callers_backend(monkeypatch):
    """The active backend is a context variable: each worker runs in a copy of the caller's context."""
    _small_chunks(monkeypatch)
    monkeypatch.setenv("HAMDESIGN_THREADS", "3")
    model = random_model(3, dim=3, seed=2)
    with use_backend("numpy"):
        expected = np.asarray(hd.anomalous_hall_conductivity(model, None, hd.kmesh(4, 3), beta=10.0, mu=0.2))
    with use_backend(strict_adapter()):
        got = np.asarray(hd.anomalous_hall_conductivity(model, None, hd.kmesh(4, 3), beta=10.0, mu=0.2))
    assert type(got) is np.ndarray and np.allclose(got, expected, rtol=1e-12)


def test_map_chunks_keeps_order_and_bounds_the_chunks_in_flight():
    alive, most = [0], [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            alive[0] += 1
            most[0] = max(most[0], alive[0])
        time.sleep(0.002 * (i % 3))
        with lock:
            alive[0] -= 1
        return i * i

    started = []

    def chunks():
        for i in range(40):
            started.append(i)
            yield i

    results = spectrum.map_chunks(work, chunks(), threads=3)
    first = next(results)
    assert first == 0 and len(started) <= 6  # not the whole mesh at once: 2 × threads ahead at most
    assert [first, *results] == [i * i for i in range(40)]
    assert 1 <= most[0] <= 3


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_bad_thread_counts_are_refused(monkeypatch, text):
    monkeypatch.setenv("HAMDESIGN_THREADS", text)
    with pytest.raises(ParameterError, match="HAMDESIGN_THREADS must be a positive integer"):
        spectrum.worker_threads()


def test_the_cli_reports_a_bad_thread_count_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HAMDESIGN_THREADS": "none"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "hamdesign.cli",
            "evaluate",
            "haldane",
            "--observable",
            "hall",
            "--nk",
            "12",
            "--mu",
            "0",
            "--beta",
            "20",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "HAMDESIGN_THREADS must be a positive integer" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
