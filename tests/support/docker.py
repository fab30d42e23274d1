"""A Docker engine of the tests' own, to deploy docker/compose.yaml for real on a machine without a registry.

    base_tarball("bookworm")        a Debian root file system (debootstrap --variant=minbase), cached
    engine = DockerEngine()          Debian's dockerd with its own data root, exec root and socket
    engine.start()                   ... and the iptables rules, bridges and ip_forward it changes
    engine.import_base(tar, "localhost/debian:bookworm")
    engine.compose(project, files, env_file, "up", "-d")
    engine.stop()                    stop it by PID, then remove the rules and bridges it left

Base tarballs are cached in `~/.cache/hotline/docker-bases/` (`debian-<suite>.tar`), so only the first
run debootstraps. The engine's data root is cached too (`~/.cache/hotline/docker-engine/data`): the
imported bases and the image layers of earlier builds stay, and a build whose inputs did not change is
all cache hits. The exec root and the socket live in a temporary folder that goes at `stop()`.

It needs root (debootstrap, dockerd, iptables). Only one engine uses the cached data root at a time: a
second waits for the first (a lock file beside it).

Exceptions::

    DockerError       the engine, a build or a compose command failed; the message says what and how
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

#: Debian's docker.io and docker-compose; full paths, so no other `docker` on PATH is taken instead.
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
COMPOSE = "/usr/bin/docker-compose"
#: The tables dockerd writes rules into.
TABLES = ("nat", "filter")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
#: Written into every base: the mirror may serve a frozen sid whose Release file has expired.
NO_CHECK_VALID_UNTIL = 'Acquire::Check-Valid-Until "false";\n'

Progress = Callable[[str], None]


class DockerError(RuntimeError):
    """The engine, a build or a compose command failed; the message names the thing and the fix."""


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """hotline's cache folder: `$XDG_CACHE_HOME/hotline`, else `~/.cache/hotline`."""
    env = os.environ if environ is None else environ
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return (cache / "hotline").absolute()


def require_tools() -> None:
    """DockerError naming what is missing: root, Debian's docker.io and docker-compose, debootstrap."""
    if os.geteuid() != 0:
        raise DockerError("the deploy test needs root (debootstrap, dockerd, iptables); run it as root")
    missing = [
        package
        for path, package in (
            (DOCKERD, "docker.io"),
            (DOCKER, "docker.io"),
            (COMPOSE, "docker-compose"),
            ("/usr/sbin/debootstrap", "debootstrap"),
        )
        if not Path(path).exists()
    ]
    if missing:
        names = " ".join(dict.fromkeys(missing))
        raise DockerError(
            f"missing {names}; install it: apt-get install {names} (scripts/bootstrap --test does)"
        )
    if shutil.which("iptables") is None:
        raise DockerError("iptables is missing; dockerd needs it for its networks: apt-get install iptables")


@contextlib.contextmanager
def _locked(path: Path, what: str, progress: Progress, timeout: float = 900.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    progress(f"waiting for another program using {what} (it holds {path})")
                    told = True
                if time.monotonic() > deadline:
                    raise DockerError(
                        f"another program has held {path} for {timeout:.0f} s; let it finish, then try again"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- base images ----------------------------------------------------------------------------------


def base_tarball(suite: str, *, cache: Path | None = None, progress: Progress | None = None) -> Path:
    """`debian-<suite>.tar` in the cache: a `debootstrap --variant=minbase` root file system for
    `docker import`, made the first time (~25-50 s) and reused after."""
    say = progress or (lambda line: None)
    folder = (cache or cache_dir()) / "docker-bases"
    tarball = folder / f"debian-{suite}.tar"
    with _locked(folder / f".debian-{suite}.lock", f"the {suite} base", say):
        if tarball.is_file():
            return tarball
        started = time.monotonic()
        say(f"making the Debian {suite} base: debootstrap --variant=minbase {suite}")
        root = Path(tempfile.mkdtemp(prefix=f"rootfs-{suite}-", dir=folder))
        log = folder / f"debian-{suite}.log"
        try:
            with open(log, "w") as out:
                done = subprocess.run(
                    ["/usr/sbin/debootstrap", "--variant=minbase", suite, str(root)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if done.returncode != 0:
                raise DockerError(
                    f"debootstrap {suite} failed (exit {done.returncode}); it needs the network and a "
                    f"Debian mirror; the log is {log}, ending:\n{_tail(log)}"
                )
            (root / "etc/apt/apt.conf.d/99no-check-valid-until").write_text(NO_CHECK_VALID_UNTIL)
            partial = tarball.with_suffix(".tar.partial")
            packed = subprocess.run(
                ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                capture_output=True,
                text=True,
                check=False,
            )
            if packed.returncode != 0:
                raise DockerError(f"could not pack {root} into {partial}: {packed.stderr.strip()}")
            partial.replace(tarball)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        say(f"made {tarball} in {time.monotonic() - started:.0f} s")
        return tarball


# --- what dockerd changes on the host ---------------------------------------------------------------


def _iptables_rules(table: str) -> tuple[set[str], set[str], dict[str, str]]:
    """(chains, `-A ...` rules, built-in chain policies) of one table, as iptables-save prints them."""
    shown = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=False).stdout
    chains: set[str] = set()
    rules: set[str] = set()
    policies: dict[str, str] = {}
    for line in shown.splitlines():
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            chains.add(name)
            if policy != "-":
                policies[name] = policy
        elif line.startswith("-A "):
            rules.add(line)
    return chains, rules, policies


def _links() -> set[str]:
    shown = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in shown.splitlines() if ":" in line}


def _dockers(rule: str) -> bool:
    """Whether an iptables rule or chain is dockerd's: its chains, its bridges (docker0, br-...)."""
    return "DOCKER" in rule or "docker0" in rule or " br-" in rule


def _dockers_link(link: str) -> bool:
    """Whether a network link is one dockerd makes: its bridges and the containers' veth ends."""
    return link == "docker0" or link.startswith(("br-", "veth"))


class HostNetwork:
    """The host's iptables rules, links and ip_forward before dockerd ran, and the undoing of its changes.

    Only what is dockerd's (its chains, rules naming them or its bridges, its bridges and veths) and
    new since the snapshot is removed: another program's rules and links stay."""

    def __init__(self) -> None:
        self.tables = {table: _iptables_rules(table) for table in TABLES}
        self.links = _links()
        self.ip_forward = IP_FORWARD.read_text().strip() if IP_FORWARD.exists() else None

    def save(self, path: Path) -> None:
        """Keep the snapshot on disk: a run that was killed is cleaned up by the next one."""
        data = {
            "tables": {t: [sorted(c), sorted(r), p] for t, (c, r, p) in self.tables.items()},
            "links": sorted(self.links),
            "ip_forward": self.ip_forward,
        }
        path.write_text(json.dumps(data))

    @classmethod
    def load(cls, path: Path) -> HostNetwork:
        data = json.loads(path.read_text())
        network = cls.__new__(cls)
        network.tables = {t: (set(c), set(r), dict(p)) for t, (c, r, p) in data["tables"].items()}
        network.links = set(data["links"])
        network.ip_forward = data["ip_forward"]
        return network

    def restore(self) -> list[str]:
        """Remove the rules, chains and links added since, restore policies and ip_forward; what was undone."""
        undone: list[str] = []
        for table, (chains, rules, policies) in self.tables.items():
            now_chains, now_rules, now_policies = _iptables_rules(table)
            for rule in sorted(r for r in now_rules - rules if _dockers(r)):
                args = shlex.split(rule)[1:]  # drop -A: the rest is "CHAIN match... -j TARGET"
                subprocess.run(["iptables", "-t", table, "-D", *args], capture_output=True, check=False)
                undone.append(f"iptables -t {table} {rule}")
            added = sorted(c for c in now_chains - chains if _dockers(c))
            for chain in added:
                subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True, check=False)
            for chain in added:
                subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True, check=False)
                undone.append(f"iptables -t {table} chain {chain}")
            for chain, policy in policies.items():
                if now_policies.get(chain) != policy:
                    subprocess.run(
                        ["iptables", "-t", table, "-P", chain, policy], capture_output=True, check=False
                    )
                    undone.append(f"iptables -t {table} -P {chain} {policy}")
        for link in sorted(link for link in _links() - self.links if _dockers_link(link)):
            subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
            undone.append(f"link {link}")
        if self.ip_forward is not None and IP_FORWARD.read_text().strip() != self.ip_forward:
            IP_FORWARD.write_text(self.ip_forward + "\n")
            undone.append(f"net.ipv4.ip_forward={self.ip_forward}")
        return undone

    def leftovers(self) -> list[str]:
        """What dockerd added that is still there (empty after a good `restore`)."""
        left: list[str] = []
        for table, (chains, rules, _) in self.tables.items():
            now_chains, now_rules, _ = _iptables_rules(table)
            left += [f"iptables -t {table} chain {c}" for c in sorted(now_chains - chains) if _dockers(c)]
            left += [f"iptables -t {table} {r}" for r in sorted(now_rules - rules) if _dockers(r)]
        left += [f"link {link}" for link in sorted(_links() - self.links) if _dockers_link(link)]
        return left


# --- the engine ---------------------------------------------------------------------------------------


def _mounts_under(*roots: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            point = fields[1].replace("\\040", " ")
            if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
                found.append(point)
    return sorted(found, reverse=True)


def _alive(pid: int) -> bool:
    """Running and not a zombie (PID 1 may reap late here)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((ln for ln in status.splitlines() if ln.startswith("State:")), "State: R")
    return state.split()[1:2] != ["Z"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _terminate(pid: int, timeout: float, progress: Progress) -> None:
    """SIGTERM, then SIGKILL after `timeout`; back when the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        progress(f"dockerd (pid {pid}) did not stop within {timeout:.0f} s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)


def _unmount(point: str) -> None:
    done = subprocess.run(["umount", point], capture_output=True, check=False)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def _ping(sock: Path) -> bool:
    """Whether the engine's API answers `GET /_ping` on its socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = s.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status.startswith(b"HTTP/1.") and b" 200 " in status + b" "


class DockerEngine:
    """Debian's dockerd run by us: data root `state/data` (kept), exec root and socket in a temporary folder.

    `progress` receives one line per step."""

    def __init__(self, state: Path | None = None, *, progress: Progress | None = None) -> None:
        self.state = (state or cache_dir() / "docker-engine").absolute()
        self.data_root = self.state / "data"
        self.log = self.state / "dockerd.log"
        self.progress: Progress = progress or (lambda line: None)
        self.run_dir: Path | None = None
        self.pid: int | None = None
        self.network: HostNetwork | None = None
        self._lock: contextlib.ExitStack | None = None
        self._log_file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        """dockerd's PID while it runs (the one in the exec root goes with a killed run's temporary folder)."""
        return self.state / "dockerd.pid"

    @property
    def snapshot(self) -> Path:
        """The host's network before dockerd started, while it runs."""
        return self.state / "host-network.json"

    def _clean_up_killed_run(self) -> None:
        """Stop the dockerd of an earlier run that was killed before its clean-up, and undo its network."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid is not None and _alive(pid) and str(self.data_root) in _cmdline(pid):
            self.progress(f"stopping dockerd (pid {pid}) left running by an earlier run")
            _terminate(pid, 30.0, self.progress)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        for point in _mounts_under(self.data_root):
            _unmount(point)
        if self.snapshot.exists():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                undone = HostNetwork.load(self.snapshot).restore()
                if undone:
                    self.progress(
                        f"removed what an earlier run's dockerd left: {len(undone)} rules, chains, links"
                    )
            self.snapshot.unlink()

    @property
    def socket(self) -> Path:
        assert self.run_dir is not None, "the engine is not started"
        return self.run_dir / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker and docker-compose: this engine, and nothing of the caller's shell
        (a HOTLINE_* variable there must not fill the compose file)."""
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
            "HOME": str(self.state),
            "LANG": "C.UTF-8",
        }
        env.update(
            {k: v for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")}
        )
        return env

    def start(self, timeout: float = 30.0) -> None:
        """Start dockerd; back when its API answers. Undoes what it did if it cannot start."""
        require_tools()
        lock = contextlib.ExitStack()
        lock.enter_context(
            _locked(self.state.with_name(self.state.name + ".lock"), "the test engine", self.progress)
        )
        self._lock = lock
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._clean_up_killed_run()
        self.network = HostNetwork()
        self.network.save(self.snapshot)
        self.run_dir = Path(tempfile.mkdtemp(prefix="hotline-dockerd-", dir="/tmp"))
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - open for dockerd's lifetime
        argv = [
            DOCKERD,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.run_dir / "dockerd.pid"),
            "--host", f"unix://{self.socket}",
            "--storage-driver", "overlay2",
            "--log-level", "warn",
        ]  # fmt: skip
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = process.pid
        self._process = process
        self.pidfile.write_text(f"{self.pid}\n")
        started = time.monotonic()
        while not _ping(self.socket):
            if process.poll() is not None:
                raise DockerError(
                    f"dockerd exited while starting (exit {process.returncode}); the end of {self.log}:\n{_tail(self.log)}"
                )
            if time.monotonic() - started > timeout:
                raise DockerError(
                    f"dockerd did not answer on {self.socket} within {timeout:.0f} s; the end of {self.log}:\n"
                    f"{_tail(self.log)}"
                )
            time.sleep(0.1)
        self.progress(f"dockerd (pid {self.pid}) answers in {time.monotonic() - started:.1f} s")

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop dockerd by its PID (SIGTERM, then SIGKILL), unmount what it left, remove the iptables rules,
        chains and bridges it made; returns what is still left over (empty when all went)."""
        left: list[str] = []
        try:
            if self.pid is not None:
                pid, self.pid = self.pid, None
                _terminate(pid, timeout, self.progress)
                if self._process is not None:
                    self._process.wait(5)  # gone already: this only collects its status
                    self._process = None
                with contextlib.suppress(FileNotFoundError):
                    self.pidfile.unlink()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            roots = [self.data_root] + ([self.run_dir] if self.run_dir is not None else [])
            for point in _mounts_under(*roots):
                _unmount(point)
            if self.network is not None:
                undone = self.network.restore()
                if undone:
                    self.progress(f"removed what dockerd left: {len(undone)} rules, chains and links")
                left = self.network.leftovers()
                self.network = None
                with contextlib.suppress(FileNotFoundError):
                    self.snapshot.unlink()
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.run_dir = None
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
        return left

    # --- commands -----------------------------------------------------------------------------------

    def _run(
        self,
        argv: Sequence[str],
        what: str,
        timeout: float,
        check: bool,
        environ: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**self.env, **(environ or {})},
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise DockerError(
                f"{what} took longer than {timeout:.0f} s; its output:\n{e.output or ''}"
            ) from None
        if check and done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise DockerError(f"{what} failed (exit {done.returncode}):\n{output[-4000:]}")
        return done

    def docker(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self._run([DOCKER, *args], f"docker {' '.join(args)}", timeout, check)

    def compose(
        self,
        project: str,
        compose_file: Path,
        env_file: Path,
        *args: str,
        timeout: float = 120.0,
        check: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """docker-compose on this engine; `environ` adds variables (they win over the env file)."""
        argv = [
            COMPOSE,
            "--ansi",
            "never",
            "-p",
            project,
            "-f",
            str(compose_file),
            "--env-file",
            str(env_file),
            *args,
        ]
        return self._run(argv, f"docker-compose {' '.join(args)}", timeout, check, environ)

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0

    def import_base(self, tarball: Path, tag: str) -> None:
        """`docker import` the tarball as `tag`, unless the (cached) data root has it already."""
        if self.has_image(tag):
            return
        started = time.monotonic()
        with open(tarball, "rb") as data:
            done = subprocess.run(
                [DOCKER, "import", "-", tag],
                stdin=data,
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
            )
        if done.returncode != 0:
            raise DockerError(f"docker import {tarball} {tag} failed: {done.stderr.strip()}")
        self.progress(f"imported {tag} in {time.monotonic() - started:.1f} s")
