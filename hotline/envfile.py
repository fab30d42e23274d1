"""`NAME=value` files: the secrets `make run` keeps in `var/secrets.env`, read by the config and the sandbox."""

from __future__ import annotations

from pathlib import Path


def read_env_file(path: Path | str) -> dict[str, str]:
    """`NAME=value` lines (blank lines and `#` comments skipped), as a shell's `. file` reads them."""
    result: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            result[key.strip()] = value
    return result
