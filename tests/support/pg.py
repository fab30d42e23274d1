"""A throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.

Uses the server binaries of the installed `postgresql` package (/usr/lib/postgresql/<version>/bin).
PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def server_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise ClusterError(
            "no PostgreSQL server found under /usr/lib/postgresql/*/bin; install it: apt-get install postgresql"
        )
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """`Cluster.create()` runs initdb and starts the server; `stop()`/`start()` take it away and bring it
    back on the same port (for "the database goes away" tests); `destroy()` removes it all."""

    def __init__(self, root: Path, port: int, settings: Sequence[str] = ()) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = port
        self.settings = tuple(settings)
        self.bin = server_bin()
        self._as_postgres = os.geteuid() == 0

    @classmethod
    def create(cls, *, settings: Sequence[str] = ("fsync=off",), base: Path | None = None) -> Cluster:
        """A new cluster, started. `settings` are `name=value` server settings (e.g. "fsync=off")."""
        root = Path(tempfile.mkdtemp(prefix="hotline-pg-", dir=base))
        cluster = cls(root, free_port(), settings)
        try:
            cluster._init()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def _init(self) -> None:
        self.sockets.mkdir()
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        done = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        if done.returncode != 0:
            raise ClusterError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = [f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets}"]
        options += [f"-c {setting}" for setting in self.settings]
        done = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
            timeout=90,
        )
        if done.returncode != 0:
            raise ClusterError(
                f"PostgreSQL did not start on 127.0.0.1:{self.port} ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}\n--- server log {self.log} ---\n{self.server_log()}"
            )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` is as abrupt as a crash (the next start recovers from WAL)."""
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        if done.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status").returncode == 0

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-20_000:]
        except OSError as e:
            return f"(no server log: {e})"

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one SQL statement with psql; returns its output."""
        done = subprocess.run(
            [
                str(self.bin / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
                self.url(database, driver="postgresql"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise ClusterError(f"psql failed on {statement!r}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.data.exists() and self.running():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
