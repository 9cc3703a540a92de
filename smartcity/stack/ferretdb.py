"""FerretDB v1.24 (MongoDB wire protocol) on its SQLite backend, built from its Go module; pymongo talks to it.

The SQLite files live in ``<stack_dir>/ferretdb/data/``; the binary is cached in ``<cache_dir>/bin/``. With
``SMARTCITY_STACK_TLS`` it listens with TLS only (``--listen-tls``), from the project CA; clients need no certificate.
"""

from __future__ import annotations

from pathlib import Path

from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, LocalService, run_script
from smartcity.stack.tls import ensure_tls, tls_files

FERRETDB_VERSION = "v1.24.2"


class FerretDBService(LocalService):
    name = "ferretdb"
    port_settings = ("ferretdb_port",)

    @property
    def binary(self) -> Path:
        return self.settings.cache_dir / "bin" / f"ferretdb-{FERRETDB_VERSION}"

    def install(self) -> None:
        run_script(self.name, "install-ferretdb.sh", FERRETDB_VERSION, self.binary.parent)

    def prepare(self) -> None:
        for folder in (self.data_dir, self.dir / "state"):
            folder.mkdir(exist_ok=True)
        if self.settings.stack_tls:
            ensure_tls(self.settings.stack_dir)

    def _listen_flags(self) -> list[str]:
        if not self.settings.stack_tls:
            return [f"--listen-addr={self.address}"]
        files = tls_files(self.settings.stack_dir)
        # No --listen-tls-ca-file: with it FerretDB would ask clients for certificates too.
        return ["--listen-addr=", f"--listen-tls={self.address}", f"--listen-tls-cert-file={files.cert}",
                f"--listen-tls-key-file={files.key}"]

    def command(self) -> list[str]:
        return [
            str(self.binary),
            *self._listen_flags(),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.data_dir}/",
            f"--state-dir={self.dir / 'state'}",
            "--telemetry=disable",
            "--debug-addr=-",
            "--log-level=warn",
        ]

    def _client(self):
        from pymongo import MongoClient

        timeout_ms = int(PROBE_TIMEOUT_S * 1000)
        tls = {"tls": True, "tlsCAFile": str(tls_files(self.settings.stack_dir).ca_cert)}
        return MongoClient(HOST, self.port, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                           **(tls if self.settings.stack_tls else {}))

    def probe(self) -> bool:
        with self._client() as client:
            return client.admin.command("ping").get("ok") == 1.0

    def version(self) -> str:
        with self._client() as client:
            return str(client.admin.command("buildInfo")["ferretdbVersion"]).removeprefix("v")

    def _installed_version(self) -> str:
        return FERRETDB_VERSION.removeprefix("v") if self.binary.exists() else ""
