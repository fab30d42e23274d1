"""The Asterisk sandbox: rendering the configuration (plain files), and the real Asterisk 22 it runs:
ARI, AMI, the CLI, the shipped dialplan, and a stop that leaves nothing behind."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hotline.asterisk.sandbox import (
    DIALPLAN_DIR,
    Listener,
    PortInUseError,
    RenderError,
    Running,
    Sandbox,
    SandboxError,
    busy_ports,
    listeners,
    load_secrets,
    mounts_under,
    placeholders,
    processes_in,
    read_conf,
    render_config,
)
from hotline.cli.asterisk import asterisk as asterisk_command
from hotline.envfile import read_env_file

SHIPPED_PLACEHOLDERS = {"ARI_PASSWORD", "AMI_SECRET", "AGENT_PASSWORD", "CALLER_PASSWORD"}


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of `path` holding `text`."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


# --- rendering --------------------------------------------------------------------------------------


def test_render_fills_placeholders_in_code_and_leaves_comments_and_the_dialplan(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.conf").write_text(
        "[user]\n"
        "password = ${PW} ; set from ${NOT_NEEDED}\n"
        "literal = $${PW}\n"
        "escaped = x\\;${PW}\n"
        ";-- a block comment ${ALSO_NOT_NEEDED}\n"
        "still the comment ${NOR_THIS} --; after = ${PW}\n"
        "dialplan_like = ${CALLERID(num)}\n"
    )
    (src / "extensions.conf").write_text("exten => s,1,AGI(agi://127.0.0.1:4573/${FLOW})\n")
    (src / "README.md").write_text("not a config file ${PW}\n")

    written = render_config(src, dst, {"PW": "s3cret"})

    assert sorted(p.name for p in written) == ["a.conf", "extensions.conf"]
    assert sorted(p.name for p in dst.iterdir()) == ["a.conf", "extensions.conf"]
    assert (dst / "a.conf").read_text() == (
        "[user]\n"
        "password = s3cret ; set from ${NOT_NEEDED}\n"
        "literal = ${PW}\n"
        "escaped = x\\;s3cret\n"
        ";-- a block comment ${ALSO_NOT_NEEDED}\n"
        "still the comment ${NOR_THIS} --; after = s3cret\n"
        "dialplan_like = ${CALLERID(num)}\n"
    )
    assert (dst / "extensions.conf").read_text() == "exten => s,1,AGI(agi://127.0.0.1:4573/${FLOW})\n"
    assert stat.S_IMODE((dst / "a.conf").stat().st_mode) == 0o640


def test_render_names_every_missing_value_and_writes_nothing(tmp_path: Path) -> None:
    dst = tmp_path / "etc"
    with pytest.raises(RenderError) as caught:
        render_config(DIALPLAN_DIR, dst, {"ARI_PASSWORD": "a", "CALLER_PASSWORD": "c"})

    manager = DIALPLAN_DIR / "manager.conf"
    pjsip = DIALPLAN_DIR / "pjsip.conf"
    agent_lines = [
        str(n) for n, line in enumerate(pjsip.read_text().splitlines(), 1) if "= ${AGENT_PASSWORD}" in line
    ]
    assert len(agent_lines) == 4
    assert sorted(caught.value.problems) == sorted(
        [
            f"${{AMI_SECRET}} has no value ({manager}:{_line_of(manager, '${AMI_SECRET}')}); "
            "set the environment variable HOTLINE_AMI_SECRET",
            f"${{AGENT_PASSWORD}} has no value ({pjsip}:{', '.join(agent_lines)}); "
            "set the environment variable HOTLINE_AGENT_PASSWORD",
        ]
    )
    assert not dst.exists()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("ab;cd", "holds ';', which starts a comment in Asterisk's files"),
        ("ab\ncd", "holds a line break"),
        (" abcd", "starts or ends with a space, which Asterisk drops"),
    ],
)
def test_render_refuses_a_value_asterisk_cannot_read(tmp_path: Path, value: str, reason: str) -> None:
    (tmp_path / "ari.conf").write_text("[hotline]\npassword = ${ARI_PASSWORD}\n")
    with pytest.raises(RenderError) as caught:
        render_config(tmp_path, tmp_path / "out", {"ARI_PASSWORD": value})
    assert caught.value.problems == [
        f"the value of ${{ARI_PASSWORD}} (HOTLINE_ARI_PASSWORD) {reason}; choose another"
    ]


def test_render_needs_conf_files(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"no \*\.conf files here"):
        render_config(tmp_path, tmp_path / "out", {})


def test_the_shipped_configuration_holds_no_credentials() -> None:
    assert set(placeholders(DIALPLAN_DIR)) == SHIPPED_PLACEHOLDERS
    secrets_found: dict[str, str] = {}
    for name, key in (("ari.conf", "password"), ("manager.conf", "secret"), ("pjsip.conf", "password")):
        for section in read_conf(DIALPLAN_DIR / name):
            for option, value in section.options:
                if option == key:
                    secrets_found[f"{name} [{section.name}] {option}"] = value
    assert len(secrets_found) >= 7  # ARI, AMI, 4 agents, the caller
    assert {
        where for where, value in secrets_found.items() if not re.fullmatch(r"\$\{[A-Z_]+\}", value)
    } == set()


def test_the_shipped_configuration_listens_on_loopback() -> None:
    assert listeners(DIALPLAN_DIR) == [
        Listener("tcp", "127.0.0.1", 8088, "ARI (http.conf)"),
        Listener("tcp", "127.0.0.1", 5038, "AMI (manager.conf)"),
        Listener("udp", "127.0.0.1", 5060, "SIP (pjsip.conf)"),
    ]


def test_secrets_come_from_the_environment_then_the_file_then_are_generated(tmp_path: Path) -> None:
    path = tmp_path / "data" / "asterisk-secrets.env"
    names = ["ARI_PASSWORD", "AMI_SECRET"]

    values, generated = load_secrets(names, path, environ={"HOTLINE_ARI_PASSWORD": "from-env"})
    assert values["ARI_PASSWORD"] == "from-env"
    assert re.fullmatch(r"[0-9a-f]{32}", values["AMI_SECRET"])
    assert generated == ["AMI_SECRET"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == {"HOTLINE_AMI_SECRET": values["AMI_SECRET"]}

    again, generated_again = load_secrets(names, path, environ={})
    assert generated_again == ["ARI_PASSWORD"]
    assert again["AMI_SECRET"] == values["AMI_SECRET"]
    assert read_env_file(path) == {
        "HOTLINE_AMI_SECRET": values["AMI_SECRET"],
        "HOTLINE_ARI_PASSWORD": again["ARI_PASSWORD"],
    }
    assert load_secrets(names, path, environ={}) == (again, [])


def test_a_busy_port_names_its_process(tmp_path: Path) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        (tmp_path / "http.conf").write_text(
            f"[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = {port}\n"
        )
        found = busy_ports(tmp_path)
    assert len(found) == 1
    assert found[0].listener == Listener("tcp", "127.0.0.1", port, "ARI (http.conf)")
    assert found[0].process is not None and found[0].process.endswith(f"(pid {os.getpid()})")
    assert busy_ports(tmp_path) == []


def test_a_second_holder_of_the_sandbox_waits_then_gives_up(tmp_path: Path) -> None:
    waited: list[str] = []
    first, second = Sandbox(tmp_path / "sid"), Sandbox(tmp_path / "sid", progress=waited.append)
    with first.lock():
        started = time.monotonic()
        with pytest.raises(
            SandboxError,
            match=r"another program is using the Asterisk in .*; gave up after 0.3 s: let it finish",
        ):
            second.lock(timeout=0.3).__enter__()
        assert time.monotonic() - started >= 0.3
    assert waited == [f"waiting for another program using the Asterisk in {tmp_path / 'sid'}"]
    with second.lock(timeout=0.3):
        pass


# --- the real Asterisk --------------------------------------------------------------------------------


def _ari_get(asterisk: Running, path: str, password: str) -> tuple[int, Any]:
    host, port = asterisk.ari_url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    token = base64.b64encode(f"{asterisk.ari_user}:{password}".encode()).decode()
    try:
        connection.request("GET", "/ari" + path, headers={"Authorization": f"Basic {token}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body) if body.startswith(b"{") else body


def test_ari_answers_with_the_rendered_password(asterisk: Running) -> None:
    assert asterisk.ari_user == "hotline"
    assert asterisk.ari_password == asterisk.values["ARI_PASSWORD"]
    status, ping = _ari_get(asterisk, "/asterisk/ping", asterisk.ari_password)
    assert status == 200
    assert ping["ping"] == "pong"
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", ping["asterisk_id"])
    status, info = _ari_get(asterisk, "/asterisk/info", asterisk.ari_password)
    assert status == 200
    assert info["system"]["version"].startswith("22.")
    assert info["system"]["entity_id"] == ping["asterisk_id"]


def test_ari_refuses_a_wrong_password(asterisk: Running) -> None:
    status, _ = _ari_get(asterisk, "/asterisk/ping", asterisk.ari_password + "x")
    assert status == 401


def _ami_login(asterisk: Running, secret: str) -> tuple[str, str]:
    """The banner, and the reply to `Action: Login`."""
    with socket.create_connection((asterisk.ami_host, asterisk.ami_port), timeout=5) as ami:
        reader = ami.makefile("rb")
        banner = reader.readline().decode().strip()
        ami.sendall(
            f"Action: Login\r\nActionID: t1\r\nUsername: {asterisk.ami_user}\r\nSecret: {secret}\r\n\r\n".encode()
        )
        reply = []
        while (line := reader.readline().decode()) not in ("\r\n", ""):
            reply.append(line.strip())
        return banner, "\n".join(reply)


def test_ami_login_with_the_rendered_secret(asterisk: Running) -> None:
    assert (asterisk.ami_host, asterisk.ami_port, asterisk.ami_user) == ("127.0.0.1", 5038, "hotline")
    banner, reply = _ami_login(asterisk, asterisk.values["AMI_SECRET"])
    assert banner.startswith("Asterisk Call Manager/")
    assert "Response: Success" in reply.splitlines()
    assert "ActionID: t1" in reply.splitlines()


def test_ami_refuses_a_wrong_secret(asterisk: Running) -> None:
    _, reply = _ami_login(asterisk, "wrong")
    assert "Response: Error" in reply.splitlines()
    assert "Message: Authentication failed" in reply.splitlines()


def test_the_cli_reports_asterisk_22(asterisk: Running) -> None:
    assert asterisk.cli("core show version").startswith("Asterisk 22.")
    assert asterisk.version.startswith("Asterisk 22.")


def test_pjsip_has_the_agents_and_test_callers(asterisk: Running) -> None:
    shown = asterisk.cli("pjsip show endpoints")
    endpoints = set(re.findall(r"^ Endpoint:\s+([\w-]+)", shown, flags=re.M))
    assert endpoints == {"agent1", "agent2", "agent3", "agent4", "caller", "anon"}
    assert "Match: 127.0.0.2/32" in asterisk.cli("pjsip show endpoint anon")
    assert (asterisk.sip_host, asterisk.sip_port) == ("127.0.0.1", 5060)


@pytest.mark.parametrize(
    ("context", "extension", "application"),
    [
        ("hotline", "100", "Stasis(hotline)"),
        ("hotline", "s", "Stasis(hotline)"),
        ("hotline-agi", "s", "AGI(agi://127.0.0.1:4573/${FLOW})"),
        ("hotline-transfer", "operator", "Dial(${OPERATOR},"),
        ("agents", "*21", "Stasis(hotline,feature,login)"),
        ("agents", "*22", "Stasis(hotline,feature,logout)"),
        ("agents", "*23", "Stasis(hotline,feature,pause)"),
        ("hotline-test", "answer", "Wait(3600)"),
    ],
)
def test_the_dialplan_is_loaded(asterisk: Running, context: str, extension: str, application: str) -> None:
    shown = asterisk.cli(f"dialplan show {extension}@{context}")
    assert f"[ Context '{context}' created by 'pbx_config' ]" in shown
    assert f"'{extension}' =>" in shown
    assert application in shown


def _channels(asterisk: Running) -> list[list[str]]:
    """`core show channels concise`: channel, context, extension, priority, state, application, data..."""
    return [
        line.split("!") for line in asterisk.cli("core show channels concise").splitlines() if "!" in line
    ]


def test_operator_dials_the_operator_variable(asterisk: Running) -> None:
    asterisk.cli("dialplan set global OPERATOR Local/answer@hotline-test")
    try:
        asterisk.cli("channel originate Local/operator@hotline-transfer application Wait 30")
        deadline = time.monotonic() + 5
        while not any(c[1:3] == ["hotline-test", "answer"] and c[4] == "Up" for c in _channels(asterisk)):
            assert time.monotonic() < deadline, _channels(asterisk)
            time.sleep(0.05)
        dialing = [c for c in _channels(asterisk) if c[5] == "Dial"]
        assert [c[1:3] + c[6:7] for c in dialing] == [
            ["hotline-transfer", "operator", "Local/answer@hotline-test,30"]
        ]
    finally:
        for channel in _channels(asterisk):
            if channel[0].startswith(("Local/operator@hotline-transfer-", "Local/answer@hotline-test-")):
                asterisk.cli(f"channel request hangup {channel[0]}")
        asterisk.cli("dialplan set global OPERATOR PJSIP/agent1")
    deadline = time.monotonic() + 5
    while _channels(asterisk):
        assert time.monotonic() < deadline, _channels(asterisk)
        time.sleep(0.05)


@pytest.mark.parametrize(
    "module",
    [
        "res_ari.so",
        "app_stasis.so",
        "res_websocket_client.so",
        "app_queue.so",
        "app_confbridge.so",
        "res_parking.so",
        "app_amd.so",
        "res_musiconhold.so",
        "res_pjsip.so",
    ],
)
def test_the_modules_the_service_needs_run(asterisk: Running, module: str) -> None:
    shown = asterisk.cli(f"module show like {module}")
    assert re.search(rf"^{re.escape(module)}\s.*\sRunning\s", shown, flags=re.M), shown


def test_music_on_hold_plays_core_sounds(asterisk: Running) -> None:
    shown = asterisk.cli("moh show classes")
    assert "Class: default" in shown and "Mode: playlist" in shown
    for line in (asterisk.config_dir / "musiconhold.conf").read_text().splitlines():
        if line.startswith("entry = "):
            sound = line.removeprefix("entry = ").lstrip("/")
            assert list(asterisk.root.glob(sound.replace("sounds/en/", "sounds/en_US_f_Allison/") + ".*"))


def test_status_and_busy_ports_while_running(asterisk: Running) -> None:
    sandbox = Sandbox(asterisk.root)
    state = sandbox.status()
    assert state.running and state.installed
    assert state.pid in state.processes
    assert state.mounts == (str(asterisk.root / "proc"),)
    assert state.rss_kib is not None and state.rss_kib > 10_000
    owners = {(b.listener.port, b.listener.protocol): b.process for b in busy_ports(asterisk.config_dir)}
    assert owners == {
        (8088, "tcp"): f"asterisk (pid {state.pid})",
        (5038, "tcp"): f"asterisk (pid {state.pid})",
        (5060, "udp"): f"asterisk (pid {state.pid})",
    }


def test_the_commands(asterisk: Running) -> None:
    runner = CliRunner()
    status = runner.invoke(asterisk_command, ["status", "--root", str(asterisk.root)])
    assert status.exit_code == 0, status.output
    assert status.output.startswith("running, pid ")
    shown = runner.invoke(asterisk_command, ["cli", "--root", str(asterisk.root), "core", "show", "version"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Asterisk 22.")


def test_a_start_with_a_missing_value_leaves_the_running_asterisk_alone(asterisk: Running) -> None:
    sandbox = Sandbox(asterisk.root)
    before = sandbox.status().pid
    with pytest.raises(RenderError, match="HOTLINE_AMI_SECRET"):
        sandbox.start(DIALPLAN_DIR, {k: v for k, v in asterisk.values.items() if k != "AMI_SECRET"})
    assert sandbox.status().pid == before
    assert _ari_get(asterisk, "/asterisk/ping", asterisk.ari_password)[0] == 200


def test_stop_leaves_nothing_behind_and_start_comes_back(asterisk: Running) -> None:
    sandbox = Sandbox(asterisk.root)
    try:
        sandbox.stop()
        assert processes_in(asterisk.root) == []
        assert mounts_under(asterisk.root) == []
        state = sandbox.status()
        assert (state.running, state.pid, state.mounts, state.processes) == (False, None, (), ())
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", 8088), timeout=2).close()
        with pytest.raises(
            SandboxError, match=r"Asterisk is not running in .*; start it: hotline asterisk start"
        ):
            sandbox.cli("core show version")

        with socket.socket() as squatter:  # something else on ARI's port
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", 8088))
            squatter.listen()
            with pytest.raises(PortInUseError) as caught:
                sandbox.start(DIALPLAN_DIR, asterisk.values)
        assert [b.listener.port for b in caught.value.busy] == [8088]
        assert str(caught.value).startswith("Asterisk cannot listen: port 8088/tcp (ARI (http.conf)) by ")
        assert f"(pid {os.getpid()}) is already in use" in str(caught.value)
        assert sandbox.status().running is False
    finally:
        started = time.monotonic()
        again = sandbox.start(DIALPLAN_DIR, asterisk.values)
        took = time.monotonic() - started
    assert again.seconds < 5.0, f"start took {again.seconds:.1f} s (about 0.4 s when the machine is idle)"
    assert took < 6.0
    assert _ari_get(again, "/asterisk/ping", asterisk.ari_password)[0] == 200
