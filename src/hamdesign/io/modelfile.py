"""hamdesign's model file format (TOML or JSON, same structure); see docs/file-formats.md.

::

    name = "haldane"              # optional
    energy_unit = "t1"            # default "eV"
    length_unit = "a"             # default "Å"
    coordinates = "reduced"       # or "cartesian": how orbital positions are given
    [lattice]
    vectors = [[1.0, 0.0], [0.5, 0.8660254037844386]]   # rows; periodic ones first
    dim = 2                       # optional, default: number of vectors
    spacing = 1.0                 # optional: thickness (2D) / cross-section side (1D) when < 3 vectors
    [parameters]                  # named real parameters and their values
    t1 = 1.0
    [[orbitals]]
    name = "A"                    # optional
    position = [0.0, 0.0]
    [[hoppings]]
    from = 0                      # index (0-based) or orbital name
    to = "B"
    R = [0, 0]
    amplitude = "t1"              # number, [re, im], or an expression such as "t2*exp(i*phi)"
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelFileError, ParameterError
from ..lattice import Lattice
from ..model import TightBinding
from .atomic import atomic_write_text

TOP_KEYS = {"name", "energy_unit", "length_unit", "coordinates", "lattice", "parameters", "orbitals", "hoppings", "description"}


def _load(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: cannot read ({err})") from err
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ValueError as err:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ModelFileError(f"{path}: not valid {kind}: {err}") from err
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a table at the top level")
    where = _nonfinite(data, "")
    if where is not None:
        line = _nonfinite_line(text)
        at = f"line {line}: " if line else ""
        raise ModelFileError(f"{path}: {at}{where.lstrip('.')}: non-finite number (nan or inf)")
    return data


#: A number literal as TOML, JSON (NaN, Infinity) and amplitude strings write it.
_NUMBER = re.compile(r"(?<![\w.])[+-]?(?:nan|inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])", re.IGNORECASE)


def _nonfinite(value, where: str) -> str | None:
    """Key path of the first non-finite number in parsed data (floats, and numbers inside strings), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, str) and any(not math.isfinite(float(t)) for t in _NUMBER.findall(value) if any(c.isdigit() for c in t)):
        return where
    if isinstance(value, Mapping):
        items = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        found = _nonfinite(item, key)
        if found is not None:
            return found
    return None


def _nonfinite_line(text: str) -> int | None:
    """1-based line of the first non-finite number literal in ``text`` (comments included), or None."""
    for number, line in enumerate(text.splitlines(), start=1):
        if any(not math.isfinite(float(t)) for t in _NUMBER.findall(line)):
            return number
    return None


def model_from_dict(data: Mapping, where: str) -> TightBinding:
    """Build a model from the file structure; every problem raises ModelFileError prefixed by ``where``."""
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ModelFileError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(TOP_KEYS))}")
    for key in ("lattice", "orbitals"):
        if key not in data:
            raise ModelFileError(f"{where}: missing [{key}]")
    lat = data["lattice"]
    if not isinstance(lat, Mapping) or "vectors" not in lat:
        raise ModelFileError(f"{where}: lattice.vectors: missing (rows of Cartesian lattice vectors)")
    bad = sorted(set(lat) - {"vectors", "dim", "spacing"})
    if bad:
        raise ModelFileError(f"{where}: lattice.{bad[0]}: unknown key; allowed: vectors, dim, spacing")
    try:
        lattice = Lattice(lat["vectors"], lat.get("dim"), spacing=float(lat.get("spacing", 1.0)))
    except (ModelError, TypeError, ValueError) as err:
        raise ModelFileError(f"{where}: lattice: {err}") from err
    params = data.get("parameters", {})
    if not isinstance(params, Mapping) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in params.values()
    ):
        raise ModelFileError(f"{where}: parameters: expected name = number entries")
    orbitals = data["orbitals"]
    if not isinstance(orbitals, list) or not orbitals:
        raise ModelFileError(f"{where}: orbitals: expected a non-empty list of {{name, position}} tables")
    names, positions = [], []
    for n, orb in enumerate(orbitals):
        if not isinstance(orb, Mapping) or "position" not in orb:
            raise ModelFileError(f"{where}: orbitals[{n}].position: missing")
        bad = sorted(set(orb) - {"name", "position"})
        if bad:
            raise ModelFileError(f"{where}: orbitals[{n}].{bad[0]}: unknown key; allowed: name, position")
        names.append(str(orb.get("name", f"o{n}")))
        positions.append(orb["position"])
    if len(set(names)) != len(names):
        raise ModelFileError(f"{where}: orbitals: names must be unique, got {names}")
    index = {name: i for i, name in enumerate(names)}
    hops = []
    hoppings = data.get("hoppings", [])
    if not isinstance(hoppings, list):
        raise ModelFileError(
            f"{where}: hoppings: expected a list of {{from, to, R, amplitude}} tables, got {type(hoppings).__name__}"
        )
    for n, hop in enumerate(hoppings):
        if not isinstance(hop, Mapping):
            raise ModelFileError(f"{where}: hoppings[{n}]: expected a table")
        missing = [k for k in ("from", "to", "R", "amplitude") if k not in hop]
        if missing:
            raise ModelFileError(f"{where}: hoppings[{n}].{missing[0]}: missing")
        bad = sorted(set(hop) - {"from", "to", "R", "amplitude"})
        if bad:
            raise ModelFileError(f"{where}: hoppings[{n}].{bad[0]}: unknown key; allowed: from, to, R, amplitude")
        ends = []
        for end in ("from", "to"):
            value = hop[end]
            if isinstance(value, str):
                if value not in index:
                    raise ModelFileError(f"{where}: hoppings[{n}].{end}: unknown orbital {value!r}; orbitals: {', '.join(names)}")
                value = index[value]
            ends.append(value)
        hops.append((ends[0], ends[1], hop["R"], hop["amplitude"]))
    coords = data.get("coordinates", "reduced")
    try:
        return TightBinding.build(
            lattice,
            np.array(positions, dtype=float) if all(isinstance(p, list) for p in positions) else positions,
            hops,
            dict(params),
            positions_are=coords,
            orbital_names=names,
            name=str(data.get("name", "model")),
            energy_unit=str(data.get("energy_unit", "eV")),
            length_unit=str(data.get("length_unit", "Å")),
        )
    except (ModelError, ParameterError, TypeError, ValueError) as err:
        raise ModelFileError(f"{where}: {err}") from err


def read_model_file(path: str | Path) -> TightBinding:
    """A :class:`TightBinding` from a ``.toml`` or ``.json`` model file."""
    path = Path(path)
    return model_from_dict(_load(path), str(path))


def model_to_dict(model: TightBinding) -> dict:
    """The file structure of ``model`` (3 lattice vectors + dim, reduced positions, each bond once)."""
    reduced = model.positions @ np.linalg.inv(model.lattice.vectors)
    return {
        "name": model.name,
        "energy_unit": model.energy_unit,
        "length_unit": model.length_unit,
        "coordinates": "reduced",
        "lattice": {"vectors": model.lattice.vectors.tolist(), "dim": model.dim},
        "parameters": {n: float(v) for n, v in zip(model.parameter_names, model.default_params, strict=False)},
        "orbitals": [{"name": n, "position": [float(x) for x in p]} for n, p in zip(model.orbital_names, reduced, strict=False)],
        "hoppings": [
            {"from": h.i, "to": h.j, "R": list(h.R), "amplitude": _amplitude_value(h.amplitude)} for h in model.hoppings
        ],
    }


def _amplitude_value(amp):
    if not amp.factors:
        c = complex(amp.constant)
        return c.real if c.imag == 0 else [c.real, c.imag]
    return str(amp)


def write_model_file(model: TightBinding, path: str | Path) -> Path:
    """Write ``model`` as TOML (``.toml``) or JSON (``.json``), atomically."""
    path = Path(path)
    data = model_to_dict(model)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        import tomli_w

        text = tomli_w.dumps(data)
    return atomic_write_text(path, text)
