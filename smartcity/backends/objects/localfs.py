"""The embedded object store (``file:///folder``): one file per object, the key as its path under the folder.

Writes are atomic (a dot-file, then a rename), so a reader sees the old object or the new one, never half of
one. Keys follow the contract's rules, which keep every path inside the folder. Folders left empty by a delete
are removed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from smartcity.backends._url import local_path
from smartcity.backends.objects.base import check_key
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> LocalObjectStore:
        root = local_path(url, setting)
        try:
            return cls(root)
        except OSError as error:
            raise ConfigurationError(setting, f"cannot use the folder {root}: {error}") from None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        for attempt in (1, 2):  # a concurrent delete may remove the (empty) folder between mkdir and write
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
            try:
                temporary.write_bytes(data)
                os.replace(temporary, path)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        folder_of_prefix = prefix.rpartition("/")[0]
        if folder_of_prefix:
            try:
                check_key(folder_of_prefix)
            except ValueError:
                return []  # no valid key lies under it
        keys = []
        for folder, subfolders, files in os.walk(self.root / folder_of_prefix):
            relative = os.path.relpath(folder, self.root)
            base = "" if relative == "." else relative + "/"
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            keys += [base + name for name in files if not name.startswith(".") and (base + name).startswith(prefix)]
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return
        for folder in path.parents:
            if folder == self.root:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): stop here
                break

    def close(self) -> None:
        """Nothing to release."""
