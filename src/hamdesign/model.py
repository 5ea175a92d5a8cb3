"""Tight-binding models: structure (immutable) plus a flat real parameter vector.

Bloch convention (PHYSICS.md §1, the "tight-binding" convention with the true orbital positions
in the phase, as in PythTB and WannierBerri's TB mode)::

    H_ij(k)   = Σ_R t_ij(R) exp(i k·d),      d = R + τ_j − τ_i
    v^a(k)    = ∂H/∂k_a      =  Σ_R i d_a t_ij(R) e^{ik·d}
    w^ab(k)   = ∂²H/∂k_a∂k_b = −Σ_R d_a d_b t_ij(R) e^{ik·d}

with t_ij(R) = <i,0|H|j,R>. Each bond is listed once; its Hermitian partner
t_ji(−R) = t_ij(R)* is added here. All three matrices come from one batched contraction: the
hoppings are gathered into dense blocks T_R, then ``exp(2πi k·n_R) @ [T, R_a T, R_a R_b T]`` and
an elementwise product with Φ_ij(k) = exp(i k·(τ_j − τ_i)). No Python loop over k or hoppings and
no in-place writes, so the same code differentiates and jits on every backend.

NumPy appears here only for static structure (index tables, k-independent geometry); every
quantity that depends on the parameters goes through the active backend's ``xp``.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import backend as _backend
from .amplitudes import Amplitude, factor_tables, parse_amplitude
from .backend import follows_inputs
from .devices import along_k, device_count
from .errors import ModelError, ParameterError
from .lattice import Lattice, mesh_rows

#: Largest accepted size of a parameter value or amplitude constant (energy units): beyond it sums
#: of squares overflow double precision long before anything physical happens.
MAX_MAGNITUDE = 1e12
#: Largest accepted lattice-vector component of a bond and orbital-position component.
MAX_CELLS = 10**6


@dataclass(frozen=True)
class Hopping:
    """One bond ``t_ij(R) = <i,0|H|j,R>``; ``R`` in lattice-vector units (length = lattice.dim)."""

    i: int
    j: int
    R: tuple[int, ...]
    amplitude: Amplitude

    @property
    def is_onsite(self) -> bool:
        return self.i == self.j and not any(self.R)


@dataclass(frozen=True, eq=False)
class BerryConnectionR:
    """Off-diagonal position matrix of a Wannier model: Ã_mn(R) = ⟨m0|r|nR⟩ − τ_m δ_mn δ_R0.

    ``R`` (nR, dim) integer lattice vectors (both R and −R listed, no partner folding); ``values``
    (nR, 3, norb, norb) complex, Cartesian, in the model's length unit, already divided by the
    Wigner–Seitz degeneracy (and spread over the MDRS translations when the model's H is). The
    tight-binding-convention Berry connection is A_mn(k) = Σ_R e^{ik·(R + τ_n − τ_m)} Ã_mn(R)
    (:func:`berry_connection_terms`). It does not depend on the model's parameters.
    """

    R: np.ndarray
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class TightBinding:
    """An immutable tight-binding model.

    Build one with :meth:`TightBinding.build`; evaluate it with :func:`hamiltonian` and
    :func:`hamiltonian_derivatives` at a flat real parameter vector ``params`` whose entries are
    named by ``parameter_names`` (defaults in ``default_params``).
    """

    lattice: Lattice
    positions: np.ndarray  # (norb, 3) Cartesian
    hoppings: tuple[Hopping, ...]
    parameter_names: tuple[str, ...]
    default_params: np.ndarray
    orbital_names: tuple[str, ...]
    name: str = "model"
    energy_unit: str = "eV"
    length_unit: str = "Å"
    parameter_info: Mapping[str, str] = field(default_factory=dict)
    #: Where the model came from and what was done on reading it (e.g. ``"ws_distance"``,
    #: ``"position_matrix"`` for wannier90 files); reports print it.
    provenance: Mapping[str, str] = field(default_factory=dict)
    #: The off-diagonal position matrix of a Wannier model, or None (tight-binding convention).
    berry_connection_R: BerryConnectionR | None = None
    #: ``params → (nR, norb²)`` hopping blocks on the R list of :meth:`tables`, replacing the
    #: hopping expressions (a perturbed Wannier model, :mod:`hamdesign.perturbations`), or None.
    block_function: Callable | None = field(default=None, repr=False)
    _tables: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def build(
        cls,
        lattice: Lattice,
        positions: Sequence[Sequence[float]],
        hoppings: Iterable[tuple],
        parameters: Mapping[str, float] | None = None,
        *,
        positions_are: str = "reduced",
        orbital_names: Sequence[str] | None = None,
        name: str = "model",
        energy_unit: str = "eV",
        length_unit: str = "Å",
        parameter_info: Mapping[str, str] | None = None,
    ) -> TightBinding:
        """Validate and build a model.

        Parameters
        ----------
        lattice
            The :class:`~hamdesign.lattice.Lattice`.
        positions
            Orbital positions τ_i, reduced coordinates along the lattice vectors (default) or
            Cartesian (``positions_are="cartesian"``); ``dim`` or 3 components each.
        hoppings
            Iterable of ``(i, j, R, amplitude)``: orbital indices (0-based), R in lattice vectors
            (``dim`` integers), amplitude a number, ``[re, im]``, an expression string such as
            ``"t2*exp(i*phi)"`` or an :class:`~hamdesign.amplitudes.Amplitude`. Each bond once; its
            conjugate is added. Entries with the same (i, j, R) add up. On-site terms (i = j, R = 0)
            must be real.
        parameters
            Named real parameters with their default values.
        """
        params = dict(parameters or {})
        names = tuple(params)
        try:
            defaults = np.array([float(params[n]) for n in names], dtype=float)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"parameter values must be real numbers: {params}") from err
        if not np.all(np.abs(defaults) <= MAX_MAGNITUDE):  # also catches NaN
            raise ParameterError(f"parameter values must be finite and at most {MAX_MAGNITUDE:g} in size: {params}")
        pos = np.array(positions, dtype=float)
        if pos.ndim != 2 or pos.shape[0] < 1 or pos.shape[1] not in (lattice.dim, 3):
            raise ModelError(f"orbital positions must be (norb, {lattice.dim} or 3), got shape {pos.shape}")
        if not np.all(np.abs(pos) <= MAX_CELLS):  # also catches NaN
            raise ModelError(f"orbital positions must be finite and at most {MAX_CELLS:g} in size")
        if pos.shape[1] < 3:
            pos = np.pad(pos, ((0, 0), (0, 3 - pos.shape[1])))
        if positions_are == "reduced":
            pos = pos @ lattice.vectors
        elif positions_are != "cartesian":
            raise ModelError(f"positions_are must be 'reduced' or 'cartesian', got {positions_are!r}")
        norb = pos.shape[0]
        if orbital_names is None:
            orbital_names = tuple(f"o{i}" for i in range(norb))
        if len(orbital_names) != norb:
            raise ModelError(f"{len(orbital_names)} orbital names for {norb} orbitals")

        hops: list[Hopping] = []
        seen: dict[tuple, int] = {}
        for count, entry in enumerate(hoppings):
            where = f"hopping #{count}"
            try:
                i, j, R, amp = entry
            except (TypeError, ValueError) as err:
                raise ModelError(f"{where}: expected (i, j, R, amplitude), got {entry!r}") from err
            i, j = _orbital_index(i, norb, where), _orbital_index(j, norb, where)
            R = _lattice_vector(R, lattice.dim, where)
            amp = amp if isinstance(amp, Amplitude) else parse_amplitude(amp, where=where)
            unknown = [p for p in amp.parameters if p not in params]
            if unknown:
                raise ModelError(f"{where}: amplitude {amp} uses undefined parameters {unknown}; defined: {list(names)}")
            constant = complex(amp.constant)
            if not (abs(constant.real) <= MAX_MAGNITUDE and abs(constant.imag) <= MAX_MAGNITUDE):
                raise ModelError(f"{where}: amplitude must be finite and at most {MAX_MAGNITUDE:g} in size, got {constant}")
            hop = Hopping(i, j, R, amp)
            if hop.is_onsite and not amp.is_real_valued():
                raise ModelError(f"{where}: on-site term {amp} on orbital {i} is not real (H would not be Hermitian)")
            partner = (j, i, tuple(-r for r in R))
            if not hop.is_onsite and partner in seen and partner != (i, j, R):
                raise ModelError(
                    f"{where}: bond ({i}, {j}, R={list(R)}) is the Hermitian partner of hopping #{seen[partner]}; "
                    "list each bond once (its conjugate is added automatically)"
                )
            if i == j and partner == (i, j, R) and any(R):
                raise ModelError(f"{where}: R must be nonzero for i == j")
            seen.setdefault((i, j, R), count)
            hops.append(hop)
        return cls(
            lattice=lattice,
            positions=pos,
            hoppings=tuple(hops),
            parameter_names=names,
            default_params=defaults,
            orbital_names=tuple(orbital_names),
            name=name,
            energy_unit=energy_unit,
            length_unit=length_unit,
            parameter_info=dict(parameter_info or {}),
        )

    # ----------------------------------------------------------------------------- properties
    @property
    def norb(self) -> int:
        return self.positions.shape[0]

    @property
    def nband(self) -> int:
        return self.norb

    @property
    def dim(self) -> int:
        return self.lattice.dim

    @property
    def nparams(self) -> int:
        return len(self.parameter_names)

    def params_from(self, values: Mapping[str, float] | None = None, **overrides: float) -> np.ndarray:
        """The flat parameter vector: defaults, updated from ``values`` and keyword overrides."""
        merged = dict(zip(self.parameter_names, self.default_params.tolist(), strict=False))
        for key, val in {**(values or {}), **overrides}.items():
            if key not in merged:
                raise ParameterError(f"unknown parameter {key!r} for model {self.name}; known: {list(merged)}")
            try:
                merged[key] = float(val)
            except (TypeError, ValueError) as err:
                raise ParameterError(f"parameter {key!r} must be a real number, got {val!r}") from err
            if not np.isfinite(merged[key]):
                raise ParameterError(f"parameter {key!r} must be finite, got {val!r}")
        return np.array([merged[n] for n in self.parameter_names], dtype=float)

    def with_structure(self, **changes) -> TightBinding:
        """A copy with some fields replaced (e.g. ``lattice`` with another thickness)."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "_tables"}
        fields.update(changes)
        return TightBinding(**fields)

    def __hash__(self) -> int:
        return id(self)

    # ----------------------------------------------------------------------------- static tables
    def tables(self) -> dict:
        """Index tables for the vectorised Bloch sum (computed once per model)."""
        if self._tables:
            return self._tables
        dim, norb = self.dim, self.norb
        hops = self.hoppings
        kinds, pidx, consts = factor_tables([h.amplitude for h in hops], self.parameter_names)
        # directed terms: every bond, then the conjugate partner of every bond that is not on-site
        offsite = np.array([not h.is_onsite for h in hops], dtype=bool)
        src = [(h.i, h.j, h.R) for h in hops] + [(h.j, h.i, tuple(-r for r in h.R)) for h in hops if not h.is_onsite]
        R_all = sorted({r for _, _, r in src} | {(0,) * dim})
        r_index = {r: n for n, r in enumerate(R_all)}
        cells = np.array([(r_index[r] * norb + i) * norb + j for i, j, r in src], dtype=np.int64)
        ncell = len(R_all) * norb * norb
        ndir = len(src)
        counts = np.bincount(cells, minlength=ncell) if ndir else np.zeros(ncell, dtype=np.int64)
        width = max(int(counts.max()) if ndir else 1, 1)
        gather = np.full((ncell, width), ndir, dtype=np.int64)  # index ndir points at an appended zero
        fill = np.zeros(ncell, dtype=np.int64)
        for d, c in enumerate(cells):
            gather[c, fill[c]] = d
            fill[c] += 1
        n_R = np.array(R_all, dtype=float).reshape(len(R_all), dim)
        R_cart = n_R @ self.lattice.vectors[:dim]
        self._tables.update(
            kinds=kinds,
            pidx=pidx,
            consts=consts,
            has_factors=bool(np.any(kinds)),
            offsite=np.nonzero(offsite)[0],
            gather=gather,
            n_R=n_R,
            R_cart=R_cart,
            nR=len(R_all),
        )
        return self._tables


def _orbital_index(value, norb: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ModelError(f"{where}: orbital index must be an integer, got {value!r}")
    if not 0 <= value < norb:
        raise ModelError(f"{where}: orbital index {value} out of range 0..{norb - 1}")
    return int(value)


def _lattice_vector(R, dim: int, where: str) -> tuple[int, ...]:
    try:
        vals = list(R)
    except TypeError as err:
        raise ModelError(f"{where}: R must be a list of {dim} integers, got {R!r}") from err
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not float(v).is_integer():
            raise ModelError(f"{where}: R must contain integers, got {R!r}")
    ints = [int(v) for v in vals]
    if any(abs(v) > MAX_CELLS for v in ints):
        raise ModelError(f"{where}: R={vals} reaches more than {MAX_CELLS:g} cells (not a tight-binding bond)")
    if len(ints) > dim and all(v == 0 for v in ints[dim:]):
        ints = ints[:dim]
    if len(ints) != dim:
        raise ModelError(f"{where}: R={vals} has {len(ints)} components; this {dim}D model needs {dim} (others must be 0)")
    return tuple(ints)


# --------------------------------------------------------------------------------- evaluation
@follows_inputs
def hopping_amplitudes(model: TightBinding, params, /):
    """Complex amplitude of every listed bond, shape (nhop,), as a backend array."""
    be = _backend.current()
    xp = be.xp
    tab = model.tables()
    consts = be.asarray(tab["consts"])
    if not tab["has_factors"]:
        return consts
    params = _as_params(model, params, be)
    kinds = tab["kinds"]
    values = xp.reshape(xp.take(params, be.asarray(tab["pidx"].reshape(-1)), axis=0), kinds.shape)
    cos, sin = xp.cos(values), xp.sin(values)
    k = be.asarray(kinds)
    one = xp.ones(kinds.shape, dtype=xp.float64, device=be.device)
    re = xp.where(k == 1, values, xp.where(k == 2, cos, xp.where(k == 3, sin, xp.where(k >= 4, cos, one))))
    im = xp.where(k == 4, sin, xp.where(k == 5, -sin, 0.0 * values))
    amp = consts
    for f in range(kinds.shape[1]):  # products column by column: prod() has a 0/0 gradient at zeros
        amp = amp * _complex(re[:, f], im[:, f], xp)
    return amp


def _complex(re, im, xp):
    return xp.astype(re, xp.complex128) + xp.astype(im, xp.complex128) * 1j


def _as_params(model: TightBinding, params, be):
    if params is None:
        params = model.default_params
    if isinstance(params, np.ndarray) or isinstance(params, (list, tuple)):
        arr = np.asarray(params, dtype=float)
        if arr.shape != (model.nparams,):
            raise ParameterError(
                f"model {model.name} takes {model.nparams} parameters {list(model.parameter_names)}, got shape {arr.shape}"
            )
        return be.asarray(arr)
    if tuple(params.shape) != (model.nparams,):
        raise ParameterError(f"model {model.name} takes {model.nparams} parameters, got shape {tuple(params.shape)}")
    return params


def hopping_blocks(model: TightBinding, params, /):
    """Dense hopping blocks T_R, shape (nR, norb²), including Hermitian partners."""
    if model.block_function is not None:
        return model.block_function(params)
    be = _backend.current()
    xp = be.xp
    tab = model.tables()
    amp = hopping_amplitudes(model, params)
    partners = xp.conj(xp.take(amp, be.asarray(tab["offsite"]), axis=0))
    directed = xp.concat([amp, partners, xp.zeros((1,), dtype=xp.complex128, device=be.device)])
    gather = tab["gather"]
    cells = xp.reshape(xp.take(directed, be.asarray(gather.reshape(-1)), axis=0), gather.shape)
    return xp.reshape(xp.sum(cells, axis=1), (tab["nR"], model.norb * model.norb))


#: Bytes of k-dependent factors kept per process (:func:`_k_factors`); larger meshes are recomputed.
K_FACTOR_CACHE_BYTES = 128 * 2**20
_k_factor_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_k_factor_lock = threading.Lock()


def _k_factors(model: TightBinding, kfrac: np.ndarray, be):
    """:func:`_geometry` as backend arrays (the Bloch factors, e^{ik·τ}); the NumPy factors are cached.

    The Bloch factors are e_R (nk, nR), laid out along k over the devices inside
    :func:`hamdesign.on_devices`, or, on one device and a chunk of whole mesh rows, their
    factorised form :class:`RowFactors`.

    An optimisation evaluates the same mesh at every step; eager backends would otherwise pay the
    complex exponentials each time (3 ms of a 10⁴-k Haldane step). Entries are keyed by model and
    the mesh's bytes (compared in full on a hit), least recently used first out, within
    :data:`K_FACTOR_CACHE_BYTES`. NumPy arrays, not backend arrays, are kept: under ``jax.jit`` the
    conversion yields a tracer that must not outlive the trace (on the CPU, torch and autograd
    wrap the cached memory without a copy).
    """
    factorise = device_count() == 1  # a sharded chunk needs e_R along k
    bloch, orbital_phase = _cached_geometry(model, kfrac, factorise=factorise)
    if isinstance(bloch, RowFactors):
        return RowFactors(be.asarray(bloch.lead), be.asarray(bloch.last)), be.asarray(orbital_phase)
    return along_k(bloch), along_k(orbital_phase)


def _cached_geometry(model: TightBinding, kfrac: np.ndarray, *, factorise: bool):
    kfrac = np.ascontiguousarray(kfrac, dtype=float)
    size = kfrac.shape[0] * (len(model.tables()["n_R"]) + model.norb) * 16
    if size > K_FACTOR_CACHE_BYTES // 4:
        return _geometry(model, kfrac, factorise=factorise)
    key = (kfrac.shape, factorise, hashlib.blake2b(kfrac.tobytes(), digest_size=16).digest())
    with _k_factor_lock:  # chunks may be evaluated on several threads (spectrum.map_chunks)
        entries = _k_factor_cache.setdefault(model, OrderedDict())
        hit = entries.get(key)
        if hit is not None and np.array_equal(hit[0], kfrac):
            entries.move_to_end(key)
            return hit[2]
    factors = _geometry(model, kfrac, factorise=factorise)
    with _k_factor_lock:
        entries[key] = (kfrac.copy(), size, factors)
        while sum(entry[1] for entry in entries.values()) > K_FACTOR_CACHE_BYTES:
            entries.popitem(last=False)
    return factors


@dataclass(frozen=True)
class RowFactors:
    """e^{2πi k·n_R} on a chunk of whole mesh rows, factorised (:func:`hamdesign.lattice.mesh_rows`).

    With k = (k'_r, k_j) (all coordinates but the last, and the last) and n_R = (R'_p, R_q) placed
    in the box of :func:`row_box`, ``lead[r, p]`` = e^{2πi k'_r·R'_p} (rows, nlead) and
    ``last[j, q]`` = e^{2πi k_j R_q} (length, nlast), so that::

        Σ_R e^{2πi k·n_R} T_R = Σ_q last[j, q] Σ_p lead[r, p] T_(p, q),

    two matrix products costing (rows·nlead + rows·length)·nlast·norb² instead of
    rows·length·nR·norb²: the mesh's Fourier sum done one axis at a time, as an FFT would, but
    for the chunk's k-points only.
    """

    lead: object
    last: object


def row_box(model: TightBinding):
    """The model's R-vectors in a box (R', R_last): ``(lead_R (nlead, dim−1), last_R (nlast,), index)``.

    ``index`` (nlead·nlast,) holds, row by row, the position of (R'_p, R_q) in the model's R list,
    or nR where the model has no such R (a zero block). Computed once per model.
    """
    tab = model.tables()
    if "row_box" not in tab:
        n_R = tab["n_R"]
        lead_R, lead_of = np.unique(n_R[:, :-1], axis=0, return_inverse=True)
        last_R, last_of = np.unique(n_R[:, -1], return_inverse=True)
        index = np.full((len(lead_R), len(last_R)), tab["nR"], dtype=np.int64)
        index[lead_of.reshape(-1), last_of.reshape(-1)] = np.arange(tab["nR"])
        tab["row_box"] = (lead_R, last_R, index.reshape(-1))
    return tab["row_box"]


#: Factorise the Bloch sum on mesh rows when that costs less than this share of the direct product.
ROW_FACTORS_MAX_COST = 0.5


def _geometry(model: TightBinding, kfrac: np.ndarray, *, factorise: bool = True):
    """k-only factors: the Bloch factors and the orbital phases e^{ik·τ_i} (nk, norb).

    The Bloch factors are e_R = exp(2πi k·n_R) (nk, nR), or :class:`RowFactors` when ``kfrac`` is
    whole rows of a mesh (:func:`hamdesign.lattice.mesh_rows`) and that halves the work at least.
    The tight-binding phase of a matrix element is Φ_ij(k) = e^{ik·(τ_j − τ_i)}
    (:func:`orbital_phases`): norb exponentials per k instead of norb².
    """
    tab = model.tables()
    kfrac = np.asarray(kfrac, dtype=float).reshape(-1, model.dim)
    orbital_phase = orbital_phase_factors(model, kfrac)
    shape = mesh_rows(kfrac) if factorise and model.dim > 1 else None
    if shape is not None:
        rows, length = shape
        lead_R, last_R, _ = row_box(model)
        if (rows * len(lead_R) + rows * length) * len(last_R) < ROW_FACTORS_MAX_COST * rows * length * tab["nR"]:
            grid = kfrac.reshape(rows, length, model.dim)
            lead = np.exp(2j * np.pi * (grid[:, 0, :-1] @ lead_R.T))
            last = np.exp(2j * np.pi * np.outer(grid[0, :, -1], last_R))
            return RowFactors(lead, last), orbital_phase
    return plane_waves(model, kfrac), orbital_phase


def plane_waves(model: TightBinding, kfrac: np.ndarray) -> np.ndarray:
    """e_R = exp(2πi k·n_R), (nk, nR), NumPy."""
    kfrac = np.asarray(kfrac, dtype=float).reshape(-1, model.dim)
    return np.exp(2j * np.pi * (kfrac @ model.tables()["n_R"].T))


def orbital_phase_factors(model: TightBinding, kfrac: np.ndarray) -> np.ndarray:
    """e^{ik·τ_i}, (nk, norb), NumPy: the diagonal of P that takes the phase-free matrices to the tight-binding ones."""
    kfrac = np.asarray(kfrac, dtype=float).reshape(-1, model.dim)
    return np.exp(1j * (model.lattice.cartesian_k(kfrac) @ model.positions.T))


def bloch_sum(model: TightBinding, factors, blocks, be):
    """Σ_R e^{2πi k·n_R} T_R, shape (nk, norb²), from the Bloch factors of :func:`_geometry` and T_R (nR, norb²)."""
    if not isinstance(factors, RowFactors):
        return be.matmul(factors, blocks)
    xp = be.xp
    _, last_R, index = row_box(model)
    n2, nlast = blocks.shape[-1], len(last_R)
    rows, length = factors.lead.shape[0], factors.last.shape[0]
    padded = xp.concat([blocks, xp.zeros((1, n2), dtype=xp.complex128, device=be.device)], axis=0)
    box = xp.reshape(xp.take(padded, be.asarray(index), axis=0), (index.size // nlast, nlast * n2))
    partial = xp.reshape(be.matmul(factors.lead, box), (rows, nlast, n2))  # Σ_p over R' for each R_last
    return xp.reshape(be.matmul(factors.last, partial), (rows * length, n2))


def orbital_phases(orbital_phase, xp):
    """Φ_ij(k) = e^{ik·(τ_j − τ_i)}, (nk, norb, norb), from the phases e^{ik·τ_i} (nk, norb)."""
    return xp.expand_dims(xp.conj(orbital_phase), axis=-1) * xp.expand_dims(orbital_phase, axis=-2)


def bond_displacements(model: TightBinding) -> np.ndarray:
    """d^a_R,ij = R_a + τ_j − τ_i (Cartesian), shape (3, nR, norb²): the length of the bond i → j in cell R.

    ∂_a of a Bloch sum Σ_R e^{ik·d} T_R is Σ_R i d^a e^{ik·d} T_R; computed once per model.
    """
    tab = model.tables()
    if "bond_displacements" not in tab:
        tau = model.positions
        within = np.moveaxis(tau[None, :, :] - tau[:, None, :], -1, 0)  # (a, i, j) = τ_j − τ_i
        d = tab["R_cart"].T[:, :, None, None] + within[:, None, :, :]
        tab["bond_displacements"] = d.reshape(d.shape[0], tab["nR"], model.norb * model.norb)
    return tab["bond_displacements"]


_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def bloch_terms(
    model: TightBinding,
    params,
    kfrac,
    /,
    *,
    order: int = 2,
    components=(0, 1, 2),
    symmetrise: bool = True,
    orbital_phase: bool = True,
):
    """H(k) and the requested Cartesian derivatives as separate arrays (no stacking).

    Returns ``(H, v, w)`` with ``v`` a dict a → ∂H/∂k_a and ``w`` a dict (a, b) → ∂²H/∂k_a∂k_b
    (both orders of a pair share one array) for a, b in ``components``; ``v``/``w`` are empty dicts
    below the requested order. With d the bond displacements (:func:`bond_displacements`)::

        H  = Σ_R e^{2πi k·n_R} T_R ∘ Φ,   ∂_a H = Σ_R e^{2πi k·n_R} (i d^a ∘ T_R) ∘ Φ,
        ∂_a∂_b H = −Σ_R e^{2πi k·n_R} (d^a d^b ∘ T_R) ∘ Φ,

    one matrix product per array. Separate arrays keep reverse-mode cheap: slicing a stacked array
    costs a scatter of the whole stack in autograd's backward pass. Each matrix is Hermitian by
    construction (every bond comes with its partner) up to round-off; ``symmetrise`` makes it so
    exactly, (X + X†)/2, which a caller that symmetrises anyway, or only needs a Hermitian function
    of the matrices, may skip.

    ``orbital_phase=False`` leaves out Φ_ij = e^{ik·(τ_j − τ_i)}: every matrix is then P X P† with
    P = diag(e^{ik·τ_i}), the same operator with the orbital-position phases moved onto the basis.
    Eigenvalues and every band-basis matrix U†XU are unchanged (the eigenvectors become P U), so a
    caller that wants only those saves norb² phases and a product per matrix.
    """
    if order not in (0, 1, 2):
        raise ValueError("order must be 0, 1 or 2")
    summed = _bloch_summer(model, params, kfrac, symmetrise=symmetrise, orbital_phase=orbital_phase)
    h = summed()
    v: dict = {}
    w: dict = {}
    if order == 0:
        return h, v, w
    weights = derivative_weights(model, order=order, components=components)
    for key, weight in weights.items():
        if isinstance(key, int):
            v[key] = summed(weight)
        else:
            w[key] = w[key[::-1]] = summed(weight)
    return h, v, w


def derivative_weights(model: TightBinding, *, order: int, components) -> dict:
    """The weights c_R that make Σ_R e^{2πi k·n_R} (c_R ∘ T_R) a derivative of H (phase-free form).

    a → i d^a (∂_a H) for a in ``components``, and at ``order`` 2 also (a, b) → −d^a d^b
    (∂_a∂_b H) for a ≤ b, d the bond displacements (:func:`bond_displacements`), each (nR, norb²).
    """
    d = bond_displacements(model)
    weights: dict = {a: 1j * d[a] for a in components}
    if order == 2:
        for a, b in _PAIRS:
            if a in components and b in components:
                weights[(a, b)] = (-d[a] * d[b]).astype(complex)
    return weights


def _bloch_summer(model: TightBinding, params, kfrac, /, *, symmetrise: bool, orbital_phase: bool):
    """``summed(c)`` = Σ_R e^{2πi k·n_R} (c_R ∘ T_R) (∘ Φ with ``orbital_phase``) as (nk, norb, norb).

    ``summed()`` is H(k) itself; the k-factors and the hopping blocks are computed once and shared.
    """
    be = _backend.current()
    xp = be.xp
    n = model.norb
    blocks = hopping_blocks(model, params)
    factors, phases = _k_factors(model, kfrac, be)
    nk = phases.shape[0]
    phase = orbital_phases(phases, xp) if orbital_phase else None

    def summed(weight=None):
        weighted = blocks if weight is None else be.asarray(weight) * blocks
        x = xp.reshape(bloch_sum(model, factors, weighted, be), (nk, n, n))
        if phase is not None:
            x = x * phase
        return _hermitian(x, xp) if symmetrise else x

    return summed


@dataclass(frozen=True)
class HermitianPair:
    """Two Hermitian matrices carried as one, X = A + iB: ``first`` names A, ``second`` names B (None: B = 0).

    Since A and B are Hermitian, A = (X + X†)/2 and B = (X − X†)/(2i) (:func:`unpack_pair`), and
    U†XU = U†AU + i U†BU: one change of basis, two matrix products, serves both.
    """

    first: object
    second: object
    matrix: object


def unpack_pair(x, xp):
    """(A, B) from X = A + iB with A and B Hermitian: A = (X + X†)/2, B = (X − X†)/(2i)."""
    xh = xp.conj(xp.matrix_transpose(x))
    return 0.5 * (x + xh), -0.5j * (x - xh)


#: Carry two Hermitian derivatives per matrix (:func:`paired_bloch_terms`); False gives each its own
#: matrix, the path the pairing replaced (for side-by-side timing).
PAIRED_DERIVATIVES = True


def paired_bloch_terms(model: TightBinding, params, kfrac, /, *, order: int, components=(0, 1, 2)):
    """H(k) and its derivatives two to a matrix: ``(H, pairs)`` with ``pairs`` a list of :class:`HermitianPair`.

    The same derivatives as :func:`bloch_terms` (phase-free form, not symmetrised), but ∂_a H + i ∂_b H
    is one Bloch sum with weights i d^a − d^b, so a caller that changes basis (U†XU) does half the
    matrix products: first derivatives pair with first derivatives and second with second (their sizes
    are alike, so A and B come back with alike round-off). Keys: a for ∂_a H, (a, b) with a ≤ b for
    ∂_a∂_b H; an odd one out, or every one with :data:`PAIRED_DERIVATIVES` False, has ``second`` None.
    """
    if order not in (0, 1, 2):
        raise ValueError("order must be 0, 1 or 2")
    summed = _bloch_summer(model, params, kfrac, symmetrise=False, orbital_phase=False)
    h = summed()
    if order == 0:
        return h, []
    weights = derivative_weights(model, order=order, components=components)
    pairs = []
    for kind in (int, tuple):
        keys = [key for key in weights if isinstance(key, kind)]
        if PAIRED_DERIVATIVES:
            firsts, seconds = keys[0::2], keys[1::2] + [None] * (len(keys) % 2)
        else:
            firsts, seconds = keys, [None] * len(keys)
        for first, second in zip(firsts, seconds, strict=True):
            weight = weights[first] if second is None else weights[first] + 1j * weights[second]
            pairs.append(HermitianPair(first, second, summed(weight)))
    return h, pairs


@follows_inputs
def hamiltonian_derivatives(model: TightBinding, params, kfrac, /, *, order: int = 2, gauge: str = "tb"):
    """H(k) and its Cartesian k-derivatives on a batch of k-points.

    Parameters
    ----------
    kfrac
        Fractional k-points, shape (nk, dim) (NumPy: k is data, not a parameter).
    order
        0: ``(H,)``; 1: ``(H, v)``; 2: ``(H, v, w)``.
    gauge
        ``"tb"`` (default, orbital positions in the phase) or ``"periodic"`` (H(k+G) = H(k), no Φ;
        only for order 0, used by the lattice Chern number).

    Returns
    -------
    H : (nk, norb, norb) complex, in the model's energy unit
    v : (3, nk, norb, norb), ∂H/∂k_a, energy × length
    w : (3, 3, nk, norb, norb), ∂²H/∂k_a∂k_b, energy × length²

    Each returned matrix is exactly Hermitian ((X + X†)/2 is applied).
    """
    xp = _backend.current().xp
    if gauge == "periodic":
        if order:
            raise ValueError("the periodic gauge is provided for H only")
        be = _backend.current()
        e_R = plane_waves(model, kfrac)
        hr = be.matmul(be.asarray(e_R), hopping_blocks(model, params))
        return (_hermitian(xp.reshape(hr, (e_R.shape[0], model.norb, model.norb)), xp),)
    if gauge != "tb":
        raise ValueError(f"gauge must be 'tb' or 'periodic', got {gauge!r}")
    h, v, w = bloch_terms(model, params, kfrac, order=order)
    if order == 0:
        return (h,)
    v_stack = xp.stack([v[a] for a in range(3)], axis=0)
    if order == 1:
        return h, v_stack
    w_stack = xp.stack([xp.stack([w[(a, b)] for b in range(3)], axis=0) for a in range(3)], axis=0)
    return h, v_stack, w_stack


def berry_connection_terms(model: TightBinding, kfrac, /, *, components=(0, 1, 2)):
    """The Wannier Berry connection A^b(k) and its derivatives ∂_a A^b(k), or None without one.

    With d = R + τ_n − τ_m (Cartesian) and Ã = ``model.berry_connection_R``::

        A^b_mn(k)      = Σ_R e^{ik·d} Ã^b_mn(R)
        ∂_a A^b_mn(k)  = Σ_R i d_a e^{ik·d} Ã^b_mn(R)

    Returns ``(A, dA)``: ``A`` a dict b → (nk, norb, norb) and ``dA`` a dict (a, b) → (nk, norb,
    norb) for a, b in ``components``, as backend arrays. They do not depend on the parameters, so
    they are computed with NumPy on the given k-points (pass a chunk of k at a time) and converted.
    Each A^b(k) is Hermitian when Ã_mn(R) = Ã_nm(−R)* (true of a wannier90 position matrix).
    """
    conn = model.berry_connection_R
    if conn is None:
        return None
    be = _backend.current()
    kfrac = np.asarray(kfrac, dtype=float).reshape(-1, model.dim)
    phase_R = np.exp(2j * np.pi * (kfrac @ np.asarray(conn.R, dtype=float).T))  # (nk, nR)
    R_cart = np.asarray(conn.R, dtype=float) @ model.lattice.vectors[: model.dim]
    phi = orbital_phases(orbital_phase_factors(model, kfrac), np)  # Φ_mn(k) = e^{ik·(τ_n − τ_m)}
    tau = model.positions
    delta = np.moveaxis(tau[None, :, :] - tau[:, None, :], -1, 0)  # delta[a, m, n] = τ_n − τ_m
    nk, norb = kfrac.shape[0], model.norb
    A: dict = {}
    dA: dict = {}
    for b in components:
        values = conn.values[:, b].reshape(len(R_cart), norb * norb)
        plain = (phase_R @ values).reshape(nk, norb, norb)
        A[b] = be.asarray(plain * phi)
        for a in components:
            moment = (phase_R @ (R_cart[:, a, None] * values)).reshape(nk, norb, norb)
            dA[(a, b)] = be.asarray(1j * (moment + delta[a] * plain) * phi)
    return A, dA


@follows_inputs
def hamiltonian(model: TightBinding, params, kfrac, /):
    """H(k), shape (nk, norb, norb), in the tight-binding (position-phase) convention."""
    return hamiltonian_derivatives(model, params, kfrac, order=0)[0]


def _hermitian(x, xp):
    return 0.5 * (x + xp.conj(xp.matrix_transpose(x)))
