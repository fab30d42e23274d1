"""A real Asterisk 22 for tests and local runs, without Docker: Debian sid's `asterisk` package in a chroot.

Debian stable has no Asterisk package; sid has Asterisk 22, and a minimal sid chroot runs it on any
Debian-like host. The chroot shares the host's network, so ARI, AMI and SIP listen where the
configuration says (dialplan/: 127.0.0.1:8088, 127.0.0.1:5038, 127.0.0.1:5060/udp).

    Sandbox().install()          debootstrap sid into the cache folder, apt-get install asterisk (once, ~35 s)
    Sandbox().start(values=...)  render dialplan/ into the chroot's /etc/asterisk, run Asterisk, wait for ARI
    Sandbox().stop()             stop Asterisk, unmount everything under the chroot
    Sandbox().status()           installed?, running?, pid, memory, mounts
    Sandbox().cli("core show channels")

It needs root (debootstrap, chroot, mount). The cache folder is `$HOTLINE_ASTERISK_ROOT`, else
`~/.cache/hotline/asterisk-sid`.

The configuration holds no password: `${NAME}` placeholders in it are filled in by `render_config`
from values the caller passes (the command line takes them from `HOTLINE_<NAME>` variables).

Exceptions::

    SandboxError          the sandbox cannot do what was asked; the message says what to do
    ├── RenderError       a placeholder has no value, or a value Asterisk's files cannot hold
    └── PortInUseError    something else listens where Asterisk must (names the port and the process)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hotline.envfile import read_env_file

#: The configuration the service expects, in the repository beside the `hotline` package.
DIALPLAN_DIR = Path(__file__).resolve().parents[2] / "dialplan"
#: Overrides the cache folder the chroot lives in.
ROOT_ENV = "HOTLINE_ASTERISK_ROOT"
#: A placeholder `${NAME}` takes its value from the environment variable `HOTLINE_NAME`.
ENV_PREFIX = "HOTLINE_"
#: Debian suite with an Asterisk 22 package.
SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm")
#: Files installed as they are: in the dialplan `${...}` is Asterisk's own variable syntax.
VERBATIM = frozenset({"extensions.conf"})
#: The ARI application that extensions.conf sends hotline calls to.
ARI_APP = "hotline"

MARKER = ".hotline-asterisk-installed"  # holds `asterisk -V` once the install is complete
STAMP = ".hotline-asterisk-sandbox"  # written first: this folder is a sandbox, safe to wipe and retry
PIDFILE = ".hotline-asterisk.pid"
ASTERISK = "/usr/sbin/asterisk"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")

Progress = Callable[[str], None]

_PLACEHOLDER = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")


class SandboxError(RuntimeError):
    """The sandbox cannot do what was asked; the message names the thing and the fix."""


class RenderError(SandboxError):
    """The configuration cannot be rendered; `problems` holds one line per placeholder."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Listener:
    """A socket Asterisk opens, as its configuration says."""

    protocol: str  # "tcp" or "udp"
    host: str
    port: int
    what: str  # e.g. "ARI (http.conf)"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol} ({self.what})"


@dataclass(frozen=True)
class BusyPort:
    listener: Listener
    process: str | None  # e.g. 'asterisk (pid 123)', when `ss` could tell

    def __str__(self) -> str:
        owner = f" by {self.process}" if self.process else ""
        return f"port {self.listener}{owner}"


class PortInUseError(SandboxError):
    def __init__(self, busy: list[BusyPort]) -> None:
        self.busy = busy
        super().__init__(
            "Asterisk cannot listen: "
            + "; ".join(f"{port} is already in use" for port in busy)
            + ". Stop what holds it (another Asterisk?), or change the port in the dialplan folder."
        )


# --- Asterisk's .conf files ---------------------------------------------------------------------------


def _segments(line: str, in_block: bool) -> tuple[list[tuple[bool, str]], bool]:
    """`line` cut into (is_code, text) pieces: `;` starts a comment (`\\;` does not), `;--` ... `--;` is a
    block comment that may span lines. Returns the pieces and whether a block comment is still open."""
    pieces: list[tuple[bool, str]] = []
    start = i = 0
    while i < len(line):
        if in_block:
            end = line.find("--;", i)
            if end < 0:
                pieces.append((False, line[start:]))
                return pieces, True
            i = end + 3
            pieces.append((False, line[start:i]))
            start, in_block = i, False
            continue
        if line.startswith("\\;", i):
            i += 2
        elif line[i] == ";":
            if i > start:
                pieces.append((True, line[start:i]))
            if line.startswith(";--", i):
                start, in_block, i = i, True, i + 3
                continue
            pieces.append((False, line[i:]))
            return pieces, False
        else:
            i += 1
    if start < len(line):
        pieces.append((not in_block, line[start:]))
    return pieces, in_block


@dataclass(frozen=True)
class ConfSection:
    """One `[name](templates)` section of an Asterisk .conf file; options in file order."""

    name: str
    templates: tuple[str, ...]
    options: tuple[tuple[str, str], ...]

    @property
    def is_template(self) -> bool:
        return "!" in self.templates

    def get(self, key: str, default: str | None = None) -> str | None:
        """The option's last value (Asterisk lets a later line override an earlier one)."""
        found = default
        for name, value in self.options:
            if name == key:
                found = value
        return found


def read_conf(path: Path | str) -> list[ConfSection]:
    """The sections of an Asterisk .conf file, comments stripped; templates are not applied."""
    sections: list[ConfSection] = []
    name: str | None = None
    templates: tuple[str, ...] = ()
    options: list[tuple[str, str]] = []
    in_block = False
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        pieces, in_block = _segments(raw, in_block)
        line = "".join(text for is_code, text in pieces if is_code).replace("\\;", ";").strip()
        if not line or line.startswith("#"):
            continue
        header = _SECTION.match(line)
        if header:
            if name is not None:
                sections.append(ConfSection(name, templates, tuple(options)))
            name = header.group(1).strip()
            templates = tuple(t.strip() for t in (header.group(2) or "").split(",") if t.strip())
            options = []
            continue
        key, sep, value = line.partition("=")
        if sep and name is not None:
            options.append((key.strip(), value.removeprefix(">").strip()))
    if name is not None:
        sections.append(ConfSection(name, templates, tuple(options)))
    return sections


def _section(sections: Sequence[ConfSection], name: str) -> ConfSection | None:
    return next((s for s in sections if s.name == name and not s.is_template), None)


# --- rendering ----------------------------------------------------------------------------------------


def _conf_files(src_dir: Path) -> list[Path]:
    files = sorted(p for p in src_dir.glob("*.conf") if p.is_file())
    if not files:
        raise RenderError(
            [f"{src_dir}: no *.conf files here; give the folder of Asterisk files (dialplan/ in hotline)"]
        )
    return files


def placeholders(src_dir: Path | str) -> dict[str, list[str]]:
    """Every `${NAME}` the configuration in `src_dir` needs, with the `file:line`s that use it."""
    found: dict[str, list[str]] = {}
    for path in _conf_files(Path(src_dir)):
        if path.name in VERBATIM:
            continue
        in_block = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            pieces, in_block = _segments(line, in_block)
            for is_code, text in pieces:
                if is_code:
                    for match in _PLACEHOLDER.finditer(text):
                        if not match.group(1):
                            found.setdefault(match.group(2), []).append(f"{path}:{number}")
    return found


def _value_problem(value: str) -> str | None:
    """Why Asterisk's files cannot hold `value`, if they cannot."""
    if not value:
        return "is empty"
    if "\n" in value or "\r" in value:
        return "holds a line break"
    if ";" in value:
        return "holds ';', which starts a comment in Asterisk's files"
    if value != value.strip():
        return "starts or ends with a space, which Asterisk drops"
    return None


def render_config(
    src_dir: Path | str, dst_dir: Path | str, values: Mapping[str, str], *, mode: int = 0o640
) -> list[Path]:
    """Write every `*.conf` of `src_dir` into `dst_dir`, `${NAME}` replaced by `values[NAME]`.

    Placeholders in comments are left alone, `$${` stands for a literal `${`, and the files in `VERBATIM`
    are copied as they are. Nothing is written unless every placeholder has a usable value: the
    RenderError names each missing one, where it is used and the variable that would fill it.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    files = _conf_files(src)
    needed = placeholders(src)
    problems: list[str] = []
    for name, places in needed.items():
        where = _places(places)
        if name not in values:
            problems.append(
                f"${{{name}}} has no value ({where}); set the environment variable {ENV_PREFIX}{name}"
            )
            continue
        problem = _value_problem(values[name])
        if problem:
            problems.append(f"the value of ${{{name}}} ({ENV_PREFIX}{name}) {problem}; choose another")
    if problems:
        raise RenderError(problems)

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        return values[match.group(2)]

    written: list[Path] = []
    dst.mkdir(parents=True, exist_ok=True)
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.name not in VERBATIM:
            lines: list[str] = []
            in_block = False
            for line in text.splitlines(keepends=True):
                pieces, in_block = _segments(line, in_block)
                lines.extend(_PLACEHOLDER.sub(substitute, t) if is_code else t for is_code, t in pieces)
            text = "".join(lines)
        target = dst / path.name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(target, mode)
        written.append(target)
    return written


def _places(places: list[str]) -> str:
    """`a.conf:3, 9; b.conf:4` from ['dir/a.conf:3', 'dir/a.conf:9', 'dir/b.conf:4']."""
    by_file: dict[str, list[str]] = {}
    for place in places:
        file, _, line = place.rpartition(":")
        by_file.setdefault(file, []).append(line)
    return "; ".join(f"{file}:{', '.join(lines)}" for file, lines in by_file.items())


def values_from_environ(names: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values the environment gives for `names` (`HOTLINE_<NAME>`); names without one are left out."""
    env = os.environ if environ is None else environ
    return {name: env[ENV_PREFIX + name] for name in names if ENV_PREFIX + name in env}


def load_secrets(
    names: Iterable[str], secrets_file: Path | str, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Values for `names`: from the environment (`HOTLINE_<NAME>`), else from `secrets_file`, else new
    random ones, which are added to `secrets_file` (mode 0600) so a restart keeps them.

    Returns the values and the names that were generated now."""
    path = Path(secrets_file)
    wanted = list(dict.fromkeys(names))
    values = values_from_environ(wanted, environ)
    stored = read_env_file(path) if path.exists() else {}
    generated: list[str] = []
    for name in wanted:
        if name in values:
            continue
        if stored.get(ENV_PREFIX + name):
            values[name] = stored[ENV_PREFIX + name]
        else:
            values[name] = stored[ENV_PREFIX + name] = secrets.token_hex(16)
            generated.append(name)
    if generated:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Credentials of the Asterisk sandbox, generated by `hotline asterisk start`.",
            "# Load them into a shell with: set -a; . " + str(path) + "; set +a",
            *(f"{key}={value}" for key, value in stored.items()),
        ]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
    return values, generated


# --- what Asterisk listens on -------------------------------------------------------------------------


def _enabled(section: ConfSection | None) -> bool:
    return section is not None and (section.get("enabled") or "no").lower() in ("yes", "true", "on", "1")


def listeners(config_dir: Path | str) -> list[Listener]:
    """The sockets the configuration in `config_dir` opens: ARI's web server, AMI, PJSIP transports."""
    conf = Path(config_dir)
    found: list[Listener] = []
    if (conf / "http.conf").exists():
        general = _section(read_conf(conf / "http.conf"), "general")
        if general is not None and _enabled(general):
            host = general.get("bindaddr") or "127.0.0.1"
            found.append(Listener("tcp", host, int(general.get("bindport") or 8088), "ARI (http.conf)"))
    if (conf / "manager.conf").exists():
        general = _section(read_conf(conf / "manager.conf"), "general")
        if general is not None and _enabled(general):
            host = general.get("bindaddr") or "0.0.0.0"
            found.append(Listener("tcp", host, int(general.get("port") or 5038), "AMI (manager.conf)"))
    if (conf / "pjsip.conf").exists():
        for section in read_conf(conf / "pjsip.conf"):
            if section.is_template or section.get("type") != "transport":
                continue
            protocol = section.get("protocol") or "udp"
            if protocol not in ("udp", "tcp"):
                continue
            host, _, port = (section.get("bind") or "0.0.0.0:5060").rpartition(":")
            found.append(
                Listener(protocol, host.strip("[]") or "0.0.0.0", int(port or 5060), "SIP (pjsip.conf)")
            )
    return found


def _bound_elsewhere(listener: Listener) -> bool:
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    kind = socket.SOCK_STREAM if listener.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as probe:
        if kind == socket.SOCK_STREAM:  # TIME_WAIT left by a stopped Asterisk is no obstacle
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((listener.host, listener.port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            if e.errno == errno.EADDRNOTAVAIL:
                raise SandboxError(
                    f"{listener.what}: {listener.host} is not an address of this machine; change it"
                ) from None
            raise
    return False


def _owner(listener: Listener) -> str | None:
    """Who listens on the port, as `ss` tells it: 'asterisk (pid 123)'."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    flags = "-Hltnp" if listener.protocol == "tcp" else "-Hlunp"
    try:
        shown = subprocess.run(
            [ss, flags, f"sport = :{listener.port}"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'users:\(\("([^"]+)",pid=(\d+)', shown)
    return f"{match.group(1)} (pid {match.group(2)})" if match else None


def busy_ports(config_dir: Path | str) -> list[BusyPort]:
    """The configured sockets that something else already holds."""
    return [
        BusyPort(listener, _owner(listener))
        for listener in listeners(config_dir)
        if _bound_elsewhere(listener)
    ]


# --- processes and mounts -----------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Running and not a zombie: PID 1 may reap a stopped Asterisk late, and `kill -0` says yes to a zombie.

    Every thread counts: the main thread of an exiting Asterisk turns zombie while others still hold
    its sockets."""
    try:
        tasks = [entry.name for entry in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        tasks = [str(pid)]
    return any(_task_alive(pid, task) for task in tasks)


def _task_alive(pid: int, task: str) -> bool:
    try:
        status = Path(f"/proc/{pid}/task/{task}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "State: R")
    return state.split()[1:2] != ["Z"]


def _reap(pid: int) -> None:
    """Collect our own exited child, so it does not stay a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _root_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def processes_in(root: Path) -> list[int]:
    """Live processes whose root directory is `root` (Asterisk, a stray `asterisk -r`, apt...)."""
    target = str(root)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _root_of(int(entry.name)) == target and _alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def _unescape_mount(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    target = str(root)
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            point = _unescape_mount(fields[1])
            if point == target or point.startswith(target + "/"):
                found.append(point)
    return sorted(found, reverse=True)


def require_root(action: str) -> None:
    """SandboxError unless this process may chroot and mount."""
    if os.geteuid() != 0:
        missing = ""
        if action == "install" and not (
            shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists()
        ):
            missing = "; it also needs debootstrap: sudo apt-get install debootstrap"
        raise SandboxError(
            f"the Asterisk sandbox needs root to {action} (it uses debootstrap, chroot and mount); "
            f"run it as root, e.g. sudo hotline asterisk {action}{missing}"
        )


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """`$HOTLINE_ASTERISK_ROOT`, else `asterisk-sid` in hotline's cache folder."""
    env = os.environ if environ is None else environ
    if env.get(ROOT_ENV):
        return Path(env[ROOT_ENV]).expanduser().absolute()
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return (cache / "hotline" / "asterisk-sid").absolute()


def _chroot_env() -> dict[str, str]:
    env = {"PATH": CHROOT_PATH, "LANG": "C", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    env.update({k: os.environ[k] for k in PROXY_VARIABLES if k in os.environ})
    return env


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


# --- the sandbox --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    root: Path
    installed: bool
    version: str | None  # e.g. "Asterisk 22.10.1~dfsg+~cs6.15.60671435-1"
    running: bool
    pid: int | None
    rss_kib: int | None
    mounts: tuple[str, ...]
    processes: tuple[int, ...]  # every live process in the chroot, Asterisk included

    def __str__(self) -> str:
        if not self.installed:
            state = f"not installed in {self.root}; run: hotline asterisk install"
        elif self.running:
            state = (
                f"running, pid {self.pid}, {(self.rss_kib or 0) // 1024} MiB: {self.version} in {self.root}"
            )
        else:
            state = f"stopped: {self.version} in {self.root}"
        extra = [f"mount: {m}" for m in self.mounts]
        others = [p for p in self.processes if p != self.pid]
        if others:
            extra.append(f"other processes in the chroot: {', '.join(map(str, others))}")
        return "\n".join([state, *extra])


@dataclass(frozen=True)
class Running:
    """A started Asterisk and how to reach it."""

    root: Path
    pid: int
    version: str
    seconds: float  # from launch until ARI answered and Asterisk was fully booted
    config_dir: Path  # the rendered configuration (the chroot's /etc/asterisk)
    ari_url: str  # e.g. http://127.0.0.1:8088/ari
    ari_user: str
    ari_password: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    sip_host: str | None
    sip_port: int | None
    values: Mapping[str, str]  # what filled the placeholders (the SIP passwords among them)

    def cli(self, command: str, *, timeout: float = 30.0) -> str:
        """Run one Asterisk CLI command in this Asterisk (`asterisk -rx`)."""
        return Sandbox(self.root).cli(command, timeout=timeout)


def _connect_host(host: str) -> str:
    """Where to connect for a server bound to `host` (a wildcard address means loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Sandbox:
    """Asterisk in a Debian sid chroot at `root` (default: `default_root()`).

    `progress` receives one line per step of a long operation (install, restart, stop)."""

    def __init__(self, root: Path | str | None = None, *, progress: Progress | None = None) -> None:
        self.root = (Path(root).expanduser() if root is not None else default_root()).resolve()
        self.progress: Progress = progress or (lambda line: None)

    # paths
    @property
    def etc(self) -> Path:
        return self.root / "etc" / "asterisk"

    @property
    def log_dir(self) -> Path:
        return self.root / "var" / "log" / "asterisk"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"

    # --- install ----------------------------------------------------------------------------------

    def installed(self) -> bool:
        return (self.root / MARKER).is_file() and (self.root / ASTERISK.lstrip("/")).is_file()

    def version(self) -> str | None:
        try:
            return (self.root / MARKER).read_text().strip() or None
        except OSError:
            return None

    def install(self, extra_packages: Sequence[str] = ()) -> None:
        """Make the chroot with Asterisk (and `extra_packages`, e.g. sip-tester), unless it is there.

        An interrupted install is resumed or started again on the next call."""
        require_root("install")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self._lock(".lock"):
            if self.installed():
                missing = [p for p in extra_packages if not self._has_package(p)]
                if missing:
                    self._apt_install(missing, started)
                    self.progress(f"added {' '.join(missing)} in {time.monotonic() - started:.0f} s")
                else:
                    self.progress(f"{self.version()} is installed in {self.root}")
                return
            self.progress(f"installing Asterisk (Debian {SUITE}) into {self.root}")
            self._claim_folder()
            if not (self.root / "var/lib/dpkg/status").exists():
                debootstrap = _debootstrap(self.progress)
                self._stage(
                    f"debootstrap --variant=minbase {SUITE}",
                    [debootstrap, "--variant=minbase", SUITE, str(self.root)],
                    started,
                    chroot=False,
                    hint="debootstrap needs the network and a Debian mirror it can reach",
                )
            policy = self.root / "usr/sbin/policy-rc.d"  # package scripts start no daemons
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            # the mirror may serve a frozen sid whose Release file has expired
            (self.root / "etc/apt/apt.conf.d/99hotline-no-check-valid-until").write_text(
                'Acquire::Check-Valid-Until "false";\n'
            )
            self._apt_install([*PACKAGES, *extra_packages], started)
            dist = self.root / "etc/asterisk.dist"
            if not dist.exists():  # Debian's sample files, for reference
                shutil.copytree(self.etc, dist, symlinks=True)
            version = subprocess.run(
                ["chroot", str(self.root), ASTERISK, "-V"],
                capture_output=True,
                text=True,
                env=_chroot_env(),
                check=False,
            ).stdout.strip()
            if not version.startswith("Asterisk"):
                raise SandboxError(f"{self.root}{ASTERISK} -V printed {version!r}; the install is broken")
            (self.root / MARKER).write_text(version + "\n")
            self.progress(f"installed {version} in {time.monotonic() - started:.0f} s ({self._size()})")

    def _claim_folder(self) -> None:
        """Make sure `root` is ours to fill (and to wipe when a debootstrap was cut short)."""
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        contents = [p.name for p in root.iterdir()]
        if contents and STAMP not in contents:
            raise SandboxError(
                f"{root} is not empty and is not an Asterisk sandbox; choose an empty folder "
                f"(--root or ${ROOT_ENV})"
            )
        if (root / "debootstrap").is_dir():  # debootstrap did not finish: start again
            self.progress(f"removing an unfinished debootstrap in {root}")
            self._unmount_all()
            for path in root.iterdir():
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        (root / STAMP).write_text("an Asterisk sandbox made by `hotline asterisk install`\n")

    def _apt_install(self, packages: Sequence[str], started: float) -> None:
        self._mount_proc()
        try:
            # finishes what an interrupted install left half-configured (and does nothing otherwise)
            subprocess.run(
                ["chroot", str(self.root), "dpkg", "--configure", "-a"],
                capture_output=True,
                env=_chroot_env(),
                check=False,
            )
            self._stage("apt-get update", ["apt-get", "update", "-q"], started)
            self._stage(
                f"apt-get install {' '.join(packages)}",
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                started,
                hint="is every package name right? (packages.debian.org lists sid's packages)",
            )
            self._stage("apt-get clean", ["apt-get", "clean"], started)
        finally:
            self._unmount_all()

    def _stage(
        self, name: str, argv: list[str], started: float, *, chroot: bool = True, hint: str = ""
    ) -> None:
        """Run one install step, its output to the install log, a progress line every 10 s."""
        log = self.root / ".hotline-install.log"
        command = ["chroot", str(self.root), *argv] if chroot else argv
        env = _chroot_env() if chroot else {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        self.progress(f"  {name} ...")
        step = time.monotonic()
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"\n$ {' '.join(command)}\n")
            out.flush()
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
            next_tick = step + 10
            try:
                while process.poll() is None:
                    time.sleep(0.2)
                    if time.monotonic() >= next_tick:
                        self.progress(f"  {name}: {time.monotonic() - step:.0f} s so far")
                        next_tick += 10
            except BaseException:  # interrupted: leave no half-run step behind (the next install resumes)
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if chroot:
                    self._unmount_all()
                raise
        took, total = time.monotonic() - step, time.monotonic() - started
        if process.returncode != 0:
            raise SandboxError(
                f"{name} failed (exit {process.returncode}); {hint + '; ' if hint else ''}"
                f"the log is {log}, ending:\n{_tail(log, 20)}"
            )
        self.progress(f"  {name}: done in {took:.0f} s ({total:.0f} s in all)")

    def _has_package(self, package: str) -> bool:
        done = subprocess.run(
            ["chroot", str(self.root), "dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            env=_chroot_env(),
            check=False,
        )
        return done.returncode == 0 and done.stdout.strip().endswith(" installed")

    def _size(self) -> str:
        done = subprocess.run(["du", "-sxh", str(self.root)], capture_output=True, text=True, check=False)
        return done.stdout.split()[0] if done.returncode == 0 and done.stdout else "size unknown"

    # --- start and stop ---------------------------------------------------------------------------

    def start(
        self,
        config_dir: Path | str | None = None,
        values: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
    ) -> Running:
        """Render `config_dir` (default dialplan/) with `values` into the chroot's /etc/asterisk and run
        Asterisk; back when ARI answers and Asterisk is fully booted. A running one is restarted."""
        require_root("start")
        if not self.installed():
            raise SandboxError(
                f"no Asterisk in {self.root}; install it first: hotline asterisk install"
                + (f" --root {self.root}" if self.root != default_root() else "")
            )
        staging = self.root / "etc" / "asterisk.new"
        if staging.exists():
            shutil.rmtree(staging)
        render_config(config_dir or DIALPLAN_DIR, staging, values or {})  # fails before anything stops
        if self.processes():
            self.progress(f"Asterisk is running in {self.root}: restarting it")
            self.stop()
        busy = busy_ports(staging)
        if busy:
            shutil.rmtree(staging)
            raise PortInUseError(busy)
        if self.etc.exists():
            shutil.rmtree(self.etc)
        staging.rename(self.etc)
        self.etc.chmod(0o750)
        self._mount_proc()
        (self.root / "run/asterisk").mkdir(parents=True, exist_ok=True)
        # ARI recordings (voicemail) go here; neither Asterisk nor Debian's package makes the folder.
        (self.root / "var/spool/asterisk/recording").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("console.log", "messages.log"):
            with contextlib.suppress(FileNotFoundError):
                (self.log_dir / name).replace(self.log_dir / f"{name}.prev")
        launched = time.monotonic()
        pid = self._spawn()
        (self.root / PIDFILE).write_text(f"{pid}\n")
        info = _reach(self.etc)
        ari_host, ari_port = info["ari_host"], int(info["ari_port"])
        code: int | None = None
        while True:
            if not _alive(pid):
                _reap(pid)
                self._clean_up()
                raise SandboxError(
                    f"Asterisk exited while starting; the end of {self.console_log}:\n{_tail(self.console_log)}"
                )
            code = _ari_ping(ari_host, ari_port)
            if code in (200, 401):  # 401: ARI is up and wants credentials
                break
            if time.monotonic() - launched > timeout:
                self.stop()
                raise SandboxError(
                    f"ARI did not answer at http://{_url_host(ari_host)}:{ari_port}/ari within {timeout:.0f} s "
                    f"(last HTTP status: {code or 'none'}); the end of {self.console_log}:\n"
                    f"{_tail(self.console_log)}"
                )
            time.sleep(0.05)
        self.cli("core waitfullybooted", timeout=max(1.0, timeout - (time.monotonic() - launched)))
        seconds = time.monotonic() - launched
        return Running(
            root=self.root,
            pid=pid,
            version=self.version() or "Asterisk",
            seconds=seconds,
            config_dir=self.etc,
            ari_url=f"http://{_url_host(ari_host)}:{ari_port}/ari",
            ari_user=info["ari_user"],
            ari_password=info["ari_password"],
            ami_host=info["ami_host"],
            ami_port=int(info["ami_port"]),
            ami_user=info["ami_user"],
            ami_secret=info["ami_secret"],
            sip_host=info["sip_host"] or None,
            sip_port=int(info["sip_port"]) if info["sip_port"] else None,
            values=dict(values or {}),
        )

    def _spawn(self) -> int:
        """`setsid chroot ROOT asterisk -f -n`: -f stays in the foreground, so the pid is Asterisk's own;
        -n keeps colour codes out of console.log."""
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        return os.posix_spawn(
            chroot,
            [chroot, str(self.root), ASTERISK, "-f", "-n"],
            _chroot_env(),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(self.console_log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop Asterisk (`core stop now`, then SIGTERM, then SIGKILL) and every other process in the
        chroot, and unmount everything under it."""
        require_root("stop")
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
                self._rx("core stop now", timeout=timeout)
            if not _wait_gone([pid], timeout):
                self.progress(f"Asterisk (pid {pid}) did not stop within {timeout:.0f} s: sending SIGTERM")
                _signal([pid], signal.SIGTERM)
                if not _wait_gone([pid], 3):
                    self.progress(f"Asterisk (pid {pid}) ignored SIGTERM: sending SIGKILL")
                    _signal([pid], signal.SIGKILL)
                    _wait_gone([pid], 3)
            self.progress(f"stopped Asterisk (pid {pid})")
        strays = self.processes()
        if strays:
            self.progress(f"stopping the other processes in {self.root}: {', '.join(map(str, strays))}")
            _signal(strays, signal.SIGTERM)
            if not _wait_gone(strays, 3):
                _signal(strays, signal.SIGKILL)
                _wait_gone(strays, 3)
        self._clean_up()
        left = self.processes()
        if left:
            raise SandboxError(f"processes {', '.join(map(str, left))} in {self.root} would not stop")

    def _clean_up(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / PIDFILE).unlink()
        self._unmount_all()

    def status(self) -> Status:
        pid = self._pid()
        rss = None
        if pid is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = Path(f"/proc/{pid}/status").read_text()
                rss = int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])
        return Status(
            root=self.root,
            installed=self.installed(),
            version=self.version(),
            running=pid is not None,
            pid=pid,
            rss_kib=rss,
            mounts=tuple(mounts_under(self.root)),
            processes=tuple(self.processes()),
        )

    def cli(self, command: str, *, timeout: float = 30.0) -> str:
        """Run one Asterisk CLI command (`asterisk -rx`) and return what it printed."""
        require_root("cli")
        if self._pid() is None:
            raise SandboxError(f"Asterisk is not running in {self.root}; start it: hotline asterisk start")
        return self._rx(command, timeout=timeout)

    def _rx(self, command: str, *, timeout: float) -> str:
        done = subprocess.run(
            ["chroot", str(self.root), ASTERISK, "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_chroot_env(),
            check=False,
        )
        if done.returncode != 0:
            raise SandboxError(
                f"asterisk -rx {command!r} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def processes(self) -> list[int]:
        return processes_in(self.root)

    def _pid(self) -> int | None:
        """Asterisk's pid, when the pid file names a live Asterisk in this chroot."""
        try:
            pid = int((self.root / PIDFILE).read_text().strip())
        except (OSError, ValueError):
            return None
        _reap(pid)
        if not _alive(pid) or _root_of(pid) != str(self.root):
            return None
        try:
            if "asterisk" not in Path(f"/proc/{pid}/comm").read_text():
                return None
        except OSError:
            return None
        return pid

    def _mount_proc(self) -> None:
        proc = self.root / "proc"
        proc.mkdir(exist_ok=True)
        if not os.path.ismount(proc):
            done = subprocess.run(
                ["mount", "-t", "proc", "proc", str(proc)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise SandboxError(f"cannot mount proc on {proc}: {done.stderr.strip()}")

    def _unmount_all(self) -> None:
        for point in mounts_under(self.root):
            done = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=False)
        left = mounts_under(self.root)
        if left:
            raise SandboxError(f"could not unmount {', '.join(left)}; unmount by hand: umount -l {left[0]}")

    @contextlib.contextmanager
    def _lock(self, suffix: str, timeout: float | None = None) -> Iterator[None]:
        path = self.root.with_name(self.root.name + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            deadline = None if timeout is None else time.monotonic() + timeout
            waiting = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting:
                        self.progress(f"waiting for another program using the Asterisk in {self.root}")
                        waiting = True
                    if deadline is not None and time.monotonic() > deadline:
                        raise SandboxError(
                            f"another program is using the Asterisk in {self.root} (it holds {path}); "
                            f"gave up after {timeout:g} s: let it finish, then try again"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lock(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Hold this sandbox alone (e.g. for a test session): another holder waits up to `timeout`."""
        return self._lock(".in-use.lock", timeout)


def _debootstrap(progress: Progress) -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise SandboxError(
            "debootstrap is missing; install it with your package manager "
            "(it makes the Debian chroot Asterisk runs in)"
        )
    progress("  installing debootstrap on this machine (apt-get install debootstrap)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        [apt, "update", "-qq"],
        [apt, "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SandboxError(
                f"could not install debootstrap ({' '.join(argv)} failed: {done.stderr.strip()[-500:]}); "
                "install it yourself: apt-get install debootstrap"
            )
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            _reap(pid)
        if not any(_alive(pid) for pid in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _ari_ping(host: str, port: int) -> int | None:
    """The HTTP status of an unauthenticated ARI ping, None while nothing answers."""
    connection = http.client.HTTPConnection(host, port, timeout=1)
    try:
        connection.request("GET", "/ari/asterisk/ping")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _reach(config_dir: Path) -> dict[str, str]:
    """Addresses and credentials of ARI, AMI and SIP in a rendered configuration."""
    info = dict.fromkeys(
        (
            "ari_host",
            "ari_port",
            "ari_user",
            "ari_password",
            "ami_host",
            "ami_port",
            "ami_user",
            "ami_secret",
            "sip_host",
            "sip_port",
        ),
        "",
    )
    for listener in listeners(config_dir):
        key = {"ARI (http.conf)": "ari", "AMI (manager.conf)": "ami"}.get(listener.what, "sip")
        if not info[f"{key}_port"]:
            info[f"{key}_host"] = _connect_host(listener.host)
            info[f"{key}_port"] = str(listener.port)
    if not info["ari_port"]:
        raise SandboxError(
            f"{config_dir}/http.conf does not enable the web server; ARI needs it (enabled = yes)"
        )
    if (config_dir / "ari.conf").exists():
        user = next(
            (s for s in read_conf(config_dir / "ari.conf") if s.get("type") == "user" and not s.is_template),
            None,
        )
        if user is not None:
            info["ari_user"], info["ari_password"] = user.name, user.get("password") or ""
    if (config_dir / "manager.conf").exists():
        manager = next(
            (s for s in read_conf(config_dir / "manager.conf") if s.name != "general" and s.get("secret")),
            None,
        )
        if manager is not None:
            info["ami_user"], info["ami_secret"] = manager.name, manager.get("secret") or ""
    return info
