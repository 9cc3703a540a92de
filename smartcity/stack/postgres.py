"""PostgreSQL from Debian's packages, run as this project's own server on its own port and data folder.

The cluster is made once by ``initdb`` in ``<stack_dir>/postgres/data`` (trust authentication, only on 127.0.0.1),
run as the ``postgres`` OS user when we are root (PostgreSQL refuses to run as root). Once healthy, the role and
database ``smartcity`` exist; the role may create databases, so tests can make their own. With
``SMARTCITY_STACK_TLS`` it runs with ``ssl=on`` from the project CA and an hba file that takes TCP clients over
TLS only (``hostssl``); the certificate and key are copied for the server user, which must own its key.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, LocalService, StackError
from smartcity.stack.tls import ensure_tls, tls_files, write_private

DATABASE = "smartcity"
ROLE = "smartcity"
SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    """The bin folder of the newest PostgreSQL installed from Debian's packages."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    if not versions:
        raise StackError("postgres", "PostgreSQL is not installed (infra/local/install-debian-packages.sh postgresql)")
    return versions[-1].parent


class PostgresService(LocalService):
    name = "postgres"
    port_settings = ("postgres_port",)
    debian_packages = ("postgresql",)
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to disconnect

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    def run_as(self) -> str | None:
        return SUPERUSER if os.geteuid() == 0 else None

    def _give_to_server_user(self, *paths: Path) -> None:
        if (user := self.run_as()) is not None:
            entry = pwd.getpwnam(user)
            for path in paths:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    def _prepare_tls(self) -> None:
        """The server's own copies of the certificate and key, and an hba file refusing TCP clients without TLS."""
        files = ensure_tls(self.settings.stack_dir)
        self.tls_dir.mkdir(mode=0o700, exist_ok=True)
        for source in (files.cert, files.key, files.ca_cert):  # the CA: for a replica's connection to its primary
            write_private(self.tls_dir / source.name, source.read_bytes())
        (self.tls_dir / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n"
            "hostssl replication all 127.0.0.1/32 trust\n"
        )
        self._give_to_server_user(self.tls_dir, *self.tls_dir.iterdir())

    def prepare(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        self._give_to_server_user(self.socket_dir)
        if self.settings.stack_tls:
            self._prepare_tls()
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made cluster from an interrupted initdb
        self.data_dir.mkdir(mode=0o700)
        self._give_to_server_user(self.data_dir)
        initdb = [
            str(postgres_bin_dir() / "initdb"),
            "--pgdata", str(self.data_dir), "--username", SUPERUSER, "--auth", "trust",
            "--encoding", "UTF8", "--locale", "C.UTF-8", "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(initdb, capture_output=True, text=True, check=False, user=self.run_as())
        if result.returncode != 0:
            raise StackError(self.name, f"initdb failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.socket_dir),
            # A development server: durability against an OS crash is not worth the test suite's time.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if self.settings.stack_tls:
            settings |= {"ssl": "on", "ssl_cert_file": str(self.tls_dir / "server.pem"),
                         "ssl_key_file": str(self.tls_dir / "server-key.pem"), "hba_file": str(self.tls_dir / "pg_hba.conf")}
        flags = [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]
        return [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), *flags]

    def _connect(self, dbname: str = "postgres", user: str = SUPERUSER):
        import psycopg

        tls = {"sslmode": "verify-full", "sslrootcert": str(tls_files(self.settings.stack_dir).ca_cert)}
        return psycopg.connect(
            host=HOST, port=self.port, user=user, dbname=dbname, connect_timeout=max(1, int(PROBE_TIMEOUT_S)), autocommit=True,
            **(tls if self.settings.stack_tls else {}),
        )

    def probe(self) -> bool:
        with self._connect() as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)

    def after_start(self) -> None:
        with self._connect() as connection:
            if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
                connection.execute(f'CREATE ROLE "{ROLE}" LOGIN CREATEDB')
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                connection.execute(f'CREATE DATABASE "{DATABASE}" OWNER "{ROLE}"')

    def version(self) -> str:
        with self._connect() as connection:
            return connection.execute("SHOW server_version").fetchone()[0].split()[0]

    def _installed_version(self) -> str:
        try:
            return postgres_bin_dir().parts[-2]
        except StackError:
            return ""
