"""PyTorch adapter: ``array_api_compat.torch``, a degeneracy-safe ``eigh`` and ``torch.func`` gradients.

Arrays are created as float64 / complex128 explicitly; torch's global default dtype is left alone.
``jit`` is the identity unless ``HAMDESIGN_TORCH_COMPILE=1`` (Inductor has no complex codegen).
"""

from __future__ import annotations

import os

import array_api_compat.torch as xp

import torch as _torch

from . import eager_while_loop as while_loop  # noqa: F401  (part of the contract)
from ._eigh_rule import eigh_vjp_wirtinger
from ._small_matrices import eigh_small, uses_closed_form

name = "torch"
version = _torch.__version__
can_differentiate = True
can_compile = os.environ.get("HAMDESIGN_TORCH_COMPILE", "0") == "1"
chunk_bytes = 256 * 2**20  # working set of one k-chunk


def devices() -> list[str]:
    found = ["cpu"]
    if _torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(_torch.cuda.device_count())]
    return found


def _select_device():
    wanted = os.environ.get("HAMDESIGN_DEVICE", "cpu").lower() or "cpu"
    if wanted == "cpu":
        return _torch.device("cpu")
    if wanted == "gpu":
        if not _torch.cuda.is_available():
            raise RuntimeError("HAMDESIGN_DEVICE=gpu but torch sees no CUDA device")
        return _torch.device("cuda")
    raise RuntimeError(f"unknown HAMDESIGN_DEVICE={wanted!r}; use cpu or gpu")


device = _select_device()

_DEFAULT_DTYPE = {float: _torch.float64, int: _torch.int64, complex: _torch.complex128}


def asarray(x, dtype=None):
    """Tensor on the selected device; floats are float64 and complex numbers complex128."""
    if isinstance(x, _torch.Tensor):
        return x.to(device=device, dtype=dtype) if dtype is not None else x.to(device)
    import numpy

    arr = numpy.asarray(x)
    if dtype is None and arr.dtype.kind in "fc":
        dtype = _torch.complex128 if arr.dtype.kind == "c" else _torch.float64
    if dtype is None and arr.dtype.kind in "iub" and arr.dtype.kind != "b":
        dtype = _torch.int64
    return _torch.as_tensor(arr, dtype=dtype, device=device)


def to_numpy(x):
    if not isinstance(x, _torch.Tensor):
        import numpy

        return numpy.asarray(x)
    return x.detach().cpu().numpy()


def _dagger(a):
    return a.transpose(-1, -2).conj()


#: Largest batch handed to one CUDA eigh call (see ``_Eigh.forward``).
CUDA_EIGH_BATCH = 1024


class _Eigh(_torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(h):
        if uses_closed_form(h.shape[-1]):
            return eigh_small(h, xp=xp)
        if h.is_cuda and h.ndim > 2 and h.shape[:-2].numel() > CUDA_EIGH_BATCH:
            # cuSOLVER's batched eigh asks for workspace far beyond the batch's size (160 GiB for
            # 10⁴ complex 2×2 matrices with torch 2.11 on an H100), so large batches go in slices.
            flat = h.reshape(-1, *h.shape[-2:])
            parts = [_torch.linalg.eigh(flat[i : i + CUDA_EIGH_BATCH]) for i in range(0, flat.shape[0], CUDA_EIGH_BATCH)]
            w = _torch.cat([p[0] for p in parts]).reshape(*h.shape[:-1])
            u = _torch.cat([p[1] for p in parts]).reshape(h.shape)
            return w, u
        w, u = _torch.linalg.eigh(h)
        return w, u

    @staticmethod
    def setup_context(ctx, inputs, output):
        w, u = output
        ctx.save_for_backward(w, u)

    @staticmethod
    def backward(ctx, w_bar, u_bar):
        w, u = ctx.saved_tensors
        return eigh_vjp_wirtinger(
            w,
            u,
            w_bar,
            u_bar,
            xp=xp,
            matmul=_torch.matmul,
            dagger=_dagger,
            eye=lambda n: _torch.eye(n, dtype=u.dtype, device=u.device),
        )


def eigh(h):
    """Batched Hermitian eigendecomposition with the broadened derivative of ``_eigh_rule``.

    1×1 and 2×2 matrices are solved in closed form (``_small_matrices``).
    """
    return _Eigh.apply(h)


def matmul(a, b):
    """Batched matrix product (the library's own is fastest here at every size)."""
    return _torch.matmul(a, b)


def value_and_grad(f, has_aux: bool = False):
    """``(value, grad)`` of ``f`` with respect to its first argument (``((value, aux), grad)``)."""
    from torch.func import grad_and_value

    transformed = grad_and_value(f, has_aux=has_aux)

    def wrapped(*args, **kwargs):
        grad, value = transformed(*args, **kwargs)
        return value, grad

    return wrapped


def jit(f):
    if can_compile:
        return _torch.compile(f)
    return f


def stop_gradient(x):
    return x.detach()


class _Rematerialized(_torch.autograd.Function):
    """Runs ``fn`` without recording; the backward pass recomputes it under ``torch.func.vjp``.

    ``torch.utils.checkpoint`` relies on saved-tensor hooks, which ``torch.func`` transforms (the
    adapter's ``value_and_grad``) refuse; a custom Function with ``setup_context`` composes with both
    ``torch.func`` and ``Tensor.backward``.
    """

    @staticmethod
    def forward(x, fn):
        with _torch.no_grad():
            return fn(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.fn = inputs[1]

    @staticmethod
    def backward(ctx, cotangent):
        (x,) = ctx.saved_tensors
        _, pullback = _torch.func.vjp(ctx.fn, x)
        return pullback(cotangent)[0], None


def rematerialize(fn):
    """``fn`` (one tensor → one tensor) whose intermediates are recomputed in the backward pass."""

    return lambda x: _Rematerialized.apply(x, fn)


def sequence_after(x, previous):
    """``x`` to be computed after ``previous``: eager execution already runs calls in program order."""
    return x
