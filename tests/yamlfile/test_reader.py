"""yamlfile, the one reader of the service's YAML: values and positions, the mistakes in YAML itself in an
admin's words, limits; the same with libyaml's parser and with ruamel's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.paths import ROOT
from yamlfile import Limits, Position, read_yaml
from yamlfile.reader import _CParser

PARSERS = [pytest.param(True, id="libyaml"), pytest.param(False, id="ruamel")]


def problems(text: str, *, fast: bool = True, limits: Limits | None = None) -> list[str]:
    return [str(p) for p in read_yaml(text, "f.yaml", fast=fast, limits=limits).problems]


def test_libyaml_is_there() -> None:
    """ruamel.yaml.clib is a dependency: without it a 5 MB flow takes a minute to read."""
    assert _CParser is not None


#: broken YAML -> the one problem it reads as: `line:column: message`
SYNTAX: dict[str, tuple[str, str]] = {
    "a tab indenting a key": ("a:\n\tb: 1\n", "2:1: a tab cannot indent YAML; indent with spaces"),
    "a tab under keys of spaces": (
        "a:\n  b: 1\n\tc: 2\n",
        "3:1: a tab cannot indent YAML; indent with spaces",
    ),
    "a value holding ': '": (
        "nodes:\n  a:\n    description: Note: closed today\n    play: x\n",
        "3:18: a value holding ': ' must be quoted; write it in quotes: 'Note: closed today'",
    ),
    "a value holding ': ' and a quote": (
        "a: it's: here\n",
        "1:4: a value holding ': ' must be quoted; write it in quotes: \"it's: here\"",
    ),
    "a key indented under a key with a value": (
        "nodes:\n  a:\n    play: x\n      next: y\n",
        "4:7: this line is indented more than the key above it, which already has a value; line it up with "
        "'play:'",
    ),
    "a value continued, then a key indented like it": (
        "a:\n  description: one\n    two\n    next: y\n",
        "4:5: this line is indented more than the key above it, which already has a value; line it up with "
        "'description:'",
    ),
    "a line indented between two keys": (
        "a:\n    b: 1\n  c: 2\n",
        "3:3: this line's indentation matches no key above it; line it up with 'b:' (column 5) or 'a:' "
        "(column 1)",
    ),
    "a line without ':' among keys": (
        "a: 1\nb\nc: 2\n",
        "2:1: this line has no ':' after its key; write key: value (a value continued on the next line is "
        "indented more than its key)",
    ),
    "a value continued without indentation": (
        "description: one\ntwo\nnext: x\n",
        "2:1: this line has no ':' after its key; write key: value (a value continued on the next line is "
        "indented more than its key)",
    ),
    "a quote never closed": ("a: 'x\nb: 2\n", "1:4: the quote ' here is never closed; end the text with '"),
    "a bracket never closed": (
        "a: [1, 2\nb: 3\n",
        "1:4: the '[' here is not closed; close it with ']', or quote a value holding '['",
    ),
    "a brace never closed, at the end": (
        "a: 1\nb: {c: 1\n",
        "2:4: the '{' here is not closed; close it with '}', or quote a value holding '{'",
    ),
    "'#' inside a flow mapping": (
        "o: {1: a, #: b}\nc: 1\n",
        "1:11: '#' begins a YAML comment here; write '#' in quotes",
    ),
    "'#' inside a flow list": (
        "o: [1, #]\nc: 1\n",
        "1:8: '#' begins a YAML comment here; write '#' in quotes",
    ),
    "'*' as a value": ("a: *\n", "1:4: '*' begins an alias (*name) here; write '*' in quotes"),
    "'*' as a key": ("o:\n  *: x\n", "2:3: '*' begins an alias (*name) here; write '*' in quotes"),
    "'*' in a flow mapping": (
        "o: {1: a, *: b}\n",
        "1:11: '*' begins an alias (*name) here; write '*' in quotes",
    ),
    "'&' as a value": ("a: &\n", "1:4: '&' begins an anchor (&name) here; write '&' in quotes"),
    "an alias of nothing": (
        "a: *sales\n",
        "1:4: '*sales' is an alias of nothing: no '&sales' comes before it; write '*sales' in quotes if it is text",
    ),
    "'@' beginning a value": ("a: @home\n", "1:4: '@' cannot begin plain text; write the text in quotes"),
    "a list item among keys": (
        "a: 1\n- b\n",
        "2:1: a list item ('- ') cannot stand among the keys of a mapping; put the list under a key, indented "
        "more than the key",
    ),
    "a key after the items of a list": (
        "- a\nb: 1\n",
        "2:1: a list's items all begin with '- ' at the same indentation; begin this line with '- ', or indent "
        "it like the keys above the list",
    ),
    "text after a quoted value": (
        "a: 'x' y\nb: 1\n",
        "1:8: more text follows a value on this line; write the whole value in quotes",
    ),
    "two documents": (
        "a: 1\n---\nb: 2\n",
        "2:1: a second YAML document begins here (after '---'); keep one document in the file",
    ),
    "a control character": (
        "a: x\x01\n",
        "1:5: the file holds the control character U+0001, which YAML does not allow; remove it",
    ),
}


@pytest.mark.parametrize("fast", PARSERS)
@pytest.mark.parametrize("case", sorted(SYNTAX))
def test_syntax_errors_in_an_admins_words(case: str, fast: bool) -> None:
    text, expected = SYNTAX[case]
    document = read_yaml(text, "f.yaml", fast=fast)
    assert not document.readable
    assert [str(p) for p in document.problems] == [f"f.yaml:{expected}"]


def test_no_parser_jargon_reaches_an_admin() -> None:
    for text, _ in SYNTAX.values():
        for message in problems(text):
            assert (
                "<block" not in message and "expected <" not in message and "not allowed here" not in message
            )


def test_yaml_1_2_values_and_digits_as_written() -> None:
    data = read_yaml(
        "ext: 0100\narea: 030\nnumber: +48221234567\nzero: 0\nhundred: 100\nminus: -5\nhalf: 0.5\noctal: 0o17\n"
        "hex: 0x1F\nno: no\ntagged: !!int 0100\nquoted: '0100'\n",
        "f.yaml",
    ).data
    assert data == {
        "ext": "0100",
        "area": "030",
        "number": "+48221234567",
        "zero": 0,
        "hundred": 100,
        "minus": -5,
        "half": 0.5,
        "octal": 15,
        "hex": 31,
        "no": "no",
        "tagged": 100,
        "quoted": "0100",
    }


def test_keys_are_text_as_written() -> None:
    assert list(read_yaml("1: a\n01: b\n0800: c\n+48: d\ntrue: e\n", "f.yaml").data) == [
        "1",
        "01",
        "0800",
        "+48",
        "true",
    ]


def test_positions_of_keys_and_values() -> None:
    document = read_yaml("a:\n  b: 1\n  c: [x, {d: e}]\n", "f.yaml")
    positions = document.positions
    assert positions.of(("a", "b")) == Position(2, 3)
    assert positions.of(("a", "b"), value=True) == Position(2, 6)
    assert positions.of(("a", "c", 1, "d"), value=True) == Position(3, 14)
    assert positions.of(("a", "missing")) == Position(1, 1)


#: text -> its comment problems (`line:column: path: message`), and the value the key is read as
COMMENTS: dict[str, tuple[list[str], object]] = {
    "terminator: #\n": (["1:13: terminator"], "#"),
    "terminator: #*\n": (["1:13: terminator"], "#*"),
    "terminator:   # the pound key\n": (["1:15: terminator"], "#"),
    "terminator: '#'\n": ([], "#"),
    'terminator: "#"\n': ([], "#"),
    "terminator:\n  # a comment above an empty value\n": ([], None),
    "terminator: x # a comment after a value\n": ([], "x"),
    "terminator: a#b\n": ([], "a#b"),
}


@pytest.mark.parametrize("text", sorted(COMMENTS))
def test_a_value_left_empty_by_an_unquoted_hash(text: str) -> None:
    expected, value = COMMENTS[text]
    document = read_yaml(text, "f.yaml")
    assert [f"{p.line}:{p.column}: {p.path}" for p in document.problems] == expected
    assert all(p.message == "'#' begins a YAML comment here; write '#' in quotes" for p in document.problems)
    assert document.data == {"terminator": value}


def test_a_comment_line_shaped_like_an_entry() -> None:
    text = "nodes:\n  main:\n    options:\n      1: sales\n      #: repeat_node\n    next: x\n"
    assert problems(text) == [
        "f.yaml:5:7: nodes.main.options.#: '#' begins a YAML comment here; write '#' in quotes"
    ]
    # an ordinary comment, and '#:' inside a text block, are left alone
    assert problems("a: 1\n# note: b\n#comment\nc: |\n  #: not a comment\n") == []


@pytest.mark.parametrize("fast", PARSERS)
def test_a_file_too_large_is_refused_at_once_naming_the_limit(fast: bool) -> None:
    limits = Limits(bytes=1000, split="split it into flows joined with goto: {flow: NAME}")
    assert problems("a: " + "x" * 2000 + "\n", fast=fast, limits=limits) == [
        "f.yaml:1:1: the file is 0.0 MB, more than the 0.0 MB a file may hold; split it into flows joined with "
        "goto: {flow: NAME}"
    ]


def test_too_many_values_names_the_count() -> None:
    assert problems("[" + ", ".join(["x"] * 20) + "]\n", limits=Limits(values=10, split="split it")) == [
        "f.yaml:1:29: the file holds more than 10 values; split it"
    ]


def test_aliases_repeating_too_much_are_named_as_aliases() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 10) + "]")
    assert problems("\n".join(lines) + "\n") == [
        "f.yaml:1:8: aliases (*name) repeat more than 100000 values; write the repeated part fewer times, or "
        "give it a name of its own"
    ]


@pytest.mark.parametrize("fast", PARSERS)
def test_deep_nesting_is_refused_without_recursion(fast: bool) -> None:
    assert problems("[" * 100_000 + "]" * 100_000, fast=fast) == [
        "f.yaml:1:101: the file nests more than 100 levels deep; flatten it, or give the inner parts names of "
        "their own"
    ]


SHIPPED = [
    *sorted((ROOT / "flows").glob("*.yaml")),
    ROOT / "hotline.example.yaml",
    ROOT / "routing.example.yaml",
    *sorted((ROOT / "tests" / "ivr" / "flows_broken").glob("*.yaml")),
]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_both_parsers_read_the_same(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    fast, slow = read_yaml(text, path.name, fast=True), read_yaml(text, path.name, fast=False)
    assert (fast.data, fast.positions, fast.problems) == (slow.data, slow.positions, slow.problems)


_scalars = st.one_of(
    st.integers(-1000, 1000),
    st.sampled_from(["0100", "+48", "yes", "no", "~", "x: y", "#", "*", "&a", "a#b", "it's", "1.5", "", " "]),
    st.text(alphabet="abc019#*&:'\" -", max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abc0", min_size=1, max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_both_parsers_agree_on_any_text(value: object) -> None:
    """Whatever the text (well-formed or not), libyaml's and ruamel's readings give the same values and
    problems."""
    text = _dump(value)
    fast, slow = read_yaml(text, "f.yaml", fast=True), read_yaml(text, "f.yaml", fast=False)
    assert (fast.data, fast.problems) == (slow.data, slow.problems)


def _dump(value: object, indent: int = 0) -> str:
    """A crude YAML writer that writes scalars unquoted, so that some of its output is broken YAML."""
    pad = " " * indent
    if isinstance(value, dict):
        return (
            "".join(
                f"{pad}{key}:\n{_dump(item, indent + 2)}"
                if isinstance(item, dict | list) and item
                else f"{pad}{key}: {_inline(item)}\n"
                for key, item in value.items()
            )
            or f"{pad}{{}}\n"
        )
    if isinstance(value, list):
        return (
            "".join(
                f"{pad}-\n{_dump(item, indent + 2)}"
                if isinstance(item, dict | list) and item
                else f"{pad}- {_inline(item)}\n"
                for item in value
            )
            or f"{pad}[]\n"
        )
    return f"{pad}{_inline(value)}\n"


def _inline(value: object) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return str(value)
