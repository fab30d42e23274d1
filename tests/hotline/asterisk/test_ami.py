"""The AMI watcher: the pure table of endpoint states fed with plain dicts, panoramisk's framing held
to UTF-8 across reads, and the watcher against the real Asterisk with a SIPp phone registering as
agent1, taking a call and logging out."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import structlog

from hotline.asterisk.ami import (
    AmiLoginError,
    AmiWatcher,
    EndpointState,
    EndpointTable,
    _Manager,
    _Protocol,
    contact_change,
    device_change,
    endpoint_of_device,
    health_report,
)
from hotline.asterisk.sandbox import DIALPLAN_DIR, Running, Sandbox
from support.harness import Caller
from support.paths import SIPP_SCENARIOS

CRLF = "\r\n"


# --- pure: AMI messages -> endpoint states ---------------------------------------------------------


def contact_status(uri: str, status: str, endpoint: str = "agent1", aor: str = "agent1") -> dict[str, str]:
    return {
        "Event": "ContactStatus",
        "Privilege": "system,all",
        "URI": uri,
        "ContactStatus": status,
        "AOR": aor,
        "EndpointName": endpoint,
        "RoundtripUsec": "0",
    }


def device(name: str, state: str) -> dict[str, str]:
    return {"Event": "DeviceStateChange", "Device": name, "State": state}


def endpoint_list(name: str, aors: str, state: str = "") -> dict[str, str]:
    return {
        "Event": "EndpointList",
        "ObjectType": "endpoint",
        "ObjectName": name,
        "Aor": aors,
        "DeviceState": state,
    }


def contact_list(uri: str, aor: str, endpoint: str, status: str = "NonQualified") -> dict[str, str]:
    return {
        "Event": "ContactList",
        "ObjectType": "contact",
        "ObjectName": f"{aor};@3daade9d199c24c8f4027ff5a6c24ccd",
        "Endpoint": endpoint,
        "Uri": uri,
        "Status": status,
    }


def test_devices_name_pjsip_endpoints() -> None:
    assert endpoint_of_device("PJSIP/agent1") == "agent1"
    assert endpoint_of_device("pjsip/agent1") == "agent1"
    assert endpoint_of_device("Local/100@hotline") is None
    assert endpoint_of_device("Queue:sales_avail") is None
    assert endpoint_of_device("PJSIP/") is None
    assert device_change(device("PJSIP/agent2", "not_inuse")) == ("agent2", "NOT_INUSE")
    assert device_change(device("Custom:lamp", "INUSE")) is None
    assert device_change({"Event": "DeviceStateChange", "Device": "PJSIP/agent2"}) is None
    assert device_change({"Event": "Newchannel", "Device": "PJSIP/agent2", "State": "INUSE"}) is None


def test_contacts_from_events_and_from_the_list() -> None:
    event = contact_change(contact_status("sip:agent1@127.0.0.1:5070", "Reachable"))
    assert event is not None
    assert (event.endpoint, event.aor, event.uri, event.status) == (
        "agent1",
        "agent1",
        "sip:agent1@127.0.0.1:5070",
        "Reachable",
    )
    listed = contact_change(contact_list("sip:a@127.0.0.1:5071", "phones", ""))
    assert listed is not None
    assert (listed.endpoint, listed.aor, listed.status) == (None, "phones", "NonQualified")
    assert contact_change(contact_status("", "Created")) is None
    assert contact_change({"Event": "ContactStatus", "URI": "sip:x@y", "ContactStatus": "Created"}) is None
    # a header Asterisk repeated arrives as a list from panoramisk: the last value counts
    repeated = contact_change(
        {**contact_status("sip:a@b", "Created"), "ContactStatus": ["Created", "Reachable"]}
    )
    assert repeated is not None and repeated.status == "Reachable"


def test_a_phone_registers_is_busy_and_logs_out() -> None:
    table = EndpointTable()
    changes: list[dict[str, EndpointState]] = []
    changes.append(
        table.load_endpoints([endpoint_list("agent1", "agent1"), endpoint_list("agent2", "agent2")])
    )
    changes.append(
        table.load_devices([device("PJSIP/agent1", "UNAVAILABLE"), device("PJSIP/agent2", "UNAVAILABLE")])
    )
    uri = "sip:agent1@127.0.0.1:5070"
    changes.append(table.apply(contact_status(uri, "NonQualified")))
    changes.append(table.apply(device("PJSIP/agent1", "NOT_INUSE")))
    changes.append(table.apply(device("PJSIP/agent1", "NOT_INUSE")))
    changes.append(table.apply(device("PJSIP/agent1", "INUSE")))
    changes.append(table.apply({"Event": "Newchannel", "Channel": "PJSIP/agent1-00000001"}))
    changes.append(table.apply(contact_status(uri, "Removed")))
    changes.append(table.apply(device("PJSIP/agent1", "UNAVAILABLE")))

    unavailable = EndpointState(False, "UNAVAILABLE")
    assert changes == [
        {"agent1": EndpointState(False, "UNKNOWN"), "agent2": EndpointState(False, "UNKNOWN")},
        {"agent1": unavailable, "agent2": unavailable},
        {"agent1": EndpointState(True, "UNAVAILABLE", (uri,))},
        {"agent1": EndpointState(True, "NOT_INUSE", (uri,))},
        {},
        {"agent1": EndpointState(True, "INUSE", (uri,))},
        {},
        {"agent1": EndpointState(False, "INUSE")},
        {"agent1": unavailable},
    ]
    assert table.states() == {"agent1": unavailable, "agent2": unavailable}


def test_an_unreachable_contact_is_not_registered_and_updated_keeps_the_status() -> None:
    table = EndpointTable()
    uri = "sip:agent3@127.0.0.1:5072"
    table.apply(contact_status(uri, "Created", endpoint="agent3", aor="agent3"))
    assert table.state("agent3").registered
    table.apply(contact_status(uri, "Unreachable", endpoint="agent3", aor="agent3"))
    assert table.state("agent3") == EndpointState(False, "UNKNOWN")
    assert table.apply(contact_status(uri, "Updated", endpoint="agent3", aor="agent3")) == {}
    table.apply(contact_status(uri, "Reachable", endpoint="agent3", aor="agent3"))
    assert table.state("agent3") == EndpointState(True, "UNKNOWN", (uri,))


def test_a_contact_naming_only_its_aor_belongs_to_the_endpoint_with_that_aor() -> None:
    table = EndpointTable()
    table.load_endpoints([endpoint_list("agent4", "desk4,mobile4")])
    table.apply(contact_status("sip:m@127.0.0.1:5073", "Created", endpoint="", aor="mobile4"))
    table.load_contacts(
        [
            {"Response": "Success", "EventList": "start"},
            contact_list("sip:d@127.0.0.1:5074", "desk4", ""),
            contact_list("sip:m@127.0.0.1:5073", "mobile4", ""),
            {"Event": "ContactListComplete", "EventList": "Complete", "ListItems": "2"},
        ]
    )
    assert table.states() == {
        "agent4": EndpointState(True, "UNKNOWN", ("sip:d@127.0.0.1:5074", "sip:m@127.0.0.1:5073"))
    }


def test_a_snapshot_replaces_what_was_known() -> None:
    table = EndpointTable()
    table.apply(contact_status("sip:old@127.0.0.1:5075", "Created"))
    table.apply(device("PJSIP/agent1", "INUSE"))
    # after a restart Asterisk has no contacts ("No Contacts found" is an error answer) and new states
    changed = table.load_contacts([{"Response": "Error", "Message": "No Contacts found"}])
    assert changed == {"agent1": EndpointState(False, "INUSE")}
    assert table.load_devices([device("PJSIP/agent1", "UNAVAILABLE")]) == {
        "agent1": EndpointState(False, "UNAVAILABLE")
    }
    assert table.load_devices([device("PJSIP/agent1", "UNAVAILABLE")]) == {}


def test_endpoints_say_their_device_state_in_words_until_the_device_list_has_them() -> None:
    table = EndpointTable()
    changed = table.load_endpoints(
        [
            endpoint_list("agent1", "agent1", "Not in use"),
            endpoint_list("agent2", "agent2", "Ring+InUse"),
            endpoint_list("agent3", "agent3", "Unavailable"),
            endpoint_list("agent4", "agent4", "something new"),
        ]
    )
    assert {name: state.device_state for name, state in changed.items()} == {
        "agent1": "NOT_INUSE",
        "agent2": "RINGINUSE",
        "agent3": "UNAVAILABLE",
        "agent4": "UNKNOWN",
    }
    assert table.load_devices([device("PJSIP/agent1", "INUSE")]) == {"agent1": EndpointState(False, "INUSE")}
    assert table.state("agent3").device_state == "UNAVAILABLE"


def test_health_from_core_status_and_settings() -> None:
    status = {
        "Response": "Success",
        "CoreStartupDate": "2026-11-28",
        "CoreStartupTime": "11:12:54",
        "CoreReloadDate": "2026-11-28",
        "CoreReloadTime": "11:20:00",
        "CoreCurrentCalls": "3",
        "CoreProcessedCalls": "41",
    }
    settings = {
        "Response": "Success",
        "AMIversion": "11.0.0",
        "AsteriskVersion": "22.10.1",
        "CoreMaxCalls": "0",
    }
    booted = {"Event": "FullyBooted", "Uptime": "100", "LastReload": "20"}
    report = health_report(status, settings, booted, seconds_since_login=5.7)
    assert report == {
        "available": True,
        "version": "22.10.1",
        "ami_version": "11.0.0",
        "system_name": "",
        "started": "2026-11-28 11:12:54",
        "reloaded": "2026-11-28 11:20:00",
        "uptime_seconds": 105,
        "seconds_since_reload": 25,
        "current_calls": 3,
        "processed_calls": 41,
        "max_calls": None,
    }
    bare = health_report({"Response": "Success", "CoreCurrentCalls": "n/a"}, {})
    assert (bare["started"], bare["uptime_seconds"], bare["current_calls"]) == (None, None, None)


# --- panoramisk's framing, fed bytes ---------------------------------------------------------------


class _Transport(asyncio.Transport):
    """In place of the socket: keeps what the protocol writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True


async def test_names_survive_split_reads_and_bad_bytes_do_not_break_the_stream() -> None:
    got: list[dict[str, Any]] = []
    lost: list[bool] = []
    manager = _Manager(lambda event: got.append(dict(event)), lambda: lost.append(True))
    protocol = _Protocol(manager)
    protocol.connection_made(_Transport())
    name = "Zoë Ångström".encode()
    first = b"Asterisk Call Manager/11.0.0\r\nEvent: UserEvent\r\nName: " + name[:3]
    protocol.data_received(first)  # "Zo" and half of "ë"
    protocol.data_received(name[3:] + b"\r\n\r\nEvent: UserEvent\r\nName: caf\xe9\r\n\r\n")
    assert [event["Name"] for event in got] == ["Zoë Ångström", "caf\ufffd"]

    pending = protocol.send({"Action": "CoreStatus"})
    protocol.connection_lost(None)
    with pytest.raises(Exception, match="closed before Asterisk answered"):
        await pending
    assert lost == [True]


# --- against the real Asterisk ---------------------------------------------------------------------


def watcher_for(asterisk: Running, secret: str | None = None) -> AmiWatcher:
    """A watcher that reconnects quickly, so a test does not wait long after Asterisk restarts."""
    return AmiWatcher(
        asterisk.ami_host,
        asterisk.ami_port,
        asterisk.ami_user,
        asterisk.ami_secret if secret is None else secret,
        reconnect_initial=0.1,
        reconnect_max=0.5,
    )


@pytest.fixture
async def watcher(asterisk: Running) -> AsyncIterator[AmiWatcher]:
    ami = watcher_for(asterisk)
    await ami.start()
    try:
        yield ami
    finally:
        await ami.close()


async def eventually(what: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.02)


async def test_health_says_asterisk_22_and_counts_calls(asterisk: Running, watcher: AmiWatcher) -> None:
    assert watcher.connected and watcher.connections == 1
    health = await watcher.health()
    assert health["available"] is True
    assert health["version"].startswith("22.")
    assert health["uptime_seconds"] >= 0 and health["started"]
    idle = health["current_calls"]

    caller = Caller(asterisk)
    caller.start()
    try:
        await caller.wait_connected()
        await caller.call("Local/ring@hotline-test")
        await eventually(lambda: bool(caller.created))
        calls = idle
        for _ in range(100):
            calls = (await watcher.health())["current_calls"]
            if calls > idle:
                break
            await asyncio.sleep(0.05)
        assert calls > idle
    finally:
        await caller.hang_up_all()
        await caller.close()


async def test_a_wrong_secret_fails_with_a_clear_error(asterisk: Running) -> None:
    intruder = watcher_for(asterisk, secret="wrong")
    with pytest.raises(AmiLoginError) as refused:
        await intruder.start()
    message = str(refused.value)
    assert f"refused user {asterisk.ami_user!r} (Authentication failed)" in message
    assert "check the AMI user and secret" in message
    assert not intruder.connected and intruder.connections == 0
    assert (await intruder.health())["available"] is False


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Phone:
    """agent1's SIP phone, played by SIPp on a loopback port of its own."""

    def __init__(self, asterisk: Running) -> None:
        sipp = shutil.which("sipp")
        assert sipp, "SIPp is missing: apt-get install sip-tester"
        self.sipp = sipp
        self.asterisk = asterisk
        self.port = free_udp_port()
        self.running: list[asyncio.subprocess.Process] = []

    def _argv(self, *scenario: str) -> list[str]:
        return [
            self.sipp,
            f"{self.asterisk.sip_host}:{self.asterisk.sip_port}",
            *scenario,
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mp",
            str(free_udp_port()),
            "-nostdin",
            "-m",
            "1",
        ]

    async def register(self, expires: int) -> None:
        """REGISTER agent1 with digest auth (`expires=0` logs the phone out); SIPp exits when done."""
        argv = self._argv(
            "-sf",
            str(SIPP_SCENARIOS / "agent_register.xml"),
            "-s",
            "agent1",
            "-au",
            "agent1",
            "-ap",
            self.asterisk.values["AGENT_PASSWORD"],
            "-key",
            "expires",
            str(expires),
            "-timeout",
            "5s",
            "-timeout_error",
        )
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        self.running.append(process)
        output, _ = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]

    async def answer_calls(self) -> None:
        """Answer one call on the registered port (SIPp's built-in UAS), in the background."""
        process = await asyncio.create_subprocess_exec(
            *self._argv("-sn", "uas"), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        self.running.append(process)

    async def stop(self) -> None:
        for process in self.running:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.running.clear()


async def test_an_agent_phone_registers_takes_a_call_and_logs_out(
    asterisk: Running, watcher: AmiWatcher
) -> None:
    seen: list[tuple[str, EndpointState]] = []
    watcher.on_change(lambda endpoint, state: seen.append((endpoint, state)))
    states = watcher.endpoint_states
    assert states()["agent2"] == EndpointState(False, "UNAVAILABLE")
    assert not states()["agent1"].registered

    phone, caller = Phone(asterisk), Caller(asterisk)
    caller.start()
    try:
        await phone.register(expires=60)
        await eventually(
            lambda: states()["agent1"].registered and states()["agent1"].device_state == "NOT_INUSE"
        )
        assert states()["agent1"].contacts == (f"sip:agent1@127.0.0.1:{phone.port}",)

        await phone.answer_calls()
        await caller.wait_connected()
        await caller.call("PJSIP/agent1")
        await eventually(lambda: states()["agent1"].device_state == "INUSE")
        await caller.hang_up_all()
        await eventually(lambda: states()["agent1"].device_state == "NOT_INUSE")
        await phone.stop()

        await phone.register(expires=0)
        await eventually(lambda: states()["agent1"] == EndpointState(False, "UNAVAILABLE"))
    finally:
        await caller.hang_up_all()
        await caller.close()
        await phone.stop()
        with contextlib.suppress(AssertionError, TimeoutError):
            await phone.register(expires=0)  # never leave agent1 registered for the next test

    agent1 = [state.device_state for endpoint, state in seen if endpoint == "agent1"]
    # registration and device state arrive as separate events, in either order
    assert "NOT_INUSE" in agent1 and "INUSE" in agent1
    assert agent1.index("NOT_INUSE") < agent1.index("INUSE")
    assert agent1[-1] == "UNAVAILABLE"
    assert [state.registered for endpoint, state in seen if endpoint == "agent1"].count(True) >= 1
    assert all(endpoint == "agent1" for endpoint, _ in seen)
    assert states()["agent2"] == EndpointState(False, "UNAVAILABLE")


@contextlib.contextmanager
def ami_log() -> Iterator[list[str]]:
    with structlog.testing.capture_logs() as logs:
        lines: list[str] = []
        yield lines
        lines.extend(str(entry["event"]) for entry in logs if str(entry["event"]).startswith("ami "))


async def test_the_watcher_comes_back_after_asterisk_restarts(asterisk: Running, watcher: AmiWatcher) -> None:
    with ami_log() as lines:
        await asyncio.to_thread(Sandbox(asterisk.root).start, DIALPLAN_DIR, asterisk.values)
        restarted = time.monotonic()
        await watcher.wait_connected(5)
        await eventually(lambda: watcher.connections == 2)
        back = time.monotonic() - restarted
        health = await watcher.health()
    assert back < 3.0
    assert health["available"] is True and health["uptime_seconds"] < 30
    await eventually(lambda: watcher.endpoint_states()["agent2"] == EndpointState(False, "UNAVAILABLE"))
    # one line per change of state, never one per retry
    assert lines[0] == "ami lost, reconnecting" and lines[-1] == "ami connected"
    assert all(a != b for a, b in itertools.pairwise(lines)) and len(lines) <= 4
