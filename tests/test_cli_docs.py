"""docs/cli.md's reference section is generated from the Typer app and matches what --help and the parser know."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Optional

import pytest
import typer
from typer.testing import CliRunner

from hamdesign import cli_docs
from hamdesign.cli import app

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_in_docs_is_up_to_date():
    page = PAGE.read_text(encoding="utf-8")
    assert page.count(cli_docs.BEGIN) == 1 and page.count(cli_docs.END) == 1
    assert cli_docs.generated_page(page) == page, f"docs/cli.md is stale: regenerate it with `{cli_docs.REGENERATE}`"


def _documented(page: str) -> dict[str, set[str]]:
    """Command path ('' for the top level) → the flags and argument names in its generated table."""
    section = page[page.index(cli_docs.BEGIN) : page.index(cli_docs.END)]
    found: dict[str, set[str]] = {}
    for block in section.split("\n### ")[1:]:
        usage = block.split("`")[1].split()
        name = usage[1] if len(usage) > 1 and not usage[1].startswith("[") else ""
        rows = [line for line in block.splitlines() if line.startswith("| `")]
        cells = [flag for row in rows for flag in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
        found[name] = {part for flag in cells for part in flag.split("/")}  # --x/--no-x: both halves
    return found


def test_reference_has_every_command_option_and_argument_the_parser_has():
    """Cross-check against the command tree that Typer builds for parsing (independent of the signatures)."""
    group = typer.main.get_command(app)
    parsed = {"": {opt for p in group.params for opt in p.opts}}
    for name, command in group.commands.items():
        parsed[name] = {opt for p in command.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}
        parsed[name] |= {p.name.upper() for p in command.params if p.param_type_name == "argument"}
    assert _documented(PAGE.read_text(encoding="utf-8")) == parsed
    assert {"design", "plot", "export", "evaluate", "bench", "backends", "models"} <= set(parsed)
    photo = {"--component", "--omega", "--eta", "--smearing", "--tau", "--spectrum", "--polarisation", "--parts", "--direction"}
    assert photo <= parsed["evaluate"]


@pytest.mark.parametrize("command", ["", "backends", "models", "evaluate", "design", "plot", "export", "bench"])
def test_every_documented_flag_and_help_text_is_what_help_prints(command):
    documented = cli_docs.collect(app)
    doc = next(c for c in documented if c.path == ((command,) if command else ()))
    result = CliRunner().invoke(app, [*([command] if command else []), "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    printed = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())  # the help text without panel borders or wrapping
    assert doc.help.split(".")[0] in printed
    for param in doc.params:
        if not param.is_argument:
            assert all(half in printed for flag in param.flags for half in flag.split("/")), param.flags
        assert param.help[:60] in printed, param.help


class _Colour(str, Enum):
    red = "red"
    blue = "blue"


@pytest.mark.parametrize(
    ("annotation", "is_option", "label"),
    [
        (float | None, True, "FLOAT"),
        (int, True, "INTEGER"),
        (Path, False, "PATH"),
        (list[str], True, "TEXT, repeatable"),
        (bool, True, "flag"),
        (_Colour, True, "one of `red`, `blue`"),
        (Optional[_Colour], True, "one of `red`, `blue`"),  # noqa: UP045 (cli.py spells it so; both spellings must work)
    ],
)
def test_type_label(annotation, is_option, label):
    assert cli_docs.type_label(annotation, is_option=is_option) == label


def test_default_label():
    option, argument = typer.models.OptionInfo(envvar="HAMDESIGN_X"), typer.models.ArgumentInfo()
    assert cli_docs.default_label(argument, ...) == "required"
    assert cli_docs.default_label(typer.models.OptionInfo(), False) == "off"
    assert cli_docs.default_label(typer.models.OptionInfo(), []) == "–"
    assert cli_docs.default_label(typer.models.OptionInfo(), _Colour.blue) == "`blue`"
    assert cli_docs.default_label(option, None) == "–; env `HAMDESIGN_X`"


def test_table_cells_escape_pipes_and_angle_brackets():
    param = cli_docs.ParamDoc(("--out",), False, "PATH", "–", "results/<name> | prefix")
    command = cli_docs.CommandDoc(("x",), "Help.", (param,))
    row = cli_docs.render_command(command).splitlines()[-1]
    assert row == "| `--out` | PATH | – | results/&lt;name&gt; \\| prefix |"


def test_main_checks_and_regenerates_a_page(tmp_path, capsys):
    page = tmp_path / "cli.md"
    page.write_text(f"# prose kept\n\n{cli_docs.BEGIN}\nSTALE-TEXT\n{cli_docs.END}\n\nmore prose\n", encoding="utf-8")
    assert cli_docs.main(["--check", str(page)]) == 1
    assert "make cli-docs" in capsys.readouterr().err
    assert cli_docs.main([str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# prose kept\n\n" + cli_docs.BEGIN) and text.endswith(cli_docs.END + "\n\nmore prose\n")
    assert "### `hamdesign evaluate [OPTIONS] MODEL`" in text and "STALE-TEXT" not in text
    assert cli_docs.main(["--check", str(page)]) == 0


def test_a_page_without_markers_is_an_error(tmp_path):
    with pytest.raises(cli_docs.StaleDocsError, match="marker"):
        cli_docs.replace_generated("# no markers here\n", "generated")
    page = tmp_path / "cli.md"
    page.write_text("# no markers\n", encoding="utf-8")
    with pytest.raises(cli_docs.StaleDocsError):
        cli_docs.main([str(page)])
