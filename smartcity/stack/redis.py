"""Redis from Debian's packages, run as this project's own server on its own port, data in its stack folder."""

from __future__ import annotations

from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, LocalService


class RedisService(LocalService):
    name = "redis"
    port_settings = ("redis_port",)
    debian_packages = ("redis-server",)

    def prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [
            "redis-server",
            "--bind", HOST, "--port", str(self.port), "--dir", str(self.data_dir),
            "--daemonize", "no", "--logfile", "", "--save", "60 1000", "--appendonly", "no",
        ]  # fmt: skip

    def _client(self):
        import redis

        return redis.Redis(host=HOST, port=self.port, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)

    def probe(self) -> bool:
        with self._client() as client:
            return bool(client.ping())

    def version(self) -> str:
        with self._client() as client:
            return str(client.info("server")["redis_version"])
