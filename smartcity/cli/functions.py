"""``smartcity functions``: the functions of ``stack.yml``: list them, serve them, trigger them, deploy them.

``gateway`` serves every function (or those named) on OpenFaaS's routes; ``trigger`` runs the Kafka triggers of
the Kafka-triggered ones (over whatever ``SMARTCITY_BUS_URL`` names: Kafka, or the embedded log); ``knative``
regenerates ``infra/knative/`` from the stack file; ``build`` builds the OCI image of each function with buildah
(``--base-image`` over ``SMARTCITY_FUNCTION_BASE_IMAGE``, ``--watchdog-image`` over
``SMARTCITY_FUNCTION_WATCHDOG_IMAGE``; docs/function-images.md). ``--stack`` wins over ``SMARTCITY_STACK_FILE``, ``--port``
over ``SMARTCITY_GATEWAY_PORT``, ``--workers`` over ``SMARTCITY_GATEWAY_WORKERS``, names over
``SMARTCITY_GATEWAY_FUNCTIONS``, ``--internal-port`` over ``SMARTCITY_GATEWAY_INTERNAL_PORT``, ``--metrics-port`` over
``SMARTCITY_TRIGGER_METRICS_PORT``, ``--metrics-host`` over ``SMARTCITY_INTERNAL_HOST``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from smartcity.errors import ConfigurationError
from smartcity.runtime import logship
from smartcity.runtime.function import CloudEventHandler
from smartcity.runtime.helm_values import helm_values
from smartcity.settings import PROJECT_ROOT, Settings, get_settings

app = typer.Typer(help="The functions of stack.yml: list, local gateway, Kafka triggers, Knative manifests, images.",
                  no_args_is_help=True)
console = Console(stderr=True)

StackOption = typer.Option(None, "--stack", help="Stack file; default: SMARTCITY_STACK_FILE (./stack.yml).")
Names = typer.Argument(None, help="Functions to run; default: all of the stack file.")
KNATIVE_DIR = PROJECT_ROOT / "infra" / "knative"


def _stack(stack: Path | None) -> Path:
    return stack or get_settings().stack_file


@app.command("list")
def list_functions(stack: Path | None = StackOption) -> None:
    """Every function: its kind, trigger, output topic, delivery spec and image."""
    from smartcity.runtime.loader import load_stack

    table = Table("function", "kind", "trigger", "output topic", "delivery", "image")
    for function in load_stack(_stack(stack), get_settings()):
        handler = function.handler
        kind = "http" if not isinstance(handler, CloudEventHandler) else (
            f"cloudevent, batch {handler.batch_size}" if handler.is_batch else "cloudevent")
        spec = function.spec
        delivery = (f"retry {spec.delivery.retry}, {spec.delivery.backoff_policy} {spec.delivery.backoff_delay}, "
                    f"then {spec.delivery.dead_letter_topic}") if spec.topics else ""
        table.add_row(function.name, kind, spec.trigger, spec.output_topic or "", delivery, spec.entry.image)
    Console(width=200).print(table)


@app.command()
def gateway(
    names: list[str] | None = Names,
    stack: Path | None = StackOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int | None = typer.Option(None, help="Port; default: SMARTCITY_GATEWAY_PORT."),
    internal_port: int | None = typer.Option(
        None, min=0, help="Port of /healthz and /metrics alone, at SMARTCITY_INTERNAL_HOST (0: on --port); default: "
                          "SMARTCITY_GATEWAY_INTERNAL_PORT."),
    workers: int | None = typer.Option(None, min=1, help="Processes; default: SMARTCITY_GATEWAY_WORKERS (0: one per CPU)."),
    ssl_certfile: Path | None = typer.Option(
        None, help="Serve HTTPS with this certificate (PEM); default: the stack's when SMARTCITY_STACK_TLS is on."),
    ssl_keyfile: Path | None = typer.Option(None, help="The certificate's private key (PEM), with --ssl-certfile."),
) -> None:
    """Serve the functions on /function/<name>, /async-function/<name>, /system/functions; /healthz and /metrics on
    the internal port."""
    from smartcity.runtime.draining import exit_zero_on_sigterm
    from smartcity.runtime.gateway import build_gateway, gateway_function_names
    from smartcity.runtime.internal import serve
    from smartcity.runtime.metrics import shared_across_processes

    settings = get_settings()
    if internal_port is not None:  # the flag wins; worker processes read it from the environment
        os.environ["SMARTCITY_GATEWAY_INTERNAL_PORT"] = str(internal_port)
        settings = settings.model_copy(update={"gateway_internal_port": internal_port})
    exit_zero_on_sigterm()  # SIGTERM: unready, drain, exit 0 (smartcity.runtime.draining)
    logship.configure(settings, "gateway")
    workers = worker_count(workers, settings.gateway_workers)
    port = port or settings.gateway_port
    tls = gateway_tls(settings, ssl_certfile, ssl_keyfile)
    scheme = "https" if tls else "http"
    iport = settings.gateway_internal_port
    internal = f"; /healthz, /metrics on {scheme}://{settings.internal_host}:{iport}" if iport else ""
    # proxy_headers off: the client address is the guard's to read, from trusted proxies only
    # (SMARTCITY_GATEWAY_TRUSTED_PROXIES); uvicorn's own would take X-Forwarded-For from any caller on 127.0.0.1
    listen = dict(host=host, port=port, internal_host=settings.internal_host, internal_port=iport,
                  timeout_graceful_shutdown=settings.gateway_drain_timeout_s, proxy_headers=False, **tls)
    if workers > 1:
        # Each worker process builds its own gateway from the settings, which these variables hand down to it.
        os.environ["SMARTCITY_STACK_FILE"] = str(_stack(stack).resolve())
        os.environ["SMARTCITY_GATEWAY_FUNCTIONS"] = ",".join(names or []) or settings.gateway_functions
        console.print(f"gateway: {workers} workers on {scheme}://{host}:{port}{internal}")
        with shared_across_processes():  # /metrics sums every worker's counts, whichever worker answers
            serve("smartcity.runtime.gateway:gateway_from_settings", factory=True, workers=workers, **listen)
        return
    with console.status("loading functions"):
        app_ = build_gateway(_stack(stack), settings, names or gateway_function_names(settings))
    console.print(f"gateway: {len(app_.state.function_apps)} functions on {scheme}://{host}:{port}{internal}")
    serve(app_, **listen)


def gateway_tls(settings: Settings, certfile: Path | None, keyfile: Path | None) -> dict[str, str]:
    """uvicorn's HTTPS options: the files named (both or neither), else the stack's certificate when
    SMARTCITY_STACK_TLS is on (made if missing), else none (plain HTTP)."""
    if (certfile is None) != (keyfile is None):
        raise typer.BadParameter("--ssl-certfile and --ssl-keyfile go together", param_hint="--ssl-keyfile")
    if certfile is None and settings.stack_tls:
        from smartcity.stack.tls import ensure_tls

        files = ensure_tls(settings.stack_dir)
        certfile, keyfile = files.cert, files.key
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)} if certfile is not None else {}


def worker_count(option: int | None, setting: int) -> int:
    """``--workers``, else ``SMARTCITY_GATEWAY_WORKERS``, else (0) one per CPU this process may run on (its
    affinity, which ``taskset`` and cpusets narrow)."""
    return option or setting or len(os.sched_getaffinity(0))


@app.command()
def trigger(
    names: list[str] | None = Names,
    stack: Path | None = StackOption,
    metrics_port: int | None = typer.Option(None, help="Port of /metrics (0: none); default: SMARTCITY_TRIGGER_METRICS_PORT."),
    metrics_host: str | None = typer.Option(
        None, help="Address /metrics listens on (0.0.0.0 in a container); default: SMARTCITY_INTERNAL_HOST."),
) -> None:
    """Run the Kafka triggers: one consumer group per function, retries, dead-letter topic, dedup. Ctrl-C stops."""
    from prometheus_client import start_http_server

    from smartcity.runtime import heap
    from smartcity.runtime.loader import load_stack
    from smartcity.runtime.trigger import Triggers

    settings = get_settings()
    logship.configure(settings, "trigger")
    with console.status("loading functions"):
        functions = load_stack(_stack(stack), settings, names or ())
        if not names:
            functions = [function for function in functions if function.spec.topics]
        triggers = Triggers(functions)
    port = settings.trigger_metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr=metrics_host or settings.internal_host, registry=triggers.metrics.registry)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    heap.settle()
    triggers.start()
    console.print(f"triggers running: {', '.join(f'{f.name} <- {f.spec.trigger}' for f in functions)}"
                  + (f"; metrics on :{port}/metrics" if port else ""))
    stopping.wait()
    console.print("stopping: finishing the events in hand")
    triggers.stop()


@app.command()
def knative(
    stack: Path | None = StackOption,
    out: Path = typer.Option(KNATIVE_DIR, help="Folder of the manifests."),
    check: bool = typer.Option(False, help="Write nothing; fail if the manifests are not up to date."),
) -> None:
    """Generate the Knative manifests (Service, KafkaSource with delivery, dead-letter KafkaSinks) from stack.yml."""
    from smartcity.runtime import knative as manifests

    settings = get_settings()
    options = (_stack(stack), out, settings.knative_namespace, settings.knative_kafka_bootstrap_servers)
    if check:
        stale = manifests.stale_files(*options)
        if stale:
            console.print(f"[red]out of date:[/red] {', '.join(stale)}; run `smartcity functions knative`")
            raise typer.Exit(1)
        console.print(f"{out} is up to date")
        return
    for path in manifests.write(*options):
        console.print(f"wrote {path}")


@app.command()
def build(
    names: list[str] | None = typer.Argument(None, help="Functions to build; default: all of the stack file."),
    stack: Path | None = StackOption,
    base_image: str | None = typer.Option(
        None, help="`local` (Debian bookworm by mmdebstrap) or an image with Python 3.11; default: "
                   "SMARTCITY_FUNCTION_BASE_IMAGE (local)."),
    watchdog_image: str | None = typer.Option(
        None, help="Image holding /fwatchdog; default: SMARTCITY_FUNCTION_WATCHDOG_IMAGE (none on the local base)."),
) -> None:
    """Build the OCI image of each function with buildah, from templates/smartcity-python3; print sizes and times."""
    from smartcity.stack.base import StackError
    from smartcity.stack.images import build_images

    settings = get_settings()
    overrides = {"function_base_image": base_image, "function_watchdog_image": watchdog_image}
    settings = settings.model_copy(update={name: value for name, value in overrides.items() if value is not None})
    try:
        built = build_images(settings, _stack(stack).resolve(), names or ())
    except (StackError, ConfigurationError) as error:  # a build, or the stack file
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    table = Table("function", "image", "seconds", "size (MB)")
    for image in built:
        table.add_row(image.function, image.image, f"{image.seconds:.1f}", f"{image.size_mb:.0f}")
    Console(width=200).print(table)


app.command("helm-values")(helm_values)
