"""For the FastAGI server's tests: a scripted Asterisk on a raw loopback socket (`FakeAsterisk`), a
faulty link between the real Asterisk and the server (`AgiLink`), and the contacts the server recorded,
checked and folded as the store would (`Contacts`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from contacts import EventName
from hotline.store import new_event
from hotline.store.errors import InvalidEvent
from hotline.store.events import Contact, StoredEvent
from hotline.store.projection import apply, to_contact

#: What Asterisk 22 sends for `AGI(agi://127.0.0.1:4573/hotline)` (`connect` names its own script).
HEADER = [
    b"agi_network: yes",
    b"agi_network_script: hotline",
    b"agi_request: agi://127.0.0.1:4573/hotline",
    b"agi_channel: Local/100@hotline-agi-00000001;2",
    b"agi_language: en",
    b"agi_uniqueid: 1700000000.12",
    b"agi_callerid: 48221234567",
    b"agi_calleridname: Zo\xbf Ma\xb3ecka",  # Latin-2, not UTF-8
    b"agi_extension: 100",
    b"agi_arg_1: ",
]

#: The keys a barge-in prompt may be stopped with, quoted as the server sends them.
KEYS = b'"0123456789*#ABCD"'


class FakeAsterisk:
    """Asterisk's side of one FastAGI session, played by the test: it reads the server's commands and
    answers them, or does what a broken client does (garbage, silence, a closed socket)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, script: str, **environment: bytes) -> FakeAsterisk:
        """Connect and send the AGI environment for `script`; `environment` replaces or adds lines
        (`agi_uniqueid=b"1.2"`)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replaced = {*environment, "agi_network_script"}
        lines = [line for line in HEADER if line.partition(b":")[0].decode() not in replaced]
        lines += [f"{key}: ".encode() + value for key, value in environment.items()]
        writer.write(b"\n".join([*lines, b"agi_network_script: " + script.encode(), b"", b""]))
        await writer.drain()
        return cls(reader, writer)

    async def command(self, timeout: float = 2.0) -> bytes:
        """The server's next command line (b"" once it closed the connection)."""
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def answer(self, *lines: bytes) -> None:
        self.writer.write(b"".join(line + b"\n" for line in lines))
        await self.writer.drain()

    async def expect(self, command: bytes, *answer: bytes) -> None:
        """The server sends `command` (its line, without the line break); the test answers `answer`."""
        line = await self.command()
        assert line == command + b"\n", f"expected {command!r}, got {line!r}"
        if answer:
            await self.answer(*answer)

    async def answer_call(self) -> None:
        """ANSWER, then the welcome of `FLOW` (below) is played to its end."""
        await self.expect(b"ANSWER", b"200 result=0")
        await self.expect(b'STREAM FILE "hello" ""', b"200 result=0 endpos=8000")

    async def reach_menu(self) -> None:
        """Up to the menu's wait for a key: the server's WAIT FOR DIGIT is left unanswered."""
        await self.answer_call()
        await self.expect(b'STREAM FILE "vm-onefor" ' + KEYS, b"200 result=0 endpos=8000")
        line = await self.command()
        assert line.startswith(b"WAIT FOR DIGIT "), line

    async def closed(self, timeout: float = 3.0) -> bytes:
        """Everything the server still sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()


#: A menu, a key and goodbye: what `FakeAsterisk.answer_call` and `reach_menu` expect.
FLOW = """
flow: agitest
start: welcome
nodes:
  welcome: {play: hello, next: menu}
  menu: {menu: vm-onefor, options: {"1": hangup-a, "2": hangup-b}, timeout: 5}
  hangup-a: {hangup: null}
  hangup-b: {hangup: null}
"""

#: A flow that asks the clock: open on one day only (a holiday with hours), closed every other day.
CLOCK_FLOW = """
flow: clock
start: check
schedules:
  office:
    timezone: Europe/Warsaw
    hours: {mon-sun: closed}
    holidays:
      - {date: 2026-11-16, name: open day, hours: 08:00-12:00}
nodes:
  check:
    branch:
      - if: {schedule: office}
        goto: open
    else: closed
  open: {hangup: null}
  closed: {hangup: null}
"""
#: In CLOCK_FLOW's open hours (Monday 2026-11-16, 10:00 in Warsaw), and a time outside them.
OPEN_AT = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
CLOSED_AT = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)

_CONTACTS = uuid.UUID("5b8f8c1e-2f7a-4d8e-9a57-6f1f0f3c2a11")


@dataclass
class Contacts:
    """What the server recorded, as the store would keep it: each event checked as the store's writer
    checks it (`refused` holds why one would be refused), and folded into contact rows by the store's
    own projection, so a test reads each contact's outcome and whether it is closed."""

    events: list[tuple[str, EventName, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def record(self, call_id: str, event_type: EventName, data: dict[str, Any]) -> None:
        try:
            new_event(event_type, self.contact_id(call_id), at=datetime.now(UTC), call_id=call_id, data=data)
        except InvalidEvent as e:
            self.refused.append(str(e))
            return
        self.events.append((call_id, event_type, data))

    @staticmethod
    def contact_id(call_id: str) -> str:
        return uuid.uuid5(_CONTACTS, call_id).hex

    def calls(self) -> list[str]:
        """The call ids, each once, in the order their first event came."""
        return list(dict.fromkeys(call_id for call_id, _, _ in self.events))

    def types(self, call_id: str) -> list[str]:
        return [t for c, t, _ in self.events if c == call_id]

    def data(self, call_id: str, event_type: str) -> list[dict[str, Any]]:
        return [d for c, t, d in self.events if c == call_id and t == event_type]

    def row(self, call_id: str) -> Contact:
        row: dict[str, Any] | None = None
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for seq, (c, t, d) in enumerate(self.events, 1):
            if c == call_id:
                stored = StoredEvent(seq, uuid.uuid4().hex, t, at, self.contact_id(c), c, d)
                row = apply(row, stored)
        assert row is not None, f"no contact for call {call_id}"
        return to_contact(row)

    def ends(self) -> dict[str, tuple[str | None, str | None, str | None]]:
        """Each call's (outcome, ended by, the reason of its last `hung_up`); an open contact's
        outcome is None."""
        found = {}
        for call_id in self.calls():
            row = self.row(call_id)
            hung_up = self.data(call_id, "hung_up")
            reason = hung_up[-1].get("reason") if hung_up else None
            found[call_id] = (row.outcome if row.ended_at is not None else None, row.ended_by, reason)
        return found

    async def wait_closed(self, call_id: str, timeout: float = 10.0) -> Contact:
        """The contact of `call_id` once it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            if call_id in self.calls():
                row = self.row(call_id)
                if row.ended_at is not None:
                    return row
            if time.monotonic() > deadline:
                raise AssertionError(f"the contact of {call_id} did not end: {self.types(call_id)}")
            await asyncio.sleep(0.02)


Fault = Literal["garbage", "silence", "cut"]


class AgiLink:
    """A TCP link between the real Asterisk (which dials 127.0.0.1:4573) and a server on another port,
    relaying both ways until `break_at` is called: then at Asterisk's next answer the link sends
    garbage in its place (`garbage`), stops passing Asterisk's answers on (`silence`; the server's
    commands still reach Asterisk), or closes both sides (`cut`)."""

    def __init__(self, server_port: int, port: int = 4573) -> None:
        self.server_port = server_port
        self.port = port
        self.fault: Fault | None = None
        self.broken = asyncio.Event()
        self.to_asterisk: list[bytes] = []  # the server's commands, as relayed
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    def break_at(self, fault: Fault) -> None:
        self.fault = fault

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _link(self, asterisk_in: asyncio.StreamReader, asterisk_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.server_port)
        self._writers += [asterisk_out, server_out]
        tasks = {
            asyncio.create_task(self._relay_commands(server_in, asterisk_out)),
            asyncio.create_task(self._relay_answers(asterisk_in, server_out, asterisk_out)),
        }
        self._tasks |= tasks
        await asyncio.wait(tasks)

    async def _relay_commands(
        self, server_in: asyncio.StreamReader, asterisk_out: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while line := await server_in.readline():
                self.to_asterisk.append(line)
                asterisk_out.write(line)
                await asterisk_out.drain()
        asterisk_out.close()

    async def _relay_answers(
        self,
        asterisk_in: asyncio.StreamReader,
        server_out: asyncio.StreamWriter,
        asterisk_out: asyncio.StreamWriter,
    ) -> None:
        in_header = True
        with contextlib.suppress(ConnectionError, OSError):
            while line := await asterisk_in.readline():
                if in_header:
                    in_header = line.strip() != b""
                elif self.fault is not None and not self.broken.is_set():
                    self.broken.set()
                    if self.fault == "garbage":
                        line = b"\x16\x03\x01 this is no AGI answer\n"
                    elif self.fault == "cut":
                        server_out.close()
                        asterisk_out.close()
                        return
                if self.fault == "silence" and self.broken.is_set():
                    continue
                server_out.write(line)
                await server_out.drain()
        server_out.close()
