"""JAX adapter: ``jax.numpy`` with 64-bit floats enabled, a degeneracy-safe ``eigh`` and ``jax.jit``.

Importing this module sets ``jax_enable_x64`` globally, because hamdesign computes in
float64 / complex128 throughout.
"""

from __future__ import annotations

import os

# A second guard against a jaxlib CPU deadlock whose real fix is ``hamdesign.spectrum.sequenced``
# (two LAPACK eigh kernels running at once, each waiting for workers the other holds; see
# docs/backends.md). Turning off the concurrency-optimised thunk scheduler makes XLA start
# independent kernels together less often. It must be set before XLA reads its flags, and only
# for jaxlib releases known to have the flag: XLA aborts on an unknown one.
_SAFE_XLA_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
_FLAG_KNOWN_IN = ((0, 10), (0, 11))


def _jaxlib_release() -> tuple[int, int]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = version("jaxlib").split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError):
        return (0, 0)


if _jaxlib_release() in _FLAG_KNOWN_IN and "xla_cpu_enable_concurrency_optimized_scheduler" not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _SAFE_XLA_FLAG).strip()


def _host_devices_requested(flags: str) -> int:
    """N of ``--xla_force_host_platform_device_count=N`` in ``flags`` (1 when absent)."""
    for flag in flags.split():
        name, _, value = flag.partition("=")
        if name == "--xla_force_host_platform_device_count" and value.isdigit():
            return int(value)
    return 1


# N host-platform (CPU) devices share XLA's one intra-op thread pool, whose size XLA takes from
# NPROC, else the core count. A device waiting in a cross-device sum holds a pool thread, and
# jaxlib 0.10's LAPACK eigh waits inside the pool for its own batch slices: with as many threads
# as devices both wait forever (seen on 2 cores, 2 devices, 2048 k-points per device). Twice as
# many threads as devices leaves every eigh a thread to run on (hamdesign.on_devices).
_HOST_DEVICES = _host_devices_requested(os.environ.get("XLA_FLAGS", ""))
if _HOST_DEVICES > 1 and "NPROC" not in os.environ:
    os.environ["NPROC"] = str(max(os.cpu_count() or 1, 2 * _HOST_DEVICES))

import jax as _jax  # noqa: E402

_jax.config.update("jax_enable_x64", True)

import functools  # noqa: E402

import jax.numpy as xp  # noqa: E402
from jax.sharding import PartitionSpec as _P  # noqa: E402

import numpy as _np  # noqa: E402

from ._eigh_rule import broadened_inverse_gaps  # noqa: E402
from ._small_matrices import eigh_small, uses_closed_form  # noqa: E402

name = "jax"
version = _jax.__version__
can_differentiate = True
can_compile = True
chunk_bytes = 256 * 2**20  # working set of one k-chunk: few chunks, since a jitted loop over them is unrolled


def devices() -> list[str]:
    return [f"{d.platform}:{d.id}" for d in _jax.devices()]


def _select_device():
    wanted = os.environ.get("HAMDESIGN_DEVICE", "cpu").lower() or "cpu"
    if wanted == "cpu":
        return _jax.devices("cpu")[0]
    if wanted == "gpu":
        try:
            return _jax.devices("gpu")[0]
        except RuntimeError as err:
            raise RuntimeError("HAMDESIGN_DEVICE=gpu but jax sees no GPU (install jax[cuda12])") from err
    raise RuntimeError(f"unknown HAMDESIGN_DEVICE={wanted!r}; use cpu or gpu")


_selected = _select_device()


def __getattr__(attribute: str):
    # ``device`` is where new arrays go (``xp.zeros(..., device=be.device)``): the selected device,
    # or the replicated layout over a ``hamdesign.on_devices`` set, so that arrays made inside such a
    # block combine with the k-sharded ones. A module attribute cannot change per block; this can.
    if attribute == "device":
        return placement()
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def local_devices() -> list:
    """This host's jax devices of the selected platform (``hamdesign.on_devices(N)`` takes the first N)."""
    return list(_jax.local_devices(backend=_selected.platform))


def global_devices() -> list:
    """The selected platform's devices of every process (after ``jax.distributed.initialize()``)."""
    return list(_jax.devices(_selected.platform))


@functools.lru_cache(maxsize=16)
def _mesh(devices: tuple):
    return _jax.sharding.Mesh(_np.array(devices, dtype=object), ("k",))


@functools.lru_cache(maxsize=16)
def _shardings(devices: tuple):
    """(replicated, along k) shardings over a device set (a tuple of jax devices)."""
    mesh = _mesh(devices)
    return _jax.sharding.NamedSharding(mesh, _P()), _jax.sharding.NamedSharding(mesh, _P("k"))


def placement():
    """Where new arrays go: the selected device, or replicated over the ``hamdesign.on_devices`` set."""
    from hamdesign.devices import active_devices

    devices = active_devices()
    return _selected if devices is None else _shardings(devices)[0]


def asarray(x, dtype=None):
    """Place ``x`` on the selected device (or the active device set); floats are float64, complex numbers complex128."""
    return _jax.device_put(xp.asarray(x, dtype=dtype), placement())


def shard_along_k(x, devices: tuple):
    """``x`` laid out along its first axis (k) over ``devices``; replicated when that axis does not divide evenly.

    ``hamdesign.spectrum.k_chunks`` cuts chunks so that only a remainder of fewer k-points than
    devices is ever replicated (see ``hamdesign.devices``).
    """
    replicated, along = _shardings(tuple(devices))
    x = xp.asarray(x)
    # a constraint, not device_put: under jit, device_put of a concrete (mesh) array is folded into
    # a constant whose layout XLA is free to ignore, and the whole program would run on every device
    return _jax.lax.with_sharding_constraint(x, along if x.shape[0] % len(devices) == 0 else replicated)


def to_numpy(x):
    import numpy

    return numpy.asarray(x)


def _dagger(a):
    return xp.conj(xp.swapaxes(a, -1, -2))


@_jax.custom_jvp
def eigh(h):
    """Batched Hermitian eigendecomposition with the broadened derivative of ``_eigh_rule``.

    1×1 and 2×2 matrices are solved in closed form (``_small_matrices``), inside the XLA fusion.
    """
    if uses_closed_form(h.shape[-1]):
        return eigh_small(h, xp=xp)
    return _over_k(_lapack_eigh, h)


def _lapack_eigh(h):
    w, u = xp.linalg.eigh(h)
    return w, u


def _over_k(function, batch):
    """``function(batch)`` run on each device's share of the k axis inside ``hamdesign.on_devices``.

    XLA partitions arithmetic along k by itself, but not a library call such as LAPACK's eigh: it
    would gather the whole batch onto every device. ``shard_map`` hands each device its own rows.
    """
    from hamdesign.devices import active_devices

    devices = active_devices()
    if devices is None or len(devices) == 1 or batch.ndim < 3 or batch.shape[0] % len(devices):
        return function(batch)
    return _jax.shard_map(function, mesh=_mesh(devices), in_specs=_P("k"), out_specs=_P("k"))(batch)


@eigh.defjvp
def _eigh_jvp(primals, tangents):
    (h,) = primals
    (dh,) = tangents
    w, u = eigh(h)
    dh = 0.5 * (dh + _dagger(dh))  # jnp.linalg.eigh symmetrises its input, so does the tangent
    m = matmul(matmul(_dagger(u), dh), u)
    # the diagonal through a mask, not jnp.diagonal: its transpose is a scatter, slow on the CPU
    dw = xp.real(xp.sum(m * xp.eye(m.shape[-1], dtype=m.dtype), axis=-1))
    du = matmul(u, broadened_inverse_gaps(w, xp=xp) * m)
    return (w, u), (dw, du)


#: Broadcast instead of ``jnp.matmul`` when (inner size) × (columns of b) is at most this.
BROADCAST_MATMUL_MAX_WORK = 64


def matmul(a, b):
    """Matrix product (batched or not); products of small matrices by broadcast-multiply-and-sum.

    XLA lowers a batched ``dot`` of tiny matrices on the CPU to a loop of library calls (1.3 ms for
    10⁴ complex 2×2 products on the development machine); written as a broadcast product summed
    over the inner index it fuses with its neighbours (0.1 ms). Where (inner size) × (columns)
    exceeds :data:`BROADCAST_MATMUL_MAX_WORK` (8×8 matrices) the library call wins.
    """
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] * b.shape[-1] > BROADCAST_MATMUL_MAX_WORK:
        return xp.matmul(a, b)
    return xp.sum(xp.expand_dims(a, -1) * xp.expand_dims(b, -3), axis=-2)


def while_loop(cond, body, state):
    """``jax.lax.while_loop``: not reverse-differentiable, so hamdesign runs it on stopped gradients."""
    return _jax.lax.while_loop(cond, body, state)


def value_and_grad(f, has_aux: bool = False):
    """``(value, grad)`` of ``f`` with respect to its first argument (``((value, aux), grad)``)."""
    return _jax.value_and_grad(f, has_aux=has_aux)


def jit(f):
    return _jax.jit(f)


def stop_gradient(x):
    return _jax.lax.stop_gradient(x)


def rematerialize(fn):
    """``fn`` (one array → one array) under ``jax.checkpoint``: its intermediates are recomputed in
    the backward pass instead of stored, so a gradient over many k-chunks keeps one chunk's worth."""
    return _jax.checkpoint(fn)


def sequence_after(x, previous):
    """``x`` made to depend on ``previous`` without changing its value or its gradient.

    Under ``jax.jit`` independent ``eigh`` calls (one per k-chunk, or the μ pass beside the main
    pass) may run at the same time; jaxlib's CPU LAPACK kernel then splits each batch over the same
    small thread pool and, with two such kernels waiting on each other's workers, a 2-core machine
    deadlocks (seen in jaxlib 0.10.2: every thread asleep inside ``ParallelBatchMap``). Adding
    0 × (a number from ``previous``) orders the calls; XLA does not fold x·0 for floats.
    """
    anchor = _jax.lax.stop_gradient(xp.real(xp.reshape(xp.asarray(previous), (-1,))[0]))
    return x + 0.0 * anchor
