"""YAML syntax errors in an admin's words, at the line where the mistake is.

A YAML parser reports what it expected when it gave up (`mapping values are not allowed here`,
`expected <block end>, but found '<block mapping start>'`, `could not find expected ':'`), sometimes a
line or two below the mistake. Here the parser's error (libyaml's or ruamel's: both word the same
mistakes a little differently) is matched with the text around it, and said as what is wrong and what to
write instead: ``a value holding ': ' must be quoted; write it in quotes: 'Note: closed'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from yamlfile.problems import Problem

COMMENT_MESSAGE = "'#' begins a YAML comment here; write '#' in quotes"
TAB_MESSAGE = "a tab cannot indent YAML; indent with spaces"
ALIAS_MESSAGE = "'*' begins an alias (*name) here; write '*' in quotes"
#: What an alias may be named, as both parsers read it (a ':' ends it for the C parser, not for ruamel's).
_ALIAS_NAME = re.compile(r"\*([^\s,\[\]{}:]*)")


def alias_message(name: str) -> str:
    """An alias (`*name`) that stands for nothing, or a lone `*`, in the admin's words."""
    if not name:
        return ALIAS_MESSAGE
    return f"'*{name}' is an alias of nothing: no '&{name}' comes before it; write '*{name}' in quotes if it is text"


ANCHOR_MESSAGE = "'&' begins an anchor (&name) here; write '&' in quotes"
NO_COLON_MESSAGE = (
    "this line has no ':' after its key; write key: value (a value continued on the next line is indented "
    "more than its key)"
)
UNREADABLE_MESSAGE = "this line cannot be read as YAML; check its indentation and quoting"

#: a comment begun inside a flow collection, `[1, #]` or `{1: a, #: b}`
_COMMENT_IN_FLOW = re.compile(r"[\[{,:][ \t]*(#)")
#: `key: value` on one line: the column where the value begins
_KEY_VALUE = re.compile(r"^[ \t]*(?:-[ \t]+)?(?:\"[^\"]*\"|'[^']*'|[^\s#'\"][^#]*?)[ \t]*:[ \t]+(?=\S)")
_KEY = re.compile(r"^[ \t]*(?:-[ \t]+)?(\"[^\"]*\"|'[^']*'|[^\s#'\"][^#:]*?)[ \t]*:(?:[ \t]|$)")


def syntax_problem(error: MarkedYAMLError, text: str, filename: str) -> Problem:
    """The parser's `error` about `text` as one problem in an admin's words."""
    lines = text.split("\n")
    problem = str(error.problem or "")
    context = str(error.context or "")
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line, mark.column) if mark is not None else (0, 0)
    around = error.context_mark if error.context_mark is not None else mark
    first = around.line if around is not None else line

    def at(where_line: int, where_column: int, message: str) -> Problem:
        return Problem(filename, where_line + 1, where_column + 1, "", message)

    def text_at(number: int) -> str:
        return lines[number] if 0 <= number < len(lines) else ""

    # a tab in the indentation of the line the parser stopped at, or of a line it was reading
    for number in (line, first):
        indentation = re.match(r"[ \t]*", text_at(number))
        assert indentation is not None
        if "\t" in indentation.group():
            return at(number, indentation.group().index("\t"), TAB_MESSAGE)
    if "tab" in problem or "'\\t'" in problem or text_at(line)[column : column + 1] == "\t":
        return at(line, column, TAB_MESSAGE)

    if context.startswith("while scanning an alias") and around is not None:
        named = _ALIAS_NAME.match(text_at(around.line)[around.column :])
        return at(around.line, around.column, alias_message(named.group(1) if named else ""))
    if context.startswith("while scanning an anchor") and around is not None:
        return at(around.line, around.column, ANCHOR_MESSAGE)

    # an unquoted '#' began a comment inside [...] or {...}, and took the closing bracket with it
    if "flow" in context or "flow" in problem:
        for number in range(first, line + 1):
            found = _COMMENT_IN_FLOW.search(_without_quotes(text_at(number)))
            if found is not None:
                return at(number, found.start(1), COMMENT_MESSAGE)
        opened = _unclosed(lines, line, column)
        if opened is not None:
            bracket = text_at(opened[0])[opened[1]]
            closing = "]" if bracket == "[" else "}"
            return at(
                *opened,
                f"the '{bracket}' here is not closed; close it with '{closing}', or quote a value holding "
                f"'{bracket}'",
            )

    if "mapping values are not allowed" in problem:
        return _colon_in_value(lines, line, column, at)

    if "could not find expected ':'" in problem and around is not None:
        return at(around.line, _indent(text_at(around.line)), NO_COLON_MESSAGE)

    if context.startswith("while scanning a quoted scalar") and around is not None:
        if "escape" in problem:
            return at(
                line,
                column,
                "a backslash in double quotes begins an escape YAML does not know; write \\\\ for a "
                "backslash, or use single quotes",
            )
        quote = text_at(around.line)[around.column : around.column + 1] or "'"
        return at(
            around.line, around.column, f"the quote {quote} here is never closed; end the text with {quote}"
        )

    if context.startswith("while parsing a block mapping") and (
        "expected <block end>" in problem or "did not find expected key" in problem
    ):
        content = text_at(line)[column:]
        if content.startswith("-") and content[1:2] in ("", " ", "\t"):
            return at(
                line,
                column,
                "a list item ('- ') cannot stand among the keys of a mapping; put the list under a key, "
                "indented more than the key",
            )
        if column > 0 and column == _indent(text_at(line)):
            return at(line, column, _misaligned(lines, line, column))
        return at(line, column, "more text follows a value on this line; write the whole value in quotes")

    if context.startswith("while parsing a block collection"):
        return at(
            line,
            column,
            "a list's items all begin with '- ' at the same indentation; begin this line with '- ', or "
            "indent it like the keys above the list",
        )

    if "cannot start any token" in problem:
        character = text_at(line)[column : column + 1]
        return at(line, column, f"'{character}' cannot begin plain text; write the text in quotes")

    if "expected the node content" in problem or "did not find expected node content" in problem:
        character = text_at(line)[column : column + 1]
        return at(line, column, f"'{character}' cannot begin a value here; write the value in quotes")

    return at(line, column, UNREADABLE_MESSAGE)


def _unclosed(lines: list[str], line: int, column: int) -> tuple[int, int] | None:
    """Where the innermost '[' or '{' still open at (`line`, `column`) was opened, skipping quoted text
    and comments."""
    stack: list[tuple[int, int]] = []
    for number in range(min(line + 1, len(lines))):
        text = lines[number] if number < line else lines[number][: column + 1]
        quote = ""
        for index, character in enumerate(text):
            if quote:
                if character == quote:
                    quote = ""
            elif character in "'\"":
                quote = character
            elif character == "#" and (index == 0 or text[index - 1] in " \t"):
                break
            elif character in "[{":
                stack.append((number, index))
            elif character in "]}" and stack:
                stack.pop()
    return stack[-1] if stack else None


def _without_quotes(line: str) -> str:
    """`line` with the quoted parts blanked, so a quoted '#' does not count."""
    return re.sub(r"\"[^\"]*\"|'[^']*'", lambda m: " " * len(m.group()), line)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _colon_in_value(
    lines: list[str], line: int, column: int, at: Callable[[int, int, str], Problem]
) -> Problem:
    """`mapping values are not allowed here`: a value holding ': ' on its own line, or a line indented
    under a key that already has a value (its text continues the value, and then meets a ':')."""
    text = lines[line] if line < len(lines) else ""
    found = _KEY_VALUE.match(text)
    if found is not None and found.end() <= column:
        value = text[found.end() :].split(" #", 1)[0].rstrip()
        quote = '"' if "'" in value and '"' not in value else "'"
        shown = value.replace("'", "''") if quote == "'" else value
        return at(
            line,
            found.end(),
            f"a value holding ': ' must be quoted; write it in quotes: {quote}{shown}{quote}",
        )

    def meaningful(number: int) -> bool:
        return bool(lines[number].strip()) and not lines[number].lstrip().startswith("#")

    above = line - 1
    while above >= 0 and not meaningful(above):
        above -= 1
    # the first line above that is a key of its own, over the lines a plain value continues on
    owner = above
    while owner >= 0 and (
        not meaningful(owner) or (_KEY.match(lines[owner]) is None and _indent(lines[owner]) >= _indent(text))
    ):
        owner -= 1
    key = _KEY.match(lines[owner]) if owner >= 0 else None
    if key is not None and _indent(lines[owner]) < _indent(text) and _KEY_VALUE.match(lines[owner]):
        return at(
            line,
            _indent(text),
            f"this line is indented more than the key above it, which already has a value; line it up "
            f"with '{key.group(1)}:'",
        )
    if above >= 0 and _KEY.match(lines[above]) is None and not lines[above].lstrip().startswith("-"):
        return at(above, _indent(lines[above]), NO_COLON_MESSAGE)
    return at(line, column, "a value holding ': ' must be quoted; write the value in quotes")


def _misaligned(lines: list[str], line: int, column: int) -> str:
    """The keys above `line` whose indentation it could have meant."""
    levels: list[tuple[int, str]] = []
    for number in range(line - 1, -1, -1):
        text = lines[number]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        indent = _indent(text)
        if not levels or indent < levels[-1][0]:
            key = _KEY.match(text)
            levels.append((indent, f"'{key.group(1)}:'" if key else f"line {number + 1}"))
        if indent == 0:
            break
    choices = " or ".join(f"{name} (column {indent + 1})" for indent, name in levels[:3])
    if not choices:
        return "this line is indented, but nothing above it is; remove its indentation"
    return f"this line's indentation matches no key above it; line it up with {choices}"


def reader_problem(error: YAMLError, text: str, filename: str) -> Problem:
    """A character YAML does not allow (a control character) as a problem at its place."""
    position = min(int(getattr(error, "position", 0) or 0), len(text))
    character = getattr(error, "character", None)
    line = text.count("\n", 0, position)
    column = position - (text.rfind("\n", 0, position) + 1)
    named = f"U+{character:04X}" if isinstance(character, int) else "a control character"
    return Problem(
        filename,
        line + 1,
        column + 1,
        "",
        f"the file holds the control character {named}, which YAML does not allow; remove it",
    )
