"""The SparkSession of the streaming jobs: local mode by default, with Spark's Kafka connector on the classpath.

The connector (``spark-sql-kafka-0-10_2.13``) must be the very version of pyspark. Its jars are resolved once by
Maven from ``infra/spark/connector/pom.xml`` into ``<cache_dir>/spark-connector/lib`` and handed to Spark as
``spark.jars``: after the first run no network is needed (Spark's own ``spark.jars.packages`` resolution is not
used, because its Ivy trips over poms without jars that other Maven builds leave in ``~/.m2``).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import warnings
from pathlib import Path

from smartcity.errors import ConfigurationError
from smartcity.extras import MissingExtra
from smartcity.settings import PROJECT_ROOT, Settings

CONNECTOR_POM = PROJECT_ROOT / "infra" / "spark" / "connector" / "pom.xml"
INSTALL_MAVEN_JARS = PROJECT_ROOT / "infra" / "local" / "install-maven-jars.sh"
CONNECTOR_JAR_PREFIX = "spark-sql-kafka-0-10_2.13-"
# Few shuffle partitions on a cluster: the windows of a city fit in a handful, and each partition is a task per
# micro-batch (locally: one per thread, see shuffle_partitions).
SHUFFLE_PARTITIONS = 4
ROCKSDB_STATE_STORE = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
ROCKSDB_MEMORY_MB = 256
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")  # the JVM's log configuration (quiet_start)
_LOCAL_MASTER = re.compile(r"local(?:\[(\d+|\*)(?:,\d+)?\])?")

log = logging.getLogger(__name__)


def connector_jars(settings: Settings) -> list[Path]:
    """The Kafka connector's jars, resolved by Maven on first use; checked against pyspark's version."""
    try:
        import pyspark
    except ImportError:
        raise MissingExtra("streaming", ["pyspark"]) from None
    lib_dir = settings.cache_dir / "spark-connector" / "lib"
    # install-maven-jars.sh takes a project folder under infra/local; ours lives in infra/spark.
    project = Path("..") / CONNECTOR_POM.parent.relative_to(PROJECT_ROOT / "infra")
    try:
        subprocess.run(["bash", str(INSTALL_MAVEN_JARS), str(project), str(lib_dir)], check=True,
                       capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigurationError("streaming", "needs bash and Maven (mvn) to resolve Spark's Kafka connector") from None
    except subprocess.CalledProcessError as error:
        raise ConfigurationError(
            "streaming", f"Maven could not resolve {CONNECTOR_POM}: {error.stderr.strip()[-2000:]}"
        ) from None
    jars = sorted(lib_dir.glob("*.jar"))
    connector = [jar.name for jar in jars if jar.name.startswith(CONNECTOR_JAR_PREFIX)]
    expected = f"{CONNECTOR_JAR_PREFIX}{pyspark.__version__}.jar"
    if connector != [expected]:
        raise ConfigurationError(
            "streaming", f"{CONNECTOR_POM} resolves {connector}, but pyspark {pyspark.__version__} needs {expected}: "
            "set <spark.version> in the pom to pyspark's version"
        )
    return jars


# What every session of the jobs sets, local or on a cluster.
SESSION_CONFIG = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
    # Keep few checkpoint versions: the state is small, the disk is shared.
    "spark.sql.streaming.minBatchesToRetain": "20",
    # The jobs keep a key per event of every open window (streaming.runner.counted_once): in RocksDB, off the JVM
    # heap, rather than in the default store's in-memory maps (two versions of them), which a driver's heap of
    # 1 GB cannot hold at thousands of events a second. The changelog checkpoints each batch's changes instead
    # of uploading RocksDB's files. A checkpoint keeps the provider it was started with (Job.state_version).
    "spark.sql.streaming.stateStore.providerClass": ROCKSDB_STATE_STORE,
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    # RocksDB's native memory (memtables, block cache) is outside the JVM heap and grows with the state unless
    # bounded: one cap for all the stores of a JVM (driver locally, each executor on a cluster), below Spark's
    # smallest executor memory overhead (384 MB). At the cap RocksDB flushes its memtables sooner; the state
    # itself stays on local disk.
    "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
    "spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB": str(ROCKSDB_MEMORY_MB),
}


def shuffle_partitions(master: str) -> int:
    """One shuffle partition per thread of a ``local[N]`` master, else :data:`SHUFFLE_PARTITIONS`.

    Each shuffle partition of a stateful query is a task and a state store per micro-batch (its delta file
    written, its version committed): on two local threads, four partitions ran two waves of tasks for the same
    windows. Only new checkpoints take the number; a checkpoint keeps the partitions it was started with.
    """
    match = _LOCAL_MASTER.fullmatch(master.strip())
    if match is None:
        return SHUFFLE_PARTITIONS
    threads = match.group(1) or "1"
    return (os.cpu_count() or SHUFFLE_PARTITIONS) if threads == "*" else int(threads)


def build_session(settings: Settings, app_name: str = "smartcity-streaming", master: str | None = None):
    """A local SparkSession (``settings.spark_master``) with the Kafka connector's jars; the active one if any."""
    from pyspark.sql import SparkSession

    master = master or settings.spark_master
    quiet_start()
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.jars", ",".join(str(jar) for jar in connector_jars(settings)))
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
    )
    for key, value in {**SESSION_CONFIG, "spark.sql.shuffle.partitions": str(shuffle_partitions(master))}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    if threading.current_thread() is threading.main_thread():
        # pyspark's SIGINT handler cancels every Spark job at once, failing the micro-batches in flight with
        # SPARK_JOB_CANCELLED errors; Ctrl-C raises KeyboardInterrupt instead, and the jobs' owner stops its
        # queries in order (streaming.app.stop_jobs).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return session


def quiet_start() -> None:
    """What a local session prints on start-up, cut to what a user can act on: the JVM logs with
    :data:`LOG4J_CONFIG` (warnings and errors, not the native-Hadoop notice), Spark binds the loopback address the
    session is configured with (``SPARK_LOCAL_IP``, unless set: no "hostname resolves to a loopback address"
    warning), and pyspark's notice that it does not yet fully support pandas 3 is not repeated (the jobs' use of
    pandas, Arrow collection only, is tested with it)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def submitted_session(app_name: str = "smartcity-streaming"):
    """The session of a job started by ``spark-submit`` or the Spark operator: master and jars come from there
    (``--packages org.apache.spark:spark-sql-kafka-0-10_2.13:<pyspark version>``)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in SESSION_CONFIG.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
