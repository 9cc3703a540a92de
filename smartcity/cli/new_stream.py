"""``smartcity new-stream NAME --fields name:type[:unit],...``: scaffold a stream in the project.

Writes the descriptor ``smartcity/streams/<name>.py`` (its model inline), the ingest function
``functions/ingest-<name>/`` (handler and test), its stack.yml entry (and the topic in the ``topic`` annotation of
the functions that read every stream), and the committed JSON Schema. Exit 2, writing nothing, on a bad name or
field, or a stream that exists. For a stream kept outside the project, write only a descriptor into
``SMARTCITY_STREAMS_DIR`` (docs/adding-a-sensor-type.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smartcity.cli.schemas import render
from smartcity.events import STREAMS
from smartcity.settings import PROJECT_ROOT
from smartcity.streams import TOPIC_NAME
from smartcity.streams._registry import descriptor_of, load_file
from smartcity.streams._scaffold import descriptor_text, handler_test_text, handler_text, module_name, parse_fields
from smartcity.streams._stack_text import add_ingest_entry, api_groups

def _refuse(param: str, reason: str) -> None:
    typer.echo(f"error: {param}: {reason}", err=True)
    raise typer.Exit(2)


def new_stream(
    name: str = typer.Argument(..., help="The stream's topic: lowercase words joined by '-', e.g. noise-levels."),
    fields: str = typer.Option(..., help="The reading's own fields, comma-separated name:type[:unit] "
                               "(type float, int, str or bool), e.g. soundLevel:float:dB(A),stationId:str."),
    description: str = typer.Option("", help="What the stream carries (one line)."),
    api_group: Optional[str] = typer.Option(None, help="Serve /v1/<group>/<name> from that API function."),
    root: Path = typer.Option(PROJECT_ROOT, help="The project to write into."),
) -> None:
    """Scaffold a new data stream: its descriptor, ingest function and tests, and its stack.yml entry."""
    if not TOPIC_NAME.fullmatch(name):
        _refuse("NAME", f"{name!r} is not lowercase letters and digits in words joined by '-'")
    stack_file = root / "stack.yml"
    descriptor = root / "smartcity" / "streams" / f"{module_name(name)}.py"
    function = root / "functions" / f"ingest-{name}"
    if name in STREAMS or descriptor.exists() or function.exists() or f"  ingest-{name}:\n" in stack_file.read_text():
        _refuse("NAME", f"the stream {name!r} exists already")
    try:
        specs = parse_fields(fields)
    except ValueError as error:
        _refuse("--fields", str(error))
    if '"' in description or "\\" in description or "\n" in description:
        _refuse("--description", "one line without double quotes or backslashes")
    if api_group is not None and api_group not in api_groups(stack_file):
        _refuse("--api-group", f"{api_group!r} has no API function; known: {', '.join(api_groups(stack_file))}")
    about = description or f"{name.replace('-', ' ')} readings"
    descriptor.write_text(descriptor_text(name, specs, about, api_group))
    stream = descriptor_of(load_file(descriptor))
    function.mkdir(parents=True)
    (function / "handler.py").write_text(handler_text(name, about[0].upper() + about[1:]))
    (function / "handler_test.py").write_text(handler_test_text(name, specs))
    add_ingest_entry(stack_file, stream)
    schema = root / "smartcity" / "events" / "schemas" / stream.schema_file
    schema.write_text(render(stream), encoding="utf-8")
    for path in (descriptor, function / "handler.py", function / "handler_test.py", stack_file, schema):
        typer.echo(f"wrote {path}")


app = new_stream  # one command (smartcity.cli registers it so): options may follow NAME
