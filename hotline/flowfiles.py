"""Flow files on disk: read them, list each flow's sounds folder, and load them as one flow set.

`ivr.loader` works on text, so this is the only place flow loading touches the file system. An
unreadable file or a missing sounds folder is reported like any other mistake, as a `FlowError`, so
an admin gets one complete list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ivr.checks import SOUND_EXTENSIONS
from ivr.errors import FlowError, FlowErrors
from ivr.flowset import FlowSet
from ivr.loader import ParsedFlow, load_flows, read_flow_yaml
from yamlfile import Document

FLOW_SUFFIXES = (".yaml", ".yml")


def flows_in(directory: Path) -> list[Path]:
    """The flow files (`*.yaml`, `*.yml`) of `directory`, sorted by name."""
    try:
        found = [p for p in directory.iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file()]
    except OSError as e:
        raise FlowErrors(
            [FlowError(str(directory), 1, 1, "", f"cannot read the folder: {_reason(e)}")]
        ) from None
    return sorted(found)


def sound_names(folder: Path) -> frozenset[str]:
    """The sounds in a flow's sounds folder as `language/name`, extensions left out (`en/welcome`)."""
    names: set[str] = set()
    for path in folder.rglob("*"):
        if path.suffix.lower() in SOUND_EXTENSIONS and path.is_file():
            names.add(path.relative_to(folder).with_suffix("").as_posix())
    return frozenset(names)


def read_flow_files(paths: Sequence[Path]) -> dict[str, ParsedFlow]:
    """Load flow files that may `goto` each other, keyed by flow name, with where each key is written.
    Raises FlowErrors with every mistake of every file."""
    errors: list[FlowError] = []
    texts: dict[str, str] = {}
    for path in paths:
        try:
            texts[str(path)] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            line = e.object[: e.start].count(b"\n") + 1
            errors.append(FlowError(str(path), line, 1, "", "not UTF-8 text; save the file as UTF-8"))
        except OSError as e:
            errors.append(FlowError(str(path), 1, 1, "", f"cannot read the file: {_reason(e)}"))
    sounds: dict[str, frozenset[str]] = {}
    documents: dict[str, Document] = {}
    for filename, text in texts.items():
        document = documents[filename] = read_flow_yaml(text, filename)
        data, positions = document.data, document.positions
        if not document.readable or not isinstance(data, dict):
            continue
        name, folder_name = data.get("flow"), data.get("sounds")
        if not isinstance(name, str) or not isinstance(folder_name, str):
            continue
        folder = Path(filename).parent / folder_name.strip()
        if folder.is_dir():
            sounds[name.strip()] = sound_names(folder)
        else:
            errors.append(
                FlowError(
                    filename,
                    *positions.of(("sounds",), value=True),
                    "sounds",
                    f"sounds folder '{folder_name}' does not exist (looked for {folder})",
                )
            )
    try:
        flows = load_flows(texts, sounds=sounds, documents=documents)
    except FlowErrors as e:
        raise FlowErrors([*errors, *e.errors]) from None
    if errors:
        raise FlowErrors(errors)
    return flows


def load_flow_files(paths: Sequence[Path]) -> FlowSet:
    """Load flow files as the frozen set of flows calls run on. Raises FlowErrors."""
    flows = read_flow_files(paths)
    return FlowSet(
        flows={name: p.flow for name, p in flows.items()},
        sources={name: p.filename for name, p in flows.items()},
    )


def _reason(e: OSError) -> str:
    return e.strerror or str(e)
