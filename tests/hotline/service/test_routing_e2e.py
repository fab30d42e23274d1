"""The whole way on the real Asterisk: `hotline call` through the shipped flow's technical support branch
reaches the support queue of a running `hotline serve`, which rings agent1's registered SIP phone (SIPp);
the phone answers, caller and agent are bridged, and the contact shows queue, wait, agent and outcome."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from hotline.asterisk.sandbox import Running
from support.paths import ROUTING_EXAMPLE
from support.phones import AgentPhone
from support.service_harness import HOTLINE, ServiceProcess, ari, make_service, until

TOKEN = "e2e-routing-token-0123456789"
#: English, main menu 3 (technical support), support menu 1 (internet), the contract number and 1 to
#: confirm the read-back (pressed into it: reading the number back lets the caller's keys in).
SUPPORT_DIGITS = "1,3,1,101234561"


def routing_file(folder: Path) -> Path:
    """routing.example.yaml with short rings, wrap-up and no announcements, so the test is quick."""
    yaml = YAML(typ="safe")
    routing = yaml.load(ROUTING_EXAMPLE.read_text(encoding="utf-8"))
    for agent in routing["agents"].values():
        agent["wrapup"] = 1
    for queue in routing["queues"].values():
        queue["ring_timeout"] = 5
        queue["announce_every"] = 0
    path = folder / "routing.yaml"
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(routing, out)
    return path


@pytest.fixture
def phone(asterisk: Running) -> Iterator[AgentPhone]:
    made = AgentPhone(asterisk)
    try:
        yield made
    finally:
        made.stop()
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            made.register(expires=0)  # never leave agent1 registered for the next test


@pytest.fixture
def routed_service(asterisk: Running, tmp_path: Path) -> Iterator[ServiceProcess]:
    """`hotline serve` with the routing file and an API token."""
    running = make_service(tmp_path, asterisk)
    routing = routing_file(tmp_path)
    running.config.write_text(
        running.config.read_text(encoding="utf-8") + f"routing:\n  file: {routing.name}\n", encoding="utf-8"
    )
    running.env["HOTLINE_API_TOKENS"] = TOKEN
    with running.serving():
        yield running


def api(service: ServiceProcess, method: str, path: str) -> Any:
    request = urllib.request.Request(
        f"{service.api}{path}", method=method, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def agent1(service: ServiceProcess) -> dict[str, Any]:
    agents: dict[str, Any] = api(service, "GET", "/api/agents")
    matching: list[dict[str, Any]] = [agent for agent in agents["items"] if agent["id"] == "agent1"]
    [found] = matching
    return found


def test_a_support_call_rings_the_registered_agent_is_bridged_and_the_contact_shows_it(
    routed_service: ServiceProcess, phone: AgentPhone, asterisk: Running
) -> None:
    service = routed_service
    phone.register(expires=60)
    phone.answer()
    assert api(service, "POST", "/api/agents/agent1/login")["state"] == "available"
    until(lambda: agent1(service)["reachable"], 5, "agent1's registered phone never became reachable")

    call = subprocess.Popen(
        [
            str(HOTLINE),
            "call",
            "100",
            "--digits",
            SUPPORT_DIGITS,
            "--timeout",
            "30",
            "--config",
            str(service.config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**service.env, "COLUMNS": "200"},
        cwd=service.folder,
    )
    try:

        def bridged() -> list[dict[str, Any]]:
            if call.poll() is not None:
                raise AssertionError(f"hotline call ended early:\n{call.communicate()[0].decode()}")
            return [b for b in ari(asterisk, "GET", "/bridges") if len(b["channels"]) == 2]

        [bridge] = until(bridged, 20, f"caller and agent were not bridged; log:\n{service.text()}")
        channels = {c["id"]: c for c in ari(asterisk, "GET", "/channels")}
        names = sorted(channels[leg]["name"] for leg in bridge["channels"])
        assert names[0].startswith("Local/100@hotline-") and names[1].startswith("PJSIP/agent1-"), names
        assert agent1(service)["state"] == "on_call"

        # the caller hangs up: `hotline call` sees the contact end and exits
        [caller_leg] = [
            c["id"]
            for c in channels.values()
            if c["name"].startswith("Local/100@hotline-") and c["name"].endswith(";1")
        ]
        ari(asterisk, "DELETE", f"/channels/{caller_leg}")
        output = call.communicate(timeout=15)[0].decode()
    finally:
        if call.poll() is None:
            call.kill()
            call.wait(10)
    assert call.returncode == 0, output
    steps = re.findall(r"^\s*[\d.]+s\s+(\w+)", output, re.MULTILINE)
    for step in (
        "language_chosen",
        "option_chosen",
        "input_collected",
        "queued",
        "agent_offered",
        "answered",
    ):
        assert step in steps, f"{step} missing from:\n{output}"
    assert "invalid_input" not in steps and "no_input" not in steps, output
    assert "node_entered internet_queue (queue)" in output, output
    assert "keys never asked for" not in output

    listed = service.run("contacts", "--agent", "agent1")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if "+48221234567" in line]
    assert "support" in row and "agent1" in row and "answered" in row, listed.stdout

    contact_id = re.search(r"contact ([0-9a-f]{32})", output)
    assert contact_id is not None, output
    contact = api(service, "GET", f"/api/contacts/{contact_id.group(1)}")
    outcome = (contact["queue"], contact["agent"], contact["outcome"], contact["ended_by"])
    assert outcome == ("support", "agent1", "answered", "caller"), contact
    assert 0 <= contact["wait_seconds"] < 5, contact
    until(lambda: agent1(service)["state"] in ("wrap_up", "available"), 5, "agent1 did not leave the call")
    # the supervisors' figures: one caller answered within the queue's 60 s target
    [support] = [q for q in api(service, "GET", "/api/queues")["items"] if q["name"] == "support"]
    figures = support["figures"]
    assert (figures["answered"], figures["answered_within"], figures["abandoned"]) == (1, 1, 0), support
    assert figures["service_level"] == 100.0 and figures["average_answer"] < 5, support
