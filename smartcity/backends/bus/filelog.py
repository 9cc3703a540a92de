"""The embedded event bus (``file:///folder``): an append-only log of JSON-lines segment files, one folder per topic.

Layout under the URL's folder::

    <topic>/_meta.json                               {"partitions": N}
    <topic>/<partition>/<first-offset:020d>.jsonl    immutable segments, one record per line
    <topic>/<partition>/.lock, .next-offset          offset assignment, serialized across processes (flock)
    _groups/<group>/<topic>-<partition>              the group's committed offset: the next one to read
    _groups/<group>/.<topic>-<partition>.lock        held (flock) by the group member that owns the partition

A publisher buffers records; each :meth:`FileLogBus.flush`, or every ``batch`` records of one partition (URL option
``?batch=N``, default 1000), writes ONE new segment per partition, atomically (a dot-file, then a rename). Readers,
Spark Structured Streaming's JSON file source among them, therefore only ever see whole segments; Spark ignores
the files whose names start with ``.`` or ``_``, so it can read a topic folder as a stream. Each line is::

    {"topic", "partition", "offset", "timestamp_ms", "key", "value", "headers": {name: text}}

``key`` and ``value`` are UTF-8 text; one that is not UTF-8 is base64 with ``"key_base64": true`` or
``"value_base64": true`` beside it. ``key`` is null for keyless records. Spark reads a topic as a stream with
``spark.readStream.schema(SPARK_SCHEMA).json(topic_glob(root, topic))`` (both in :mod:`.filelog_segments`) (partition folders are not ``name=value``
folders, so a plain folder path finds nothing; ``.option("recursiveFileLookup", "true")`` on the topic folder works
too).

A keyed record's partition is a stable hash of its key (CRC-32, not Kafka's murmur2: the partition of a key is
stable here, but not the same number as on Kafka); keyless records go round robin. A consumer group's partitions
are each owned by one live member at a time: a member takes any partition no other member holds (first come, first
served; no rebalancing of partitions already held), and a closed or dead member's partitions pass to the others.
Records are durable against a crash of the process, not of the machine (no fsync), like Kafka's defaults.
"""

from __future__ import annotations

import fcntl
import itertools
import shutil
import threading
import time
import zlib
from pathlib import Path
from typing import Sequence

import orjson

from smartcity.backends._url import local_path, query_options
from smartcity.backends.bus.base import DeliveryError, Record, check_headers, check_name, offsets_to_commit
from smartcity.backends.bus.filelog_segments import (
    META_FILE, NEXT_OFFSET_FILE, PartitionReader, encode_line, flock, next_offset, segment_name, write_atomically,
)
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

GROUPS_FOLDER = "_groups"
# How often a consumer looks for partitions that no member of its group holds (a member left, a topic appeared).
CLAIM_INTERVAL_S = 0.5
IDLE_SLEEP_S = 0.02

class FileLogBus:
    """The embedded bus over one folder; safe to share between threads, and between processes on one machine."""

    def __init__(self, root: Path, batch: int = 1000) -> None:
        self.root = root
        self.batch = batch
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._partitions: dict[str, int] = {}
        self._pending: dict[tuple[str, int], list[tuple]] = {}
        self._round_robin: dict[str, itertools.count] = {}

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> FileLogBus:
        options = query_options(url)
        try:
            batch = int(options.get("batch", "1000"))
            if batch < 1:
                raise ValueError("must be at least 1")
        except ValueError as error:
            raise ConfigurationError(setting, f"option batch={options['batch']!r} in {url!r}: {error}") from None
        root = local_path(url, setting)
        try:
            return cls(root, batch=batch)
        except OSError as error:
            raise ConfigurationError(setting, f"cannot use the folder {root}: {error}") from None

    def create_topics(self, topics: Sequence[str], partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        for topic in topics:
            check_name("topic", topic)
        with flock(self.root / ".create.lock"):
            for topic in topics:
                if (self.root / topic / META_FILE).exists():
                    continue
                for partition in range(partitions):
                    (self.root / topic / str(partition)).mkdir(parents=True, exist_ok=True)
                write_atomically(self.root / topic / META_FILE, orjson.dumps({"partitions": partitions}))

    def delete_topics(self, topics: Sequence[str]) -> None:
        with self._lock, flock(self.root / ".create.lock"):
            for topic in topics:
                check_name("topic", topic)
                self._partitions.pop(topic, None)
                self._pending = {tp: records for tp, records in self._pending.items() if tp[0] != topic}
                shutil.rmtree(self.root / topic, ignore_errors=True)
                for offsets in (self.root / GROUPS_FOLDER).glob(f"*/{topic}-*"):
                    offsets.unlink(missing_ok=True)

    def partitions(self, topic: str) -> int | None:
        """How many partitions the topic has, or None when it does not exist."""
        known = self._partitions.get(topic)
        if known is None:
            try:
                known = orjson.loads((self.root / topic / META_FILE).read_bytes())["partitions"]
            except FileNotFoundError:
                return None
            self._partitions[topic] = known
        return known

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        check_name("topic", topic)
        record = (int(time.time() * 1000), None if key is None else bytes(key), bytes(value), check_headers(headers))
        with self._lock:
            count = self.partitions(topic)
            if count is None:
                raise ValueError(f"topic {topic!r} does not exist in {self.root}: create it first (create_topics)")
            if key is None:
                partition = next(self._round_robin.setdefault(topic, itertools.count())) % count
            else:
                partition = zlib.crc32(key) % count
            pending = self._pending.setdefault((topic, partition), [])
            pending.append(record)
            if len(pending) >= self.batch:
                self._write_segment(topic, partition, self._pending.pop((topic, partition)))

    def flush(self, timeout_s: float = 30.0) -> None:
        with self._lock:
            while self._pending:
                (topic, partition), records = self._pending.popitem()
                self._write_segment(topic, partition, records)

    def _write_segment(self, topic: str, partition: int, records: list[tuple]) -> None:
        partition_dir = self.root / topic / str(partition)
        try:
            with flock(partition_dir / ".lock"):
                first = next_offset(partition_dir)
                data = b"".join(encode_line(topic, partition, first + i, record) for i, record in enumerate(records))
                write_atomically(partition_dir / segment_name(first), data)
                write_atomically(partition_dir / NEXT_OFFSET_FILE, str(first + len(records)).encode())
        except OSError as error:
            raise DeliveryError(f"{len(records)} record(s) of {topic}[{partition}] not written: {error}") from error

    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = True) -> FileLogConsumer:
        return FileLogConsumer(self, check_name("group", group), [check_name("topic", t) for t in topics], from_beginning)

    def close(self) -> None:
        self.flush()


class FileLogConsumer:
    """A member of a consumer group on the file log: owns the partitions no other live member holds."""

    def __init__(self, bus: FileLogBus, group: str, topics: list[str], from_beginning: bool) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self.from_beginning = from_beginning
        self.group_dir = bus.root / GROUPS_FOLDER / group
        self.group_dir.mkdir(parents=True, exist_ok=True)
        self._owned: dict[tuple[str, int], tuple[object, PartitionReader]] = {}
        self._next_claim = 0.0
        self._turn = 0

    def _claim_free_partitions(self) -> None:
        self._next_claim = time.monotonic() + CLAIM_INTERVAL_S
        for topic in self.topics:
            for partition in range(self.bus.partitions(topic) or 0):
                if (topic, partition) not in self._owned:
                    self._try_claim(topic, partition)

    def _try_claim(self, topic: str, partition: int) -> None:
        handle = open(self.group_dir / f".{topic}-{partition}.lock", "a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return
        partition_dir = self.bus.root / topic / str(partition)
        try:
            position = int((self.group_dir / f"{topic}-{partition}").read_text())
        except FileNotFoundError:
            position = 0 if self.from_beginning else next_offset(partition_dir)
        self._owned[(topic, partition)] = (handle, PartitionReader(partition_dir, position))

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() >= self._next_claim:
                self._claim_free_partitions()
            records = self._read_owned(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            time.sleep(min(IDLE_SLEEP_S, remaining))

    def _read_owned(self, max_records: int) -> list[Record]:
        """Up to ``max_records`` from the owned partitions, starting with a different one each time (fairness)."""
        readers = [reader for _, reader in self._owned.values()]
        if not readers:
            return []
        self._turn = (self._turn + 1) % len(readers)
        records: list[Record] = []
        for reader in readers[self._turn:] + readers[: self._turn]:
            try:
                records.extend(reader.read(max_records - len(records)))
            except FileNotFoundError:  # the topic was deleted under us
                continue
            if len(records) >= max_records:
                break
        return records

    def commit(self, records: Sequence[Record]) -> None:
        for (topic, partition), offset in offsets_to_commit(records).items():
            write_atomically(self.group_dir / f"{topic}-{partition}", str(offset).encode())

    def close(self) -> None:
        for handle, reader in self._owned.values():
            reader.close()
            handle.close()
        self._owned.clear()
