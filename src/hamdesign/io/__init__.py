"""Model input and output: hamdesign model files, wannier90 files, atomic writes."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from ..model import TightBinding
from .atomic import atomic_write_bytes, atomic_write_text
from .modelfile import model_from_dict, model_to_dict, read_model_file, write_model_file
from .wannier90 import read_hr_dat, read_tb_dat, write_hr_dat, write_tb_dat


def load_model(source: str, *, thickness: float | None = None, ws_distance: bool | None = None) -> TightBinding:
    """A model from a built-in name, a ``.toml``/``.json`` model file, or wannier90 ``_tb.dat``/``_hr.dat`` (``.gz`` too).

    ``thickness`` (2D: layer thickness; 1D: cross-section area; model length units) replaces the
    transverse extent used for bulk numbers. ``ws_distance`` applies (True) or skips (False) the
    Wigner–Seitz (MDRS) translations of a wannier90 file; None follows ``seedname.win``
    (:func:`read_tb_dat`). Asking for them on a model that is not a wannier90 file is an error.
    """
    from ..models import MODELS, get_model

    source = str(source)
    if source in MODELS:
        model = get_model(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ModelFileError(f"no such file or built-in model: {source} (built-in: {', '.join(MODELS)})")
        name = path.name.lower().removesuffix(".gz")
        if name.endswith("_tb.dat"):
            model = read_tb_dat(path, ws_distance=ws_distance)
        elif name.endswith("_hr.dat"):
            model = read_hr_dat(path, ws_distance=ws_distance)
        elif name.endswith((".toml", ".json")) and not path.name.lower().endswith(".gz"):
            model = read_model_file(path)
        else:
            raise ModelFileError(f"{source}: unknown model file type (expected .toml, .json, _tb.dat[.gz] or _hr.dat[.gz])")
    if ws_distance and not str(source).lower().removesuffix(".gz").endswith(("_tb.dat", "_hr.dat")):
        raise ModelFileError(f"{source}: the Wigner-Seitz (MDRS) translations apply to wannier90 _tb.dat/_hr.dat files only")
    if thickness is not None:
        from ..errors import LatticeError

        try:
            model = model.with_structure(lattice=model.lattice.with_transverse(float(thickness)))
        except LatticeError as err:
            raise ModelFileError(f"{source}: {err}") from err
    return model


__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "load_model",
    "model_from_dict",
    "model_to_dict",
    "read_hr_dat",
    "read_model_file",
    "read_tb_dat",
    "write_hr_dat",
    "write_model_file",
    "write_tb_dat",
]
