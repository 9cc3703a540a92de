"""The function container's server: under of-watchdog its ``fprocess`` (on the watchdog's upstream, the default),
without it the image's own server (``start.sh`` passes the watchdog's address: ``--host 0.0.0.0 --port 8080``)."""

import argparse

from smartcity.runtime.entrypoint import UPSTREAM_HOST, UPSTREAM_PORT, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=UPSTREAM_HOST, help=f"address to listen on (default {UPSTREAM_HOST})")
    parser.add_argument("--port", type=int, default=UPSTREAM_PORT, help=f"port (default {UPSTREAM_PORT})")
    arguments = parser.parse_args()
    main(arguments.host, arguments.port)
