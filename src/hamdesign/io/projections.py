"""Which orbital each Wannier function starts from: the ``projections`` block of ``seedname.win``.

wannier90 numbers its Wannier functions in the order it expands the projections: line by line, for
each atom of the line's species (in the order of ``atoms_frac``/``atoms_cart``), for each listed
angular function, for each of its real harmonics m_r, and, with ``spinors = true``, spin up then
spin down (interleaved). :func:`read_orbital_labels` repeats that expansion, so on-site
perturbations can be declared by atom and orbital name (``"Fe:d*"``) instead of by index.

The labels name the *initial* projections: after disentanglement and maximal localisation a
Wannier function may have drifted from its projection (check the centres), exactly as wannier90's
own output labels it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFileError
from .wannier90 import read_text

#: Real harmonics of each angular function in wannier90's m_r order.
ANGULAR: dict[str, tuple[str, ...]] = {
    "s": ("s",),
    "p": ("pz", "px", "py"),
    "d": ("dz2", "dxz", "dyz", "dx2-y2", "dxy"),
    "f": ("fz3", "fxz2", "fyz2", "fz(x2-y2)", "fxyz", "fx(x2-3y2)", "fy(3x2-y2)"),
    "sp": ("sp-1", "sp-2"),
    "sp2": ("sp2-1", "sp2-2", "sp2-3"),
    "sp3": ("sp3-1", "sp3-2", "sp3-3", "sp3-4"),
    "sp3d": ("sp3d-1", "sp3d-2", "sp3d-3", "sp3d-4", "sp3d-5"),
    "sp3d2": ("sp3d2-1", "sp3d2-2", "sp3d2-3", "sp3d2-4", "sp3d2-5", "sp3d2-6"),
}
#: wannier90's l quantum numbers (negative: hybrids).
L_NAMES = {0: "s", 1: "p", 2: "d", 3: "f", -1: "sp", -2: "sp2", -3: "sp3", -4: "sp3d", -5: "sp3d2"}
_SINGLE = {name: family for family, names in ANGULAR.items() for name in names if family in "spdf"}


@dataclass(frozen=True)
class OrbitalLabel:
    """One Wannier function's projection: atom (species + number within it), orbital, spin."""

    species: str
    atom: int  # 1-based within the species
    projection: str  # the token as written in the .win (e.g. "d", "dxy", "sp3d2", "l=2,mr=1")
    orbital: str  # the real harmonic (e.g. "dxy", "sp3d2-3")
    spin: str | None  # "up", "dn", or None without spinors

    def __str__(self) -> str:
        text = f"{self.species}{self.atom}:{self.orbital}"
        return text if self.spin is None else f"{text}:{self.spin}"

    def matches(self, selector: str) -> bool:
        """``SITE[:ORBITAL[:SPIN]]`` with shell-style globs, case-insensitive.

        SITE matches the species (``Fe``) or the numbered atom (``Fe1``); ORBITAL the real harmonic
        (``dxy``, ``sp3d2-1``) or the projection as written (``d``, ``sp3d2``); SPIN ``up``/``dn``.
        """
        parts = [p.strip().lower() for p in selector.split(":")]
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise ModelFileError(f"orbital selector {selector!r}: expected SITE[:ORBITAL[:SPIN]]")
        site, orbital, spin = (parts + ["*", "*"])[:3]
        sites = (self.species.lower(), f"{self.species}{self.atom}".lower())
        orbitals = (self.orbital.lower(), self.projection.lower())
        return (
            any(fnmatch.fnmatchcase(s, site) for s in sites)
            and any(fnmatch.fnmatchcase(o, orbital) for o in orbitals)
            and (self.spin is None and spin == "*" or self.spin is not None and fnmatch.fnmatchcase(self.spin, spin))
        )


def _blocks_and_keys(path: Path) -> tuple[dict[str, list[tuple[int, str]]], dict[str, str]]:
    blocks: dict[str, list[tuple[int, str]]] = {}
    keys: dict[str, str] = {}
    current = None
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        text = line.split("!")[0].split("#")[0].strip()
        low = text.lower()
        if re.match(r"begin\s+\w+", low):
            current = low.split()[1]
            blocks[current] = []
        elif re.match(r"end\s+\w+", low):
            current = None
        elif current is not None and text:
            blocks[current].append((number, text))
        elif text:
            match = re.match(r"([A-Za-z_]\w*)\s*[=:\s]\s*(.*)$", text)
            if match:
                keys[match.group(1).lower()] = match.group(2).strip()
    return blocks, keys


def _harmonics(token: str, where: str) -> tuple[str, ...]:
    """The real harmonics of one projection token (``d``, ``dxy``, ``sp3``, ``l=2,mr=1,4``)."""
    low = token.lower().replace(" ", "")
    if low in ANGULAR:
        return ANGULAR[low]
    if low in _SINGLE:
        return (low,)
    match = re.fullmatch(r"l=(-?\d)(?:,mr=([\d,]+))?", low)
    if match and int(match.group(1)) in L_NAMES:
        family = ANGULAR[L_NAMES[int(match.group(1))]]
        if match.group(2) is None:
            return family
        picks = [int(x) for x in match.group(2).split(",") if x]
        if not all(1 <= m <= len(family) for m in picks):
            raise ModelFileError(f"{where}: mr out of range in {token!r}")
        return tuple(family[m - 1] for m in picks)
    raise ModelFileError(f"{where}: unknown projection {token!r} (known: {', '.join(list(ANGULAR) + list(_SINGLE))}, l=…,mr=…)")


def read_orbital_labels(path: str | Path, num_wann: int | None = None) -> tuple[OrbitalLabel, ...]:
    """The projection label of every Wannier function of ``seedname.win`` (see the module doc).

    Raises :class:`~hamdesign.errors.ModelFileError` when the file has no projections block, names
    a species without atoms, uses ``random`` or site coordinates (no label to select by), or
    expands to another count than ``num_wann``.
    """
    path = Path(path)
    blocks, keys = _blocks_and_keys(path)
    lines = blocks.get("projections")
    if not lines:
        raise ModelFileError(f"{path}: no 'begin projections' block to name the orbitals by")
    atoms_block = blocks.get("atoms_frac") or blocks.get("atoms_cart") or []
    atoms = [text.split()[0] for _, text in atoms_block if len(text.split()) == 4]
    spinors = keys.get("spinors", "false").lower().strip(".") in {"t", "true", "yes", "1"}
    labels: list[OrbitalLabel] = []
    for number, text in lines:
        where = f"{path}: line {number}"
        if text.lower().startswith("random"):
            raise ModelFileError(f"{where}: random projections have no orbital names; select orbitals by index")
        if text.lower() in ("ang", "bohr"):
            continue
        site, _, rest = text.partition(":")
        site = site.strip()
        if not rest or site.lower().startswith(("c=", "f=")):
            raise ModelFileError(f"{where}: expected SPECIES: projections (sites given by coordinates are not supported)")
        tokens = [t for t in rest.split(":")[0].split(";") if t.strip()]
        count = sum(1 for a in atoms if a.lower() == site.lower())
        if count == 0:
            raise ModelFileError(f"{where}: no atom labelled {site!r} in atoms_frac/atoms_cart")
        for atom in range(1, count + 1):
            for token in tokens:
                own_spin = re.search(r"\((u|d)\)\s*$", token.strip())
                bare = re.sub(r"\((u|d)\)\s*$", "", token).strip()
                spins: tuple[str | None, ...] = (None,)
                if spinors:
                    spins = ("up",) if own_spin and own_spin.group(1) == "u" else ("dn",) if own_spin else ("up", "dn")
                for harmonic in _harmonics(bare, where):
                    for spin in spins:
                        labels.append(OrbitalLabel(site, atom, bare, harmonic, spin))
    if num_wann is not None and len(labels) != num_wann:
        raise ModelFileError(f"{path}: the projections expand to {len(labels)} orbitals, the model has {num_wann}")
    return tuple(labels)


def select_orbitals(labels: tuple[OrbitalLabel, ...], selectors: list[str] | tuple[str, ...], where: str) -> tuple[int, ...]:
    """0-based indices of the orbitals matching any selector; an error if a selector matches none."""
    chosen: set[int] = set()
    for selector in selectors:
        hits = {n for n, label in enumerate(labels) if label.matches(selector)}
        if not hits:
            raise ModelFileError(f"{where}: orbital selector {selector!r} matches none of {', '.join(map(str, labels))}")
        chosen |= hits
    return tuple(sorted(chosen))
