"""A throwaway PostgreSQL server from the machine's binaries, for the test suite and benchmarks.

PostgreSQL refuses to run as root, so under root the cluster is created and
run as the unprivileged ``nobody`` user in a temporary directory, listening on
127.0.0.1 at a free port. Failing to start raises PgStartError with the
server's own output: the caller must fail loudly, never skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNPRIVILEGED_USER = "nobody"


class PgStartError(RuntimeError):
    pass


def find_bindir() -> Path:
    """Where initdb and pg_ctl live: $HUB_PG_BINDIR, PATH, or Debian's /usr/lib/postgresql/N/bin."""
    explicit = os.environ.get("HUB_PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise PgStartError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql-15 "
        "(scripts/setup.sh does) or set HUB_PG_BINDIR"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    bindir: Path
    datadir: Path
    port: int
    user: str | None  # run-as user when we are root
    _root: Path

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"{self.base_url}/{database}"

    def _run(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self.user:
            extra = {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}
        return subprocess.run(args, capture_output=True, text=True, cwd=self._root, **extra, **kwargs)

    def stop(self) -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self._root, ignore_errors=True)

    def create_database(self, name: str, template: str = "template1") -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start(max_connections: int = 200, fsync: bool = False) -> PgServer:
    bindir = find_bindir()
    user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="hub-pg-"))
    datadir = root / "data"
    os.chmod(root, 0o755)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PgServer(bindir, datadir, free_port(), user, root)
    init = server._run([
        str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--locale=C", "--no-sync",
    ])
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PgStartError(f"initdb failed (exit {init.returncode}): {init.stderr.strip() or init.stdout.strip()}")
    options = " ".join([
        f"-p {server.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={root}",
        f"-c max_connections={max_connections}", f"-c fsync={'on' if fsync else 'off'}",
        "-c synchronous_commit=off" if not fsync else "", "-c full_page_writes=off" if not fsync else "",
        "-c shared_buffers=128MB",
    ])
    logfile = root / "server.log"
    started = server._run([
        str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-o", options, "-w", "-t", "60", "start",
    ])
    if started.returncode != 0:
        log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PgStartError(f"pg_ctl start failed (exit {started.returncode}): {started.stderr.strip()} {log}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise PgStartError(f"PostgreSQL did not accept connections on 127.0.0.1:{server.port}")
