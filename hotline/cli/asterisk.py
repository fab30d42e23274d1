"""`hotline asterisk install|start|stop|status|cli`: a real Asterisk 22 in a Debian sid chroot, for tests and
local runs, without Docker (needs root)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
from rich.markup import escape

from hotline.asterisk.sandbox import (
    DIALPLAN_DIR,
    ENV_PREFIX,
    ROOT_ENV,
    Sandbox,
    SandboxError,
    load_secrets,
    placeholders,
    require_root,
)
from hotline.cli.common import DEFAULT_CONFIG, err, out
from hotline.config import ConfigError, load_config

#: Where `start` keeps the credentials it generates, inside the service's data_dir.
SECRETS_FILE = "asterisk-secrets.env"
#: The config file used when neither --config nor HOTLINE_CONFIG names one, if it exists.


root_option = click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=ROOT_ENV,
    help=f"The chroot folder (default: ${ROOT_ENV}, else ~/.cache/hotline/asterisk-sid).",
)


def _sandbox(root: Path | None) -> Sandbox:
    started = time.monotonic()

    def progress(line: str) -> None:
        err.print(f"[{time.monotonic() - started:5.1f} s] {escape(line)}", style="dim")

    return Sandbox(root, progress=progress)


def _fail(error: Exception) -> NoReturn:
    for line in str(error).splitlines():
        err.print(escape(line), style="red")
    sys.exit(1)


@click.group(name="asterisk")
def asterisk() -> None:
    """A real Asterisk 22 (Debian sid's package) in a chroot, for tests and local runs. Needs root."""


@asterisk.command()
@root_option
@click.option(
    "--package",
    "packages",
    multiple=True,
    help="Another Debian package to install in the chroot, e.g. sip-tester (repeatable).",
)
def install(root: Path | None, packages: tuple[str, ...]) -> None:
    """Make the chroot and install Asterisk in it (once; about 35 s, 450 MB)."""
    try:
        _sandbox(root).install(packages)
    except SandboxError as e:
        _fail(e)


@asterisk.command()
@root_option
@click.option(
    "--dialplan",
    "dialplan",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=DIALPLAN_DIR,
    show_default=True,
    help="The folder of Asterisk .conf files to install.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HOTLINE_CONFIG",
    help="The service config, for its data_dir (default: $HOTLINE_CONFIG, else ./hotline.yaml if there is one).",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for ARI to answer.")
def start(root: Path | None, dialplan: Path, config_path: Path | None, timeout: float) -> None:
    """Install the dialplan folder's configuration and start Asterisk (restarting a running one).

    Passwords come from HOTLINE_ARI_PASSWORD, HOTLINE_AMI_SECRET, HOTLINE_AGENT_PASSWORD and
    HOTLINE_CALLER_PASSWORD; missing ones are generated and kept in <data_dir>/asterisk-secrets.env."""
    sandbox = _sandbox(root)
    try:
        require_root("start")  # before any secret is generated
        needed = placeholders(dialplan)
        secrets_file = _data_dir(config_path) / SECRETS_FILE
        values, generated = load_secrets(needed, secrets_file)
        running = sandbox.start(dialplan, values, timeout=timeout)
    except (SandboxError, ConfigError) as e:
        _fail(e)
    from_file = [name for name in needed if ENV_PREFIX + name not in os.environ]
    out.print(f"{running.version} running (pid {running.pid}), up in {running.seconds:.1f} s", style="green")
    out.print(f"  ARI  {running.ari_url}  user {running.ari_user}")
    out.print(f"  AMI  {running.ami_host}:{running.ami_port}  user {running.ami_user}")
    if running.sip_port is not None:
        out.print(f"  SIP  {running.sip_host}:{running.sip_port}")
    out.print(f"  log  {sandbox.console_log}")
    if from_file:
        made = f" (generated now: {', '.join(ENV_PREFIX + n for n in generated)})" if generated else ""
        out.print(
            f"credentials {', '.join(ENV_PREFIX + n for n in from_file)} are in {secrets_file}{made}, "
            f"readable by you alone; load them with: set -a; . {secrets_file}; set +a",
            style="yellow" if generated else "",
        )


def _data_dir(config_path: Path | None) -> Path:
    path = config_path
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    return load_config(path).data_dir


@asterisk.command()
@root_option
def stop(root: Path | None) -> None:
    """Stop Asterisk and unmount everything under the chroot."""
    sandbox = _sandbox(root)
    try:
        sandbox.stop()
    except SandboxError as e:
        _fail(e)
    out.print(str(sandbox.status()))


@asterisk.command()
@root_option
def status(root: Path | None) -> None:
    """Say whether Asterisk runs (exit 0) or not (exit 1), its pid, memory and mounts."""
    state = _sandbox(root).status()
    out.print(escape(str(state)), style="green" if state.running else "yellow")
    sys.exit(0 if state.running else 1)


@asterisk.command(name="cli")
@root_option
@click.argument("command", nargs=-1, required=True)
def cli_command(root: Path | None, command: tuple[str, ...]) -> None:
    """Run an Asterisk CLI COMMAND, e.g. `hotline asterisk cli core show channels`."""
    try:
        click.echo(_sandbox(root).cli(" ".join(command)), nl=False)
    except SandboxError as e:
        _fail(e)


COMMANDS: list[click.Command] = [asterisk]
