"""docker/compose.yaml deployed for real: a SIP caller presses keys, the contact is in the HTTP API, a
flow edit reloads, the contact survives a restart of the service container, which takes the next call,
and a database backup taken as docs/deploy.md says restores.

SIPp calls the published SIP port on 127.0.0.1; Asterisk advertises 127.0.0.1 and the published RTP
ports, so the keys (RFC 4733 RTP packets) reach it through the published ports too."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.deployment import PROJECT, Stack
from support.dtmf_pcap import write_dtmf_pcap
from support.paths import SIPP_SCENARIOS
from support.sipp import caller_argv

SCENARIO = SIPP_SCENARIOS / "caller_dtmf.xml"
SIPP_TIMEOUT = 20.0

FLOW = """\
flow: hotline
start: menu
nodes:
  menu:
    menu: beep
    options: {{1: account, 2: bye}}
    timeout: 5
    retries: 0
    failure: bye
  account:
    collect: account
    max_length: 6
    timeout: 5
    next: {last}
  {last}:
    hangup: goodbye
  bye:
    hangup:
"""


def write_flow(folder: Path, last: str) -> None:
    """The flow file, saved in one go (as editors do), readable by the service's user."""
    partial = folder / ".hotline.yaml.partial"
    partial.write_text(FLOW.format(last=last))
    partial.chmod(0o644)
    os.replace(partial, folder / "hotline.yaml")


def free_udp_pair() -> tuple[int, int]:
    """A loopback port for SIPp's SIP and an even one (with its odd neighbour free) for its RTP."""
    while True:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            sip, media = a.getsockname()[1], b.getsockname()[1]
        if media % 2 == 0 and sip not in (media, media + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                try:
                    c.bind(("127.0.0.1", media + 1))
                except OSError:
                    continue
            return sip, media


def call(stack: Stack, digits: str, folder: Path) -> None:
    """One SIP call from 127.0.0.1 to the published SIP port, pressing `digits` once answered."""
    sipp = shutil.which("sipp")
    assert sipp is not None, (
        "SIPp is not installed: apt-get install sip-tester (scripts/bootstrap --test does)"
    )
    folder.mkdir(exist_ok=True)
    pcap = write_dtmf_pcap(folder / "keys.pcap", digits)
    errors = folder / "sipp-errors.log"
    password = stack.values["HOTLINE_CALLER_PASSWORD"]
    target = f"127.0.0.1:{stack.sip_port}"
    done = subprocess.run(
        caller_argv(sipp, target, SCENARIO, password, pcap, free_udp_pair(), errors, SIPP_TIMEOUT),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
        timeout=SIPP_TIMEOUT + 10,
        check=False,
    )
    logged = errors.read_text(errors="replace") if errors.exists() else ""
    assert done.returncode == 0, (
        f"SIPp failed (exit {done.returncode}): {(done.stderr + logged)[-3000:]}\nlogs:\n{stack.logs()}"
    )


def ended_contacts(stack: Stack, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The newest calls' contacts through the API, once `count` of them have ended (newest first; a web
    call-back's contact, which has no call, is left out)."""
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = [item for item in stack.api("/api/contacts?limit=10")["items"] if item["call_id"]]
        if len(items) >= count and all(item["outcome"] is not None for item in items[:count]):
            return items
        time.sleep(0.3)
    raise AssertionError(f"{count} ended contacts expected in the API, found: {items}\nlogs:\n{stack.logs()}")


def test_a_sip_call_into_the_deployed_stack_is_a_contact_that_survives_a_service_restart(
    stack: Stack, tmp_path: Path
) -> None:
    write_flow(stack.flows, "thanks")
    began = time.monotonic()
    stack.compose("up", "--detach", timeout=180)
    health = stack.wait_ready()
    stack.timings["up"] = time.monotonic() - began
    assert {name: stack.container_health(name) for name in ("db", "asterisk", "hotline")} == {
        "db": "healthy",
        "asterisk": "healthy",
        "hotline": "healthy",
    }
    assert health["store"] == "postgresql"
    assert health["flows"]["flows"] == ["hotline"]

    began = time.monotonic()
    call(stack, "142#", tmp_path / "first")
    [first] = ended_contacts(stack, 1)
    stack.timings["first call"] = time.monotonic() - began
    assert (first["caller"], first["dialed"], first["outcome"]) == ("caller", "100", "ended_in_ivr")
    assert first["ivr_path"] == ["menu", "account", "thanks"]
    timeline = stack.api(f"/api/contacts/{first['id']}")["timeline"]
    # the keys crossed the published RTP ports one by one: 1 chose the option, 42# was collected
    assert [(e["type"], e["data"].get("digits", e["data"].get("value"))) for e in timeline][:6] == [
        ("call_started", None),
        ("node_entered", None),
        ("option_chosen", "1"),
        ("node_entered", None),
        ("input_collected", "42"),
        ("node_entered", None),
    ]

    # a backup as docs/deploy.md takes it, while everything runs
    backup = stack.exec("db", "pg_dump", "--format=custom", "--dbname=hotline")
    assert backup.startswith(b"PGDMP")

    # an admin edits the flow in the mounted folder: the running service takes it
    version = health["flows"]["version"]
    write_flow(stack.flows, "thank_you")
    deadline = time.monotonic() + 10
    while (stack.health() or {}).get("flows", {}).get("version") in (None, version):
        assert time.monotonic() < deadline, f"the flow edit was not reloaded:\n{stack.logs()}"
        time.sleep(0.3)
    reloaded = stack.health()
    assert reloaded is not None and (reloaded["flows"]["reloads"], reloaded["flows"]["rejected"]) == (1, 0)

    # routing comes from the routing volume (the example's agents and queues); a web call-back for
    # tomorrow waits in the store
    queues = stack.api("/api/queues")["items"]
    assert sorted(q["name"] for q in queues) == ["customer_service", "dispatch", "sales", "support"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    window = {"from": tomorrow.isoformat(), "to": (tomorrow + timedelta(hours=2)).isoformat()}
    asked = stack.api("/api/callbacks", body={"number": "+48221234567", "queue": "sales", "window": window})
    assert asked["state"] == "scheduled"

    began = time.monotonic()
    stack.compose("restart", "hotline", timeout=60)
    stack.wait_ready()
    stack.timings["restart"] = time.monotonic() - began
    assert stack.api(f"/api/contacts/{first['id']}")["ivr_path"] == ["menu", "account", "thanks"]
    kept = stack.api(f"/api/callbacks/{asked['id']}")
    assert (kept["state"], kept["next_attempt_at"], kept["attempts"]) == (
        "scheduled",
        asked["next_attempt_at"],
        0,
    )

    # the restarted service takes the next call, on the edited flow
    call(stack, "173#", tmp_path / "second")
    second, again = ended_contacts(stack, 2)
    assert again == first
    assert (second["caller"], second["ivr_path"], second["outcome"]) == (
        "caller",
        ["menu", "account", "thank_you"],
        "ended_in_ivr",
    )

    # restoring the backup, with the service stopped, brings the store back to the first call alone
    began = time.monotonic()
    stack.compose("stop", "hotline", timeout=60)
    stack.exec("db", "pg_restore", "--clean", "--if-exists", "--dbname=hotline", stdin=backup)
    stack.compose("start", "hotline", timeout=60)
    stack.wait_ready()
    stack.timings["restore"] = time.monotonic() - began
    assert stack.api("/api/contacts?limit=10")["items"] == [first]

    # rotating the database password and the API token: change the env file, `up -d`
    began = time.monotonic()
    old_token = stack.token
    stack.write_env(HOTLINE_DB_PASSWORD=secrets.token_hex(16), HOTLINE_API_TOKENS=secrets.token_hex(24))
    recreated = stack.compose("up", "--detach", timeout=180)
    stack.wait_ready()
    stack.timings["rotate"] = time.monotonic() - began
    assert [
        name for name in ("db", "asterisk", "hotline") if f"Recreating {PROJECT}_{name}_1" in recreated
    ] == [
        "db",
        "hotline",
    ]
    assert stack.api("/api/contacts?limit=10")["items"] == [first]
    try:
        stack.api("/api/contacts", token=old_token)
    except urllib.error.HTTPError as e:
        assert e.code == 401
    else:
        raise AssertionError("the API still takes the token that was rotated out")
