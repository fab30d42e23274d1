"""Flow files on disk: read them, list each flow's sounds folder, load them as one flow set, and keep the
live set of a folder, reloaded when its files change (`FlowLibrary`).

`ivr.loader` works on text, so this is the only place flow loading touches the file system. An
unreadable file or a missing sounds folder is reported like any other mistake, as a `FlowError`, so
an admin gets one complete list.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from ivr.checks import SOUND_EXTENSIONS
from ivr.errors import FlowError, FlowErrors
from ivr.flowset import FlowSet
from ivr.loader import ParsedFlow, load_flows, read_flow_yaml
from yamlfile import Document

log = structlog.get_logger("hotline.flows")

FLOW_SUFFIXES = (".yaml", ".yml")
#: How often the flow files are checked for changes, in seconds.
POLL_SECONDS = 1.0


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


# --- the flows --------------------------------------------------------------------------------------


Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class LiveFlows:
    """One loaded flow set and what identifies it."""

    flows: FlowSet
    version: str
    loaded_at: datetime


class FlowLibrary:
    """The live flow set of a folder, and its reload when the folder's files change."""

    def __init__(self, directory: Path, numbers: Mapping[str, str], default: str) -> None:
        self.directory = directory
        self.numbers = dict(numbers)
        self.default = default
        self.reloads = 0
        self.rejected = 0
        self._live: LiveFlows | None = None
        self._seen: Fingerprint = ()

    @property
    def live(self) -> LiveFlows:
        if self._live is None:
            raise RuntimeError("no flows loaded yet; call load() first")
        return self._live

    @property
    def loaded(self) -> LiveFlows | None:
        return self._live

    def current(self) -> FlowSet:
        """The set a new call starts on."""
        return self.live.flows

    def fingerprint(self) -> Fingerprint:
        """Name, size and modification time of every flow file: a change in any means a reload."""
        try:
            paths = flows_in(self.directory)
        except FlowErrors:
            return ()
        found = []
        for path in paths:
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((path.name, stat.st_size, stat.st_mtime_ns))
        return tuple(found)

    def _read(self) -> LiveFlows:
        """Load the folder's flows; raises FlowErrors with every mistake (the numbers' flows included)."""
        paths = flows_in(self.directory)
        if not paths:
            raise FlowErrors(
                [
                    FlowError(
                        str(self.directory),
                        1,
                        1,
                        "",
                        "no flow files (*.yaml) here; add one or fix flows.directory",
                    )
                ]
            )
        flows = load_flow_files(paths)
        known = ", ".join(sorted(flows))
        missing = [
            FlowError(
                str(self.directory), 1, 1, "", f"{where}: no flow '{name}' here (loaded flows: {known})"
            )
            for where, name in [("flows.default", self.default)]
            + [(f"flows.numbers.{number}", name) for number, name in self.numbers.items()]
            if name not in flows
        ]
        if missing:
            raise FlowErrors(missing)
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0")
            with contextlib.suppress(OSError):
                digest.update(path.read_bytes())
        return LiveFlows(flows, digest.hexdigest()[:12], datetime.now(UTC))

    def load(self) -> LiveFlows:
        """The first load: raises FlowErrors, so a broken set stops the service before it takes calls."""
        self._seen = self.fingerprint()
        self._live = self._read()
        return self._live

    def reload_if_changed(self) -> bool | None:
        """Reload when the files changed: True when the new set is live, False when it was rejected
        (the old set stays live), None when nothing changed."""
        seen = self.fingerprint()
        if seen == self._seen:
            return None
        self._seen = seen
        try:
            live = self._read()
        except FlowErrors as e:
            self.rejected += 1
            for error in e.errors:
                log.error(f"flows not reloaded: {error}")
            log.error(
                f"flows not reloaded: {len(e.errors)} error(s) in {self.directory}; "
                f"version {self.live.version} stays live until the files are fixed",
                errors=len(e.errors),
            )
            return False
        old, self._live = self._live, live
        self.reloads += 1
        log.info(
            "flows reloaded",
            version=live.version,
            previous=old.version if old else None,
            flows=sorted(live.flows),
        )
        return True

    async def watch(self, interval: float = POLL_SECONDS) -> None:
        """Poll the folder until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except Exception:
                log.exception("flow reload failed; the old flows stay live")
