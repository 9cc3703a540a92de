"""buildah and the base images of the function images: running buildah, sizes, and the local Debian bases.

No public registry is reachable here, so the local bases are made by mmdebstrap: a Debian bookworm minbase
(Python 3.11, as the package's ``requires-python`` asks) without documentation, manuals, translations or iconv
modules, as ``python-base`` (what a function runs on) and ``python-build`` (the same with pip, where its packages
are installed). Each is made once: its root tarball is kept under ``<cache_dir>/images`` and the image committed
into buildah's storage. Where a registry is reachable, ``SMARTCITY_FUNCTION_BASE_IMAGE`` names another base (the
official ``python:3.11-slim-bookworm``), which comes with OpenFaaS's of-watchdog.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smartcity.settings import Settings
from smartcity.stack.base import StackError, install_debian_packages

TOOLS = ("buildah", "mmdebstrap")
LOCAL_BASE = "local"  # the setting's value that names the local bases
LOCAL_BASE_IMAGE = "localhost/smartcity/python-base:bookworm"
LOCAL_BUILD_IMAGE = "localhost/smartcity/python-build:bookworm"
OFFICIAL_WATCHDOG_IMAGE = "ghcr.io/openfaas/of-watchdog:0.11.5"
DEBIAN_SUITE = "bookworm"  # its python3 is 3.11
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python-is-python3", "ca-certificates")
LOCAL_IMAGES = {LOCAL_BASE_IMAGE: BASE_PACKAGES, LOCAL_BUILD_IMAGE: (*BASE_PACKAGES, "python3-pip")}
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/lib/x86_64-linux-gnu/gconv/*")
SIZE_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
COMMAND_TIMEOUT_S = 1800
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/build-host-ca-certificates.crt"
PASSED_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                    "http_proxy", "https_proxy", "no_proxy")


class ImageError(StackError):
    """An image could not be built; names the function (or the base image) and says why."""


def run(what: str, command: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run a command; a failure raises :class:`ImageError` naming ``what``, with the command's last lines."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False,
                            timeout=COMMAND_TIMEOUT_S, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise ImageError(what, f"{Path(str(command[0])).name} failed (exit {result.returncode}):\n{tail}")
    return result


def install_tools() -> None:
    """buildah and mmdebstrap from Debian's packages, if missing."""
    install_debian_packages("images", TOOLS)


def image_size_mb(image: str) -> float | None:
    """The size ``buildah images`` reports for ``image``, in MB; None when there is no such image."""
    listed = subprocess.run(["buildah", "images", "--json", image], capture_output=True, text=True, check=False)
    if listed.returncode != 0 or not listed.stdout.strip():
        return None
    amount, unit = json.loads(listed.stdout)[0]["size"].split()
    return float(amount) * SIZE_UNITS[unit] / 1e6


def working_containers() -> set[str]:
    """The ids of buildah's working containers."""
    return set(run("containers", ["buildah", "containers", "--quiet", "--notruncate"]).stdout.split())


def remove_containers(ids: set[str]) -> None:
    if ids:
        subprocess.run(["buildah", "rm", *sorted(ids)], capture_output=True, check=False)


def host_pip_access() -> list[str]:
    """``buildah run`` options giving pip in a container this machine's way to the index: its CA bundle (a TLS
    proxy's certificate may be in it) and its proxy and index variables."""
    options = []
    if HOST_CA_BUNDLE.is_file():
        options += ["--volume", f"{HOST_CA_BUNDLE}:{CONTAINER_CA_BUNDLE}:ro", "--env", f"PIP_CERT={CONTAINER_CA_BUNDLE}"]
    for variable in PASSED_VARIABLES:
        if os.environ.get(variable):
            options += ["--env", f"{variable}={os.environ[variable]}"]
    return options


def base_tarball(settings: Settings, image: str) -> Path:
    """The root file system of a local base image (mmdebstrap, once; kept in the cache)."""
    tarball = settings.cache_dir / "images" / f"{image.rsplit('/', 1)[1].replace(':', '-')}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_EXCLUDES]
    run(image, ["mmdebstrap", "--variant=minbase", f"--include={','.join(LOCAL_IMAGES[image])}",
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", *excludes,
                "--dpkgopt=path-include=/usr/share/locale/locale.alias", DEBIAN_SUITE, partial, DEBIAN_MIRROR])
    partial.replace(tarball)
    return tarball


def local_image(settings: Settings, image: str) -> str:
    """A local base image, committed into buildah's storage from :func:`base_tarball` unless it is there."""
    if image_size_mb(image) is not None:
        return image
    tarball = base_tarball(settings, image)
    container = run(image, ["buildah", "from", "scratch"]).stdout.strip()
    try:
        run(image, ["buildah", "add", container, tarball, "/"])
        run(image, ["buildah", "config", "--env", "LANG=C.UTF-8", "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--cmd", "python3", container])
        run(image, ["buildah", "commit", "--quiet", container, image])
    finally:
        remove_containers({container})
    return image


@dataclass(frozen=True)
class BaseImages:
    """The images a function's image is built from (the template's build arguments)."""

    base: str  # BASE_IMAGE: what the function runs on
    build: str  # BUILD_IMAGE: the same with pip
    watchdog: str  # WATCHDOG_IMAGE: where /fwatchdog comes from, if it has one

    @property
    def pull(self) -> str:
        """buildah's pull policy: the local bases are only in its storage; another is pulled when missing."""
        return "--pull=never" if self.base == LOCAL_BASE_IMAGE else "--pull=false"

    def build_args(self) -> dict[str, str]:
        return {"BASE_IMAGE": self.base, "BUILD_IMAGE": self.build, "WATCHDOG_IMAGE": self.watchdog}


def base_images(settings: Settings) -> BaseImages:
    """The bases the settings name; the local ones serve without of-watchdog unless one is named."""
    if settings.function_base_image == LOCAL_BASE:
        base = local_image(settings, LOCAL_BASE_IMAGE)
        return BaseImages(base, local_image(settings, LOCAL_BUILD_IMAGE), settings.function_watchdog_image or base)
    base = settings.function_base_image
    return BaseImages(base, base, settings.function_watchdog_image or OFFICIAL_WATCHDOG_IMAGE)
