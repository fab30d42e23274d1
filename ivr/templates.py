"""Fill `{name}` placeholders in flow text from the call's variables.

A missing variable reads as empty, so a caller who skipped a step never breaks a flow. What a caller
typed can reach a CRM request, so values put into a URL are percent-encoded (digits cannot add a path
or a query parameter) and values put into a header lose their line breaks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def text(value: object) -> str:
    """A flow value as call variables hold it: YAML `true` is `true`, not Python's `True`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def shown(value: object) -> str:
    """A flow value as a drawing or a message shows it: `true`, `2.5`, `gold`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(template: str, variables: Mapping[str, str], escape: Callable[[str], str] | None = None) -> str:
    """`template` with each `{name}` replaced by that variable (escaped by `escape` when given)."""

    def fill(match: re.Match[str]) -> str:
        value = variables.get(match.group(1), "")
        return escape(value) if escape else value

    return PLACEHOLDER.sub(fill, template)


def render_url(template: str, variables: Mapping[str, str]) -> str:
    return render(template, variables, lambda value: quote(value, safe=""))


def render_header(template: str, variables: Mapping[str, str]) -> str:
    return render(template, variables, lambda value: value.replace("\r", "").replace("\n", ""))


def render_data(value: Any, variables: Mapping[str, str]) -> Any:
    """A JSON-like request body with placeholders filled in every string, keys left alone."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, Mapping):
        return {key: render_data(item, variables) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_data(item, variables) for item in value]
    return value
