"""python -m smartcity.cli: the smartcity command."""

from smartcity.cli import main

main()
