"""Closed forms for batches of small matrices: the Hermitian eigensystem (n ≤ 2), the 2×2 product.

For a 2×2 Hermitian H = [[a, b], [b*, d]] write m = (a + d)/2, δ = (a − d)/2, r = √(δ² + |b|²):

    λ_∓ = m ∓ r,
    u_+ = (δ + r, b*) / √(2r(r + δ))      (δ ≥ 0),        u_+ = (b, r − δ) / √(2r(r − δ))     (δ < 0),
    u_- = (u_+[1]*, −u_+[0]*)             (orthogonal to u_+, same norm).

Each branch divides only by r + |δ| ≥ r, so the vectors keep full relative accuracy when the
off-diagonal is small; H is rescaled by max(|δ|, |Re b|, |Im b|) first, so neither tiny nor large
entries under- or overflow when squared. At an exact degeneracy (H ∝ 1, r = 0) the identity is
returned. Eigenvalues are ascending, columns of U are eigenvectors, as from LAPACK; only the phase
of each column differs from LAPACK's choice, which gauge-invariant observables do not see.

LAPACK's batched ``zheevd`` pays a per-matrix call overhead that dominates for 2×2 blocks (about
0.4 µs per matrix on the development CPU, three to ten times the closed form, and jaxlib runs it
outside the XLA fusion). The adapters call :func:`eigh_small` in the forward pass of their
``eigh``; the derivative rule (``_eigh_rule``) is the same for both paths, since it needs only λ
and U. Set :data:`CLOSED_FORM_MAX_SIZE` to 0 to use LAPACK for every size (the tests compare both).
"""

from __future__ import annotations

#: Largest matrix size solved in closed form (0 turns the closed form off).
CLOSED_FORM_MAX_SIZE: int = 2


def uses_closed_form(n: int) -> bool:
    """Whether ``eigh`` of n×n matrices takes the closed form."""
    return n <= CLOSED_FORM_MAX_SIZE


def eigh_small(h, *, xp):
    """``(λ, U)`` of a batch (..., n, n) of Hermitian matrices with n = 1 or 2, in array-API ``xp``.

    Reads both triangles (H is symmetrised, as ``jnp.linalg.eigh`` does).
    """
    n = h.shape[-1]
    if n == 1:
        return xp.real(h[..., 0, :]), xp.ones_like(h)
    if n != 2:
        raise ValueError(f"closed-form eigh handles 1×1 and 2×2 matrices, got {n}×{n}")
    a = xp.real(h[..., 0, 0])
    d = xp.real(h[..., 1, 1])
    off = 0.5 * (h[..., 0, 1] + xp.conj(h[..., 1, 0]))
    re, im = xp.real(off), xp.imag(off)
    mean = 0.5 * (a + d)
    half = 0.5 * (a - d)
    scale = xp.maximum(xp.maximum(xp.abs(half), xp.abs(re)), xp.abs(im))
    split = scale > 0.0
    safe = xp.where(split, scale, xp.ones_like(scale))
    half, re, im = half / safe, re / safe, im / safe
    radius = xp.sqrt(half * half + re * re + im * im)  # in [1, √3] where split, 0 elsewhere
    top = radius + xp.abs(half)
    norm = xp.where(split, xp.sqrt(2.0 * radius * top), xp.ones_like(top))
    upper_half = half >= 0.0
    # u_+ = (x, y): (δ + r, b*) when δ ≥ 0, (b, r − δ) when δ < 0; the identity's u_+ = (0, 1) at r = 0
    x_re = xp.where(split, xp.where(upper_half, top, re) / norm, xp.zeros_like(top))
    x_im = xp.where(split & ~upper_half, im / norm, xp.zeros_like(top))
    y_re = xp.where(split, xp.where(upper_half, re, top) / norm, xp.ones_like(top))
    y_im = xp.where(split & upper_half, -im / norm, xp.zeros_like(top))
    x = x_re + 1j * x_im
    y = y_re + 1j * y_im
    radius = radius * safe
    energies = xp.stack([mean - radius, mean + radius], axis=-1)
    row0 = xp.stack([xp.conj(y), x], axis=-1)
    row1 = xp.stack([-xp.conj(x), y], axis=-1)
    return energies, xp.stack([row0, row1], axis=-2)


def is_2x2_batch(a, b) -> bool:
    """Whether ``a @ b`` is a product of equally batched 2×2 matrices (what :func:`matmul_2x2` takes)."""
    return a.ndim >= 3 and a.shape == b.shape and a.shape[-2:] == (2, 2)


def matmul_2x2(a, b):
    """``a @ b`` for equally batched NumPy 2×2 matrices, written out element by element.

    NumPy's batched ``matmul`` loops over the batch with a per-matrix overhead (0.52 ms for 10⁴
    complex 2×2 products on the development machine); eight strided multiplications over the whole
    batch take 0.16 ms. Beyond 2×2 NumPy's own loop is faster.
    """
    import numpy as np

    out = np.empty(a.shape, dtype=np.result_type(a, b))
    for i in range(2):
        for j in range(2):
            np.multiply(a[..., i, 0], b[..., 0, j], out=out[..., i, j])
            out[..., i, j] += a[..., i, 1] * b[..., 1, j]
    return out
