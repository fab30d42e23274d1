"""Call-backs the whole way on the real Asterisk, through a running `hotline serve`.

- `hotline call` through the shipped flow asks for a call-back (menu 9), confirms the caller's own
  number and hangs up; once agent1 (a SIPp phone, registered) logs in, the service rings it, then
  dials the customer (a second SIPp phone, answering as the customer) and bridges the two. Both
  contacts, linked, are in the store.
- `kill -9` of the service with call-backs pending, waiting for an agent and mid-dial: after a restart
  under the same worker name each is made exactly once, and the one that was mid-dial is settled by its
  retry policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hotline.asterisk.sandbox import Running
from support.phones import AgentPhone, free_udp_port
from support.service_harness import ServiceProcess, ari, make_service, until

TOKEN = "e2e-callback-token-0123456789"
CALLER = "+48221234567"
#: English, main menu 9 (call me back), 1: the number read back is right.
CALLBACK_DIGITS = "1,9,1"
#: Numbers of the sandbox's test customers (dialplan `hotline-test`): one rings forever, any other answers.
RINGS_FOREVER = "+48225559000"
ANSWERS = ("+48221111111", "+48222222222")


def api(service: ServiceProcess, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{service.api}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def metrics(service: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    request = urllib.request.Request(f"{service.api}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def events_of(service: ServiceProcess, contact_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api(service, "GET", f"/api/contacts/{contact_id}")["timeline"]
    return found


def add_config(service: ServiceProcess, text: str) -> None:
    service.config.write_text(service.config.read_text(encoding="utf-8") + text, encoding="utf-8")


class CustomerPhone:
    """The customer's phone: SIPp answering one call on a loopback port, dialed as a SIP URI."""

    def __init__(self) -> None:
        sipp = shutil.which("sipp")
        assert sipp, "SIPp is missing: apt-get install sip-tester"
        self.port = free_udp_port()
        self.answering = subprocess.Popen(
            [
                sipp,
                *("-sn", "uas", "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(free_udp_port())),
                *("-m", "1", "-nostdin"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.answering.poll() is None:
            self.answering.kill()
            self.answering.wait(10)


@pytest.fixture
def phones(asterisk: Running) -> Iterator[tuple[AgentPhone, CustomerPhone]]:
    agent, customer = AgentPhone(asterisk), CustomerPhone()
    try:
        yield agent, customer
    finally:
        agent.stop()
        customer.stop()
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            agent.register(expires=0)


@pytest.fixture
def service(asterisk: Running, tmp_path: Path) -> Iterator[ServiceProcess]:
    running = make_service(tmp_path, asterisk)
    running.env["HOTLINE_API_TOKENS"] = TOKEN
    with running.serving(start=False):  # each test starts it once its config is written
        yield running


def test_a_call_back_asked_for_in_the_shipped_flow_rings_the_agent_then_the_customer_and_bridges_them(
    service: ServiceProcess, phones: tuple[AgentPhone, CustomerPhone], asterisk: Running
) -> None:
    agent_phone, customer = phones
    (service.folder / "routing.yaml").write_text(
        """\
agents:
  agent1: {name: Agent One, endpoint: PJSIP/agent1, skills: {customer_service: 5}, wrapup: 1}
queues:
  customer_service:
    skills: {customer_service: 1}
    ring_timeout: 10
    announce_every: 0
    caller_id: "+48225550100"
    callback: {attempts: 2, delay: 30}
""",
        encoding="utf-8",
    )
    add_config(
        service,
        "routing:\n  file: routing.yaml\n"
        "callbacks:\n"
        f"  dial: PJSIP/caller/sip:{{number}}@127.0.0.1:{customer.port}\n"
        "  worker: e2e-node\n",
    )
    service.start()
    agent_phone.register(expires=60)
    agent_phone.answer()

    called = service.run("call", "100", "--digits", CALLBACK_DIGITS, "--caller", CALLER, "--timeout", "40")
    assert called.returncode == 0, called.stdout + called.stderr
    assert "callback_requested" in called.stdout, called.stdout
    [requested] = api(service, "GET", "/api/callbacks")["items"]
    assert (requested["number"], requested["queue"], requested["state"]) == (
        CALLER,
        "customer_service",
        "queued",
    )
    original = requested["contact_id"]

    # the call-back waits in the queue, in the caller's place, until an agent is there to make it
    figures = metrics(service)
    assert figures[("hotline_queue_callbacks", (("queue", "customer_service"),))] == 1
    assert figures[("hotline_queue_callers", (("queue", "customer_service"),))] == 0
    assert (figures[("hotline_callbacks_held", ())], figures[("hotline_asterisk_connected", ())]) == (1, 1)
    assert figures[("hotline_contact_events_total", (("type", "callback_requested"),))] == 1
    # agent1 logs in and is rung at once
    assert api(service, "POST", "/api/agents/agent1/login")["state"] == "ringing"

    def bridged() -> list[dict[str, Any]]:
        return [b for b in ari(asterisk, "GET", "/bridges") if b.get("name") == f"callback-{requested['id']}"]

    [bridge] = until(bridged, 30, f"agent and customer were not bridged; log:\n{service.text()}")
    channels = {c["id"]: c for c in ari(asterisk, "GET", "/channels")}
    names = sorted(channels[leg]["name"] for leg in bridge["channels"])
    assert names[0].startswith("PJSIP/agent1-") and names[1].startswith("PJSIP/caller-"), names
    done = until(
        lambda: (
            (cb := api(service, "GET", f"/api/callbacks/{requested['id']}"))["state"] == "completed" and cb
        ),
        10,
        "the call-back was not completed",
    )
    assert (done["attempts"], done["last_outcome"]) == (1, "answered")

    # both contacts, linked: the caller's own one, and the attempt's, which agent1 answered
    theirs = [e["type"] for e in events_of(service, original)]
    # (the store writes `callback_scheduled` before the flow's `callback_requested` reaches it)
    assert sorted(t for t in theirs if t.startswith("callback_")) == [
        "callback_attempted",
        "callback_completed",
        "callback_requested",
        "callback_scheduled",
    ], theirs
    assert theirs[-1] == "callback_completed"
    assert "abandoned" not in theirs
    attempt = done["attempt_contact_id"]
    linked = next(e for e in events_of(service, original) if e["type"] == "callback_completed")["data"]
    assert linked == {"contact_id": attempt, "agent": "agent1"}
    contact = api(service, "GET", f"/api/contacts/{attempt}")
    assert (contact["queue"], contact["agent"]) == ("customer_service", "agent1")
    first = api(service, "GET", f"/api/contacts/{original}")
    assert first["outcome"] == "callback_completed"

    for leg in bridge["channels"]:
        with contextlib.suppress(Exception):
            ari(asterisk, "DELETE", f"/channels/{leg}")


def callback_state(service: ServiceProcess, callback_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api(service, "GET", f"/api/callbacks/{callback_id}")
    return found


def test_kill_9_with_call_backs_pending_waiting_and_mid_dial_each_is_made_once_after_the_restart(
    service: ServiceProcess, asterisk: Running
) -> None:
    service.env.pop("HOTLINE_CLOCK_AT")  # web call-backs at real times; no call goes through a flow
    (service.folder / "routing.yaml").write_text(
        """\
agents:
  ann: {name: Ann, endpoint: Local/answer@hotline-test, skills: {support: 5}, wrapup: 0.5}
queues:
  support:
    skills: {support: 1}
    ring_timeout: 5
    announce_every: 0
    callback: {attempts: 2, delay: 1}
""",
        encoding="utf-8",
    )
    add_config(
        service,
        "routing:\n  file: routing.yaml\n"
        "callbacks:\n  dial: Local/{number}@hotline-test\n  worker: node-1\n  dial_timeout: 4\n",
    )
    service.start()
    assert api(service, "POST", "/api/agents/ann/login")["state"] == "available"

    now = datetime.now(UTC)
    later = {"from": (now + timedelta(seconds=25)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    mid_dial = api(service, "POST", "/api/callbacks", {"number": RINGS_FOREVER, "queue": "support"})
    until(lambda: callback_state(service, mid_dial["id"])["state"] == "dialing", 20, "no dial started")
    waiting = api(service, "POST", "/api/callbacks", {"number": ANSWERS[0], "queue": "support"})
    pending = api(
        service, "POST", "/api/callbacks", {"number": ANSWERS[1], "queue": "support", "window": later}
    )
    until(lambda: callback_state(service, waiting["id"])["state"] == "queued", 10, "no placeholder queued")
    assert callback_state(service, pending["id"])["state"] == "scheduled"
    left_behind = set(ari(asterisk, "GET", "/applications/hotline-callbacks")["channel_ids"])
    assert left_behind, "the mid-dial attempt has legs up"

    assert service.process is not None
    os.kill(service.process.pid, 9)
    service.process.wait(10)
    service.start()
    # the legs of the attempt the crash cut short are hung up: a customer answering now reaches nobody
    until(
        lambda: not left_behind & {c["id"] for c in ari(asterisk, "GET", "/channels")},
        10,
        "legs from before the crash are still up",
    )
    recovered = callback_state(service, mid_dial["id"])
    assert (recovered["attempts"], recovered["last_outcome"]) == (1, "failed")
    # agents log in again after a restart; the waiting call-back is offered to ann at once
    assert api(service, "POST", "/api/agents/ann/login")["state"] == "ringing"

    def settled() -> bool:
        for bridge in ari(asterisk, "GET", "/bridges"):
            if str(bridge.get("name", "")).startswith("callback-") and len(bridge["channels"]) == 2:
                for leg in bridge["channels"]:  # the customer hangs up, so ann takes the next one
                    with contextlib.suppress(Exception):
                        ari(asterisk, "DELETE", f"/channels/{leg}")
        states = [callback_state(service, cb["id"])["state"] for cb in (mid_dial, waiting, pending)]
        return states == ["failed", "completed", "completed"]

    until(settled, 90, f"the call-backs were not all settled; log:\n{service.text()}")
    for cb, attempts in ((mid_dial, 2), (waiting, 1), (pending, 1)):
        stored = callback_state(service, cb["id"])
        assert stored["attempts"] == attempts, stored
        types = [e["type"] for e in events_of(service, stored["contact_id"])]
        assert types.count("callback_attempted") == attempts, types
        finals = [t for t in types if t in ("callback_completed", "callback_failed", "callback_expired")]
        assert len(finals) == 1, types
    made = callback_state(service, pending["id"])
    assert made["updated_at"] >= later["from"].replace("+00:00", "Z")
