"""A local HTTP server of feeds for the connector tests: 127.0.0.1, an ephemeral port, conditional GETs.

Each path serves a body set by the test with its ETag (a hash of the body) and a Last-Modified; a request whose
If-None-Match is the current ETag, or whose If-Modified-Since is not older than Last-Modified, gets 304.
``fail(path, *statuses)`` makes the next requests of a path answer those statuses first. Every request's path
and headers are kept, in order.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Document:
    body: bytes
    content_type: str
    modified: datetime


@dataclass
class FeedServer:
    base_url: str
    documents: dict[str, Document] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, path: str, body: bytes | str, content_type: str = "application/json") -> str:
        """Serve ``body`` at ``path`` from now on (a new Last-Modified); its URL."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            previous = self.documents.get(path)
            if previous is None or previous.body != data:
                self.documents[path] = Document(data, content_type, datetime.now(timezone.utc).replace(microsecond=0))
        return self.url(path)

    def url(self, path: str) -> str:
        return self.base_url + path

    def fail(self, path: str, *statuses: int) -> None:
        with self.lock:
            self.failures.setdefault(path, []).extend(statuses)

    def statuses(self, path: str) -> list[int]:
        return [status for seen, _, status in self.requests if seen == path]

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, Document | None, dict[str, str]]:
        with self.lock:
            if self.failures.get(path):
                status = self.failures[path].pop(0)
                self.requests.append((path, headers, status))
                return status, None, {}
            document = self.documents.get(path)
            if document is None:
                self.requests.append((path, headers, 404))
                return 404, None, {}
            etag = '"' + hashlib.sha256(document.body).hexdigest()[:16] + '"'
            validators = {"ETag": etag, "Last-Modified": format_datetime(document.modified, usegmt=True)}
            since = headers.get("if-modified-since")
            fresh = headers.get("if-none-match") == etag if "if-none-match" in headers else (
                since is not None and parsedate_to_datetime(since) >= document.modified)
            status = 304 if fresh else 200
            self.requests.append((path, headers, status))
            return status, None if fresh else document, validators


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    server: FeedServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
            status, document, validators = server.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            for name, value in validators.items():
                self.send_header(name, value)
            body = document.body if document else b""
            if document:
                self.send_header("Content-Type", document.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = FeedServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
