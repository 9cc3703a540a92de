#!/bin/sh
# The image's command. With of-watchdog (copied in from WATCHDOG_IMAGE): the watchdog listens on $port and runs
# $fprocess (index.py), which serves the function on the upstream 127.0.0.1:5000. Without it: index.py serves
# the function on $port itself, so the image answers on the same address either way.
set -e
if [ -x /usr/bin/fwatchdog ]; then
    exec /usr/bin/fwatchdog
fi
exec python index.py --host 0.0.0.0 --port "${port:-8080}"
