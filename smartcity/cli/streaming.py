"""``smartcity streaming``: run the Spark Structured Streaming jobs locally (Spark local mode, 2 cores).

``smartcity streaming run`` runs every job (``traffic``, ``mobility``, ``anomalies``) and the audit of late and
unusable records on the settings' bus (Kafka or the embedded file bus) and database, with checkpoints in
``SMARTCITY_STREAMING_CHECKPOINT_DIR``, and serves their metrics on ``SMARTCITY_STREAMING_METRICS_PORT``.
``smartcity streaming jobs`` lists the jobs. On a cluster, ``infra/spark/submit.sh`` runs the same code.
"""

from __future__ import annotations

import logging
from typing import List

import typer
from rich.console import Console

from smartcity.errors import ConfigurationError
from smartcity.runtime import logship
from smartcity.settings import get_settings

app = typer.Typer(help="Spark streaming jobs: 5-minute windows, mobility index, anomaly flags.", no_args_is_help=True)


@app.command("jobs")
def list_jobs() -> None:
    """List the streaming jobs and what each computes."""
    from streaming.app import JOBS

    for job in JOBS.values():
        typer.echo(f"{job.name:<10} {', '.join(job.topics):<70} {job.description}")


@app.command()
def run(
    jobs: List[str] = typer.Argument(None, help="Jobs to run (default: all). See `smartcity streaming jobs`."),
    once: bool = typer.Option(False, "--once", help="Process what is on the bus now, then stop (availableNow)."),
    master: str = typer.Option(None, help="Spark master; wins over SMARTCITY_SPARK_MASTER (default local[2])."),
) -> None:
    """Run streaming jobs locally until Ctrl-C (or, with --once, until the bus is caught up)."""
    from streaming.app import run as run_jobs

    settings = get_settings()
    if master:
        settings = settings.model_copy(update={"spark_master": master})
    logship.configure(settings, "streaming")  # JSON lines, shipped to SMARTCITY_LOGS_URL as every component's
    logging.getLogger("py4j").setLevel(logging.WARNING)  # it logs every callback from the JVM at INFO
    console = Console(stderr=True)
    status = console.status("starting Spark and the streaming jobs (the first run resolves the Kafka connector)")

    def started(names: list[str]) -> None:
        status.stop()
        console.log(f"running {', '.join(names)}; metrics on :{settings.streaming_metrics_port}/metrics")

    status.start()
    try:
        run_jobs(settings, jobs or [], once=once, on_started=started)
    except ConfigurationError as error:
        raise typer.BadParameter(str(error), param_hint=error.setting) from None
    except KeyboardInterrupt:
        console.log("stopped")
    finally:
        status.stop()
