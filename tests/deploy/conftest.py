"""The docker-compose deployment, deployed for real: an engine of the tests' own, the stack built from
docker/ on Debian bases made with debootstrap, its ports published on loopback only."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from support.deployment import BUILD_TIMEOUT, RTP_PORTS, Stack, free_ports, say
from support.docker import DockerEngine, base_tarball


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    """Debian's dockerd, started by the test and stopped by PID at the end, with nothing left behind."""
    engine = DockerEngine(progress=say)
    engine.start()
    try:
        yield engine
    finally:
        with_dangling = engine.docker("image", "prune", "--force", check=False)
        if with_dangling.returncode != 0:
            say(f"could not prune old images: {with_dangling.stderr.strip()}")
        left = engine.stop()
        assert left == [], f"dockerd left these behind after its clean-up: {left}"


@pytest.fixture(scope="module")
def stack(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """docker/compose.yaml built, with an env file of fresh secrets, loopback ports and the test's own flows
    folder (bind-mounted); the test brings it up. Taken down with its volumes at the end."""
    began = time.monotonic()
    timings: dict[str, float] = {}
    for suite in ("bookworm", "sid"):
        engine.import_base(base_tarball(suite, progress=say), f"localhost/debian:{suite}")
    timings["bases"] = time.monotonic() - began

    folder = tmp_path_factory.mktemp("deploy")
    flows = folder / "flows"
    flows.mkdir()
    flows.chmod(0o755)  # the service runs as an unprivileged user
    sip_port, rtp_start, api_port = free_ports()
    values = {
        "HOTLINE_DB_PASSWORD": secrets.token_hex(16),
        "HOTLINE_ARI_PASSWORD": secrets.token_hex(16),
        "HOTLINE_AMI_SECRET": secrets.token_hex(16),
        "HOTLINE_AGENT_PASSWORD": secrets.token_hex(8),
        "HOTLINE_CALLER_PASSWORD": secrets.token_hex(8),
        "HOTLINE_API_TOKENS": secrets.token_hex(24),
        "HOTLINE_SIP_ADDRESS": "127.0.0.1",
        "HOTLINE_BIND": "127.0.0.1",
        "HOTLINE_SIP_PORT": str(sip_port),
        "HOTLINE_RTP_START": str(rtp_start),
        "HOTLINE_RTP_END": str(rtp_start + RTP_PORTS - 1),
        "HOTLINE_API_PORT": str(api_port),
        "HOTLINE_FLOWS": str(flows),
        "HOTLINE_BOOKWORM_BASE": "localhost/debian:bookworm",
        "HOTLINE_SID_BASE": "localhost/debian:sid",
    }
    line = Stack(
        engine=engine,
        env_file=folder / "deploy.env",
        flows=flows,
        values=values,
        sip_port=sip_port,
        api_url=f"http://127.0.0.1:{api_port}",
        token=values["HOTLINE_API_TOKENS"],
        timings=timings,
    )
    line.write_env()
    try:
        step = time.monotonic()
        line.compose("down", "--volumes", "--remove-orphans", check=False)  # a killed run's containers
        line.compose("build", "--force-rm", timeout=BUILD_TIMEOUT)
        timings["build"] = time.monotonic() - step
        yield line
    finally:
        step = time.monotonic()
        line.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        timings["down"] = time.monotonic() - step
        timings["all"] = time.monotonic() - began
        say("timings: " + ", ".join(f"{key} {value:.1f} s" for key, value in timings.items()))
