"""A PostgreSQL streaming replica of the local PostgreSQL: an optional service (``smartcity stack up
postgres-replica``), not started by default.

Its data folder ``<stack_dir>/postgres-replica/data`` is made once by ``pg_basebackup -R`` from the primary (which
must be running: the primary's ``pg_hba.conf`` from ``initdb --auth trust`` lets 127.0.0.1 replicate), so it
starts as a hot standby that streams the primary's WAL and answers read-only queries on
``SMARTCITY_POSTGRES_REPLICA_PORT``. The platform reads from it when ``SMARTCITY_DATABASE_READ_URL`` names it;
its lag is a metric (:mod:`smartcity.storage.replication`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from smartcity.stack.base import HOST, StackError
from smartcity.stack.postgres import SUPERUSER, PostgresService, postgres_bin_dir


class PostgresReplicaService(PostgresService):
    name = "postgres-replica"
    port_settings = ("postgres_replica_port",)

    def primary(self) -> PostgresService:
        return PostgresService(self.settings)

    def _wait_for_primary(self) -> None:
        """The primary may be starting in the same ``up``: wait for it as long as a start may take."""
        primary = self.primary()
        deadline = time.monotonic() + primary.startup_timeout_s
        while not primary.healthy():
            if time.monotonic() > deadline:
                raise StackError(self.name, f"needs the primary PostgreSQL healthy at {primary.address} "
                                            "(smartcity stack up postgres)")
            time.sleep(0.5)

    def prepare(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        self._give_to_server_user(self.socket_dir)
        if self.settings.stack_tls:
            self._prepare_tls()
        if (self.data_dir / "standby.signal").exists():
            return
        self._wait_for_primary()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made copy from an interrupted pg_basebackup
        self.data_dir.mkdir(mode=0o700)
        self._give_to_server_user(self.data_dir)
        basebackup = [
            str(postgres_bin_dir() / "pg_basebackup"), "--host", HOST, "--port", str(self.primary().port),
            "--username", SUPERUSER, "--pgdata", str(self.data_dir), "--write-recovery-conf",
            "--wal-method", "stream", "--checkpoint", "fast", "--no-sync",
        ]  # fmt: skip
        # With TLS the copy and the streaming after it verify the primary; the recovery configuration keeps these.
        # No client certificate: a path that is not there (libpq's default is under $HOME, root's, not ours).
        tls = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.tls_dir / "ca.pem"),
               "PGSSLCERT": str(self.tls_dir / "no-client-certificate")} if self.settings.stack_tls else {}
        result = subprocess.run(basebackup, capture_output=True, text=True, check=False, user=self.run_as(),
                                env={**os.environ, **tls})
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise StackError(self.name, f"pg_basebackup failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def command(self) -> list[str]:
        return [*super().command(), "--hot-standby=on"]

    def probe(self) -> bool:
        with self._connect() as connection:
            return connection.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

    def after_start(self) -> None:
        """Nothing to create: a standby is read-only, and has the primary's roles and databases."""
