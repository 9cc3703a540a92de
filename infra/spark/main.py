"""Entry point of the streaming jobs under spark-submit or the Spark operator: ``main.py [--once] [JOB...]``.

The same code as ``smartcity streaming run``; settings come from the SMARTCITY_* environment (see README), the
session (master, executors, Kafka connector) from spark-submit.
"""

import sys

from smartcity.settings import get_settings
from streaming.app import run
from streaming.session import submitted_session

if __name__ == "__main__":
    arguments = sys.argv[1:]
    once = "--once" in arguments
    run(get_settings(), [name for name in arguments if name != "--once"], once=once, spark=submitted_session())
