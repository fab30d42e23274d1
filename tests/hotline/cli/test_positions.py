"""Every `file:line:column` the commands print reads as written: a terminal renderer must not turn
`:100:` or `:1234:` (emoji codes) into pictures, nor `[...]` into markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main

#: Emoji codes that are also positions a file can have.
CODES = {100: "\N{HUNDRED POINTS SYMBOL}", 1234: "\N{INPUT SYMBOL FOR NUMBERS}"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "300"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def flow_with_error_on(line: int) -> str:
    """A flow whose unknown node `sails` is written on `line`, at column 10."""
    head = ["flow: hotline", "start: main", "description: >"]
    filler = [f"  line {n} of a long description" for n in range(line - len(head) - 5)]
    nodes = ["nodes:", "  main:", "    menu: main-menu", "    options:", "      1: sails", "    failure: bye"]
    return "\n".join([*head, *filler, *nodes, "  bye:", "    hangup: goodbye", ""])


@pytest.mark.parametrize("line", sorted(CODES))
def test_lint_prints_a_position_that_is_an_emoji_code_as_text(tmp_path: Path, line: int) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(flow_with_error_on(line), encoding="utf-8")
    code, out, _ = run("lint", str(path))
    assert code == 1
    assert (
        out
        == f"{path}:{line}:10: nodes.main.options.1: unknown node 'sails'; add it under nodes: or name one of main, bye\n"
    )
    assert CODES[line] not in out


def test_a_bad_config_on_line_100_prints_as_text(tmp_path: Path) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("\n" * 99 + "log: {level: loud}\n", encoding="utf-8")
    code, _, err = run("contacts", "--config", str(config))
    assert code == 1
    assert err.startswith(f"{config}:100:14: log.level: expected one of ")
    assert CODES[100] not in err


def test_serve_prints_flow_errors_on_line_100_as_text(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hotline.yaml").write_text(flow_with_error_on(100), encoding="utf-8")
    config = tmp_path / "hotline.yaml"
    config.write_text("asterisk: {ari_password: pw}\n", encoding="utf-8")
    code, _, err = run("serve", "--config", str(config))
    assert code == 1
    assert f"{flows / 'hotline.yaml'}:100:10: nodes.main.options.1: unknown node 'sails'" in err
    assert CODES[100] not in err
