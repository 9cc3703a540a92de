"""``smartcity token``: local JWT keys and tokens for calling the REST API.

``smartcity token keys`` writes an HS256 key and an RS256 key pair into the secrets folder
(``SMARTCITY_SECRETS_DIR``, or ``--secrets-dir``, which wins); ``smartcity token issue --role operator`` prints a
token signed with them (``--role ingest --scope <stream>``: a token that may write those streams);
``smartcity token examples`` prints how to call the API with one; ``smartcity token ingest-key --source <name>
--stream <stream>`` adds an ingest API key to ``ingest-api-keys`` and prints it. Meant for local use and tests: in
production the keys are OpenFaaS secrets.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import typer

from smartcity.api.auth import ALGORITHMS, KeyRing, Role, create_local_keys, issue_token
from smartcity.api.usage import how_to_call
from smartcity.errors import ConfigurationError
from smartcity.settings import get_settings

app = typer.Typer(help="Issue JWTs for the REST API, and create local signing keys.", no_args_is_help=True)

_DURATION = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``."""
    match = _DURATION.match(text.strip())
    if match is None or int(match["amount"]) == 0:
        raise typer.BadParameter(f"{text!r} is not a positive duration like 3600, 90s, 15m, 12h or 7d")
    return timedelta(seconds=int(match["amount"]) * _UNIT_SECONDS[match["unit"]])


def _settings(secrets_dir: Path | None):
    settings = get_settings()
    return settings.model_copy(update={"secrets_dir": secrets_dir}) if secrets_dir else settings


SecretsDirOption = typer.Option(
    None, "--secrets-dir", help="Folder of the key files; wins over SMARTCITY_SECRETS_DIR."
)


@app.command()
def keys(
    secrets_dir: Path | None = SecretsDirOption,
    overwrite: bool = typer.Option(False, help="Replace existing key files (tokens signed with them stop working)."),
) -> None:
    """Write jwt-hs256-key, jwt-rs256-private.pem and jwt-rs256-public.pem (existing ones are kept)."""
    folder = _settings(secrets_dir).secrets_dir
    try:
        written = create_local_keys(folder, overwrite=overwrite)
    except (ConfigurationError, OSError) as error:
        raise typer.BadParameter(str(error), param_hint="--secrets-dir") from None
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo(f"the keys in {folder} exist already (use --overwrite to replace them)")


@app.command()
def issue(
    role: Role = typer.Option(..., help="The caller's role: viewer reads, operator writes incidents, admin administers."),
    alg: str = typer.Option("HS256", help=f"Signing algorithm: {' or '.join(ALGORITHMS)}."),
    ttl: str = typer.Option("1h", help="How long the token is valid: 3600, 90s, 15m, 12h, 7d."),
    subject: str = typer.Option("local-user", help="The token's subject (who the caller is)."),
    scope: list[str] = typer.Option([], "--scope", help="With --role ingest: a stream it may write (repeat; * for all)."),
    secrets_dir: Path | None = SecretsDirOption,
) -> None:
    """Print a signed token; call the API with `Authorization: Bearer <token>`."""
    if role is Role.ingest and not scope:
        raise typer.BadParameter("an ingest token needs the streams it may write", param_hint="--scope")
    if alg not in ALGORITHMS:
        raise typer.BadParameter(f"{alg!r} is not one of {', '.join(ALGORITHMS)}", param_hint="--alg")
    lifetime = parse_duration(ttl)
    try:
        token = issue_token(KeyRing(_settings(secrets_dir)), subject, role, algorithm=alg, ttl=lifetime, scopes=scope)
    except ConfigurationError as error:
        raise typer.BadParameter(f"{error}; run `smartcity token keys` first", param_hint="--secrets-dir") from None
    typer.echo(token)


@app.command()
def examples(
    base_url: str = typer.Option(None, help="The gateway's URL; default http://127.0.0.1:<SMARTCITY_GATEWAY_PORT>."),
    secrets_dir: Path | None = SecretsDirOption,
) -> None:
    """Print how to call the API: the docs page, a viewer token, and curl commands."""
    settings = _settings(secrets_dir)
    try:
        token = issue_token(KeyRing(settings), "local-user", Role.viewer)
    except ConfigurationError as error:
        raise typer.BadParameter(f"{error}; run `smartcity token keys` first", param_hint="--secrets-dir") from None
    typer.echo(how_to_call(base_url or f"http://127.0.0.1:{settings.gateway_port}", token))


@app.command("ingest-key")
def ingest_key(
    source: str = typer.Option(..., help="Who holds the key (a device, a gateway, a partner): named in the logs."),
    stream: list[str] = typer.Option(..., "--stream", help="A stream the key may write (repeat; * for all)."),
    secrets_dir: Path | None = SecretsDirOption,
) -> None:
    """Add an ingest API key to the secret ingest-api-keys (stored hashed) and print it, once: send it as X-API-Key."""
    from smartcity.events import STREAMS
    from smartcity.runtime.credentials import ALL_STREAMS, add_ingest_key

    unknown = sorted(set(stream) - set(STREAMS) - {ALL_STREAMS})
    if unknown:
        raise typer.BadParameter(f"unknown streams {unknown}; known: {', '.join(STREAMS)}", param_hint="--stream")
    typer.echo(add_ingest_key(_settings(secrets_dir).secrets_dir, source, stream))
