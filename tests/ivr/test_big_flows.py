"""Large flows: a file over the size limit is refused at once, naming the limit and the way out; a large
file with many mistakes is still checked (no did-you-mean over every node for every mistake)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main
from ivr.errors import FlowErrors
from ivr.loader import parse_flow
from support.big_flow import generate
from yamlfile import MAX_BYTES


def test_a_flow_over_the_size_limit_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(generate(MAX_BYTES / 1024 / 1024 + 0.5), encoding="utf-8")
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"{path}:1:1: the file is 10.5 MB, more than the 10.0 MB a file may hold; split it into flows joined "
        "with goto: {flow: NAME}\n"
    )


def test_a_generated_flow_of_a_megabyte_lints(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(generate(1.0), encoding="utf-8")
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{path}: ok - flow big, 6")


def test_only_the_first_hundred_unknown_nodes_get_a_did_you_mean() -> None:
    nodes = "".join(f"  node{i}:\n    play: hello\n    next: nod{i}\n" for i in range(150))
    with pytest.raises(FlowErrors) as caught:
        parse_flow(f"flow: big\nstart: node0\nnodes:\n{nodes}", "big.yaml")
    messages = [error.message for error in caught.value.errors]
    assert len(messages) == 150
    assert sum("did you mean" in message for message in messages) == 100
    assert messages[0] == "unknown node 'nod0'; did you mean 'node0'?"
    assert messages[-1] == "unknown node 'nod149'; add it under nodes: or correct the name"


def test_thousands_of_loops_are_each_reported() -> None:
    nodes = "".join(
        f"  n{i}:\n    menu: m\n    options: {{1: n{i + 1}, 2: s{i}}}\n    failure: end\n  s{i}:\n    goto: s{i}\n"
        for i in range(3000)
    )
    text = f"flow: big\nstart: n0\nnodes:\n{nodes}  n3000:\n    hangup: bye\n  end:\n    hangup: bye\n"
    with pytest.raises(FlowErrors) as caught:
        parse_flow(text, "big.yaml")
    assert len(caught.value.errors) == 3000
    assert all("loop without waiting for the caller" in error.message for error in caught.value.errors)
