"""The wheel a user installs, and virtual environments made from it, outside the checkout.

:func:`build_wheel` builds from a copy of the checkout's files (tracked and untracked, not ignored), so that no
leftover ``build/`` folder or editable install can add to it. :func:`venv_with` installs the wheel with the
extras named into a fresh virtual environment; pip takes the packages from its cache (``~/.cache/pip``) when it
has them, so a second session is quick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from smartcity.settings import PROJECT_ROOT

PIP_TIMEOUT_S = 900


def run(command: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run a command; a failure raises with its last output lines."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        raise AssertionError(f"{' '.join(map(str, command))} failed (exit {result.returncode}):\n{tail}")
    return result


def source_copy(destination: Path) -> Path:
    """The checkout's files that git does not ignore, copied to ``destination``."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():  # a file deleted in the working tree is still listed by --cached
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def build_wheel(folder: Path) -> Path:
    """``pip wheel .`` of a copy of the checkout, as the function template's Dockerfile and a user run it."""
    source = source_copy(folder / "source")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", folder / "dist", source],
        timeout=PIP_TIMEOUT_S)
    (wheel,) = (folder / "dist").glob("smartcity-*.whl")
    return wheel


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def venv_with(folder: Path, wheel: Path, extras: str) -> Path:
    """A fresh virtual environment in ``folder`` with ``wheel[extras]`` installed; returns its python."""
    run([sys.executable, "-m", "venv", folder])
    python = folder / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", f"{wheel}[{extras}]"], timeout=PIP_TIMEOUT_S,
        env=outside_environment())
    return python


def outside_environment(**variables: str) -> dict[str, str]:
    """The environment of a process that must not see the checkout: no PYTHONPATH, no SMARTCITY_* of ours."""
    keep = {name: value for name, value in os.environ.items()
            if name != "PYTHONPATH" and not name.startswith("SMARTCITY_")}
    return {**keep, **variables}
