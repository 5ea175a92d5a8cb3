"""The ``hamdesign`` command line (Typer). Commands are thin: parse, call one library function, print.

Physics modules and array frameworks are imported inside the commands, so ``hamdesign --help``
starts instantly and never imports jax or torch. Errors caused by input become one line on stderr
and exit code 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .errors import HamdesignError

app = typer.Typer(
    name="hamdesign",
    help="Inverse design of tight-binding Hamiltonians by automatic differentiation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _State:
    quiet: bool = False
    verbose: bool = False
    backend_chosen: bool = False  # --backend or HAMDESIGN_BACKEND given


STATE = _State()


def _fail(message: str) -> None:
    if STATE.verbose and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc(file=sys.stderr)  # where it came from, for a bug report; the last line still says what
    typer.echo(f"hamdesign: error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(fn):
    """Turn hamdesign's input errors (and unreadable files) into one line on stderr, exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HamdesignError as err:
            _fail(str(err))
        except (OSError, UnicodeDecodeError) as err:
            _fail(
                f"{getattr(err, 'filename', '') or ''} "
                f"{err.strerror if isinstance(err, OSError) and err.strerror else err}".strip()
            )

    return wrapper


def over_devices(fn):
    """Run the command inside ``hamdesign.on_devices(--devices)`` when that option is given (jax only)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        count = kwargs.get("devices")
        if count is None:
            return fn(*args, **kwargs)
        from .devices import on_devices

        with on_devices(count):
            return fn(*args, **kwargs)

    return wrapper


DEVICES_HELP = (
    "Shard the k-mesh of the evaluation over N local jax devices (jax only; values and gradients as on one device). "
    "On a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N devices; see docs/scaling.md."
)


@app.callback()
def _global_options(
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            "-b",
            envvar="HAMDESIGN_BACKEND",
            help="Array backend: jax, torch, autograd or numpy (forward only). "
            "Env: HAMDESIGN_BACKEND. Default: the first installed "
            "of jax, torch, autograd, numpy; evaluate (forward only, one-off) defaults to numpy, which pays no compilation.",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", envvar="HAMDESIGN_DEVICE", help="cpu or gpu, where the backend has one. Env: HAMDESIGN_DEVICE."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only results (no progress, no notes).")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Diagnostics on stderr: the backend, its version and device "
            "before the command, and the full traceback above an error line.",
        ),
    ] = False,
) -> None:
    STATE.quiet, STATE.verbose, STATE.backend_chosen = quiet, verbose, bool(backend)
    if device:
        if device.lower() not in ("cpu", "gpu"):
            _fail(f"--device must be cpu or gpu, got {device!r}")
        os.environ["HAMDESIGN_DEVICE"] = device.lower()
    if backend:
        from .backend import set_backend

        try:
            set_backend(backend)
        except HamdesignError as err:
            _fail(str(err))
    if verbose:
        from .backend import current

        try:
            be = current()
            typer.echo(f"hamdesign: backend {be.name} {be.version} on {getattr(be, 'device', 'cpu')}", err=True)
        except HamdesignError as err:
            _fail(str(err))


def _console():
    """Results always print; --quiet only silences progress bars and notes."""
    from rich.console import Console

    return Console()


def _print_json(data: dict) -> None:
    from .io.results import json_default

    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=json_default))


# ------------------------------------------------------------------------------------- backends
@app.command()
@user_errors
def backends(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Installed backends: version, devices, and whether each can differentiate and compile."""
    from .backend import available_backends, get_backend
    from .backends import KNOWN_BACKENDS

    installed = available_backends()
    rows = []
    for name, extra in KNOWN_BACKENDS.items():
        row = {"name": name, "installed": name in installed, "pip_extra": extra}
        if name in installed:
            try:
                be = get_backend(name)
                row.update(version=be.version, devices=be.devices(), differentiates=be.can_differentiate, compiles=be.can_compile)
            except HamdesignError as err:
                row.update(installed=False, error=str(err))
        rows.append(row)
    if as_json:
        _print_json({"backends": rows})
        return
    from rich.table import Table

    table = Table(title="hamdesign backends")
    for col in ("backend", "installed", "version", "devices", "gradients", "jit", "install with"):
        table.add_column(col)
    for r in rows:
        yes = lambda flag: "yes" if flag else "no"  # noqa: E731
        table.add_row(
            r["name"],
            yes(r["installed"]),
            r.get("version", "-"),
            ", ".join(r.get("devices", [])) or "-",
            yes(r.get("differentiates")) if r["installed"] else "-",
            yes(r.get("compiles")) if r["installed"] else "-",
            f"pip install '{r['pip_extra']}'",
        )
    _console().print(table)


# ------------------------------------------------------------------------------------- models
@app.command()
@user_errors
def models(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """The built-in models: dimension, orbitals, parameters and their meaning."""
    from .models import MODELS

    entries = []
    for name, factory in MODELS.items():
        m = factory()
        entries.append(
            {
                "name": name,
                "dim": m.dim,
                "orbitals": list(m.orbital_names),
                "energy_unit": m.energy_unit,
                "length_unit": m.length_unit,
                "parameters": {
                    p: {"default": float(v), "meaning": m.parameter_info.get(p, "")}
                    for p, v in zip(m.parameter_names, m.default_params, strict=False)
                },
                "summary": (factory.__doc__ or "").strip().splitlines()[0],
            }
        )
    if as_json:
        _print_json({"models": entries})
        return
    from rich.table import Table

    table = Table(title="built-in models", show_lines=True)
    for col in ("model", "dim", "orbitals", "parameters (default): meaning", "summary"):
        table.add_column(col)
    for e in entries:
        params = "\n".join(f"{p} ({v['default']:g}): {v['meaning']}" for p, v in e["parameters"].items())
        table.add_row(e["name"], str(e["dim"]), " ".join(e["orbitals"]), params, e["summary"])
    _console().print(table)


# ------------------------------------------------------------------------------------- evaluate
class Smearing(str, Enum):
    gaussian = "gaussian"
    lorentzian = "lorentzian"


class Polarisation(str, Enum):
    along = "along"
    unpolarised = "unpolarised"


class Parts(str, Enum):
    both = "both"
    shift = "shift"
    injection = "injection"


class PositionMatrix(str, Enum):
    diagonal = "diagonal"
    full = "full"


def parse_mu(text: str | None):
    """--mu: a number, or START:STOP:COUNT (inclusive, model energy unit) for a Fermi-level scan."""
    import numpy as np

    from .errors import ParameterError

    if text is None:
        return None
    try:
        if ":" not in text:
            value = float(text)
            if not np.isfinite(value):
                raise ValueError
            return value
        start, stop, count = text.split(":")
        start, stop, count = float(start), float(stop), int(count)
    except ValueError as err:
        raise ParameterError(f"--mu must be a finite number or START:STOP:COUNT, got {text!r}") from err
    if count < 1 or not (np.isfinite(start) and np.isfinite(stop)) or stop < start:
        raise ParameterError(f"--mu {text!r}: need START <= STOP and COUNT >= 1")
    return np.linspace(start, stop, count)


def parse_omega(text: str, model):
    """START:STOP:COUNT (inclusive, eV) → photon energies in the model's energy unit."""
    import numpy as np

    from .errors import ParameterError
    from .units import ELEMENTARY_CHARGE, energy_in_j

    try:
        start, stop, count = text.split(":")
        start, stop, count = float(start), float(stop), int(count)
    except ValueError as err:
        raise ParameterError(f"--omega must be START:STOP:COUNT (eV), got {text!r}") from err
    if count < 1 or not (np.isfinite(start) and np.isfinite(stop)) or start < 0 or stop < start:
        raise ParameterError(f"--omega {text!r}: need 0 <= START <= STOP and COUNT >= 1")
    omega_ev = np.linspace(start, stop, count)
    joules = energy_in_j(model.energy_unit)
    return omega_ev if joules is None else omega_ev * ELEMENTARY_CHARGE / joules


def _read_params_file(path: Path) -> dict:
    from .errors import ParameterError

    try:
        text = path.read_text()
    except OSError as err:
        raise ParameterError(f"{path}: cannot read parameters ({err.strerror})") from err
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, json.JSONDecodeError) as err:
        raise ParameterError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {err}") from err
    if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
        data = data["parameters"]
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter names to numbers")
    return data


def _parse_sets(items: list[str]) -> dict:
    from .errors import ParameterError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--set expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def resolve_temperature(model, *, beta: float | None, temperature: float | None, kelvin: bool) -> float:
    """β in inverse model energy units from --beta or --temperature [--kelvin]."""
    from .errors import ParameterError
    from .units import kelvin_to_energy

    if beta is not None and temperature is not None:
        raise ParameterError("give --beta or --temperature, not both")
    if beta is None and temperature is None:
        raise ParameterError("give the temperature: --beta (1/energy) or --temperature (energy, or kelvin with --kelvin)")
    if beta is not None:
        if not beta > 0 or beta != beta or beta == float("inf"):
            raise ParameterError(f"--beta must be positive and finite, got {beta}")
        return beta
    if not temperature > 0 or temperature == float("inf"):
        raise ParameterError(f"--temperature must be positive and finite, got {temperature}")
    if kelvin:
        try:
            temperature = kelvin_to_energy(temperature, model.energy_unit)
        except ValueError as err:
            raise ParameterError(str(err)) from err
    return 1.0 / temperature


@app.command()
@user_errors
@over_devices
def evaluate(
    model: Annotated[
        str,
        typer.Argument(
            help="Built-in model name (see `hamdesign models`), a model file "
            "(.toml/.json), or wannier90 seedname_tb.dat / seedname_hr.dat."
        ),
    ],
    observable: Annotated[
        str,
        typer.Option(
            "--observable",
            "-o",
            help="What to compute, by its name in hamdesign.observables.REGISTRY: hall (σ_xy in e²/h per layer and "
            "S/cm in bulk, band Chern numbers); shift (σ^abc(ω) in A/V²); injection (η^abc(ω) in A V⁻² s⁻¹ and τη "
            "in A/V²); photocurrent (DC current density in A/m² under a solar spectrum, shift + injection); jdos "
            "(joint density of states of optical transitions, the example of docs/extending.md).",
        ),
    ] = "hall",
    nk: Annotated[
        str, typer.Option("--nk", help="Γ-centred k-mesh: N (same along every periodic direction) or N1,N2[,N3].")
    ] = "100",
    beta: Annotated[float | None, typer.Option("--beta", help="Inverse temperature 1/k_BT in 1/(model energy unit).")] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", "-T", help="k_BT in the model's energy unit (kelvin with --kelvin).")
    ] = None,
    kelvin: Annotated[bool, typer.Option("--kelvin", help="Read --temperature in kelvin.")] = False,
    mu: Annotated[
        str | None,
        typer.Option(
            "--mu",
            help="Chemical potential in the model's energy unit; for hall also "
            "START:STOP:COUNT, a Fermi-level scan in one pass over k.",
        ),
    ] = None,
    filling: Annotated[
        float | None,
        typer.Option(
            "--filling",
            help="Fraction of bands occupied, 0..1 (default 0.5 when --mu is not "
            "given); μ solved at the given temperature (safeguarded Newton).",
        ),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(
            "--params", help="JSON/TOML file mapping parameter names to values (or a result.json with a 'parameters' table)."
        ),
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override one parameter: NAME=VALUE (repeatable).")] = [],  # noqa: B006
    thickness: Annotated[
        float | None,
        typer.Option(
            "--thickness",
            help="Layer thickness (2D) in the model's length unit, for bulk numbers; "
            "default: the cell's extent along the third lattice vector.",
        ),
    ] = None,
    cross_section: Annotated[
        float | None,
        typer.Option(
            "--cross-section",
            help="Cross-section area per chain (1D) in the model's length unit squared, for bulk numbers; default: the model's.",
        ),
    ] = None,
    component: Annotated[
        str,
        typer.Option(
            "--component", help="shift/injection tensor components: xyy, a comma list, or all (first index = current direction)."
        ),
    ] = "xxx",
    omega: Annotated[
        str, typer.Option("--omega", help="Photon energies START:STOP:COUNT in eV, inclusive like numpy.linspace.")
    ] = "0.1:4.0:400",
    eta: Annotated[
        float, typer.Option("--eta", help="Broadening of the delta function (model energy unit, eV by default).")
    ] = 0.02,
    smearing: Annotated[Smearing, typer.Option("--smearing", help="Shape of the broadened delta function.")] = Smearing.gaussian,
    tau: Annotated[float, typer.Option("--tau", help="Relaxation time for the injection current, seconds.")] = 1e-13,
    spectrum: Annotated[
        str, typer.Option("--spectrum", help="Solar spectrum: blackbody5500, am0, am15g, am15d.")
    ] = "blackbody5500",
    polarisation: Annotated[
        Polarisation,
        typer.Option(
            "--polarisation", help="along: linearly polarised along the current; unpolarised: average of x and y (light along z)."
        ),
    ] = Polarisation.along,
    parts: Annotated[
        Parts, typer.Option("--parts", help="Which photocurrent the headline number is: shift + injection, or one part.")
    ] = Parts.both,
    direction: Annotated[str, typer.Option("--direction", help="Current direction for the photocurrent: x, y or z.")] = "x",
    position_matrix: Annotated[
        PositionMatrix,
        typer.Option(
            "--position-matrix",
            help="diagonal (tight-binding convention, orbital centres only) or full (adds the off-diagonal Wannier position "
            "matrix of a _tb.dat: Wang et al. 2006 for hall, Ibañez-Azpiroz et al. 2018 for shift/injection/photocurrent).",
        ),
    ] = PositionMatrix.diagonal,
    sc_eta: Annotated[
        float | None,
        typer.Option(
            "--sc-eta",
            help="shift/photocurrent: broadening of the virtual-transition denominators 1/ω → ω/(ω² + "
            "sc_eta²), model energy unit (postw90/WannierBerri sc_eta); default 0.04; 0 = exact sum rule.",
        ),
    ] = None,
    degen_thresh: Annotated[
        float | None,
        typer.Option(
            "--degen-thresh",
            help="Bands closer than this (model energy unit) form one degenerate "
            "subspace, treated covariantly (every observable); default 1e-4.",
        ),
    ] = None,
    scissor: Annotated[
        float | None,
        typer.Option(
            "--scissor",
            help="shift/injection/photocurrent: rigid shift of every band above μ in the "
            "transition energies (model energy unit); matrix elements unchanged; default 0.",
        ),
    ] = None,
    ws_distance: Annotated[
        bool | None,
        typer.Option(
            "--ws-distance/--no-ws-distance",
            help="wannier90 files: apply the Wigner-Seitz (MDRS) translations or "
            "not; default: as seedname.win says (wannier90's default: apply).",
        ),
    ] = None,
    devices: Annotated[int | None, typer.Option("--devices", help=DEVICES_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate an observable of a model and print it (a table, or JSON with --json)."""
    from .backend import current, default_backend_name, set_backend
    from .errors import ParameterError
    from .io import load_model
    from .observables import REGISTRY, Request
    from .observables.response import InterbandSettings

    if not STATE.backend_chosen:
        # One rule, in default_backend_name: a one-off forward evaluation runs eagerly on numpy. bcc Fe
        # 16³ with 1000 Fermi levels took 24 s on jax and 2.7 s on numpy (docs/performance.md).
        # --devices shards the k-mesh with jax, so it keeps the compiled default.
        set_backend(default_backend_name(one_off=devices is None))

    spec = REGISTRY.get(observable)
    if spec is None:
        raise ParameterError(f"--observable must be one of {', '.join(REGISTRY)}, got {observable!r}")
    if thickness is not None and cross_section is not None:
        raise ParameterError("give --thickness (2D) or --cross-section (1D), not both")
    tb = load_model(model, thickness=thickness if thickness is not None else cross_section, ws_distance=ws_distance)
    values = _read_params_file(params) if params else {}
    values.update(_parse_sets(set_))
    p = tb.params_from(values)
    b = resolve_temperature(tb, beta=beta, temperature=temperature, kelvin=kelvin)
    mu = parse_mu(mu)
    if mu is None and filling is None:
        filling = 0.5
    if not spec.mu_scan and not isinstance(mu, (float, type(None))):
        scans = ", ".join(name for name, entry in REGISTRY.items() if entry.mu_scan)
        raise ParameterError(f"a --mu scan (START:STOP:COUNT) is available for --observable {scans}; give one μ for the others")
    knobs = {"sc_eta": sc_eta, "degen_thresh": degen_thresh, "scissor": scissor}
    if not spec.interband and (sc_eta is not None or scissor is not None):
        takes = ", ".join(name for name, entry in REGISTRY.items() if entry.interband)
        raise ParameterError(f"--sc-eta and --scissor apply to {takes}, not {spec.name}")
    interband = InterbandSettings(position_matrix=position_matrix.value, **{k: v for k, v in knobs.items() if v is not None})
    if spec.interband:
        interband.check(tb)
    be = current()
    request = Request(
        model=tb,
        params=p,
        nk=nk,
        beta=b,
        mu=mu,
        filling=filling,
        thickness=thickness,
        components=component,
        omega=parse_omega(omega, tb) if spec.spectral else None,
        eta=eta,
        smearing=smearing.value,
        tau=tau,
        spectrum=spectrum,
        polarisation=polarisation.value,
        parts=parts.value,
        direction=direction,
        interband=interband,
    )
    report = spec.report(request)
    if spec.display == "spectrum":
        report["component"] = report["components"][0] if len(report["components"]) == 1 else report["components"]
        if len(report["components"]) == 1:  # one component: plain spectra
            for key in ("sigma", "sigma_layer", "sigma_chain", "injection_rate", report.get("spectrum_key")):
                if isinstance(report.get(key), list) and report[key] and isinstance(report[key][0], list):
                    report[key] = report[key][0]
    report["parameters"] = dict(zip(tb.parameter_names, map(float, p), strict=False))
    report["backend"] = be.name
    if tb.provenance:  # here, once, for every observable: how the model file was read
        report["provenance"] = dict(tb.provenance)
    if as_json:
        _print_json(report)
        return
    printers = {"hall": lambda r: _print_hall(r, tb), "current": _print_photocurrent, "spectrum": _print_spectrum}
    printers[spec.display](report)
    for key, text in report.get("provenance", {}).items():
        _console().print(f"{key.replace('_', ' ')}: {text}", highlight=False, markup=False)


def _print_photocurrent(report: dict) -> None:
    from rich.table import Table

    table = Table(
        title=f"{report['model']}: DC photocurrent under {report['spectrum_description']} ({report['backend']} backend)"
    )
    table.add_column("quantity")
    table.add_column("value")
    table.add_row(f"J ({report['parts']})", f"{report['current_density']:.6g} A/m²")
    table.add_row("shift part", f"{report['shift_current_density']:.6g} A/m²")
    table.add_row("injection part", f"{report['injection_current_density']:.6g} A/m² (τ = {report['tau_s']:g} s)")
    table.add_row(
        "original normalisation",
        f"{report['current_density_original_normalisation']:.6g} A/m² (∫σ|E|²dω, ∫|E|²dω = 2∫I dω/(cε0))",
    )
    table.add_row("polarisation", f"{report['polarisation']}, current along {report['direction']}")
    table.add_row(report["transverse_meaning"], f"{report['transverse_measure']:g} {report['transverse_unit']}")
    _console().print(table)


def _print_spectrum(report: dict) -> None:
    from rich.table import Table

    key = report.get("spectrum_key", "sigma")  # which spectrum the table shows: σ unless the report names another
    unit = report["units"][key]
    comps = report["components"]
    values = report[key] if len(comps) > 1 else [report[key]]
    omega = report["omega_ev"] or report["omega"]
    table = Table(title=f"{report['model']}: {report['observable']} ({unit}, bulk; {report['backend']} backend)")
    table.add_column("ħω (eV)" if report["omega_ev"] else f"ħω ({report['omega_unit']})")
    for c in comps:
        table.add_column(c)
    step = max(1, len(omega) // 20)
    for i in range(0, len(omega), step):
        table.add_row(f"{omega[i]:.4g}", *[f"{row[i]:.4g}" for row in values])
    _console().print(table)
    if report.get("transverse_measure") is not None:
        _console().print(
            f"bulk values use the {report['transverse_measure_meaning']} "
            f"{report['transverse_measure']:g} {report['transverse_measure_unit']}"
        )


def _print_hall(report: dict, tb) -> None:
    from rich.table import Table

    title = (
        f"{report['model']}: anomalous Hall response ({report['backend']} backend, position matrix {report['position_matrix']})"
    )
    if isinstance(report["mu"], list):
        _print_hall_scan(report, tb, title)
        return
    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value")
    if "sigma_bulk_S_per_cm" in report:
        for plane, value in report["sigma_bulk_S_per_cm"].items():
            table.add_row(f"σ_{plane}", f"{value:.6g} S/cm")
    else:
        table.add_row("σ_xy", f"{report['sigma_xy']:.6f} e²/h per layer")
        if report["sigma_xy_bulk_S_per_cm"] is not None:
            table.add_row(
                "σ_xy (bulk)",
                f"{report['sigma_xy_bulk_S_per_cm']:.4g} S/cm (layer spacing {report['layer_spacing']:g} {tb.length_unit})",
            )
        table.add_row("band Chern numbers", ", ".join(f"{c:+.4f}" for c in report["chern"]))
    table.add_row("μ", f"{report['mu']:.6g} {tb.energy_unit}")
    table.add_row("β", f"{report['beta']:g} 1/{tb.energy_unit}")
    table.add_row("k-mesh", "×".join(map(str, report["nk"])))
    gaps = report["gaps_above_band"]
    if gaps:
        table.add_row(band_gap_label(len(gaps), tb.energy_unit), ", ".join(f"{g:.4g}" for g in gaps.values()))
    _console().print(table)


def _print_hall_scan(report: dict, tb, title: str) -> None:
    from rich.table import Table

    table = Table(title=title + f", {len(report['mu'])} Fermi levels")
    table.add_column(f"μ ({tb.energy_unit})")
    if "sigma_bulk_S_per_cm" in report:
        columns = [(f"σ_{p} (S/cm)", v) for p, v in report["sigma_bulk_S_per_cm"].items()]
    else:
        columns = [("σ_xy (e²/h per layer)", report["sigma_xy"])]
    for label, _ in columns:
        table.add_column(label)
    step = max(1, len(report["mu"]) // 20)
    for i in range(0, len(report["mu"]), step):
        table.add_row(f"{report['mu'][i]:.4g}", *[f"{values[i]:.6g}" for _, values in columns])
    _console().print(table)


def band_gap_label(n_gaps: int, energy_unit: str) -> str:
    """The Hall table's label for the global gaps min E_{n+1} − max E_n, n = 1…n_gaps (negative: the bands overlap).

    >>> band_gap_label(3, "t1")
    'global gaps above bands 1…3 (t1)'
    """
    if n_gaps == 1:
        return f"global gap above band 1 ({energy_unit})"
    return f"global gaps above bands 1…{n_gaps} ({energy_unit})"


# ------------------------------------------------------------------------------------- design
def _parse_seeds(text: str | None, default: list[int]) -> list[int]:
    from .errors import ParameterError

    if text is None:
        return default
    try:
        if ":" in text:
            start, stop = (int(x) for x in text.split(":", 1))
            seeds = list(range(start, stop))
        else:
            seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise ParameterError(f"--seeds must be START:STOP or a comma list of integers, got {text!r}") from err
    if not seeds or any(s < 0 for s in seeds):
        raise ParameterError(f"--seeds {text!r} selects no non-negative seeds")
    return seeds


class ExecutorKind(str, Enum):
    serial = "serial"
    process = "process"
    dask = "dask"


@app.command()
@user_errors
@over_devices
def design(
    source: Annotated[
        str, typer.Argument(help="A preset (haldane, triangular, photovoltaic) or a CONFIG.toml / .json describing the design.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Result folder (default: results/<name>). One subfolder per seed when several seeds run."
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Seeds: START:STOP (Python range) or a comma list; default from the config.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Override the number of optimisation steps.")] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue an interrupted run from the checkpoint in this result folder; "
            "for an ensemble or sweep, run only what is missing (finished runs "
            "are kept, started ones continue from their checkpoints). Refused unless "
            "the folder holds a run of the same preset or config, model and seed.",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace another run's results in the output folder (without "
            "it, writing into a folder that holds another run is refused).",
        ),
    ] = False,
    sweep: Annotated[
        list[str],
        typer.Option(
            "--sweep",
            help="KEY=V1,V2,…: run every seed at each value of a dotted config key (e.g. optimizer.learning_rate, "
            "temperature.end); repeatable, the grid of all keys; one subfolder per point.",
        ),
    ] = [],  # noqa: B006
    executor: Annotated[
        ExecutorKind,
        typer.Option(
            "--executor",
            help="Where the runs of an ensemble or sweep go: serial (this process), process (a local process "
            "pool) or dask (a LocalCluster, or --scheduler). Workers use one BLAS/XLA thread each.",
        ),
    ] = ExecutorKind.serial,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes for --executor process or dask (default: the CPU count).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Address of a running Dask scheduler (e.g. tcp://host:8786) instead of a LocalCluster."),
    ] = None,
    figures: Annotated[
        bool,
        typer.Option("--figures/--no-figures", help="Draw each run's history.png (drawing can take longer than a small run)."),
    ] = True,
    devices: Annotated[
        int | None, typer.Option("--devices", help=DEVICES_HELP + " With --seeds, needs --executor serial.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result (or ensemble summary) as JSON.")] = False,
) -> None:
    """Run an inverse design with a progress bar; write result.json, history.npz, the model and figures."""
    import warnings

    from .errors import ParameterError

    if devices is not None and executor is not ExecutorKind.serial:
        # The device set belongs to this process; a worker process or Dask worker sees its own devices.
        raise ParameterError("--devices shards one run over this process's devices; use it with --executor serial")

    from .io.runfolder import OverwriteWarning, StaleLockWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", StaleLockWarning)
        warnings.simplefilter("always", OverwriteWarning)
        warnings.showwarning = lambda message, *args, **kwargs: typer.echo(f"hamdesign: warning: {message}", err=True)
        failed = _design(
            source, out, seeds, steps, resume, overwrite, as_json, sweep, executor.value, workers, scheduler, figures
        )
    if failed:
        typer.echo(f"hamdesign: {failed} run(s) failed; their errors are in ensemble.json", err=True)
        raise typer.Exit(1)


def _resume_plan(folder: Path, seeds: str | None, sweep: dict) -> tuple[list[int], bool, int | None, dict]:
    """(seeds, ensemble layout?, the run's number of steps, sweep) for ``--resume folder``.

    An ensemble's plan (seeds, sweep) comes from its ensemble.json unless given again; older
    ensembles without one are resumed over the seed_NNN/ subfolders present.
    """
    from .errors import NoCheckpointError, ParameterError
    from .io.runfolder import ensemble_seeds, inspect_run_folder, read_ensemble_record, seed_folder

    found = inspect_run_folder(folder)
    if found is not None and found.step is not None:
        seed_list = _parse_seeds(seeds, [0 if found.identity.seed is None else found.identity.seed])
        if len(seed_list) != 1 or sweep:
            raise ParameterError(
                f"--resume {folder}: the folder holds one run (seed {found.identity.seed}); --seeds/--sweep select several"
            )
        return seed_list, False, found.identity.steps, {}
    record = read_ensemble_record(folder) or {}
    plan = record.get("plan") if isinstance(record.get("plan"), dict) else None
    if plan is not None and isinstance(record.get("run"), dict):
        return (
            _parse_seeds(seeds, list(plan.get("seeds") or [])),
            True,
            record["run"].get("steps"),
            sweep or dict(plan.get("sweep") or {}),
        )
    present = ensemble_seeds(folder)
    if not present:
        raise NoCheckpointError(
            f"cannot resume {folder}: no checkpoint.npz there, nor seed_NNN/ subfolders"
            + (" (it holds a finished result without a checkpoint)" if found else "")
        )
    started = [f for f in (inspect_run_folder(seed_folder(folder, s)) for s in present) if f is not None]
    return _parse_seeds(seeds, present), True, started[0].identity.steps if started else None, sweep


def _design(
    source: str,
    out: Path | None,
    seeds: str | None,
    steps: int | None,
    resume: Path | None,
    overwrite: bool,
    as_json: bool,
    sweep_items: list[str],
    executor: str,
    workers: int | None,
    scheduler: str | None,
    figures: bool = True,
) -> int:
    """Run the design (one run, or an ensemble/sweep); the number of runs that failed."""
    from .design import DesignRun, load_config
    from .ensemble import parse_sweep
    from .errors import ParameterError
    from .io.runfolder import claim_run_folder

    if resume is not None and out is not None and out.resolve() != resume.resolve():
        raise ParameterError(f"--resume {resume} continues the run in that folder; --out {out} names another (give one of them)")
    if steps is not None and steps < 1:
        raise ParameterError("--steps must be positive")
    cfg, label = load_config(source)
    sweep = parse_sweep(sweep_items)
    if resume is not None:
        out_root = resume
        seed_list, multi, run_steps, sweep = _resume_plan(resume, seeds, sweep)
        if steps is None and run_steps is not None:
            steps = run_steps  # continue to the length the run was started with, not the config's
    else:
        seed_list = _parse_seeds(seeds, cfg.get("seeds", [0]))
        out_root = out or Path("results") / label
        multi = len(seed_list) > 1 or bool(sweep)
    if steps is not None:
        cfg = {**cfg, "steps": steps}
    if multi:
        return _design_ensemble(
            cfg,
            label,
            seed_list,
            out_root,
            sweep,
            resume=resume is not None,
            overwrite=overwrite,
            as_json=as_json,
            executor=executor,
            workers=workers,
            scheduler=scheduler,
            figures=figures,
        )
    run = DesignRun(cfg, label=label)
    # The whole command holds the output folder: a second run into it is refused, not interleaved.
    with claim_run_folder(out_root, run.identity(seed_list[0]), resume=resume is not None, overwrite=overwrite):
        result = _design_one(
            run, seed_list[0], out_root, resume=resume is not None, overwrite=overwrite, as_json=as_json, figures=figures
        )
    if as_json:
        _print_json(result)
    return 0


def _design_ensemble(
    cfg: dict,
    label: str,
    seed_list: list[int],
    out_root: Path,
    sweep: dict,
    *,
    resume: bool,
    overwrite: bool,
    as_json: bool,
    executor: str,
    workers: int | None,
    scheduler: str | None,
    figures: bool = True,
) -> int:
    """Every seed (× sweep point) on the chosen executor, a line per finished run, the summary; the failures."""
    import rich

    from .ensemble import make_executor, run_ensemble

    def report(record: dict) -> None:
        if as_json:
            return
        where = f" [{', '.join(f'{k}={v}' for k, v in record['point'].items())}]" if record["point"] else ""
        if record["status"] == "ok":
            chern = f" (Chern {record['chern_lattice']})" if record.get("chern_lattice") is not None else ""
            line = (
                f"seed {record['seed']}{where}: {record['quantity']} = "
                f"{record['value']:+.6g}{chern} → {out_root / record['folder']}"
            )
        else:
            line = f"seed {record['seed']}{where}: failed: {record['error']}"
        rich.get_console().print(line, markup=False, highlight=False)

    with make_executor(executor, workers=workers, scheduler=scheduler) as pool:
        summary = run_ensemble(
            cfg,
            seed_list,
            out_dir=out_root,
            executor=pool,
            sweep=sweep,
            label=label,
            resume=resume,
            overwrite=overwrite,
            progress=not STATE.quiet and not as_json,
            on_result=report,
            figures=figures,
        )
    if as_json:
        _print_json(summary)
    elif "best" in summary:
        best, dist = summary["best"], summary["distribution"]
        where = f" at {', '.join(f'{k}={v}' for k, v in best['point'].items())}" if best["point"] else ""
        _console().print(
            f"best seed {best['seed']}{where}: {summary['quantity']} = {best['value']:+.6g}"
            + (f" (Chern {summary['best_chern']})" if "best_chern" in summary else "")
            + f"; mean {dist['mean']:+.4g} ± {dist['std']:.3g} over {dist['n']} runs → {out_root / 'ensemble.json'}"
        )
    return summary["failed"]


def _design_one(run, seed: int, folder: Path, *, resume: bool, overwrite: bool, as_json: bool, figures: bool = True) -> dict:
    """Run and write one seed with a progress bar over its steps; the result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .io.results import write_result

    console = _console()
    with Progress(
        TextColumn(f"[bold]{run.label}[/] seed {seed}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=STATE.quiet,
        transient=False,
    ) as progress:
        task = progress.add_task("design", total=run.steps, info="", completed=0)

        def on_step(step, record):
            chern = record.get("chern")
            info = f"loss {record['loss']:+.4f}  kT {1 / record['beta']:.3g}"
            if "gap" in record:
                info += f"  gap {record['gap']:.3f}"
            if chern is not None:
                info += "  C " + " ".join(f"{c:+.2f}" for c in chern)
            if "j_total" in record:
                info += f"  J {record['j_total']:+.4g} A/m²"
            if "perturbation_norm" in record and "sigma" in record:
                info += f"  σ {record['sigma']:+.1f} S/cm  ‖ΔH‖ {record['perturbation_norm']:.3f}"
            progress.update(task, completed=step + 1, info=info)

        state = run.run(seed, out_dir=folder, resume=resume, overwrite=overwrite, on_step=on_step)
    result = write_result(run, state, folder, seed=seed, label=run.label, figures=figures)
    if not as_json:
        ev = result["evaluation"]
        if "component" in ev:
            before, after = ev["initial"], ev["final"]
            console.print(
                f"seed {seed}: {ev['component']} = {after['sigma']:+.1f} S/cm at μ = {after['mu']:.3f} "
                f"{run.model.energy_unit} (start {before['sigma']:+.1f} S/cm at μ = {before['mu']:.3f}), "
                f"‖ΔH‖ = {after['perturbation_norm']:.3g} {run.model.energy_unit}, β = {ev['beta']:g}, "
                f"{'×'.join(map(str, ev['nk']))} k; → {folder}"
            )
        elif "current_density" in ev:
            console.print(
                f"seed {seed}: J = {ev['current_density']:+.4g} A/m² (shift {ev['shift_current_density']:+.3g}, injection "
                f"{ev['injection_current_density']:+.3g}; τ = {ev['tau_s']:g} "
                f"s, {ev['transverse_meaning']} {ev['transverse_measure']:g} "
                f"{ev['transverse_unit']}, {ev['spectrum']}, polarised {ev['polarisation']}); original normalisation "
                f"{ev['current_density_original_normalisation']:+.4g} A/m²; → {folder}"
            )
        else:
            console.print(
                f"seed {seed}: σ_xy = {ev['sigma_xy']:+.6f} e²/h at β = {ev['beta']:g} (Chern {ev['chern_lattice']}), "
                f"{ev['sigma_xy_at_final_training_beta']:+.4f} at the final "
                f"training β = {ev['final_training_beta']:.4g}; → {folder}"
            )
    return result


def _load_result(folder: Path):
    from .errors import ParameterError
    from .io import load_model

    result_file = folder / "result.json"
    if not result_file.exists():
        raise ParameterError(f"{folder}: no result.json (not a design result folder)")
    try:
        result = json.loads(result_file.read_text())
    except json.JSONDecodeError as err:
        raise ParameterError(f"{result_file}: not valid JSON ({err})") from err
    model = load_model(str(folder / "model.toml"))
    return result, model


@app.command()
@user_errors
def plot(
    result_dir: Annotated[Path, typer.Argument(help="A design result folder (with result.json and model.toml).")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the PNGs (default: RESULT_DIR/figures).")] = None,
) -> None:
    """PNG figures of a design: bands coloured by Berry curvature, Berry-curvature map, history,
    photocurrent spectrum with the solar spectrum, spin texture."""
    import numpy as np

    from . import plotting

    result, model = _load_result(result_dir)
    target = out or result_dir / "figures"
    target.mkdir(parents=True, exist_ok=True)
    params = model.default_params
    ev = result.get("evaluation", {})
    obj = result.get("objective", {})
    label = f"{result.get('design', model.name)} (seed {result.get('seed')})"
    written = []
    mu = ev.get("mu") if isinstance(ev.get("mu"), (int, float)) else None
    written.append(
        plotting.plot_bands(
            model,
            params,
            target / "bands.png",
            title=f"{label}: bands" + (f", σ_xy = {ev['sigma_xy']:+.4f} e²/h" if "sigma_xy" in ev else ""),
            mu=mu,
        )
    )
    if model.dim == 2:
        written.append(
            plotting.plot_berry_map(
                model,
                params,
                target / "berry_curvature.png",
                title=f"{label}: occupied Berry curvature at β = {ev.get('beta', 200.0):g}",
                beta=ev.get("beta", 200.0),
                mu=obj.get("mu"),
                filling=obj.get("filling"),
            )
        )
    history = result_dir / "history.npz"
    if history.exists():
        with np.load(history) as data:
            written.append(
                plotting.plot_history({k: data[k] for k in data.files}, target / "history.png", title=f"{label}: design history")
            )
    if "current_density" in ev:
        written.append(
            plotting.plot_photocurrent_spectrum(
                model,
                params,
                target / "photocurrent_spectrum.png",
                title=(
                    f"{label}: shift + injection (τ = {ev['tau_s']:g} s, {ev['transverse_meaning']} "
                    f"{ev['transverse_measure']:g} {ev['transverse_unit']})"
                ),
                beta=ev["beta"],
                filling=obj.get("filling"),
                mu=obj.get("mu"),
                tau=ev["tau_s"],
                spectrum=ev["spectrum"],
                direction=obj.get("direction", "x"),
            )
        )
    if "spins" in ev:
        written.append(
            plotting.plot_spin_texture(
                np.array(ev["spins"]),
                target / "spin_texture.png",
                title=f"{label}: chirality {ev['scalar_chirality']:+.2f}, |m| = {ev['net_moment']:.2f}",
            )
        )
    for path in written:
        typer.echo(str(path))


class ExportFormat(str, Enum):
    tb = "tb"
    hr = "hr"
    toml = "toml"


@app.command()
@user_errors
def export(
    result_dir: Annotated[Path, typer.Argument(help="A design result folder (or any folder with model.toml).")],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="tb: wannier90 seedname_tb.dat; hr: seedname_hr.dat + .win + _centres.xyz; toml: hamdesign model file.",
        ),
    ] = ExportFormat.tb,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file (tb, toml) or prefix (hr); default RESULT_DIR/export/<model>.")
    ] = None,
) -> None:
    """Write the designed model for WannierBerri, PythTB, WannierTools or hamdesign itself."""
    from .io import load_model, write_hr_dat, write_model_file, write_tb_dat

    tb_dat = result_dir / "model_tb.dat"
    designed = _real_material_design(result_dir)
    if fmt is not ExportFormat.toml and tb_dat.exists() and designed is not None:
        # the _tb.dat the design wrote keeps the full position matrix, which model.toml cannot hold
        model = load_model(str(tb_dat), ws_distance=False).with_structure(name=designed["model"]["name"])
    else:
        model = load_model(str(result_dir / "model.toml"))
    base = out or result_dir / "export" / model.name
    if fmt is ExportFormat.tb:
        paths = [write_tb_dat(model, base if out else base.with_name(base.name + "_tb.dat"))]
    elif fmt is ExportFormat.hr:
        paths = write_hr_dat(model, base)
    else:
        paths = [write_model_file(model, base if out else base.with_suffix(".toml"))]
    for path in paths:
        typer.echo(str(path))


def _real_material_design(result_dir: Path) -> dict | None:
    """The folder's result.json when it holds a design with ``[perturbations]`` of a wannier90 model, else None."""
    try:
        result = json.loads((result_dir / "result.json").read_text())
        return result if "perturbations" in result["config"] and result["model"]["name"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _duration(seconds: float) -> str:
    """A benchmark time for a table: whole µs below 1 ms, 3 significant digits in ms below 1 s, whole ms above."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.3g} ms" if seconds < 1.0 else f"{seconds * 1e3:.0f} ms"


@app.command()
@user_errors
def bench(
    backends_: Annotated[str | None, typer.Option("--backends", help="Comma list of backends (default: all installed).")] = None,
    repeat: Annotated[int, typer.Option("--repeat", help="Timed repetitions per case (median reported).")] = 5,
    case: Annotated[str | None, typer.Option("--case", help="Only cases whose name contains this text.")] = None,
    grid: Annotated[
        bool,
        typer.Option(
            "--grid",
            help="Every stage (H(k), eigh, σ_xy, its gradient, shift spectrum, photocurrent, design step) on every "
            "benchmark model (haldane, triangular, kondo_chain, random3d16) instead of the six headline cases.",
        ),
    ] = False,
    size: Annotated[
        str, typer.Option("--size", help="Mesh size for --grid: small, medium or large (k-meshes in docs/performance.md).")
    ] = "small",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """A quick speed table across backends: Hall, shift current, photocurrent, one design step per preset.

    --grid: every stage on every model.
    """
    from .backend import available_backends
    from .bench import CASES, GRID_SIZES, default_summary, grid_cases, is_one_off, run_benchmarks
    from .errors import ParameterError

    names = [b.strip() for b in backends_.split(",")] if backends_ else available_backends()
    if repeat < 1:
        raise ParameterError("--repeat must be at least 1")
    if size not in GRID_SIZES:
        raise ParameterError(f"--size must be one of {', '.join(GRID_SIZES)}, got {size!r}")
    pool = grid_cases(size) if grid else list(CASES)
    cases = [c for c in pool if case is None or case in c.name]
    if not cases:
        raise ParameterError(f"--case {case!r} matches none of: {', '.join(c.name for c in pool)}")
    console = _console()
    rows = run_benchmarks(
        names,
        repeat=repeat,
        cases=cases,
        start_up=any(is_one_off(c) for c in cases),
        progress=None
        if (as_json or STATE.quiet)
        else lambda r: console.print(
            f"  {r['case']} ({r['backend']}): {_duration(r['median_s'])}", highlight=False, markup=False
        ),
    )
    summaries = [default_summary(c, rows) for c in cases]
    if as_json:
        _print_json({"rows": rows, "defaults": summaries})
        return
    from rich.table import Table

    table = Table(
        title="hamdesign bench: steady-state median per call (warm-up / compile time in brackets)",
        caption="default: the backend a user gets without flags; forward-only cases are one-off evaluations, "
        "compared by a fresh process's start-up + first call (warm-up), gradient cases by the median",
    )
    table.add_column("stage" if grid else "case")
    table.add_column("model, k-mesh" if grid else "what")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("default (÷ fastest)", justify="right")
    for c, summary in zip(cases, summaries, strict=True):
        cells = []
        for name in names:
            row = next(r for r in rows if r["case"] == c.name and r["backend"] == name)
            cells.append("-" if row["median_s"] is None else f"{_duration(row['median_s'])} ({row['warmup_s']:.2f} s)")
        ratio = summary["ratio_to_fastest"]
        cells.append(f"{summary['default']} ({'not run' if ratio is None else f'{ratio:.2f}×'})")
        table.add_row(*((c.name.split(":")[0], c.mesh) if grid else (c.name, c.description)), *cells)
    console.print(table)
    started = {r["backend"]: r["start_up_s"] for r in rows if r["start_up_s"] is not None}
    if started:
        console.print("start-up of a fresh process: " + ", ".join(f"{n} {t:.2f} s" for n, t in started.items()), markup=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
