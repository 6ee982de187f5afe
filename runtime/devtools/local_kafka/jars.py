"""Fetch a pinned Apache Kafka broker from Maven Central, once.

The jars land in a cache folder (git-ignored); a marker file written last makes a
half-finished download count as missing, so the next start fetches again instead
of launching a broker with a partial classpath.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable
from importlib import resources
from pathlib import Path

KAFKA_VERSION = "4.4.0"
"""The Apache Kafka release the local cluster runs (KRaft only, Java 17+; share groups).

The newest 4.x on Maven Central: share groups (KIP-932, Queue mode) need 4.2+.
"""

LOG4J_VERSION = "2.24.3"
"""The log4j2 release the broker's POM brings; its SLF4J 1.7 binding is added to match."""

_RECIPE = 3
"""Bumped whenever the fetched set changes, so an older cache is not taken as complete."""

_COMPLETE_MARKER = ".complete"


class BrokerFetchError(RuntimeError):
    """Maven could not resolve the broker jars."""


def default_cache_dir() -> Path:
    """``$KAFKA_ESM_CACHE``, else the per-user ``$XDG_CACHE_HOME/kafka-esm`` (by default
    ``~/.cache/kafka-esm``): one place whatever the current folder, so ``status`` from
    another folder sees the broker ``up`` started, and the jars are fetched once."""
    explicit = os.environ.get("KAFKA_ESM_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base) / "kafka-esm").resolve()


def libs_dir(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """The folder that holds the broker's classpath for ``version``."""
    return cache_dir / f"kafka-{version}-r{_RECIPE}" / "libs"


def is_cached(cache_dir: Path, version: str = KAFKA_VERSION) -> bool:
    """True when a complete set of jars for ``version`` is already in the cache."""
    return (libs_dir(cache_dir, version) / _COMPLETE_MARKER).is_file()


Listener = Callable[[str], None]


def ensure_broker_jars(
    cache_dir: Path | None = None,
    version: str = KAFKA_VERSION,
    on_progress: Listener | None = None,
) -> Path:
    """Return the classpath folder, downloading the jars only if they are not cached.

    ``on_progress`` hears ``"N artifacts, X.X MB"`` as Maven downloads them."""
    # Absolute: mvn resolves a relative output folder against its temporary POM.
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    target = libs_dir(cache_dir, version)
    if is_cached(cache_dir, version):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerFetchError(
            "Maven ('mvn') is needed once to fetch the Kafka broker jars into "
            f"{target}; install Maven 3.8+ or put the jars there yourself"
        )
    _download(mvn, target, version, on_progress or (lambda _: None))
    return target


def _download(mvn: str, target: Path, version: str, on_progress: Listener) -> None:
    pom_text = (
        resources.files("runtime.devtools.local_kafka")
        .joinpath("kafka-fetch-pom.xml")
        .read_text(encoding="utf-8")
        .replace("@KAFKA_VERSION@", version)
        .replace("@LOG4J_VERSION@", LOG4J_VERSION)
    )
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kafka-fetch-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(pom_text, encoding="utf-8")
        command = [
            mvn,
            "-B",  # no colours; Maven still names each download, which feeds the progress
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={target}",
        ]
        returncode, tail = _run_maven(command, on_progress)
    if returncode != 0:
        raise BrokerFetchError(
            f"mvn could not fetch org.apache.kafka:kafka_2.13:{version}:\n" + "\n".join(tail)
        )
    (target / _COMPLETE_MARKER).write_text(version, encoding="utf-8")


_DOWNLOADED = re.compile(r"^Downloaded from \S+: \S+ \((\d+(?:\.\d+)?) (B|kB|MB|GB)")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def _run_maven(command: list[str], on_progress: Listener) -> tuple[int, list[str]]:
    """Run Maven, telling ``on_progress`` of each artifact; the exit code and last lines."""
    tail: deque[str] = deque(maxlen=15)
    artifacts, size = 0, 0.0
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as maven:
        assert maven.stdout is not None
        for line in maven.stdout:
            tail.append(line.rstrip())
            found = _DOWNLOADED.match(line.removeprefix("[INFO] "))
            if found:
                artifacts += 1
                size += float(found[1]) * _UNITS[found[2]]
                on_progress(f"{artifacts} artifacts, {size / 1e6:.1f} MB")
    return maven.returncode, list(tail)


REGISTRY_VERSION = "3.3.3"
"""The Apicurio Registry release the local schema registry runs (needs Java 21+).

Its runnable Quarkus app is one tar.gz on Maven Central (about 160 MB); it serves the
Confluent Schema Registry API under ``/apis/ccompat/v7``.
"""
_REGISTRY_ARTIFACT = "io.apicurio:apicurio-registry-app:{version}:tar.gz:all"


def registry_dir(cache_dir: Path, version: str = REGISTRY_VERSION) -> Path:
    """The folder that holds Apicurio Registry's unpacked app (``quarkus-run.jar``)."""
    return cache_dir / f"apicurio-registry-{version}"


def ensure_registry_app(
    cache_dir: Path | None = None,
    version: str = REGISTRY_VERSION,
    on_progress: Listener | None = None,
) -> Path:
    """Return the unpacked app's folder, downloading and unpacking it only once."""
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    target = registry_dir(cache_dir, version)
    if (target / _COMPLETE_MARKER).is_file():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerFetchError(
            "Maven ('mvn') is needed once to fetch Apicurio Registry into "
            f"{target}; install Maven 3.8+"
        )
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    artifact = _REGISTRY_ARTIFACT.format(version=version)
    with tempfile.TemporaryDirectory(prefix="registry-fetch-", dir=cache_dir) as work:
        command = [
            mvn,
            "-B",
            "dependency:copy",
            f"-Dartifact={artifact}",
            f"-DoutputDirectory={work}",
        ]
        returncode, tail = _run_maven(command, on_progress or (lambda _: None))
        archives = list(Path(work).glob("*.tar.gz"))
        if returncode != 0 or len(archives) != 1:
            raise BrokerFetchError(f"mvn could not fetch {artifact}:\n" + "\n".join(tail))
        with tarfile.open(archives[0]) as archive:
            archive.extractall(target, filter="data")
    if not (target / "quarkus-run.jar").is_file():
        raise BrokerFetchError(f"{artifact} has no quarkus-run.jar at its top level")
    (target / _COMPLETE_MARKER).write_text(version, encoding="utf-8")
    return target
