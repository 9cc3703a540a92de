"""The on-disk format of the embedded bus (:mod:`smartcity.backends.bus.filelog`): segment files, their lines,
offsets and the reader of one partition. The bus and its consumer groups are in ``filelog``; the layout and the
line format are described there.
"""

from __future__ import annotations

import base64
import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson

from smartcity.backends.bus.base import Record

META_FILE = "_meta.json"
NEXT_OFFSET_FILE = ".next-offset"
SEGMENT_SUFFIX = ".jsonl"


# The DDL schema of a segment line, for Spark's JSON reader.
SPARK_SCHEMA = (
    "topic STRING, partition INT, offset BIGINT, timestamp_ms BIGINT, key STRING, key_base64 BOOLEAN, "
    "value STRING, value_base64 BOOLEAN, headers MAP<STRING, STRING>"
)


def topic_glob(root: Path | str, topic: str) -> str:
    """The path pattern of every segment of a topic, as Spark's file source takes it."""
    return f"{root}/{topic}/*/*{SEGMENT_SUFFIX}"


def segment_name(first_offset: int) -> str:
    return f"{first_offset:020d}{SEGMENT_SUFFIX}"


@contextmanager
def flock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if absent), between processes and between threads alike."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def segment_offsets(partition_dir: Path) -> list[int]:
    """First offsets of the partition's segments, sorted."""
    return sorted(
        int(name[: -len(SEGMENT_SUFFIX)])
        for name in os.listdir(partition_dir)
        if name.endswith(SEGMENT_SUFFIX) and name[0].isdigit()
    )


def end_offset(partition_dir: Path) -> int:
    """The offset the next record of the partition gets: the end of its last segment."""
    firsts = segment_offsets(partition_dir)
    if not firsts:
        return 0
    return firsts[-1] + (partition_dir / segment_name(firsts[-1])).read_bytes().count(b"\n")


def next_offset(partition_dir: Path) -> int:
    """Like :func:`end_offset` in O(1), from the hint file; a stale hint (a writer died after its rename) is redone."""
    try:
        hinted = int((partition_dir / NEXT_OFFSET_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return end_offset(partition_dir)
    return end_offset(partition_dir) if (partition_dir / segment_name(hinted)).exists() else hinted


def _encode_bytes(line: dict, name: str, data: bytes | None) -> None:
    if data is None:
        line[name] = None
        return
    try:
        line[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        line[name] = base64.b64encode(data).decode("ascii")
        line[f"{name}_base64"] = True


def _decode_bytes(line: dict, name: str) -> bytes | None:
    text = line.get(name)
    if text is None:
        return None
    return base64.b64decode(text) if line.get(f"{name}_base64") else text.encode("utf-8")


def encode_line(topic: str, partition: int, offset: int, record: tuple) -> bytes:
    timestamp_ms, key, value, headers = record
    line = {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": timestamp_ms}
    _encode_bytes(line, "key", key)
    _encode_bytes(line, "value", value)
    line["headers"] = {name: data.decode("utf-8") for name, data in headers}
    return orjson.dumps(line) + b"\n"


def decode_line(raw: bytes) -> Record:
    line = orjson.loads(raw)
    return Record(
        topic=line["topic"],
        partition=line["partition"],
        offset=line["offset"],
        key=_decode_bytes(line, "key"),
        value=_decode_bytes(line, "value") or b"",
        headers=[(name, text.encode("utf-8")) for name, text in line["headers"].items()],
        timestamp_ms=line["timestamp_ms"],
    )


class PartitionReader:
    """Reads one partition forward from a position, segment after segment."""

    def __init__(self, partition_dir: Path, position: int) -> None:
        self.partition_dir = partition_dir
        self.position = position
        self._file = None
        # True when the position is the first offset of a segment (or of the next segment to come): the next
        # segment is then found by name, without listing the folder.
        self._at_boundary = False

    def read(self, max_records: int) -> list[Record]:
        records: list[Record] = []
        while len(records) < max_records:
            if self._file is None and not self._open_segment():
                break
            raw = self._file.readline()
            if not raw:
                self._file.close()
                self._file, self._at_boundary = None, True
                continue
            record = decode_line(raw)
            if record.offset >= self.position:
                records.append(record)
                self.position = record.offset + 1
        return records

    def _open_segment(self) -> bool:
        if self._at_boundary:
            try:
                self._file = open(self.partition_dir / segment_name(self.position), "rb")
                return True
            except FileNotFoundError:
                return False
        firsts = segment_offsets(self.partition_dir)
        containing = [first for first in firsts if first <= self.position]
        if not containing:
            self._at_boundary = True
            return False
        self._file = open(self.partition_dir / segment_name(containing[-1]), "rb")
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
