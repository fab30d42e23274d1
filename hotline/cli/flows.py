"""`hotline lint`, `simulate`, `graph` and `schema`: check, try and draw flows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.markup import escape

from hotline.cli.common import err, out
from hotline.flowfiles import load_flow_files
from ivr.errors import FlowErrors
from ivr.flowset import FlowSet
from ivr.graph import to_dot
from ivr.model import Flow
from ivr.schema import flow_schema
from ivr.simulate import HANG_UP, WAIT, KeySource, Step, lookup_answers, scripted, simulate


def _flowset_for(paths: tuple[Path, ...]) -> FlowSet:
    """The given flow files plus the other flow files beside them (a flow may `goto` a sibling)."""
    files: dict[Path, None] = {}
    for path in paths:
        files[path] = None
    for path in paths:
        for sibling in sorted(path.parent.glob("*.yaml")) + sorted(path.parent.glob("*.yml")):
            files.setdefault(sibling, None)
    try:
        return load_flow_files(list(files))
    except FlowErrors as e:
        for error in e.errors:
            out.print(escape(str(error)), style="red")
        count = len(e.errors)
        err.print(f"{count} error{'s' if count != 1 else ''}; nothing was loaded.", style="bold red")
        sys.exit(1)


def _flow_name(flows: FlowSet, path: Path) -> str:
    for name, source in flows.sources.items():
        if Path(source) == path:
            return name
    raise click.ClickException(f"{path} holds no flow")  # pragma: no cover - load_flow_files names every file


@click.command()
@click.argument("flow_files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def lint(flow_files: tuple[Path, ...]) -> None:
    """Check flow files: print every error as file:line:column, exit 1 when there is one."""
    flows = _flowset_for(flow_files)
    for path in flow_files:
        name = _flow_name(flows, path)
        flow = flows[name]
        schedules = len(flow.schedules)
        out.print(
            f"{path}: ok - flow {name}, {len(flow.nodes)} nodes, languages {', '.join(flow.languages)}"
            + (f", {schedules} schedule{'s' if schedules != 1 else ''}" if schedules else ""),
            style="green",
        )


def _parse_at(value: str | None, flow: Flow) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date and time; write it like 2026-12-24T18:00+01:00", param_hint="--at"
        ) from None
    if at.tzinfo is None:
        zone: tzinfo = UTC
        if flow.schedules:
            zone = ZoneInfo(next(iter(flow.schedules.values())).timezone)
        at = at.replace(tzinfo=zone)
    return at


STYLE = {
    "action": "cyan",
    "event": "dim",
    "press": "bold yellow",
    "timeout": "yellow",
    "lookup": "magenta",
    "hangup": "bold red",
    "end": "bold green",
    "note": "red",
}


def _print_step(step: Step) -> None:
    out.print(f"{step.at:7.1f}s  {escape(step.text)}", style=STYLE.get(step.kind, ""))


def _interactive_keys() -> KeySource:
    pending: list[str] = []

    def next_key() -> str:
        if not pending:
            try:
                typed = click.prompt(
                    "  keys (Enter lets the timeout run, h hangs up)", default="", show_default=False
                )
            except click.Abort:
                return HANG_UP
            typed = typed.strip()
            if not typed:
                return WAIT
            if typed.lower() in ("h", "hangup", "q"):
                return HANG_UP
            pending.extend(k for k in typed if k in "0123456789*#ABCD")
            if not pending:
                out.print("  (keys are 0-9, * and #)", style="red")
                return next_key()
        return pending.pop(0)

    return next_key


@click.command(name="simulate")
@click.argument("flow_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--digits", help="Keys the caller presses when asked, e.g. 1,2,# (wait: let a timeout run).")
@click.option(
    "--caller", default="+48221234567", show_default=True, help="The caller's number ('' if withheld)."
)
@click.option("--dialed", default="100", show_default=True, help="The number the caller dialed.")
@click.option("--at", "at", help="When the call happens, e.g. 2026-12-24T18:00+01:00 (default: now).")
@click.option(
    "--lookup",
    "lookup_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A JSON file with the CRM's answers (without it every lookup fails).",
)
@click.option("--var", "variables", multiple=True, help="A channel variable NAME=VALUE (repeatable).")
def simulate_command(
    flow_file: Path,
    digits: str | None,
    caller: str,
    dialed: str,
    at: str | None,
    lookup_file: Path | None,
    variables: tuple[str, ...],
) -> None:
    """Walk a caller through FLOW_FILE step by step: what they hear, press and where they end up."""
    flows = _flowset_for((flow_file,))
    name = _flow_name(flows, flow_file)
    start = _parse_at(at, flows[name])
    answers = None
    if lookup_file is not None:
        try:
            answers = json.loads(lookup_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise click.BadParameter(f"{lookup_file}: not a JSON file: {e}", param_hint="--lookup") from None
    channel_vars: dict[str, str] = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not NAME=VALUE", param_hint="--var")
        channel_vars[key] = value
    if digits is not None:
        keys, unused = scripted([d for d in digits.split(",") if d.strip()])
    else:
        keys, unused = _interactive_keys(), lambda: ()
    out.print(
        f"Call from {caller or 'a withheld number'} to {dialed} at {start.isoformat(timespec='minutes')}, "
        f"flow {name} ({flow_file})",
        style="bold",
    )
    try:
        if lookup_file is not None and answers is None:
            raise ValueError("the file holds null; write the CRM's answers as a JSON object")
        lookup = lookup_answers(answers)
    except ValueError as e:
        raise click.BadParameter(f"{lookup_file}: {e}", param_hint="--lookup") from None
    journey = simulate(
        flows,
        name,
        keys=keys,
        start=start,
        caller=caller or None,
        dialed=dialed,
        variables=channel_vars,
        lookup=lookup,
        on_step=_print_step,
    )
    left = unused()
    if left:
        out.print(f"keys never asked for: {','.join(left)}", style="yellow")
    if journey.outcome is None:
        out.print("the call ended without an outcome: the flow left the caller waiting", style="red")
        sys.exit(1)


@click.command()
@click.argument("flow_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the drawing; .svg, .png, .pdf or .dot.",
)
def graph(flow_file: Path, output: Path) -> None:
    """Draw FLOW_FILE: nodes by type and prompt, edges by key or condition."""
    flows = _flowset_for((flow_file,))
    dot = to_dot(flows, _flow_name(flows, flow_file))
    fmt = output.suffix.lstrip(".").lower() or "svg"
    if fmt == "dot":
        output.write_text(dot, encoding="utf-8")
    else:
        if fmt not in ("svg", "png", "pdf"):
            raise click.BadParameter(
                f"cannot draw '{fmt}'; use .svg, .png, .pdf or .dot", param_hint="--output"
            )
        tool = shutil.which("dot")
        if tool is None:
            raise click.ClickException("drawing needs Graphviz's `dot`: apt-get install graphviz")
        done = subprocess.run([tool, f"-T{fmt}", "-o", str(output)], input=dot.encode(), capture_output=True)
        if done.returncode != 0:
            raise click.ClickException(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    out.print(f"wrote {output}")


@click.command()
def schema() -> None:
    """Print the flow format as JSON Schema, for editors that validate and complete YAML."""
    click.echo(json.dumps(flow_schema(), indent=2))


# The contact store's commands live in their own module.


COMMANDS = (lint, simulate_command, graph, schema)
