"""Editing stack.yml as text (so its comments stay): a stream's ingest entry, and its topic for every-stream readers."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from smartcity.runtime.stream_entries import EVERY_STREAM, ingest_entry, ingest_name
from smartcity.streams import Stream

ENTRY = re.compile(r"^  ([a-z0-9][-a-z0-9]*):\s*$")
TOPIC_LINE = re.compile(r"^(\s+topic: )(.+)$")
STORAGE_COMMENT = "  # Storage:"


def api_groups(stack_file: Path) -> list[str]:
    functions = (yaml.safe_load(stack_file.read_text()) or {}).get("functions") or {}
    return sorted(name.removeprefix("api-") for name in functions if name.startswith("api-"))


def every_stream_functions(stack_file: Path) -> set[str]:
    functions = (yaml.safe_load(stack_file.read_text()) or {}).get("functions") or {}
    return {name for name, entry in functions.items()
            if str((entry.get("annotations") or {}).get(EVERY_STREAM, "")).lower() == "true"}


def entry_text(stream: Stream) -> str:
    entry = ingest_entry(stream, f"./functions/{ingest_name(stream)}")
    body = yaml.safe_dump(entry, sort_keys=False, default_flow_style=False)
    return f"  {ingest_name(stream)}:\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "\n"


def add_ingest_entry(stack_file: Path, stream: Stream) -> None:
    """Add the stream's ingest entry before the storage functions (or at the end), and its topic to the ``topic``
    annotation of each every-stream function."""
    readers = every_stream_functions(stack_file)
    lines, current, out = stack_file.read_text().splitlines(keepends=True), None, []
    placed = False
    for line in lines:
        if not placed and line.startswith(STORAGE_COMMENT):
            out.append(entry_text(stream))
            placed = True
        if match := ENTRY.match(line):
            current = match[1]
        topic = TOPIC_LINE.match(line.rstrip("\n"))
        if current in readers and topic:
            line = f"{topic[1]}{topic[2]},{stream.topic}\n"
        out.append(line)
    if not placed:
        out.append(("\n" if out and out[-1].strip() else "") + entry_text(stream))
    stack_file.write_text("".join(out))
