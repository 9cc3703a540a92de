"""``smartcity connect KIND URL``: poll a real feed and publish it through the ingest functions.

Kinds: ``gtfs-rt`` (GTFS-realtime), ``gbfs`` (GBFS 2.3/3.0 ``gbfs.json``), ``http`` (JSON or CSV with
``--mapping``). Every option has an environment variable (``SMARTCITY_CONNECTOR_<OPTION>``); the flag wins over
the variable, which wins over the default. Dead letters go to ``SMARTCITY_BUS_URL``'s dead-letter topic. The
ingest API key is the secret file ``ingest-api-key``, as for ``smartcity simulate --sink http``.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from smartcity.errors import ConfigurationError
from smartcity.settings import get_settings

console = Console(stderr=True)


def connect(
    kind: str = typer.Argument(..., help="gtfs-rt, gbfs or http"),
    url: str = typer.Argument(..., help="The feed's URL (GBFS: its gbfs.json)"),
    interval: Optional[float] = typer.Option(None, min=0.01, help="Seconds between polls. (env SMARTCITY_CONNECTOR_INTERVAL_S)"),
    mapping: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="Mapping file (YAML or JSON) of the http kind."),
    gateway: Optional[str] = typer.Option(None, help="Gateway of the ingest functions (default: the local one). (env SMARTCITY_CONNECTOR_GATEWAY_URL)"),
    once: bool = typer.Option(False, "--once", help="Poll once and exit: 0 when the poll worked, 1 when the feed or ingest failed."),
) -> None:
    """Poll a GTFS-realtime, GBFS or open-data feed at URL every interval; publish new and changed entities
    through the ingest functions."""
    from smartcity.backends.bus import open_bus
    from smartcity.connectors import feed_source, poller
    from smartcity.connectors.polling import Backoff, FeedUnavailable
    from smartcity.ingest_client import IngestUnavailable, client_api_key

    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r}: expected an http:// or https:// URL", param_hint="URL")
    settings = get_settings()
    try:
        source = feed_source(kind, url, mapping)
        bus = open_bus(settings.bus_url)
    except (ConfigurationError, ValueError) as error:  # ValueError: the city file or its static GTFS is bad
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    gateway_url = gateway or settings.connector_gateway_url or f"http://127.0.0.1:{settings.gateway_port}"
    polling = poller(source, gateway_url, bus, settings.topic_partitions,
                     interval if interval is not None else settings.connector_interval_s,
                     Backoff(maximum_s=settings.connector_backoff_max_s), key=client_api_key(settings))
    try:
        if once:
            try:
                report = polling.poll()
            except (FeedUnavailable, IngestUnavailable) as error:
                console.print(f"[red]error:[/] {error}")
                raise typer.Exit(1) from None
            console.print(f"{kind}: {report}")
            return
        logging.basicConfig(level=settings.log_level)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            polling.run(stop, on_poll=lambda outcome: console.print(f"{kind}: {outcome}"))
        except KeyboardInterrupt:
            console.print("stopped")
    finally:
        bus.close()


# One command with arguments, not a group of subcommands: options may follow the arguments, and the usage
# names no COMMAND.
app = connect
