"""The platform's real local services, run as this project's own processes: ``smartcity stack up|down|status``.

Kafka (KRaft, one node), PostgreSQL, Redis, FerretDB (MongoDB wire protocol), an S3-compatible server (S3Proxy)
and Prometheus, each installed by a script of ``infra/local/`` into ``settings.cache_dir`` and run with its data,
log and pid file in ``settings.stack_dir/<service>/``. :func:`up` is idempotent (a healthy service is left alone)
and starts services concurrently; :func:`down` leaves no process behind; :func:`settings_env` gives the
``SMARTCITY_*`` settings that point the platform at these services. A test session's ``down`` leaves the servers
running while another session uses them (:mod:`smartcity.stack.users`).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from smartcity.settings import Settings, get_settings
from smartcity.stack import users
from smartcity.stack.base import HOST, LocalService, ServiceStatus, StackError, install_debian_packages
from smartcity.stack.ferretdb import FerretDBService
from smartcity.stack.kafka import KafkaService
from smartcity.stack.postgres import DATABASE, ROLE, PostgresService
from smartcity.stack.postgres_replica import PostgresReplicaService
from smartcity.stack.prometheus import PrometheusService
from smartcity.stack.redis import RedisService
from smartcity.stack.s3 import BUCKET, S3Service, secrets_dir
from smartcity.stack.tls import ensure_tls, tls_files
from smartcity.stack.victorialogs import INSERT_PATH, VictoriaLogsService

__all__ = ["OPTIONAL_SERVICES", "SERVICES", "ServiceStatus", "StackError", "down", "services", "settings_env", "status", "up"]

SERVICES: dict[str, type[LocalService]] = {
    service.name: service
    for service in (KafkaService, PostgresService, RedisService, FerretDBService, S3Service, PrometheusService,
                    VictoriaLogsService)
}
# Started only when named (``smartcity stack up postgres-replica``); ``down`` of everything stops them too.
OPTIONAL_SERVICES: dict[str, type[LocalService]] = {PostgresReplicaService.name: PostgresReplicaService}

Progress = Callable[[str], None]


def services(names: list[str] | None = None, settings: Settings | None = None) -> list[LocalService]:
    """The services named (all of :data:`SERVICES` when None), in the order of :data:`SERVICES` then
    :data:`OPTIONAL_SERVICES`; an unknown name is an error."""
    settings = settings or get_settings()
    known = {**SERVICES, **OPTIONAL_SERVICES}
    unknown = sorted(set(names or ()) - known.keys())
    if unknown:
        raise StackError(", ".join(unknown), f"unknown service; the services are {', '.join(known)}")
    if names is None:
        return [service(settings) for service in SERVICES.values()]
    return [service(settings) for name, service in known.items() if name in names]


@contextmanager
def _stack_lock(settings: Settings) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per stack folder, across processes (test sessions, CLI)."""
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    with (settings.stack_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_all(action: Callable[[LocalService], object], chosen: list[LocalService]) -> list[object]:
    """Run ``action`` on every service at once; raise one :class:`StackError` naming every service that failed."""

    def attempt(service: LocalService) -> object:
        try:
            return action(service)
        except Exception as error:  # noqa: BLE001 - gathered and raised below, naming the service
            return error if isinstance(error, StackError) else StackError(service.name, repr(error))

    with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
        results = list(pool.map(attempt, chosen))
    failures = [result for result in results if isinstance(result, StackError)]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise StackError(", ".join(failure.service for failure in failures), "\n".join(map(str, failures)))
    return results


def up(names: list[str] | None = None, progress: Progress | None = None) -> list[str]:
    """Install and start the services that are not running (all when ``names`` is None), wait until each is
    healthy, and return the names of those it started. Healthy services are left alone. When one fails, what this
    call launched is stopped again before its StackError is raised: nothing is left half up."""
    report = progress or (lambda message: None)
    settings = get_settings()
    chosen = services(names, settings)
    with _stack_lock(settings):
        users.register(settings.stack_dir)
        if settings.stack_tls:
            report(f"TLS: the project CA is {ensure_tls(settings.stack_dir).ca_cert}")
        if packages := [package for service in chosen for package in service.debian_packages]:
            report(f"checking Debian packages: {', '.join(packages)}")
            install_debian_packages("stack", packages)

        def bring_up(service: LocalService) -> bool:
            begun = time.monotonic()
            report(f"{service.name}: installing (cached after the first time)")
            service.install()
            report(f"{service.name}: starting")
            try:
                started = service.start()
            except BaseException:
                launched.append(service)  # it may have launched before it failed: any process of it is this call's
                raise
            if started:
                launched.append(service)
            report(f"{service.name}: {'started' if started else 'already running'}, healthy at {service.address} "
                   f"({time.monotonic() - begun:.1f}s)")
            return started

        launched: list[LocalService] = []
        try:
            started = _run_all(bring_up, chosen)
        except StackError:
            for service in launched:
                report(f"{service.name}: {'stopped again' if service.stop() else 'not running'}")
            raise
    return [service.name for service, was_started in zip(chosen, started, strict=True) if was_started]


def down(only: list[str] | None = None, progress: Progress | None = None, force: bool = False) -> None:
    """Stop the services named (all when None) and wait until none of their processes is left.

    While another live process that called :func:`up` (another test session) still uses the stack, the services
    are left running for it, unless ``force``.
    """
    report = progress or (lambda message: None)
    settings = get_settings()
    chosen = services(only, settings)
    if only is None:  # everything: the optional services that run too
        chosen += [service for service in services(list(OPTIONAL_SERVICES), settings) if service.pid() is not None]
    with _stack_lock(settings):
        users.unregister(settings.stack_dir)
        if chosen and not force and (others := users.others(settings.stack_dir)):
            report(f"left running: {', '.join(service.name for service in chosen)} (still used by processes {others})")
            return

        def bring_down(service: LocalService) -> None:
            report(f"{service.name}: {'stopped' if service.stop() else 'was not running'}")

        _run_all(bring_down, chosen)


def status(names: list[str] | None = None) -> list[ServiceStatus]:
    """Service, address, health and version of each service (all when None)."""
    chosen = services(names)
    with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
        return list(pool.map(LocalService.status, chosen))


def settings_env(settings: Settings | None = None) -> dict[str, str]:
    """The ``SMARTCITY_*`` settings that point the platform at the local services."""
    settings = settings or get_settings()
    tls = settings.stack_tls
    secure_s3 = "?secure=true" if tls else ""
    return {
        "SMARTCITY_BUS_URL": f"kafka://{HOST}:{settings.kafka_port}" + ("?security.protocol=SSL" if tls else ""),
        "SMARTCITY_DATABASE_URL": f"postgresql://{ROLE}@{HOST}:{settings.postgres_port}/{DATABASE}"
        + ("?sslmode=verify-full" if tls else ""),
        "SMARTCITY_DOCUMENTS_URL": f"mongodb://{HOST}:{settings.ferretdb_port}/{DATABASE}" + ("?tls=true" if tls else ""),
        "SMARTCITY_CACHE_URL": f"{'rediss' if tls else 'redis'}://{HOST}:{settings.redis_port}/0",
        "SMARTCITY_OBJECTS_URL": f"s3://{HOST}:{settings.s3_port}/{BUCKET}{secure_s3}",
        "SMARTCITY_BACKUP_URL": f"s3://{HOST}:{settings.s3_port}/{BUCKET}-backups{secure_s3}",
        **({"SMARTCITY_TLS_CA_FILE": str(tls_files(settings.stack_dir).ca_cert)} if tls else {}),
        "SMARTCITY_SECRETS_DIR": str(secrets_dir(settings.stack_dir)),
        "SMARTCITY_PROMETHEUS_URL": f"http://{HOST}:{settings.prometheus_port}",
        "SMARTCITY_LOGS_URL": f"http://{HOST}:{settings.victorialogs_port}{INSERT_PATH}",
    }
