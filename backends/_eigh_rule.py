"""The degeneracy-safe derivative of the Hermitian eigendecomposition, shared by all adapters.

For A = U diag(λ) U†, the exact first-order perturbation theory result is

    dλ_i = (U† dA U)_ii,     dU = U (F ∘ (U† dA U)),     F_ij = 1 / (λ_j − λ_i)  (i ≠ j),  F_ii = 0.

F diverges where two eigenvalues coincide. Every backend here replaces it by the Lorentzian-broadened

    F_ij = (λ_j − λ_i) / ((λ_j − λ_i)² + δ²),           δ = ``EIGH_BROADENING``,

which equals the exact F to relative order (δ / Δλ)² and is 0 (not ∞) at exact degeneracy. The
quantities hamdesign differentiates are invariant under rotations inside a degenerate subspace,
so the dropped terms carry no gradient of a gauge-invariant objective.

The reverse-mode rule (PyTorch's conjugate-Wirtinger convention) is

    Ā = U [ diag(λ̄) + F ∘ ½(U†Ū − (U†Ū)†) ] U†.
"""

from __future__ import annotations

#: Broadening δ of the eigenvector derivative, in the model's energy unit.
EIGH_BROADENING: float = 1e-10


def broadened_inverse_gaps(w, *, xp):
    """F_ij = (w_j − w_i) / ((w_j − w_i)² + δ²) for a batch of real eigenvalue vectors ``w``."""
    gaps = xp.expand_dims(w, axis=-2) - xp.expand_dims(w, axis=-1)
    return gaps / (gaps * gaps + EIGH_BROADENING**2)


def eigh_vjp_wirtinger(w, u, w_bar, u_bar, *, xp, matmul, dagger, eye):
    """Ā in the conjugate-Wirtinger convention (PyTorch's) from cotangents ``w_bar``, ``u_bar``.

    ``u_bar`` may be ``None`` when only eigenvalues reach the loss; ``eye(n)`` builds the
    complex identity on the right device.
    """
    inner = 0.0
    if u_bar is not None:
        uhg = matmul(dagger(u), u_bar)
        skew = 0.5 * (uhg - dagger(uhg))
        inner = skew * broadened_inverse_gaps(w, xp=xp)
    if w_bar is not None:
        inner = inner + xp.expand_dims(w_bar, axis=-1) * eye(w.shape[-1])
    return matmul(matmul(u, inner), dagger(u))
