"""Named, bounded perturbations that make a fixed (e.g. DFT Wannier) model designable.

A wannier90 model has no parameters: its hoppings H_mn(R) are numbers. :func:`designable` turns it
into a model whose parameters are the perturbations a physicist would tune, each one a named,
bounded design variable, and whose hopping blocks are

    H_mn(R; p) = s_mn(R) · [H⁰_mn(R) + (λ − 1) H^odd_mn(R)]
                 + δ_R0 δ_mn [Σ_g δ_g [m ∈ g] + e E·M (τ_m − τ̄)]

with

* ``shift:<group>`` = δ_g (energy unit): an on-site shift of a group of orbitals
  (:class:`OnsiteShift`; chosen by 1-based index ranges or by ``seedname.win`` projection names);
* ``field:<x|y|z>`` = E_a (V/Å): a uniform electric field acting through the Wannier centres τ_m
  (relative to their mean τ̄, so the mean level is unchanged): e E·r in eV for E in V/Å and r in Å
  (:class:`ElectricField`);
* ``exchange`` = λ: the time-reversal-odd part H^odd = (H − Θ H* Θ⁻¹)/2 of a spinor model scaled
  by λ (λ = 1 the DFT model, λ = 0 a time-reversal-symmetric one), Θ = iσ_y acting on wannier90's
  spinor ordering (:class:`ExchangeScale`). In a ferromagnet H^odd is the exchange field (with the
  T-odd parts of the hoppings); the spin–orbit coupling is T-even and unchanged;
* ``strain:<ij>`` = ε_ij: a uniform strain M = 1 + ε (:class:`Strain`): every vector r → M r,
  so lattice vectors, centres and the position matrix follow, and every hopping between distinct
  positions, d = R + τ_n − τ_m ≠ 0, follows the distance law s = (|M d| / |d|)^(−η) (η stated in
  the config; Harrison's scaling gives η = 2 for s/p bonds, η ≈ 5 for d–d bonds);
* ``mu_shift`` (energy unit): the chemical potential moved by doping (:class:`ChemicalPotentialShift`);
  it does not act on H; the objectives read it.

Strain changes the geometry, not H(k) at a fixed fractional k: every Cartesian k-derivative and the
position operator transform with M and the cell volume with det M, so an observable of the
strained model is the unstrained-frame one transformed (for the anomalous Hall pseudovector
σ' = M^{−T} σ, :func:`strained_pseudovector`); :func:`materialize` writes the strained geometry
into a plain model (tested: the two agree, and WannierBerri agrees with the exported model).

Every parameter is bounded by a ``bounded`` map (:func:`parameter_maps`), and
:func:`perturbation_norm` measures how far the model is from the DFT one:
‖ΔH‖ = (Σ_R ‖H(R; p) − H⁰(R)‖²_F / n_orb)^½, the root-mean-square change per orbital, in eV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import backend as _backend
from .errors import ConfigError
from .model import BerryConnectionR, TightBinding, hopping_blocks
from .parametrize import ParamMap

SPIN_ORDERINGS = ("interleaved", "block")
STRAIN_COMPONENTS = {"xx": (0, 0), "yy": (1, 1), "zz": (2, 2), "yz": (1, 2), "zx": (2, 0), "xy": (0, 1)}
AXES = {"x": 0, "y": 1, "z": 2}
#: Below this distance (length unit) two Wannier centres count as one site: no distance law.
SAME_SITE = 1e-6


@dataclass(frozen=True)
class OnsiteShift:
    """Shift the on-site energies of the orbitals ``orbitals`` (0-based) by δ ∈ [low, high]."""

    name: str
    orbitals: tuple[int, ...]
    low: float = -0.2
    high: float = 0.2


@dataclass(frozen=True)
class ElectricField:
    """A uniform field E_a ∈ [low, high] V/Å along each of ``components`` (x, y, z)."""

    components: tuple[str, ...] = ("x", "y", "z")
    low: float = -0.1
    high: float = 0.1


@dataclass(frozen=True)
class ExchangeScale:
    """Scale the time-reversal-odd part of a spinor model by λ ∈ [low, high]."""

    low: float = 0.8
    high: float = 1.2
    spin_ordering: str = "interleaved"


@dataclass(frozen=True)
class Strain:
    """Uniform strain ε_ij ∈ [low, high] for each of ``components``; hoppings scale as |d|^(−eta)."""

    components: tuple[str, ...] = ("xx", "yy", "zz")
    low: float = -0.02
    high: float = 0.02
    eta: float = 2.0


@dataclass(frozen=True)
class ChemicalPotentialShift:
    """Move the chemical potential by δμ ∈ [low, high] (doping)."""

    low: float = -0.2
    high: float = 0.2


@dataclass(frozen=True)
class Perturbations:
    """The perturbations of one design; empty means none."""

    shifts: tuple[OnsiteShift, ...] = ()
    field: ElectricField | None = None
    exchange: ExchangeScale | None = None
    strain: Strain | None = None
    mu_shift: ChemicalPotentialShift | None = None

    def names_and_bounds(self) -> list[tuple[str, float, float, float]]:
        """(parameter name, low, high, DFT value) in parameter order."""
        out = [(f"shift:{s.name}", s.low, s.high, 0.0) for s in self.shifts]
        if self.field is not None:
            out += [(f"field:{a}", self.field.low, self.field.high, 0.0) for a in self.field.components]
        if self.exchange is not None:
            out.append(("exchange", self.exchange.low, self.exchange.high, 1.0))
        if self.strain is not None:
            out += [(f"strain:{c}", self.strain.low, self.strain.high, 0.0) for c in self.strain.components]
        if self.mu_shift is not None:
            out.append(("mu_shift", self.mu_shift.low, self.mu_shift.high, 0.0))
        return out


def _check(perturbations: Perturbations, model: TightBinding) -> None:
    names = [s.name for s in perturbations.shifts]
    if len(set(names)) != len(names):
        raise ConfigError(f"perturbations.shift: group names must differ, got {names}")
    for shift in perturbations.shifts:
        if not shift.orbitals:
            raise ConfigError(f"perturbations.shift.{shift.name}: no orbitals selected")
        bad = [o for o in shift.orbitals if not 0 <= o < model.norb]
        if bad:
            raise ConfigError(f"perturbations.shift.{shift.name}: orbitals {[o + 1 for o in bad]} outside 1..{model.norb}")
    for key, spec in (("field", perturbations.field), ("strain", perturbations.strain)):
        known = AXES if key == "field" else STRAIN_COMPONENTS
        if spec is not None and (not spec.components or any(c not in known for c in spec.components)):
            raise ConfigError(f"perturbations.{key}.components: choose among {', '.join(known)}, got {list(spec.components)}")
        if spec is not None and len(set(spec.components)) != len(spec.components):
            raise ConfigError(f"perturbations.{key}.components: listed twice in {list(spec.components)}")
    for name, low, high, dft in perturbations.names_and_bounds():
        if not (np.isfinite(low) and np.isfinite(high) and low < dft < high):
            raise ConfigError(f"perturbations: {name} needs low < {dft:g} < high (the DFT model inside), got [{low}, {high}]")
    if perturbations.exchange is not None:
        if perturbations.exchange.spin_ordering not in SPIN_ORDERINGS:
            raise ConfigError(f"perturbations.exchange.spin_ordering: choose {' or '.join(SPIN_ORDERINGS)}")
        if model.norb % 2:
            raise ConfigError(
                f"perturbations.exchange: a spinor model has an even number of orbitals, {model.name} has {model.norb}"
            )
    if perturbations.strain is not None:
        if model.dim != 3:
            raise ConfigError(f"perturbations.strain: needs a 3D model, {model.name} is {model.dim}D")
        if not (np.isfinite(perturbations.strain.eta) and perturbations.strain.eta >= 0):
            raise ConfigError(f"perturbations.strain.eta must be a non-negative number, got {perturbations.strain.eta}")


def time_reversal_matrix(norb: int, spin_ordering: str = "interleaved") -> np.ndarray:
    """Θ = iσ_y ⊗ 1 in the orbital basis (Θ H* Θ⁻¹ is the time-reversed H): real, orthogonal, Θ² = −1."""
    half = norb // 2
    theta = np.zeros((norb, norb))
    for o in range(half):
        up, dn = (2 * o, 2 * o + 1) if spin_ordering == "interleaved" else (o, o + half)
        theta[up, dn], theta[dn, up] = 1.0, -1.0
    return theta


@dataclass(frozen=True, eq=False)
class PerturbedBlocks:
    """The block function of a :func:`designable` model: ``params → (nR, norb²)`` hopping blocks."""

    base: TightBinding
    perturbations: Perturbations
    names: tuple[str, ...]
    dft_blocks: np.ndarray  # (nR, norb²) complex, H⁰ on the model's R list
    odd_blocks: np.ndarray | None  # H^odd, same layout
    onsite: np.ndarray  # (nshift, nR·norb²) real indicator of each group's R = 0 diagonal
    field_rows: np.ndarray  # (3, nR·norb²) real: (τ_m − τ̄)_b on the R = 0 diagonal
    separation: np.ndarray  # (nR·norb², 3) d = R + τ_n − τ_m, Cartesian
    _index: dict = field(default_factory=dict)

    def index(self, name: str) -> int | None:
        if not self._index:
            self._index.update({n: i for i, n in enumerate(self.names)})
        return self._index.get(name)

    def values(self, params, prefix: str):
        """The parameters whose name starts with ``prefix`` (a backend vector), or None."""
        be = _backend.current()
        picks = [i for i, n in enumerate(self.names) if n.startswith(prefix)]
        if not picks:
            return None
        return be.xp.take(params, be.asarray(np.array(picks, dtype=np.int64)), axis=0)

    def strain_matrix(self, params):
        """M = 1 + ε (3, 3) as a backend array (the identity without a strain perturbation)."""
        be = _backend.current()
        xp = be.xp
        eps = self.values(params, "strain:")
        if eps is None:
            return be.asarray(np.eye(3))
        units = np.zeros((len(self.perturbations.strain.components), 9))
        for n, c in enumerate(self.perturbations.strain.components):
            i, j = STRAIN_COMPONENTS[c]
            units[n, 3 * i + j] = units[n, 3 * j + i] = 1.0
        flat = be.matmul(xp.reshape(eps, (1, -1)), be.asarray(units))
        return be.asarray(np.eye(3)) + xp.reshape(flat, (3, 3))

    def __call__(self, params):
        be = _backend.current()
        xp = be.xp
        params = be.asarray(self.base_params()) if params is None else params
        if isinstance(params, (np.ndarray, list, tuple)):
            params = be.asarray(np.asarray(params, dtype=float))
        nR, nn = self.dft_blocks.shape
        blocks = be.asarray(self.dft_blocks.reshape(-1))
        if self.odd_blocks is not None:
            lam = xp.astype(xp.take(params, be.asarray(np.array([self.index("exchange")])), axis=0), xp.complex128)
            blocks = blocks + (lam - 1.0) * be.asarray(self.odd_blocks.reshape(-1))
        if self.perturbations.strain is not None:
            blocks = blocks * xp.astype(self._distance_law(params), xp.complex128)
        diagonal = None
        shifts = self.values(params, "shift:")
        if shifts is not None:
            diagonal = be.matmul(xp.reshape(shifts, (1, -1)), be.asarray(self.onsite))[0]
        field_values = self.values(params, "field:")
        if field_values is not None:
            along = np.array([AXES[a] for a in self.perturbations.field.components])
            rows = be.matmul(self.strain_matrix(params), be.asarray(self.field_rows))  # (M(τ − τ̄))_a
            potential = be.matmul(xp.reshape(field_values, (1, -1)), xp.take(rows, be.asarray(along), axis=0))[0]
            diagonal = potential if diagonal is None else diagonal + potential
        if diagonal is not None:
            blocks = blocks + xp.astype(diagonal, xp.complex128)
        return xp.reshape(blocks, (nR, nn))

    def _distance_law(self, params):
        """s = (|M d|² / |d|²)^(−η/2) for d ≠ 0, 1 on a site (flattened like the blocks)."""
        be = _backend.current()
        xp = be.xp
        d = self.separation
        length2 = np.sum(d * d, axis=1)
        apart = length2 > SAME_SITE**2
        moved = be.matmul(be.asarray(d), xp.matrix_transpose(self.strain_matrix(params)))
        stretched = xp.sum(moved * moved, axis=1) / be.asarray(np.where(apart, length2, 1.0))
        ratio2 = xp.where(be.asarray(apart), stretched, 0.0 * stretched + 1.0)
        return xp.exp(-0.5 * self.perturbations.strain.eta * xp.log(ratio2))

    def base_params(self) -> np.ndarray:
        return np.array([dft for _, _, _, dft in self.perturbations.names_and_bounds()], dtype=float)


def designable(model: TightBinding, perturbations: Perturbations) -> TightBinding:
    """``model`` with the parameters of ``perturbations`` (see the module doc); at their DFT values it is ``model``.

    ``model`` must have no parameters of its own (a model read from a wannier90 file).
    """
    if model.nparams:
        raise ConfigError(f"perturbations act on a model without parameters (a wannier90 file); {model.name} has {model.nparams}")
    _check(perturbations, model)
    from .backend import use_backend

    with use_backend("numpy"):
        dft = np.asarray(hopping_blocks(model, None))
    tab = model.tables()
    norb, nR = model.norb, tab["nR"]
    zero = int(np.nonzero(~tab["n_R"].any(axis=1))[0][0])
    diagonal = zero * norb * norb + np.arange(norb) * (norb + 1)
    odd = None
    if perturbations.exchange is not None:
        theta = time_reversal_matrix(norb, perturbations.exchange.spin_ordering)
        h = dft.reshape(nR, norb, norb)
        odd = (0.5 * (h - theta @ h.conj() @ theta.T)).reshape(nR, norb * norb)
    onsite = np.zeros((len(perturbations.shifts), nR * norb * norb))
    for g, shift in enumerate(perturbations.shifts):
        onsite[g, diagonal[list(shift.orbitals)]] = 1.0
    field_rows = np.zeros((3, nR * norb * norb))
    field_rows[:, diagonal] = (model.positions - model.positions.mean(axis=0)).T
    tau = model.positions
    separation = (tab["R_cart"][:, None, None, :] + tau[None, None, :, :] - tau[None, :, None, :]).reshape(-1, 3)
    names = tuple(name for name, *_ in perturbations.names_and_bounds())
    blocks = PerturbedBlocks(model, perturbations, names, dft, odd, onsite, field_rows, separation)
    info = {
        name: f"perturbation in [{low:g}, {high:g}], DFT value {dft_value:g}"
        for name, low, high, dft_value in perturbations.names_and_bounds()
    }
    return model.with_structure(
        parameter_names=names,
        default_params=blocks.base_params(),
        parameter_info=info,
        block_function=blocks,
        provenance={**dict(model.provenance), "perturbations": ", ".join(names) or "none"},
    )


def perturbed_blocks_of(model: TightBinding) -> PerturbedBlocks | None:
    return model.block_function if isinstance(model.block_function, PerturbedBlocks) else None


def parameter_maps(model: TightBinding) -> dict[str, ParamMap]:
    """A ``bounded`` map per perturbation of a :func:`designable` model."""
    blocks = perturbed_blocks_of(model)
    if blocks is None:
        return {}
    return {name: ParamMap("bounded", low=low, high=high) for name, low, high, _ in blocks.perturbations.names_and_bounds()}


def perturbation_norm_squared(model: TightBinding, params):
    """‖ΔH‖² = Σ_R ‖H(R; p) − H⁰(R)‖²_F / n_orb (energy unit², a backend scalar; 0 without perturbations)."""
    be = _backend.current()
    xp = be.xp
    blocks = perturbed_blocks_of(model)
    if blocks is None:
        return 0.0 * xp.sum(params) if params is not None and not isinstance(params, np.ndarray) else 0.0
    change = hopping_blocks(model, params) - be.asarray(blocks.dft_blocks)
    return xp.sum(xp.real(change * xp.conj(change))) / model.norb


def mu_shift_of(model: TightBinding, params):
    """The ``mu_shift`` parameter (a backend scalar), or None when the model has none."""
    blocks = perturbed_blocks_of(model)
    index = None if blocks is None else blocks.index("mu_shift")
    if index is None:
        return None
    be = _backend.current()
    return be.xp.take(params, be.asarray(np.array([index])), axis=0)[0]


def strained_pseudovector(model: TightBinding, params, sigma):
    """σ' = M^{−T} σ: the unstrained-frame pseudovector (…, 3) in the strained crystal (σ unchanged without strain).

    With r → M r every Cartesian k-derivative and position picks up M and the volume det M, so the
    antisymmetric tensor goes to M S Mᵀ / det M; for its pseudovector that is cof(M) σ / det M =
    M^{−T} σ (cof(M) = det M · M^{−T}, written with cross products to stay differentiable).
    """
    blocks = perturbed_blocks_of(model)
    if blocks is None or blocks.perturbations.strain is None:
        return sigma
    be = _backend.current()
    xp = be.xp
    m = blocks.strain_matrix(params)
    rows = [m[0], m[1], m[2]]

    def cross(a, b):
        return xp.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])

    cofactor = xp.stack([cross(rows[1], rows[2]), cross(rows[2], rows[0]), cross(rows[0], rows[1])])
    det = xp.sum(rows[0] * cofactor[0])
    return be.matmul(sigma, xp.matrix_transpose(cofactor)) / det


def materialize(model: TightBinding, params) -> TightBinding:
    """A plain model (no parameters) equal to ``model`` at ``params``, strained geometry written out.

    Lattice vectors, Wannier centres and the off-diagonal position matrix become M a_i, M τ_m and
    M Ã(R); the hoppings are the blocks at ``params``. This is what result folders and
    ``hamdesign export`` write, so other codes (WannierBerri) see the designed crystal.
    """
    from .backend import use_backend
    from .lattice import Lattice

    blocks = perturbed_blocks_of(model)
    if blocks is None:
        return model
    with use_backend("numpy"):
        p = np.asarray(params if params is not None else model.default_params, dtype=float)
        h = np.asarray(blocks(p)).reshape(-1, model.norb, model.norb)
        m = np.asarray(blocks.strain_matrix(p))
    tab = model.tables()
    hoppings = []
    for r, R in enumerate(tab["n_R"].astype(int)):
        for i in range(model.norb):
            for j in range(model.norb):
                t = h[r, i, j]
                key, partner = tuple(R), tuple(-R)
                onsite = i == j and not R.any()
                if t == 0 or (not onsite and (partner, j, i) < (key, i, j)):
                    continue  # each bond once: its Hermitian partner is added back by TightBinding.build
                hoppings.append((i, j, key, float(t.real) if onsite else complex(t)))
    vectors = model.lattice.vectors @ m.T
    lattice = Lattice(vectors, dim=model.dim)
    plain = TightBinding.build(
        lattice,
        model.positions @ m.T,
        hoppings,
        {},
        positions_are="cartesian",
        orbital_names=model.orbital_names,
        name=model.name,
        energy_unit=model.energy_unit,
        length_unit=model.length_unit,
    )
    conn = model.berry_connection_R
    if conn is not None:
        conn = BerryConnectionR(R=conn.R, values=np.einsum("ab,rbmn->ramn", m, conn.values))
    values = ", ".join(f"{n} = {v:.6g}" for n, v in zip(model.parameter_names, p, strict=True))
    return plain.with_structure(
        berry_connection_R=conn, provenance={**dict(blocks.base.provenance), "perturbations": values or "none"}
    )


def build_perturbations(spec: Mapping, model: TightBinding, *, labels=None, where: str = "perturbations") -> Perturbations:
    """:class:`Perturbations` from a config mapping (the ``[perturbations]`` table of a design TOML).

    ``labels``: the orbital labels of ``seedname.win`` (:func:`~hamdesign.io.projections.read_orbital_labels`)
    when a shift selects orbitals by name.
    """
    if model.nparams:
        raise ConfigError(f"{where} act on a model without parameters (a wannier90 file); {model.name} has {model.nparams}")
    known = {"shift", "field", "exchange", "strain", "mu_shift"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    shifts = []
    for name, entry in dict(spec.get("shift", {})).items():
        here = f"{where}.shift.{name}"
        entry = _table(entry, here, {"orbitals", "low", "high"})
        if "orbitals" not in entry:
            raise ConfigError(f'{here}.orbitals: missing (1-based ranges such as "13-18" or names such as "Fe:d*")')
        shifts.append(
            OnsiteShift(name, _orbitals(entry["orbitals"], model, labels, f"{here}.orbitals"), *_bounds(entry, here, -0.2, 0.2))
        )
    field_spec = exchange = strain = mu_shift = None
    if "field" in spec:
        here = f"{where}.field"
        entry = _table(spec["field"], here, {"components", "low", "high"})
        field_spec = ElectricField(tuple(entry.get("components", ("x", "y", "z"))), *_bounds(entry, here, -0.1, 0.1))
    if "exchange" in spec:
        here = f"{where}.exchange"
        entry = _table(spec["exchange"], here, {"low", "high", "spin_ordering"})
        exchange = ExchangeScale(*_bounds(entry, here, 0.8, 1.2), spin_ordering=str(entry.get("spin_ordering", "interleaved")))
    if "strain" in spec:
        here = f"{where}.strain"
        entry = _table(spec["strain"], here, {"components", "low", "high", "eta"})
        strain = Strain(
            tuple(entry.get("components", ("xx", "yy", "zz"))),
            *_bounds(entry, here, -0.02, 0.02),
            eta=_real(entry.get("eta", 2.0), f"{here}.eta"),
        )
    if "mu_shift" in spec:
        here = f"{where}.mu_shift"
        mu_shift = ChemicalPotentialShift(*_bounds(_table(spec["mu_shift"], here, {"low", "high"}), here, -0.2, 0.2))
    out = Perturbations(tuple(shifts), field_spec, exchange, strain, mu_shift)
    _check(out, model)
    return out


def _table(entry, where: str, keys: set[str]) -> dict:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a table, got {entry!r}")
    unknown = sorted(set(entry) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(keys)}")
    return dict(entry)


def _real(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _bounds(entry: Mapping, where: str, low: float, high: float) -> tuple[float, float]:
    return _real(entry.get("low", low), f"{where}.low"), _real(entry.get("high", high), f"{where}.high")


def _orbitals(value, model: TightBinding, labels, where: str) -> tuple[int, ...]:
    """1-based index ranges ("1-4, 9" or [1, 2]) or projection selectors (["Fe:d*"]) → 0-based indices."""
    items: Sequence = [value] if isinstance(value, (str, int)) else value
    chosen: set[int] = set()
    names = []
    for item in items:
        if isinstance(item, bool):
            raise ConfigError(f"{where}: expected indices or names, got {item!r}")
        if isinstance(item, int):
            chosen.add(item - 1)
            continue
        text = str(item).strip()
        if all(part.strip().replace("-", "", 1).isdigit() for part in text.split(",")):
            for part in text.split(","):
                low, _, high = part.strip().partition("-")
                chosen.update(range(int(low) - 1, int(high or low)))
        else:
            names.append(text)
    if names:
        if labels is None:
            raise ConfigError(f"{where}: orbital names {names} need the projections of seedname.win beside the model file")
        from .errors import ModelFileError
        from .io.projections import select_orbitals

        try:
            chosen.update(select_orbitals(labels, names, where))
        except ModelFileError as err:
            raise ConfigError(str(err)) from err
    bad = sorted(o + 1 for o in chosen if not 0 <= o < model.norb)
    if bad:
        raise ConfigError(f"{where}: orbitals {bad} outside 1..{model.norb}")
    return tuple(sorted(chosen))
