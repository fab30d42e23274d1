"""The `hotline` command: flows (lint, simulate, graph, schema), the store (contacts, export, db, api),
the service (serve, call) and the Asterisk sandbox (asterisk install|start|stop|status|cli)."""

from __future__ import annotations

import click

from hotline.cli import asterisk, flows, service, store


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hotline")
def main() -> None:
    """hotline: a contact-center engine for Asterisk."""


for _command in (*flows.COMMANDS, *store.COMMANDS, *service.COMMANDS, *asterisk.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]
