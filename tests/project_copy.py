"""A copy of the project's files (tracked, and new ones git does not ignore) for tests that must change or watch
the project without touching the checkout, and a snapshot of a folder's files to tell whether anything changed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from smartcity.settings import PROJECT_ROOT


def copy_project(destination: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT,
                            capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (PROJECT_ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, destination / name)
    return destination


def snapshot(root: Path) -> dict[str, str]:
    """Each file under ``root`` (but Python's byte-code caches) with the digest of its content."""
    return {str(path.relative_to(root)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and "__pycache__" not in path.parts}
