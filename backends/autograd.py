"""autograd adapter: an array-API shim over ``autograd.numpy``, a degeneracy-safe ``eigh``.

autograd's boxed arrays report NumPy's (non-array-API) namespace, so hamdesign never infers the
namespace from an array; the shim ``xp`` below maps each array-API name it needs onto an
``autograd.numpy`` function that has a gradient. autograd and JAX share the complex-gradient
convention (∂/∂x − i ∂/∂y); the shared eigh rule is written in PyTorch's (the conjugate), hence
the conjugations in ``_eigh_vjp``.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version
from types import SimpleNamespace

import autograd.numpy as _anp
from autograd.extend import defvjp, primitive
from autograd.tracer import getval

import autograd as _autograd
import numpy as _np

from ..memory import keep_freed_chunks
from . import eager_while_loop as while_loop  # noqa: F401  (part of the contract)
from ._eigh_rule import eigh_vjp_wirtinger
from ._small_matrices import eigh_small, is_2x2_batch, matmul_2x2, uses_closed_form

name = "autograd"


def _autograd_version() -> str:
    """autograd has no ``__version__``; its installed distribution's metadata has the version."""
    try:
        return _distribution_version("autograd")
    except PackageNotFoundError:  # importable without metadata (a source checkout on sys.path)
        return getattr(_autograd, "__version__", "unknown")


version = _autograd_version()
can_differentiate = True
can_compile = False
chunk_bytes = 256 * 2**20  # working set of one k-chunk (the backward pass keeps each chunk's residuals)
keep_freed_chunks(64 * 2**20)  # its arrays are NumPy's: reuse freed chunk memory (hamdesign.memory)


def devices() -> list[str]:
    return ["cpu"]


def _select_device() -> str:
    if os.environ.get("HAMDESIGN_DEVICE", "cpu").lower() not in ("cpu", ""):
        raise RuntimeError("the autograd backend runs on the CPU only; set HAMDESIGN_DEVICE=cpu")
    return "cpu"


device = _select_device()


def _no_device(fn):
    def call(*args, device=None, **kwargs):
        return fn(*args, **kwargs)

    return call


def _astype(x, dtype, /, *, copy=True):
    kind = _np.dtype(dtype).kind
    if kind == "c":
        return x * (1.0 + 0.0j)
    if kind == "f":
        if _np.iscomplexobj(getval(x)):
            raise TypeError("astype from complex to real would drop the imaginary part; use real()")
        return x * 1.0
    return _np.asarray(getval(x), dtype=dtype)  # integer and boolean arrays carry no gradient


def _concat(arrays, /, *, axis=0):
    return _anp.concatenate(list(arrays), axis=axis)


def _take(x, indices, /, *, axis=None):
    idx = getval(indices)
    if axis is None:
        return _anp.ravel(x)[idx]
    sl = (slice(None),) * (axis % x.ndim) + (idx,)
    return x[sl]


def _sum(x, /, *, axis=None, dtype=None, keepdims=False):
    return _anp.sum(x, axis=axis, keepdims=keepdims)


def _mean(x, /, *, axis=None, keepdims=False):
    return _anp.mean(x, axis=axis, keepdims=keepdims)


def _prod(x, /, *, axis=None, dtype=None, keepdims=False):
    return _anp.prod(x, axis=axis, keepdims=keepdims)


def _reshape(x, /, shape, *, copy=None):
    return _anp.reshape(x, shape)


def _permute_dims(x, /, axes):
    return _anp.transpose(x, axes)


def _matrix_transpose(x, /):
    return _anp.swapaxes(x, -1, -2)


def _round(x, /):
    return _anp.round(x)


xp = SimpleNamespace(
    __name__="hamdesign.backends.autograd.xp",
    float64=_np.float64,
    complex128=_np.complex128,
    int64=_np.int64,
    bool=_np.bool_,
    pi=_np.pi,
    e=_np.e,
    asarray=_no_device(lambda x, dtype=None, copy=None: _anp.array(x, dtype=dtype)),
    zeros=_no_device(_anp.zeros),
    ones=_no_device(_anp.ones),
    eye=_no_device(lambda n, m=None, /, *, k=0, dtype=None: _anp.eye(n, m, k=k, dtype=dtype)),
    arange=_no_device(_np.arange),
    linspace=_no_device(_np.linspace),
    reshape=_reshape,
    stack=lambda arrays, /, *, axis=0: _anp.stack(list(arrays), axis=axis),
    concat=_concat,
    expand_dims=lambda x, /, *, axis=0: _anp.expand_dims(x, axis),
    permute_dims=_permute_dims,
    matrix_transpose=_matrix_transpose,
    matmul=_anp.matmul,
    tensordot=lambda a, b, /, *, axes=2: _anp.tensordot(a, b, axes=axes),
    take=_take,
    where=_anp.where,
    sum=_sum,
    prod=_prod,
    mean=_mean,
    max=lambda x, /, *, axis=None, keepdims=False: _anp.max(x, axis=axis, keepdims=keepdims),
    min=lambda x, /, *, axis=None, keepdims=False: _anp.min(x, axis=axis, keepdims=keepdims),
    abs=_anp.abs,
    sqrt=_anp.sqrt,
    exp=_anp.exp,
    log=_anp.log,
    sin=_anp.sin,
    cos=_anp.cos,
    tanh=_anp.tanh,
    real=_anp.real,
    imag=_anp.imag,
    conj=_anp.conj,
    astype=_astype,
    isfinite=lambda x, /: _np.isfinite(getval(x)),
    all=lambda x, /, *, axis=None, keepdims=False: _np.all(getval(x), axis=axis, keepdims=keepdims),
    clip=lambda x, /, min=None, max=None: _anp.clip(x, min, max),
    round=_round,
    sort=lambda x, /, *, axis=-1, descending=False, stable=True: _np.sort(getval(x), axis=axis),
    searchsorted=lambda x1, x2, /, *, side="left", sorter=None: _np.searchsorted(getval(x1), getval(x2), side=side),
)


def asarray(x, dtype=None):
    """NumPy array (autograd traces NumPy arrays); floats float64, complex numbers complex128."""
    return _np.asarray(x, dtype=dtype)


def to_numpy(x):
    return _np.asarray(getval(x))


def _dagger(a):
    return _anp.conj(_anp.swapaxes(a, -1, -2))


@primitive
def eigh(h):
    """Batched Hermitian eigendecomposition with the broadened derivative of ``_eigh_rule``.

    1×1 and 2×2 matrices are solved in closed form (``_small_matrices``).
    """
    if uses_closed_form(h.shape[-1]):
        return eigh_small(h, xp=_np)
    w, u = _np.linalg.eigh(h)
    return w, u


def _eigh_vjp(ans, h):
    w, u = ans

    def vjp(g):
        w_bar, u_bar = g
        u_bar_torch = None if u_bar is None else _np.conj(u_bar)
        grad = eigh_vjp_wirtinger(
            w,
            u,
            w_bar,
            u_bar_torch,
            xp=_np,
            matmul=matmul,
            dagger=lambda a: _np.conj(_np.swapaxes(a, -1, -2)),
            eye=lambda n: _np.eye(n, dtype=u.dtype),
        )
        return _np.conj(grad)

    return vjp


defvjp(eigh, _eigh_vjp)


@primitive
def _matmul_2x2(a, b):
    return matmul_2x2(a, b)


# autograd's convention for matmul (holomorphic, no conjugation): Ā = G Bᵀ, B̄ = Aᵀ G
defvjp(
    _matmul_2x2,
    lambda ans, a, b: lambda g: _matmul_2x2(g, _anp.swapaxes(b, -1, -2)),
    lambda ans, a, b: lambda g: _matmul_2x2(_anp.swapaxes(a, -1, -2), g),
)


def matmul(a, b):
    """Batched matrix product; equally batched 2×2 matrices element by element (``matmul_2x2``)."""
    if is_2x2_batch(getval(a), getval(b)):
        return _matmul_2x2(a, b)
    return _anp.matmul(a, b)


def value_and_grad(f, has_aux: bool = False):
    """``(value, grad)`` of ``f`` with respect to its first argument (``((value, aux), grad)``)."""
    if not has_aux:
        return _autograd.value_and_grad(f)

    def with_aux(x, *args, **kwargs):
        captured = {}

        def main(x_):
            value, aux = f(x_, *args, **kwargs)
            captured["aux"] = _unbox_tree(aux)
            return value

        value, grad = _autograd.value_and_grad(main)(x)
        return (value, captured["aux"]), grad

    return with_aux


def _unbox_tree(tree):
    if isinstance(tree, dict):
        return {k: _unbox_tree(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_unbox_tree(v) for v in tree)
    return getval(tree)


def jit(f):
    return f


def stop_gradient(x):
    return getval(x)


def rematerialize(fn):
    """``autograd.checkpoint(fn)``: intermediates are recomputed in the backward pass, not stored."""
    return _autograd.checkpoint(fn)


def sequence_after(x, previous):
    """``x`` to be computed after ``previous``: eager execution already runs calls in program order."""
    return x
