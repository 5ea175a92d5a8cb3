"""NumPy adapter: forward evaluation only (no automatic differentiation)."""

from __future__ import annotations

import os

import array_api_compat.numpy as xp  # noqa: F401  (the adapter's namespace, part of the contract)

import numpy as _np

from ..memory import keep_freed_chunks
from . import eager_while_loop as while_loop  # noqa: F401  (part of the contract)
from ._small_matrices import eigh_small, is_2x2_batch, matmul_2x2, uses_closed_form

name = "numpy"
version = _np.__version__
can_differentiate = False
can_compile = False
#: Working set of one k-chunk: small enough to stay in cache, which makes the eager Hall loop ~20 % faster
#: than 256 MiB chunks (bcc Fe, docs/performance.md).
chunk_bytes = 64 * 2**20
keep_freed_chunks(chunk_bytes)  # a chunk's temporaries reuse the last chunk's memory (no page faults)


def devices() -> list[str]:
    return ["cpu"]


def _select_device() -> str:
    if os.environ.get("HAMDESIGN_DEVICE", "cpu").lower() not in ("cpu", ""):
        raise RuntimeError("the numpy backend runs on the CPU only; set HAMDESIGN_DEVICE=cpu")
    return "cpu"


device = _select_device()


def asarray(x, dtype=None):
    """Convert to a NumPy array; Python floats become float64 and complex numbers complex128."""
    return _np.asarray(x, dtype=dtype)


def to_numpy(x) -> _np.ndarray:
    return _np.asarray(x)


def eigh(h):
    """Batched Hermitian eigendecomposition; 1×1 and 2×2 matrices in closed form (``_small_matrices``)."""
    if uses_closed_form(h.shape[-1]):
        return eigh_small(h, xp=_np)
    w, u = _np.linalg.eigh(h)
    return w, u


def matmul(a, b):
    """Batched matrix product; equally batched 2×2 matrices element by element (``matmul_2x2``)."""
    if is_2x2_batch(a, b):
        return matmul_2x2(a, b)
    return _np.matmul(a, b)


def value_and_grad(f, has_aux: bool = False):
    raise NotImplementedError(
        "the numpy backend cannot differentiate; choose one of jax, torch, autograd "
        "(HAMDESIGN_BACKEND=jax or hamdesign --backend jax)"
    )


def jit(f):
    return f


def stop_gradient(x):
    return x


def rematerialize(fn):
    """``fn`` itself: nothing is differentiated, so nothing is stored for a backward pass."""
    return fn


def sequence_after(x, previous):
    """``x`` to be computed after ``previous``: eager execution already runs calls in program order."""
    return x
