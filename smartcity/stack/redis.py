"""Redis from Debian's packages, run as this project's own server on its own port, data in its stack folder.

With ``SMARTCITY_STACK_TLS`` the port speaks TLS only (``tls-port``, the plain port off), from the project CA.
"""

from __future__ import annotations

from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, LocalService
from smartcity.stack.tls import ensure_tls, tls_files


class RedisService(LocalService):
    name = "redis"
    port_settings = ("redis_port",)
    debian_packages = ("redis-server",)

    def prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

        if self.settings.stack_tls:
            ensure_tls(self.settings.stack_dir)

    def command(self) -> list[str]:
        return [
            "redis-server",
            "--bind", HOST, *self._port_flags(), "--dir", str(self.data_dir),
            "--daemonize", "no", "--logfile", "", "--save", "60 1000", "--appendonly", "no",
        ]  # fmt: skip

    def _port_flags(self) -> list[str]:
        if not self.settings.stack_tls:
            return ["--port", str(self.port)]
        files = tls_files(self.settings.stack_dir)
        return [
            "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(files.cert),
            "--tls-key-file", str(files.key), "--tls-ca-cert-file", str(files.ca_cert), "--tls-auth-clients", "no",
        ]  # fmt: skip

    def _client(self):
        import redis

        tls = {"ssl": True, "ssl_ca_certs": str(tls_files(self.settings.stack_dir).ca_cert), "ssl_check_hostname": True}
        return redis.Redis(host=HOST, port=self.port, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S,
                           **(tls if self.settings.stack_tls else {}))

    def probe(self) -> bool:
        with self._client() as client:
            return bool(client.ping())

    def version(self) -> str:
        with self._client() as client:
            return str(client.info("server")["redis_version"])
