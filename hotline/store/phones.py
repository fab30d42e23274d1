"""Phone numbers as the store keeps them: `+` and digits, so a CRM's `+48 (22) 123-45-67` finds the
caller id `+48221234567`."""

from __future__ import annotations

import re

from hotline.store.errors import InvalidPhone

_SEPARATORS = re.compile(r"[\s\-./()\[\]]+")
_SHAPE = re.compile(r"\+?[0-9]{1,20}")


def normalise(number: str) -> str:
    """`+48 (22) 123-45-67` -> `+48221234567`; a leading international `00` becomes `+`.

    Extensions such as `100` stay as they are. Raises InvalidPhone for anything else.
    """
    if not isinstance(number, str):
        raise InvalidPhone(f"phone number {number!r} is not text; write it like +48221234567")
    compact = _SEPARATORS.sub("", number.strip())
    if compact.startswith("00") and len(compact) > 2:
        compact = "+" + compact[2:]
    if not _SHAPE.fullmatch(compact):
        raise InvalidPhone(
            f"'{number}' is not a phone number; use digits with an optional leading + "
            "(spaces, dashes, dots and brackets are ignored), e.g. +48 22 123 45 67"
        )
    return compact


def normalise_or_keep(number: str | None) -> str | None:
    """The normalised number, or the value as given when it is no number (a withheld caller id)."""
    if number is None or number == "":
        return None
    try:
        return normalise(number)
    except InvalidPhone:
        return number


def international(number: str, country_code: str | None) -> str:
    """A number a caller typed or a national caller id as an international one: `0221234567` or
    `221234567` with country code `48` -> `+48221234567` (one leading trunk `0` is dropped). A number
    with `+` or `00` keeps its own country; without `country_code` the number is only normalised."""
    compact = normalise(number)
    if compact.startswith("+") or not country_code:
        return compact
    national = compact[1:] if compact.startswith("0") else compact
    return f"+{country_code}{national}"
