"""``smartcity schemas``: the JSON Schema of every stream's event, one ``<ce_type>.schema.json`` file each."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smartcity.events import STREAMS, Stream

app = typer.Typer(help="Event schemas of the data streams (each stream's descriptor: smartcity/streams/).", no_args_is_help=True)

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "events" / "schemas"


def schema_document(stream: Stream) -> dict:
    """The JSON Schema (2020-12) of ``stream``'s events, tagged with its CloudEvent type, topic and key."""
    schema = stream.model.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": stream.schema_file,
        **schema,
        "x-cloudevents-type": stream.ce_type,
        "x-topic": stream.topic,
        "x-record-key": stream.key_field,
        "x-personal-fields": stream.personal_fields,
    }


def render(stream: Stream) -> str:
    return json.dumps(schema_document(stream), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@app.command()
def export(folder: Path = typer.Argument(SCHEMAS_DIR, help="Where to write <ce_type>.schema.json files.")) -> None:
    """Write the JSON Schema of each stream's CloudEvent data to FOLDER."""
    folder.mkdir(parents=True, exist_ok=True)
    for stream in STREAMS.values():
        path = folder / stream.schema_file
        path.write_text(render(stream), encoding="utf-8")
        typer.echo(f"{stream.topic:18} {path}")


@app.command("list")
def list_streams() -> None:
    """Print each stream's topic, CloudEvent type, model and record key."""
    for stream in STREAMS.values():
        typer.echo(f"{stream.topic:18} {stream.ce_type:38} {stream.model.__name__:24} key={stream.key_field}")
