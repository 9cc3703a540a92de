"""Function images, built for real: the OCI image of a function of stack.yml, by buildah, from the template.

The build context is the one faas-cli assembles: ``templates/<lang>/``, the function's folder as ``./function``
and the stack file's ``configuration.copy`` entries. To it this adds ``./wheels``: a wheelhouse of the packages of
the function's extras (``build_args.PLATFORM_EXTRAS``), resolved by pip in the build image itself with this
machine's pip cache, kept per (image, requirements), so that pip in the build needs no index
(``PIP_OFFLINE``) and a second build is quick. ``buildah bud --isolation chroot --layers`` builds it: no daemon,
no user namespace, cached layers. The base images are in :mod:`smartcity.stack.buildah`; without of-watchdog, the
image serves its function with the project's own server on the watchdog's port (the template's ``start.sh``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from smartcity.runtime.stackfile import FunctionSpec, StackFunction, read_stack
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.stack.buildah import (
    BaseImages, ImageError, base_images, host_pip_access, image_size_mb, install_tools, remove_containers, run,
    working_containers,
)

PLATFORM_EXTRAS_BUILD_ARG = "PLATFORM_EXTRAS"
DEFAULT_EXTRAS = "runtime"
# pip's build backend for the package itself (pyproject.toml's build-system), taken from the wheelhouse too.
BUILD_REQUIREMENTS = ("setuptools>=77",)
REQUIREMENTS_FILE = "requirements.txt"  # in a complete wheelhouse: what it was made for
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


@dataclass(frozen=True)
class BuiltImage:
    function: str
    image: str
    seconds: float
    size_mb: float


def platform_extras(entry: StackFunction) -> tuple[str, ...]:
    """The extras of the smartcity package a function's image installs (``build_args.PLATFORM_EXTRAS``)."""
    named = entry.build_args.get(PLATFORM_EXTRAS_BUILD_ARG, DEFAULT_EXTRAS)
    return tuple(extra.strip() for extra in named.split(",") if extra.strip())


def image_name(entry: StackFunction) -> str:
    """The name buildah stores a function's image under: its stack.yml ``image``, in the ``localhost`` registry."""
    return entry.image if "." in entry.image.split("/")[0] else f"localhost/{entry.image}"


# --- the wheelhouse ----------------------------------------------------------------------------------------------


def extra_requirements(extras: tuple[str, ...], pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> list[str]:
    """The requirements of the package with ``extras``: its dependencies and each extra's, self-references
    (``smartcity[runtime]``) followed; an unknown extra is an error naming the known ones."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    requirements, pending, seen = list(project.get("dependencies", [])), list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        if extra not in optional:
            raise ImageError("build_args.PLATFORM_EXTRAS", f"{extra!r} is not an extra; known: {sorted(optional)}")
        seen.add(extra)
        for requirement in optional[extra]:
            own = re.fullmatch(rf"{project['name']}\[([\w,\s-]+)\]", requirement)
            if own:
                pending.extend(name.strip() for name in own.group(1).split(","))
            else:
                requirements.append(requirement)
    return sorted(set(requirements))


def wheelhouse(settings: Settings, bases: BaseImages, extras: tuple[str, ...], handler_dir: Path) -> Path:
    """Wheels of every package the image installs (and of the build backend), kept per (base, requirements).

    pip resolves them in the base image itself (``buildah run``), so that environment markers see its Python
    (Debian's 3.11.2 needs wheels a 3.11.7 would not), with this machine's pip cache mounted: a package is
    downloaded once for every image.
    """
    requirements = [*BUILD_REQUIREMENTS, *extra_requirements(extras)]
    function_requirements = handler_dir / "requirements.txt"
    if function_requirements.exists():
        requirements += function_requirements.read_text().splitlines()
    key = hashlib.sha256(json.dumps([bases.build, requirements]).encode()).hexdigest()[:12]
    folder = settings.cache_dir / "images" / "wheels" / f"{'-'.join(extras)}-{key}"
    if (folder / REQUIREMENTS_FILE).exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "pending.txt").write_text("\n".join(requirements) + "\n")
    pip_cache = Path.home() / ".cache" / "pip"
    pip_cache.mkdir(parents=True, exist_ok=True)
    container = run("wheelhouse", ["buildah", "from", bases.pull, bases.build]).stdout.strip()
    try:
        run("wheelhouse", ["buildah", "run", "--isolation", "chroot", "--network", "host", *host_pip_access(),
                           "--volume", f"{pip_cache}:/root/.cache/pip", "--volume", f"{partial}:/wheels", container,
                           "--", "python", "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", "/wheels", "--requirement", "/wheels/pending.txt"])
    finally:
        remove_containers({container})
    (partial / "pending.txt").replace(partial / REQUIREMENTS_FILE)  # marks it complete
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)
    return folder


# --- the build context and the build -----------------------------------------------------------------------------


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_context(folder: Path, stack_file: Path, spec: FunctionSpec, wheels: Path) -> Path:
    """What faas-cli would send to the builder, in ``folder``: the template, ``function/``, the copied paths, and
    the wheelhouse in ``wheels/`` (hard links)."""
    stack, _ = read_stack(stack_file)
    template = stack_file.parent / "templates" / spec.entry.lang
    if not (template / "Dockerfile").is_file():
        raise ImageError(spec.name, f"no template {template} (functions.{spec.name}.lang)")
    shutil.copytree(template, folder, ignore=IGNORED)
    shutil.rmtree(folder / "function")  # the template's sample handler
    shutil.copytree(spec.handler_dir, folder / "function", ignore=IGNORED)
    for entry in stack.configuration.copy_:
        source = (stack_file.parent / entry).resolve()
        target = folder / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    shutil.copytree(wheels, folder / "wheels", copy_function=_link_or_copy, dirs_exist_ok=True)
    return folder


def build_function(settings: Settings, stack_file: Path, spec: FunctionSpec) -> BuiltImage:
    """Build the image of one function; returns its name, the build's seconds and the image's size."""
    started = time.monotonic()
    bases = base_images(settings)
    wheels = wheelhouse(settings, bases, platform_extras(spec.entry), spec.handler_dir)
    build_args = {**spec.entry.build_args, **bases.build_args(), "PIP_OFFLINE": "1"}
    image = image_name(spec.entry)
    with tempfile.TemporaryDirectory(prefix=f"smartcity-build-{spec.name}-") as scratch:
        context = build_context(Path(scratch) / "context", stack_file, spec, wheels)
        arguments = [item for name, value in build_args.items() for item in ("--build-arg", f"{name}={value}")]
        before = working_containers()
        try:
            run(spec.name, ["buildah", "bud", "--isolation", "chroot", "--layers", bases.pull, *arguments,
                            "--tag", image, context])
        finally:  # buildah 1.28 leaves the container of a `RUN --mount=from=<stage>` behind
            remove_containers(working_containers() - before)
    size = image_size_mb(image)
    if size is None:
        raise ImageError(spec.name, f"buildah built no image {image}")
    return BuiltImage(spec.name, image, time.monotonic() - started, size)


def build_images(settings: Settings, stack_file: Path, names: list[str] | tuple[str, ...] = ()) -> list[BuiltImage]:
    """Build the images of the functions named (all of the stack file when none is), one after the other."""
    _, specs = read_stack(stack_file)
    known = {spec.name: spec for spec in specs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ImageError("functions", f"{unknown} not in {stack_file}; known: {sorted(known)}")
    install_tools()
    return [build_function(settings, stack_file, known[name]) for name in (names or list(known))]
