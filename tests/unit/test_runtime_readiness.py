"""wait_until_ready: returns once the URL answers, fails fast naming the exit code of a process that died, and
times out naming the last answer."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from smartcity.runtime.readiness import NotReady, wait_until_ready
from tests.ports import free_port

SERVER = """
import http.server, sys, time
time.sleep(float(sys.argv[2]))
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(int(sys.argv[3])); self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
"""


@pytest.fixture
def server():
    started = []

    def start(delay_s: float, status: int) -> tuple[str, subprocess.Popen]:
        port = free_port()
        started.append(subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(delay_s), str(status)]))
        return f"http://127.0.0.1:{port}/healthz", started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_it_returns_once_the_server_answers(server):
    url, process = server(delay_s=1.0, status=200)
    wait_until_ready(url, timeout_s=20, process=process)


def test_it_times_out_naming_the_last_answer(server):
    url, process = server(delay_s=0.0, status=503)
    started = time.monotonic()
    with pytest.raises(NotReady, match=r"not ready within 1.5 s \(last answer 503\)"):
        wait_until_ready(url, timeout_s=1.5, process=process)
    assert time.monotonic() - started < 6


def test_accept_decides_which_answers_count(server):
    url, process = server(delay_s=0.0, status=404)
    wait_until_ready(url, timeout_s=20, process=process, accept=lambda status: status < 500)


def test_an_exited_process_fails_at_once_with_its_exit_code_and_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("address already in use")
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    process.wait()
    started = time.monotonic()
    with pytest.raises(NotReady, match=r"exited with code 3:\naddress already in use") as raised:
        wait_until_ready(f"http://127.0.0.1:{free_port()}/healthz", timeout_s=60, process=process, log=log)
    assert raised.value.returncode == 3
    assert time.monotonic() - started < 2
