"""Interband matrix elements for second-order optics, covariant in degenerate subspaces.

Shared by the shift and injection currents (:mod:`~hamdesign.observables.shift`,
:mod:`~hamdesign.observables.injection`, :mod:`~hamdesign.observables.photocurrent`); the
derivation is in docs/theory-shift.md.

**Degenerate subspaces.** Bands whose consecutive energies differ by less than ``degen_thresh``
form one subspace N (a Kramers pair, a level split by less than the threshold). Inside it the basis
``eigh`` returns is arbitrary, so every quantity here is built from blocks that transform as
U_N† X U_M under a unitary rotation U_N of each subspace: the band-diagonal velocity v^a_bd (the whole
N×N block of v^a, not its diagonal), the interband connection r^a (only N ≠ M blocks), and sums over
intermediate states p ∉ N, M. Every energy entering a weight or denominator is the subspace's mean
energy ε̄_N. Traces over (N, M) of the resulting integrands are then exactly invariant; so are
σ and η, which weight each (n, m) ∈ N × M pair by the same f_NM δ(ε̄_M − ε̄_N − ω).

**Generalised derivative.** With D^a_nm = v^a_nm / (ε̄_m − ε̄_n) (N ≠ M, 0 inside a subspace),
D̃^a_nm = v^a_nm (ε̄_m − ε̄_n) / ((ε̄_m − ε̄_n)² + η_sc²) (the virtual transitions, broadened by
``sc_eta`` = η_sc as in postw90 and WannierBerri) and the TB-convention connection r^a = i D^a::

    r^c_{nm;a} = (i/(ε̄_m − ε̄_n)) B^{ac}_nm,
    B^{ac} = w^{ac} + (v^c_bd D^a − D^a v^c_bd) + (v^a_bd D^c − D^c v^a_bd) + (v^c_off D̃^a − D̃^a v^c_off)

(v_off = v outside the subspace blocks; the last products run over p ∉ N, M automatically). For
singleton subspaces and η_sc = 0 this is the sum rule of PHYSICS.md §3; v^a_bd D^c − D^c v^a_bd is
then Δ^a_nm D^c_nm. With the full Wannier position matrix (Ā^a = U† A^a U, A the orbital Berry
connection of :func:`hamdesign.model.berry_connection_terms`) r^c = i D^c + Ā^c_off and

    r^c_{nm;a} += (U† ∂_a A^c U)_nm + (Ā^c_bd D^a − D^a Ā^c_bd) + (Ā^a_bd D^c − D^c Ā^a_bd)
                  + (Ā^c_off D̃^a − D̃^a Ā^c_off) − i (Ā^a_bd Ā^c_off − Ā^c_off Ā^a_bd)

(Ibañez-Azpiroz, Tsirkin & Souza, PRB 97, 245143 (2018), Eqs. (29)–(33), with every diagonal
element replaced by its subspace block).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend as _backend
from ..errors import ModelError, ParameterError

#: Broadening of the virtual-transition denominators 1/ω → ω/(ω² + η²), energy units (postw90's default 0.04 eV).
DEFAULT_SC_ETA = 0.04
#: Bands closer than this (energy units) form one degenerate subspace (WannierBerri's default).
DEFAULT_DEGEN_THRESH = 1e-4
POSITION_MATRIX_MODES = ("diagonal", "full")


def check_interband_settings(model, *, sc_eta: float, degen_thresh: float, position_matrix: str, scissor: float = 0.0) -> bool:
    """Validate the knobs; returns whether the full position matrix is used."""
    if not sc_eta >= 0 or sc_eta == float("inf"):
        raise ParameterError(f"sc_eta (broadening of virtual transitions) must be ≥ 0 and finite, got {sc_eta}")
    check_degen_thresh(degen_thresh)
    if not np.isfinite(scissor):
        raise ParameterError(f"scissor must be finite, got {scissor}")
    return check_position_matrix(model, position_matrix)


def check_position_matrix(model, position_matrix: str) -> bool:
    """Validate ``position_matrix`` for ``model``; True when the off-diagonal Wannier terms are used."""
    if position_matrix not in POSITION_MATRIX_MODES:
        raise ParameterError(f"position_matrix must be one of {', '.join(POSITION_MATRIX_MODES)}, got {position_matrix!r}")
    if position_matrix == "full" and model.berry_connection_R is None:
        raise ModelError(
            f"position_matrix='full' needs the Wannier position matrix; model {model.name} has none "
            "(a wannier90 seedname_tb.dat has it; a _hr.dat or a built-in model does not)"
        )
    return position_matrix == "full"


def check_degen_thresh(degen_thresh: float) -> None:
    if not degen_thresh >= 0 or degen_thresh == float("inf"):
        raise ParameterError(f"degen_thresh must be ≥ 0 and finite, got {degen_thresh}")


def subspace_levels(energies, degen_thresh: float):
    """``(same, levels)``: same[n, m] = 1.0 where bands n and m share a degenerate subspace, else 0.0
    (nk, n, n), and each band's subspace mean energy ε̄_n (nk, n)."""
    xp = _backend.current().xp
    labels = subspace_labels(energies, degen_thresh)
    same = xp.astype(xp.abs(xp.expand_dims(labels, axis=-1) - xp.expand_dims(labels, axis=-2)) < 0.5, xp.float64)
    levels = xp.matmul(same, xp.expand_dims(energies, axis=-1))[..., 0] / xp.sum(same, axis=-1)
    return same, levels


def subspace_labels(energies, degen_thresh: float):
    """Index of the degenerate subspace of each band (nk, n), float: gaps above the threshold counted."""
    be = _backend.current()
    xp = be.xp
    n = energies.shape[-1]
    fixed = be.stop_gradient(energies)
    steps = xp.astype(fixed[:, 1:] - fixed[:, :-1] > float(degen_thresh), xp.float64)
    zeros = xp.zeros((energies.shape[0], 1), dtype=xp.float64, device=be.device)
    return xp.matmul(xp.concat([zeros, steps], axis=1), be.asarray(np.triu(np.ones((n, n)))))  # cumulative sum


@dataclass
class InterbandTerms:
    """Band-basis blocks of one k-chunk; matrices indexed [k, n, m] and built on first use."""

    levels: object  # ε̄_n: mean energy of n's subspace, (nk, n)
    same: object  # 1 where n and m share a subspace, complex (nk, n, n)
    inv: object  # 1/(ε̄_m − ε̄_n) between subspaces, 0 inside, complex
    pval: object  # (ε̄_m − ε̄_n)/((ε̄_m − ε̄_n)² + η²) between subspaces, 0 inside, complex
    v: dict
    w: dict
    abar: dict | None = None  # Ā^a = U† A^a U
    dabar: dict | None = None  # (a, c) → U† ∂_a A^c U
    _cache: dict = field(default_factory=dict)

    def _get(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def D(self, a):  # noqa: N802 - the paper's symbol
        return self._get(("D", a), lambda: self.v[a] * self.inv)

    def Dt(self, a):  # noqa: N802
        return self._get(("Dt", a), lambda: self.v[a] * self.pval)

    def block(self, x):
        return x * self.same

    def outside(self, x):
        return x - x * self.same

    def vbd(self, a):
        return self._get(("vbd", a), lambda: self.block(self.v[a]))

    def r(self, a):
        """Interband Berry connection r^a_nm (N ≠ M): i D^a, plus Ā^a outside the blocks if full."""

        def build():
            out = 1j * self.D(a)
            return out if self.abar is None else out + self.outside(self.abar[a])

        return self._get(("r", a), build)

    def generalized_derivative(self, a, c):
        """r^c_{nm;a} (module docstring), 0 inside subspaces."""
        return self._get(("gd", a, c), lambda: self._generalized_derivative(a, c))

    def _generalized_derivative(self, a, c):
        mm = _backend.current().matmul

        def comm(x, y):  # [x, y]
            return mm(x, y) - mm(y, x)

        d_a, d_c, dt_a = self.D(a), self.D(c), self.Dt(a)
        bracket = self.w[(a, c)] + comm(self.vbd(c), d_a) + comm(self.vbd(a), d_c) + comm(self.outside(self.v[c]), dt_a)
        out = 1j * self.inv * bracket
        if self.abar is None:
            return out
        a_c_bd, a_c_off, a_a_bd = self.block(self.abar[c]), self.outside(self.abar[c]), self.block(self.abar[a])
        external = self.dabar[(a, c)] + comm(a_c_bd, d_a) + comm(a_a_bd, d_c) + comm(a_c_off, dt_a) - 1j * comm(a_a_bd, a_c_off)
        return out + self.outside(external)


def interband_terms(
    energies, states, v_band: dict, w_band: dict, /, *, sc_eta: float, degen_thresh: float, connection=None
) -> InterbandTerms:
    """:class:`InterbandTerms` of one k-chunk; ``connection`` = (A, dA) in the orbital basis or None."""
    be = _backend.current()
    xp = be.xp
    same_real, levels = subspace_levels(energies, degen_thresh)
    gaps = xp.expand_dims(levels, axis=-2) - xp.expand_dims(levels, axis=-1)  # ε̄_m − ε̄_n at [n, m]
    off = 1.0 - same_real
    safe = gaps * off + same_real  # 1 inside a subspace: no 0/0 there, in values or gradients
    inv = off / safe
    pval = inv if sc_eta == 0 else off * safe / (safe * safe + float(sc_eta) ** 2)
    complexify = lambda x: xp.astype(x, xp.complex128)  # noqa: E731
    abar = dabar = None
    if connection is not None:
        ud = xp.conj(xp.matrix_transpose(states))

        def to_band(x):
            return be.matmul(be.matmul(ud, x), states)

        A, dA = connection
        abar = {a: to_band(x) for a, x in A.items()}
        dabar = {key: to_band(x) for key, x in dA.items()}
    return InterbandTerms(
        levels=levels,
        same=complexify(same_real),
        inv=complexify(inv),
        pval=complexify(pval),
        v=v_band,
        w=w_band,
        abar=abar,
        dabar=dabar,
    )


__all__ = [
    "DEFAULT_DEGEN_THRESH",
    "DEFAULT_SC_ETA",
    "POSITION_MATRIX_MODES",
    "InterbandTerms",
    "check_interband_settings",
    "interband_terms",
    "subspace_labels",
]
