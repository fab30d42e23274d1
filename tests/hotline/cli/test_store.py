"""`hotline db upgrade`, `hotline contacts`, `hotline export` and `hotline api` on a real SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hotline.cli import main
from hotline.store.db import open_store
from hotline.store.events import ContactEvent, new_event
from support.pg import free_port

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
TOKEN = "cli-test-token-0123456789abcdef"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "200", **(env or {})})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def call(
    contact_id: str, start: datetime, caller: str, path: list[str], agent: str | None
) -> list[ContactEvent]:
    events = [new_event("call_started", contact_id, at=start, data={"caller": caller, "dialed": "100"})]
    events += [
        new_event("node_entered", contact_id, at=start + timedelta(seconds=n + 1), data={"node": node})
        for n, node in enumerate(path)
    ]
    queued = start + timedelta(seconds=10)
    events.append(new_event("queued", contact_id, at=queued, data={"queue": "sales"}))
    if agent is None:
        events.append(
            new_event("abandoned", contact_id, at=queued + timedelta(seconds=75), data={"where": "queue"})
        )
    else:
        answered = queued + timedelta(seconds=42)
        events.append(new_event("answered", contact_id, at=answered, data={"agent": agent, "queue": "sales"}))
        events.append(
            new_event("hung_up", contact_id, at=answered + timedelta(seconds=3725), data={"by": "agent"})
        )
    return events


def seed(db: Path) -> None:
    async def write() -> None:
        store = await open_store(f"sqlite+aiosqlite:///{db}")
        try:
            await store.append(call("c-1", T0, "+48221234567", ["main", "sales"], "anna"))
            await store.append(
                call(
                    "c-2",
                    T0 + timedelta(hours=1),
                    "+48600700800",
                    ["main", "lang", "menu", "sales", "more", "end"],
                    None,
                )
            )
            await store.append(call("c-3", T0 + timedelta(days=1), "+48 22 123 45 67", ["main"], "bob"))
        finally:
            await store.close()

    asyncio.run(write())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "hotline.db"
    assert run("db", "upgrade", "--db", str(path))[0] == 0
    seed(path)
    return path


def local(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_db_upgrade_creates_the_database_and_can_run_again(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hotline.db"
    code, out, _ = run("db", "upgrade", "--db", str(path))
    assert (code, out) == (0, f"sqlite+aiosqlite:///{path}: the schema is up to date\n")
    assert path.is_file()
    assert run("db", "upgrade", "--db", f"sqlite:///{path}")[:2] == (
        0,
        f"sqlite+aiosqlite:///{path}: the schema is up to date\n",
    )


def test_db_upgrade_reads_the_store_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("data_dir: state\n", encoding="utf-8")
    code, out, _ = run("db", "upgrade", "--config", str(config))
    assert (code, out) == (0, f"sqlite+aiosqlite:///{tmp_path}/state/hotline.db: the schema is up to date\n")
    assert (tmp_path / "state" / "hotline.db").is_file()


def test_a_bad_config_is_reported_with_its_place(tmp_path: Path) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("store:\n  uri: x\n", encoding="utf-8")
    code, _, err = run("contacts", "--config", str(config))
    assert code == 1
    assert err == f"{config}:2:3: store.uri: unknown key 'uri'; did you mean 'url'?\n"


def test_contacts_table(db: Path) -> None:
    code, out, _ = run("contacts", "--db", str(db))
    assert code == 0
    lines = out.splitlines()
    assert [cell.strip() for cell in re.split("[│┃]", lines[0])] == [
        "started",
        "caller",
        "path",
        "queue",
        "agent",
        "wait",
        "talk",
        "outcome",
    ]
    rows = [re.split("[│┃]", line) for line in lines[2:-1]]
    assert [[cell.strip() for cell in row] for row in rows] == [
        [
            local(T0 + timedelta(days=1)),
            "+48221234567",
            "main",
            "sales",
            "bob",
            "0:42",
            "1:02:05",
            "answered",
        ],
        [
            local(T0 + timedelta(hours=1)),
            "+48600700800",
            "main > lang > … > more > end",
            "sales",
            "-",
            "1:15",
            "-",
            "abandoned_queue",
        ],
        [local(T0), "+48221234567", "main > sales", "sales", "anna", "0:42", "1:02:05", "answered"],
    ]
    assert lines[-1] == "3 contacts"


def test_contacts_filters_and_limit(db: Path) -> None:
    code, out, _ = run("contacts", "--db", str(db), "--number", "+48 22 123-45-67", "--limit", "1")
    assert code == 0
    assert local(T0 + timedelta(days=1)) in out and local(T0) not in out
    assert out.splitlines()[-1] == "1 contact; more with --limit 2"
    code, out, _ = run("contacts", "--db", str(db), "--outcome", "abandoned_queue")
    assert code == 0
    assert "+48600700800" in out and "+48221234567" not in out
    assert run("contacts", "--db", str(db), "--agent", "nobody")[:2] == (0, "no contacts match\n")


def test_contacts_needs_an_existing_database(tmp_path: Path) -> None:
    code, _, err = run("contacts", "--db", str(tmp_path / "nothing.db"))
    assert code == 1
    assert "there is no database at" in err and "hotline db upgrade" in err
    assert not (tmp_path / "nothing.db").exists()


def test_contacts_refuses_a_bad_filter(db: Path) -> None:
    code, _, err = run("contacts", "--db", str(db), "--outcome", "won")
    assert code == 1
    assert "outcome 'won' is not one of:" in err


def test_export_csv(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "contacts.csv"
    code, out, err = run(
        "export", "--db", str(db), "--since", "2026-11-01", "--format", "csv", "-o", str(target)
    )
    assert (code, out, err) == (0, "", f"exported 3 contacts to {target}\n")
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["id"] for row in rows] == ["c-3", "c-2", "c-1"]
    assert rows[2] == {
        "id": "c-1",
        "parent_id": "",
        "call_id": "",
        "started_at": "2026-11-02T08:00:00Z",
        "queued_at": "2026-11-02T08:00:10Z",
        "answered_at": "2026-11-02T08:00:52Z",
        "ended_at": "2026-11-02T09:02:57Z",
        "caller": "+48221234567",
        "dialed": "100",
        "customer_id": "",
        "language": "",
        "ivr_path": "main > sales",
        "queue": "sales",
        "agent": "anna",
        "wait_seconds": "42.0",
        "talk_seconds": "3725.0",
        "outcome": "answered",
    }
    assert rows[1]["ivr_path"] == "main > lang > menu > sales > more > end"
    assert rows[1]["outcome"] == "abandoned_queue"


def test_export_a_time_range_to_stdout(db: Path) -> None:
    code, out, _ = run(
        "export",
        "--db",
        str(db),
        "--since",
        "2026-11-02T08:30:00Z",
        "--until",
        "2026-11-03T08:00:00+00:00",
        "--format",
        "jsonl",
    )
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["c-2"]


def test_export_jsonl_with_events(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "contacts.jsonl"
    code, _, _ = run(
        "export", "--db", str(db), "--since", "2026-11-01", "--format", "jsonl", "--events", "-o", str(target)
    )
    assert code == 0
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["c-3", "c-2", "c-1"]
    first = records[2]
    assert (first["wait_seconds"], first["talk_seconds"], first["outcome"]) == (42.0, 3725.0, "answered")
    assert [e["type"] for e in first["events"]] == [
        "call_started",
        "node_entered",
        "node_entered",
        "queued",
        "answered",
        "hung_up",
    ]
    assert first["events"][0]["at"] == "2026-11-02T08:00:00Z"
    assert first["events"][0]["data"] == {"caller": "+48221234567", "dialed": "100"}


def test_export_since_a_local_date(db: Path) -> None:
    local_day = (T0 + timedelta(days=1)).astimezone().date().isoformat()
    code, out, _ = run("export", "--db", str(db), "--since", local_day, "--format", "jsonl")
    assert code == 0
    midnight = datetime.fromisoformat(local_day).astimezone()
    expected = [
        c
        for c, start in (("c-3", T0 + timedelta(days=1)), ("c-2", T0 + timedelta(hours=1)))
        if start >= midnight
    ]
    assert [json.loads(line)["id"] for line in out.splitlines()] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last week", "--format", "csv"], "'last week' is not a date or a time"),
        (["--since", "2026-11-02", "--until", "2026-11-01", "--format", "csv"], "is after --until"),
        (["--since", "2026-11-01", "--format", "csv", "--events"], "events fit only in --format jsonl"),
        (["--since", "2026-11-01", "--format", "xml"], "'xml' is not one of 'csv', 'jsonl'"),
    ],
)
def test_export_refuses_bad_options(db: Path, args: list[str], message: str) -> None:
    code, _, err = run("export", "--db", str(db), *args)
    assert code == 2
    assert message in err


def test_api_serves_the_configured_address(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "hotline.yaml"
    config.write_text(
        "data_dir: var\n"
        "api:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  tokens:\n"
        "    - ${CRM_TOKEN}\n"
        "log:\n"
        "  format: json\n",
        encoding="utf-8",
    )
    command = Path(sys.executable).parent / "hotline"
    process = subprocess.Popen(
        [str(command), "api", "--config", str(config)],
        env={**os.environ, "CRM_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_for(f"{base}/api/health", process)
        assert health == {"status": "ok", "store": "sqlite"}
        request = urllib.request.Request(f"{base}/api/contacts", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response) == {"items": [], "next_cursor": None}
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/contacts", timeout=5)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {"event": "api.listening", "listen": f"127.0.0.1:{port}"}.items() <= next(
        line for line in logged if line["event"] == "api.listening"
    ).items()
    assert (tmp_path / "var" / "hotline.db").is_file()


def wait_for(url: str, process: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"hotline api exited with {process.returncode}: {process.communicate()[1]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
