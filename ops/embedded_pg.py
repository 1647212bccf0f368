"""A private PostgreSQL cluster for development and tests (``ordinaut db start|stop|url``).

Uses the system ``initdb``/``pg_ctl`` (on PATH, else under ``/usr/lib/postgresql/*/bin``).
PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` OS user
and every server command runs through ``runuser -u postgres --``. The server listens on
127.0.0.1 only and requires a password (kept in ``<home>/pg/password``, mode 0600). Its port
is picked free when the cluster first starts and recorded in ``<home>/pg/port``: every later
start uses it again, so processes that know the cluster's URL reach it after a
``db stop`` + ``db start``. Where no binaries exist, the ``pgserver`` package (PostgreSQL
in a wheel, on a unix socket) is the fallback.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from store.databases import ensure_database

SERVICE_USER = "postgres"
DATABASE = "ordinaut"
ROLE = "ordinaut"
_FAST_OPTIONS = ("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")


class EmbeddedPostgresError(RuntimeError):
    """The embedded cluster could not be started or reached."""


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then the newest under
    ``/usr/lib/postgresql/*/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "pg_ctl").exists() and (candidate / "initdb").exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """One cluster under ``home``; ``fast`` turns fsync off (tests only)."""

    home: Path
    fast: bool = False
    say: Callable[[str], None] = field(default=lambda _message: None)
    bin_dir: Path | None = field(default_factory=find_pg_bin)
    force_pgserver: bool = False

    def __post_init__(self) -> None:
        self.home = self.home.expanduser().resolve()

    @property
    def pg_dir(self) -> Path:
        return self.home / "pg"

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def start(self) -> str:
        """Start the cluster if needed (idempotent) and return its database URL."""
        try:
            self.pg_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot create {self.pg_dir}: {exc.strerror}") from None
        if self.force_pgserver or self.bin_dir is None:
            return self._start_pgserver()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        port = self.running_port()
        if port is None:
            port = self._start_server()
        url = self._url(port)
        ensure_database(url, DATABASE)
        return url

    def stop(self) -> bool:
        """Stop the cluster; False when it was not running."""
        if self._pgserver_marker.exists():
            return self._stop_pgserver()
        if self.bin_dir is None or self.running_port() is None:
            return False
        self.say("Stopping embedded PostgreSQL...")
        self._run(
            [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
        )
        return True

    def restart(self, mode: str = "fast") -> None:
        """Restart the server with its previous options (tests of reconnection); ``mode`` is
        pg_ctl's shutdown mode: ``fast`` (clean) or ``immediate`` (a crash and recovery)."""
        assert self.bin_dir is not None
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "restart",
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                # Without a log file the new server would inherit our stdout/stderr pipes
                # and capture_output would wait for it to exit.
                "-l",
                str(self._cluster_root / "server.log"),
            ]
        )

    def destroy(self) -> None:
        """Stop the cluster and delete its files (test clusters)."""
        self.stop()
        shutil.rmtree(self._cluster_root, ignore_errors=True)
        shutil.rmtree(self.pg_dir, ignore_errors=True)

    def url(self) -> str | None:
        """The URL of the running cluster, or None."""
        if self._pgserver_marker.exists():
            return self._pgserver_marker.read_text().strip() or None
        port = self.running_port()
        return self._url(port) if port is not None else None

    def running_port(self) -> int | None:
        """The port of the running server (from ``postmaster.pid``), or None."""
        if self.bin_dir is None or not (self.data_dir / "PG_VERSION").exists():
            return None
        status = self._run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
        )
        if status.returncode != 0:
            return None
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 else None

    @property
    def data_dir(self) -> Path:
        return self._cluster_root / "data"

    @property
    def _cluster_root(self) -> Path:
        """Where the server's files live: under ``home`` when the service user can reach it,
        else in a per-home directory under the system temp dir (e.g. a home below /root)."""
        if not self.as_root or _reachable_by_service_user(self.pg_dir):
            return self.pg_dir / "cluster"
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"ordinaut-pg-{digest}"

    @property
    def _port_file(self) -> Path:
        return self.pg_dir / "port"

    def _recorded_port(self) -> int | None:
        try:
            return int(self._port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def _password_file(self) -> Path:
        return self.pg_dir / "password"

    @property
    def _pgserver_marker(self) -> Path:
        return self.pg_dir / "pgserver-url"

    def _password(self) -> str:
        if not self._password_file.exists():
            self._password_file.write_text(secrets.token_urlsafe(24))
            self._password_file.chmod(0o600)
        return self._password_file.read_text().strip()

    def _url(self, port: int) -> str:
        password = quote(self._password(), safe="")
        return f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"

    def _initdb(self) -> None:
        assert self.bin_dir is not None
        self.say(f"Creating a PostgreSQL cluster in {self.data_dir} (initdb, a few seconds)...")
        root = self._cluster_root
        root.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made cluster from an interrupted initdb
        self._own(root)
        pwfile = root / "initdb-password"
        pwfile.write_text(self._password() + "\n")
        self._own(pwfile)
        try:
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    ROLE,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _start_server(self) -> int:
        """Start the server on its recorded port (the first start picks a free one and
        records it); returns the port."""
        assert self.bin_dir is not None
        log_file = self._cluster_root / "server.log"
        recorded = self._recorded_port()
        last_error = ""
        for _ in range(1 if recorded else 3):  # a free port can be taken before it is bound
            port = recorded or free_port()
            self.say(f"Starting embedded PostgreSQL on 127.0.0.1:{port}...")
            options = [
                f"-p {port}",
                "-c listen_addresses=127.0.0.1",
                f"-k {self._cluster_root}",
                "-c max_connections=200",
                *(_FAST_OPTIONS if self.fast else ()),
            ]
            result = self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(log_file),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    " ".join(options),
                ],
                check=False,
            )
            if result.returncode == 0:
                self._port_file.write_text(f"{port}\n")
                return port
            last_error = _tail(log_file) or result.stderr.strip()
        if recorded:
            raise EmbeddedPostgresError(
                f"PostgreSQL did not start on its port {recorded} (recorded in "
                f"{self._port_file}; is another process using it?): {last_error}"
            )
        raise EmbeddedPostgresError(f"PostgreSQL did not start: {last_error}")

    def _start_pgserver(self) -> str:
        try:
            from pgserver import postgres_server
        except ImportError:
            raise EmbeddedPostgresError(
                "no PostgreSQL binaries found (initdb/pg_ctl on PATH or under "
                "/usr/lib/postgresql/*/bin) and the pgserver package is not installed: "
                "install PostgreSQL, `pip install pgserver==0.1.4`, or set DATABASE_URL"
            ) from None
        self.say("No system PostgreSQL binaries: starting the pgserver package's PostgreSQL...")
        # cleanup_mode=None: the server outlives this process, like the system cluster.
        server = postgres_server.get_server(self._pgserver_data, cleanup_mode=None)
        ensure_database(server.get_uri(), DATABASE)
        url = str(server.get_uri(DATABASE))
        self._pgserver_marker.write_text(url)
        return url

    @property
    def _pgserver_data(self) -> Path:
        return self.pg_dir / "pgserver"

    def _stop_pgserver(self) -> bool:
        from pgserver._commands import POSTGRES_BIN_PATH

        self.say("Stopping the pgserver PostgreSQL...")
        argv = [
            str(POSTGRES_BIN_PATH / "pg_ctl"),
            "stop",
            "-D",
            str(self._pgserver_data),
            "-m",
            "fast",
            "-w",
        ]
        if self.as_root:  # pgserver runs its server as the "pgserver" OS user
            argv = ["runuser", "-u", "pgserver", "--", *argv]
        subprocess.run(argv, capture_output=True, check=False, cwd="/")
        self._pgserver_marker.unlink(missing_ok=True)
        return True

    def _own(self, path: Path) -> None:
        if self.as_root:
            shutil.chown(path, SERVICE_USER, SERVICE_USER)
            path.chmod(0o700 if path.is_dir() else 0o600)

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        program = Path(argv[0]).name
        if self.as_root:
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/", check=False)
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"{program}: {(result.stderr or result.stdout).strip()}")
        return result


def _reachable_by_service_user(directory: Path) -> bool:
    """Can the service user traverse every parent of ``directory``?"""
    target = directory if directory.exists() else directory.parent
    result = subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(target)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""
