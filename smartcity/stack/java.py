"""What the Java servers of the stack (Kafka, S3Proxy) share: jars resolved by Maven into the cache, one JVM."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import ClassVar

from smartcity.stack.base import INFRA_LOCAL, LocalService, StackError, run_script


class JavaService(LocalService):
    """A server whose jars come from ``infra/local/<maven_project>/pom.xml`` and which runs in one JVM."""

    maven_project: ClassVar[str]
    main_jar_prefix: ClassVar[str]  # the jar whose version is the server's, e.g. "kafka_2.13-"
    max_heap: ClassVar[str] = "512m"

    @property
    def lib_dir(self) -> Path:
        return self.settings.cache_dir / self.maven_project / "lib"

    @property
    def config_dir(self) -> Path:
        return INFRA_LOCAL / self.maven_project

    def install(self) -> None:
        run_script(self.name, "install-maven-jars.sh", self.maven_project, self.lib_dir)

    def java_command(self, main_class: str, *args: str, properties: dict[str, str | Path] | None = None) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise StackError(self.name, "needs Java 17 or newer: apt-get install openjdk-17-jre-headless")
        flags = [f"-D{key}={value}" for key, value in (properties or {}).items()]
        return [java, f"-Xmx{self.max_heap}", "-XX:+UseSerialGC", *flags, "-cp", f"{self.lib_dir}/*", main_class, *args]

    def version(self) -> str:
        return self._installed_version()

    def _installed_version(self) -> str:
        jars = sorted(self.lib_dir.glob(f"{self.main_jar_prefix}*.jar"))
        return jars[0].name.removeprefix(self.main_jar_prefix).removesuffix(".jar") if jars else ""
