"""What the numbers were measured on: machine, versions, and how busy the machine was."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import confluent_kafka

from runtime.devtools.local_kafka import KAFKA_VERSION


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's best guess)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    """Total memory in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages: other work sharing the cores."""
    return os.getloadavg()


def versions() -> dict[str, str]:
    """Versions of what the benchmarks exercise."""
    found = {
        "python": platform.python_version(),
        "confluent-kafka": metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "apache-kafka (local broker)": KAFKA_VERSION,
    }
    for package in ("aws-cdk-lib", "pybase64"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def describe() -> str:
    """One line about the machine."""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB, "
        f"{platform.system()} {platform.release()}"
    )
