"""Bands, eigenstates and band-basis matrices on k-batches; Fermi function; μ given or at a filling.

Memory is bounded by evaluating k-points in chunks (:func:`k_chunks`): the largest temporary is a
few (chunk, norb, norb) complex arrays per Cartesian component.
"""

from __future__ import annotations

import contextvars
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import backend as _backend
from .backend import follows_inputs
from .devices import along_k, device_count, sharded_lengths
from .errors import MemoryBudgetError, ParameterError
from .lattice import mesh_row_length
from .memory import memory_budget_bytes
from .model import TightBinding, hamiltonian_derivatives, orbital_phase_factors, paired_bloch_terms, unpack_pair

#: Working-set budget for one k-chunk, bytes (``HAMDESIGN_MEMORY_BUDGET`` in GiB overrides it).
DEFAULT_CHUNK_BYTES = 256 * 2**20
#: Complex (norb × norb) matrices alive per k-point at order 2 (H, 3 v, 9 w, U, band-basis copies,
#: autodiff residuals): an upper estimate used to size chunks.
MATRICES_PER_K = {0: 6, 1: 24, 2: 60}


def chunk_budget(limit: int | None = None) -> int:
    """Bytes one k-chunk's working set may take: ``limit`` (default :data:`DEFAULT_CHUNK_BYTES`), or
    less where the active adapter's ``chunk_bytes`` asks for smaller chunks (an eager NumPy loop
    runs fastest when a chunk's matrices stay in cache; a compiled one wants few, large chunks)."""
    return min(limit or DEFAULT_CHUNK_BYTES, _backend.current().chunk_bytes)


def chunk_size(norb: int, *, order: int = 1, chunk_bytes: int | None = None) -> int:
    """k-points per chunk so that one chunk's working set stays within ``chunk_bytes`` (default :func:`chunk_budget`)."""
    per_k = MATRICES_PER_K[order] * norb * norb * 16
    return max(1, int((chunk_bytes or chunk_budget()) // per_k))


def worker_threads() -> int:
    """Threads a forward-only evaluation spreads its k-chunks over (:func:`map_chunks`).

    ``HAMDESIGN_THREADS`` (a positive integer), else the CPUs this process may run on. LAPACK and
    BLAS release the GIL, so chunks run in parallel; set 1 to measure one core.
    """
    text = os.environ.get("HAMDESIGN_THREADS", "").strip()
    if not text:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ParameterError(f"HAMDESIGN_THREADS must be a positive integer, got {text!r}")
    return threads


def chunk_threads(chunk_bytes: int) -> int:
    """:func:`worker_threads`, as many as the memory budget holds chunks of ``chunk_bytes`` (at least 1)."""
    return max(1, min(worker_threads(), int(memory_budget_bytes() // max(int(chunk_bytes), 1))))


def map_chunks(work: Callable, chunks: Iterable, /, *, threads: int = 1) -> Iterator:
    """``work(chunk)`` for each chunk, in order, on up to ``threads`` threads.

    For forward-only evaluations on an eager backend: each chunk is independent, results come back
    in chunk order (so sums over them are the same whatever the thread count), at most 2 × threads
    chunks are in flight (memory stays bounded), and each worker runs in a copy of the caller's
    context (the active backend and device set are context variables).
    """
    if threads <= 1:
        yield from map(work, chunks)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hamdesign-chunk") as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(contextvars.copy_context().run, work, chunk))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def sequenced(params, previous):
    """``params`` ordered after ``previous`` (the adapter's ``sequence_after``; a no-op on eager backends).

    The physics needs its ``eigh`` calls in program order (see ``backends/jax.py``); the adapter
    contract supplies the ordering primitive, so nothing here asks which backend is active.
    """
    if params is None or previous is None:
        return params
    return _backend.current().sequence_after(params, previous)


def k_chunks(kfrac: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """``kfrac`` in consecutive chunks of ``size`` k-points per device.

    On one device a mesh whose rows (runs sharing all coordinates but the last) are no longer than
    ``size`` is cut between rows, ``size`` rounded down to whole rows, so that each chunk's Bloch
    sum factorises (:class:`hamdesign.model.RowFactors`). Inside :func:`hamdesign.on_devices` a
    chunk spans ``size`` × the device count and is cut where needed so that each piece either
    divides evenly over the devices or is a remainder of fewer points than devices (see
    :mod:`hamdesign.devices`).
    """
    count = device_count()
    row = mesh_row_length(kfrac) if count == 1 else 1
    if 1 < row <= size:
        size -= size % row
    step = size * count
    for start in range(0, len(kfrac), step):
        chunk = kfrac[start : start + step]
        if count == 1:
            yield chunk
            continue
        offset = 0
        for length in sharded_lengths(len(chunk), count):
            yield chunk[offset : offset + length]
            offset += length


def check_memory(nk: int, nband: int, *, per_k_arrays: int = 4) -> None:
    """Refuse up front when the per-k results kept for all k (not chunked) exceed the budget."""
    need = nk * nband * nband * 16 * per_k_arrays / 4 + nk * nband * 8 * per_k_arrays
    budget = memory_budget_bytes()
    if need > budget:
        raise MemoryBudgetError(
            f"{nk} k-points × {nband} bands needs about {need / 2**30:.1f} GiB for the per-k results, more than the "
            f"budget of {budget / 2**30:.1f} GiB (HAMDESIGN_MEMORY_BUDGET); use a smaller --nk"
        )


def checked_kmesh(model: TightBinding, nk) -> np.ndarray:
    """The Γ-centred mesh for ``nk``, refused up front (MemoryBudgetError) if the per-k results would not fit."""
    from .lattice import kmesh, parse_nk

    sizes = parse_nk(nk, model.dim)
    check_memory(int(np.prod(sizes, dtype=float)), model.nband, per_k_arrays=2)
    return kmesh(sizes, model.dim)


@follows_inputs
def eigensystem(model: TightBinding, params, kfrac, /, *, order: int = 1, components=(0, 1, 2), vectors: bool = True):
    """Energies, eigenvectors and band-basis derivative matrices on one k-batch.

    Returns ``(energies, states, v_band, w_band)``: energies (nk, nb) ascending, states (nk, nb, nb)
    (columns are eigenvectors in the tight-binding convention; None with ``vectors=False``, for a
    caller that needs only the band-basis matrices), and dicts ``v_band[a]`` = U† ∂_a H U, ``w_band[(a, b)]`` =
    U† ∂_a∂_b H U for a, b in ``components`` (empty below ``order``).

    Inside a degenerate subspace the basis is whatever ``eigh`` returns: observables built on these
    matrices must be invariant under a rotation there (see :mod:`hamdesign.observables.interband`).
    """
    be = _backend.current()
    xp = be.xp
    # without the orbital phases P = diag(e^{ik·τ}): eigh gives P U, whose band-basis matrices are
    # the same; the matrices are Hermitian up to round-off, all that eigh and U†XU need. Two Hermitian
    # derivatives travel as one matrix A + iB: U†(A + iB)U costs the products of one
    h, pairs = paired_bloch_terms(model, params, kfrac, order=order, components=tuple(sorted(set(components))))
    energies, rotated = be.eigh(h)
    ud = xp.conj(xp.matrix_transpose(rotated))
    states = xp.expand_dims(xp.conj(along_k(orbital_phase_factors(model, kfrac))), axis=-1) * rotated if vectors else None
    band: dict = {}
    for pair in pairs:
        x = be.matmul(be.matmul(ud, pair.matrix), rotated)
        if pair.second is None:
            band[pair.first] = x
        else:
            band[pair.first], band[pair.second] = unpack_pair(x, xp)
    v_band = {a: band[a] for a in components} if order >= 1 else {}
    w_band = {(a, b): band[(min(a, b), max(a, b))] for a in components for b in components} if order == 2 else {}
    return energies, states, v_band, w_band


@follows_inputs
def bands(model: TightBinding, params, kfrac, /, *, chunk: int | None = None):
    """Band energies ε_n(k), shape (nk, nband), ascending, in the model's energy unit."""
    be = _backend.current()
    size = chunk or chunk_size(model.norb, order=0)
    parts = []
    for kc in k_chunks(np.asarray(kfrac), size):
        parts.append(be.eigh(hamiltonian_derivatives(model, sequenced(params, parts[-1] if parts else None), kc, order=0)[0])[0])
    return parts[0] if len(parts) == 1 else be.xp.concat(parts, axis=0)


def fermi(x, beta, /):
    """Fermi–Dirac occupation f(x) = 1 / (1 + e^{βx}) = ½(1 − tanh(βx/2)), overflow-free.

    βx/2 is clipped to ±40, where tanh is ±1 to double precision and its derivative sech² < 1e-34:
    the value is unchanged and the gradient's lost part is below round-off, but a derivative rule
    written as 1/cosh² (autograd's) no longer overflows at β → ∞.
    """
    xp = _backend.current().xp
    return 0.5 * (1.0 - xp.tanh(xp.clip(0.5 * beta * x, -40.0, 40.0)))


def require_positive_beta(beta) -> None:
    """Reject β ≤ 0 or non-finite when it is a concrete number (traced values pass through)."""
    if isinstance(beta, (int, float, np.integer, np.floating)) and not (0 < beta < float("inf")):
        raise ParameterError(f"beta must be positive and finite, got {beta}")


def electrons_per_cell(filling: float, nband: int) -> float:
    """Electrons per cell for a filling given as the fraction of bands occupied (0 … 1)."""
    if not 0.0 <= filling <= 1.0:
        raise ParameterError(f"filling must be between 0 and 1 (fraction of bands occupied), got {filling}")
    return filling * nband


def _zero_temperature_levels(fixed, target: float):
    """The highest occupied and lowest empty level at T = 0 for ``target`` electrons per cell.

    For an integer number ν of filled bands these are max ε_{ν−1} and min ε_ν (equal to the
    sorted-levels answer whenever the bands do not overlap, and a point inside the overlap when they
    do); otherwise the n-th and (n+1)-th of all sorted levels. Either is only the starting point of
    the iteration in :func:`chemical_potential`; the sort is avoided where possible because XLA's
    CPU sort of 2·10⁴ levels costs more than the rest of a Haldane σ_xy step.
    """
    xp = _backend.current().xp
    nk, nband = fixed.shape
    bands_filled = int(round(target))
    if abs(target - bands_filled) < 1e-12 and 0 < bands_filled < nband:
        return xp.max(fixed[:, bands_filled - 1]), xp.min(fixed[:, bands_filled])
    levels = xp.sort(xp.reshape(fixed, (-1,)))
    n_occ = int(round(target * nk))
    return levels[max(n_occ - 1, 0)], levels[min(n_occ, nk * nband - 1)]


@follows_inputs
def chemical_potential(energies, /, *, filling: float, beta: float, iterations: int = 32):
    """μ such that the mean over k of Σ_n f(ε_nk − μ) equals ``filling × nband``.

    The root of the monotone N(μ) is found on gradient-stopped energies by a safeguarded Newton
    iteration inside the backend's ``while_loop`` (so it traces under ``jit``): it starts from the
    T = 0 estimate (midway between the highest occupied and lowest empty level, see
    :func:`_zero_temperature_levels`; mid-gap in an insulator, where it stays once N(μ) = N* to
    1e-14), keeps a bracket [lo, hi] with N(lo) ≤ N* ≤ N(hi), bisects whenever a Newton step would
    leave it, and stops when converged (at most ``iterations`` steps). A final Newton step on the
    live energies carries the implicit-function derivative

        dμ = Σ_nk f'(ε_nk − μ) dε_nk / Σ_nk f'(ε_nk − μ),

    so μ is differentiable with respect to the model parameters. Where Σ f' < 1e-12 per k (in a gap
    at low temperature) μ carries no gradient: the observables do not depend on it there.
    """
    be = _backend.current()
    xp = be.xp
    require_positive_beta(beta)
    nk, nband = energies.shape
    target = electrons_per_cell(filling, nband)
    fixed = be.stop_gradient(energies)
    below, above = _zero_temperature_levels(fixed, target)
    tolerance = 1e-14 * nband

    def unconverged(state):
        step, _, _, _, converged = state
        return (step < iterations) & ~converged

    def newton_or_bisection(state):
        step, mu, lo, hi, _ = state
        occ = fermi(fixed - mu, beta)
        excess = xp.sum(occ) / nk - target
        slope = beta * xp.sum(occ * (1.0 - occ)) / nk
        too_many = excess > 0
        hi = xp.where(too_many, mu, hi)
        lo = xp.where(too_many, lo, mu)
        usable = slope > 1e-12
        newton = mu - excess / xp.where(usable, slope, slope * 0.0 + 1.0)
        inside = usable & (newton > lo) & (newton < hi)
        converged = xp.abs(excess) <= tolerance
        mu = xp.where(converged, mu, xp.where(inside, newton, 0.5 * (lo + hi)))
        return step + 1, mu, lo, hi, converged

    start = (
        xp.asarray(0, device=be.device),
        0.5 * (below + above),
        xp.min(fixed) - 1.0 - 40.0 / beta,
        xp.max(fixed) + 1.0 + 40.0 / beta,
        xp.asarray(False, device=be.device),
    )
    _, mu, _, _, _ = be.while_loop(unconverged, newton_or_bisection, start)
    mu0 = be.stop_gradient(mu)
    occ = fermi(energies - mu0, beta)
    excess = xp.sum(occ) / nk - target
    f0 = fermi(fixed - mu0, beta)
    slope = be.stop_gradient(beta * xp.sum(f0 * (1.0 - f0)) / nk)
    gapped = slope <= 1e-12
    safe = xp.where(gapped, slope * 0.0 + 1.0, slope)
    return mu0 - xp.where(gapped, 0.0 * excess, excess / safe)


def resolve_mu(energies, /, *, beta: float, mu: float | None = None, filling: float | None = None):
    """μ as given, or from ``filling`` (fraction of bands occupied) by :func:`chemical_potential`."""
    if (mu is None) == (filling is None):
        raise ParameterError("give exactly one of mu (energy) or filling (fraction of bands occupied)")
    if mu is not None:
        if not np.all(np.isfinite(np.asarray(mu, dtype=float))):
            raise ParameterError(f"mu must be finite, got {mu}")
        return mu
    return chemical_potential(energies, filling=filling, beta=beta)
