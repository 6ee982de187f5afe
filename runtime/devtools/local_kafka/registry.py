"""Start and stop one real schema registry: Apicurio Registry, Confluent API on 127.0.0.1.

Apicurio Registry's runnable app comes from Maven Central once (``jars.ensure_registry_app``)
and runs with in-memory storage, so every start is empty. It speaks the Confluent Schema
Registry API under ``/apis/ccompat/v7``: confluent-kafka's serializers and the poller use
it as they would use Confluent's. Quarkus binds 0.0.0.0 and a management port 9000 by
default (fixed on at build time): both are moved to 127.0.0.1 and free ports here.
The JVM is started and stopped by pid, like the broker (``runtime.devtools.processes``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.devtools import processes
from runtime.devtools.local_kafka import jars
from runtime.devtools.pki import write_local_pki
from runtime.devtools.progress import Progress

MIN_JAVA = 21
"""Apicurio Registry 3.x is built for Java 21 (class file 65)."""
STATE_FILE = "registry.json"
CONFLUENT_API = "/apis/ccompat/v7"
_JVM_ROOT = Path("/usr/lib/jvm")


class RegistryStartError(RuntimeError):
    """The registry could not start (no Java 21+, the download failed, it did not answer)."""


@dataclass(frozen=True)
class RegistryInfo:
    """A running registry: its Confluent-compatible URL and the JVM's pid."""

    url: str
    pid: int
    home: str
    version: str
    ca: str | None = None
    """With TLS: the PEM file of the CA that issued the registry's certificate."""

    def save(self, path: Path) -> None:
        """Write the description (no secrets in it) for ``status`` and ``down``."""
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RegistryInfo:
        """Read what :meth:`save` wrote."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))


class LocalSchemaRegistry:
    """One Apicurio Registry living in ``home`` (its state file and log)."""

    def __init__(self, home: Path, cache_dir: Path | None = None) -> None:
        self.home = home.resolve()
        self.cache_dir = cache_dir or jars.default_cache_dir()
        self.state_path = self.home / STATE_FILE
        self._tls = False

    def start(
        self,
        *,
        die_with_parent: bool = False,
        timeout_s: float = 120.0,
        progress: Progress | None = None,
        port: int | None = None,
        tls: bool = False,
    ) -> RegistryInfo:
        """Fetch (once) and start the registry; return once its Confluent API answers.

        ``port``: listen there (a test restarting "the same" registry), else a free one.
        ``tls``: HTTPS only, with a certificate for 127.0.0.1 from a CA of its own
        (``info.ca``). Client certificates cannot be required: Apicurio's build fixes
        Quarkus' client authentication to none."""
        say = progress.phase if progress else (lambda _: None)
        if self.is_running():
            raise RegistryStartError(f"a schema registry from {self.home} is already running")
        java = find_java(MIN_JAVA)
        if not (jars.registry_dir(self.cache_dir) / ".complete").is_file():
            say(f"fetching Apicurio Registry {jars.REGISTRY_VERSION} (once) into {self.cache_dir}")
        app = jars.ensure_registry_app(
            self.cache_dir, on_progress=progress.detail if progress else None
        )
        self.home.mkdir(parents=True, exist_ok=True)
        free, management = processes.free_ports(2)
        port = port or free
        self._tls = False
        listen = self._tls_settings(port) if tls else [f"-Dquarkus.http.port={port}"]
        process = self._spawn(java, app, listen, management, die_with_parent)
        scheme = "https" if tls else "http"
        info = RegistryInfo(
            url=f"{scheme}://{processes.LOOPBACK}:{port}{CONFLUENT_API}",
            pid=process.pid,
            home=str(self.home),
            version=jars.REGISTRY_VERSION,
            ca=str(self.home / "pki" / "ca.pem") if tls else None,
        )
        say(f"starting Apicurio Registry (pid {process.pid}); waiting for its API")
        try:
            self._wait_ready(process, info.url, timeout_s)
        except BaseException:
            processes.terminate(process.pid, grace_s=5)
            raise
        info.save(self.state_path)
        return info

    def stop(self, grace_s: float = 15.0) -> bool:
        """SIGTERM the registry, wait up to ``grace_s``, then SIGKILL. False if none ran."""
        info = self.info()
        running = info is not None and self._is_ours(info.pid)
        if info is not None and running:
            processes.terminate(info.pid, grace_s)
        self.state_path.unlink(missing_ok=True)
        return running

    def info(self) -> RegistryInfo | None:
        """The registry started from ``home``, or None."""
        if not self.state_path.is_file():
            return None
        return RegistryInfo.load(self.state_path)

    def is_running(self) -> bool:
        """True when the registry recorded in ``home`` is alive."""
        info = self.info()
        return info is not None and self._is_ours(info.pid)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the registry's log, for error messages."""
        path = self.home / "registry.log"
        if not path.is_file():
            return "(no registry log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def info_ca(self) -> str | None:
        """The CA file while a TLS start is under way or running (None: plain HTTP)."""
        path = self.home / "pki" / "ca.pem"
        return str(path) if self._tls and path.is_file() else None

    def _tls_settings(self, port: int) -> list[str]:
        """HTTPS on ``port`` only, from PEM files of a fresh local PKI."""
        pki = write_local_pki(self.home / "pki", secrets.token_urlsafe(12))
        keystore = pki.broker_keystore.read_text(encoding="ascii")
        split = keystore.index("-----BEGIN CERTIFICATE-----")
        key, cert = self.home / "pki" / "registry.key", self.home / "pki" / "registry.pem"
        key.write_text(keystore[:split], encoding="ascii")
        cert.write_text(keystore[split:], encoding="ascii")
        key.chmod(0o600)
        self._tls = True
        return [
            "-Dquarkus.http.port=0",
            f"-Dquarkus.http.ssl-port={port}",
            "-Dquarkus.http.insecure-requests=disabled",
            f"-Dquarkus.tls.key-store.pem.0.cert={cert}",
            f"-Dquarkus.tls.key-store.pem.0.key={key}",
        ]

    def _spawn(
        self,
        java: str,
        app: Path,
        listen: list[str],
        management: int,
        die_with_parent: bool,
    ) -> subprocess.Popen[bytes]:
        command = [
            java,
            "-Xmx512m",
            "-Djava.awt.headless=true",
            f"-Dquarkus.http.host={processes.LOOPBACK}",
            *listen,
            # The management interface is fixed on at build time: keep it on loopback.
            f"-Dquarkus.management.host={processes.LOOPBACK}",
            f"-Dquarkus.management.port={management}",
            "-Dquarkus.log.console.format=%d{HH:mm:ss} %-5p [%c{1}] %s%e%n",
            f"-Dkafka_esm.home={self.home}",  # names this home in the command line (stop by pid)
            "-jar",
            str(app / "quarkus-run.jar"),
        ]
        out = (self.home / "registry.log").open("ab")
        preexec: Callable[[], None] | None = processes.die_with_parent if die_with_parent else None
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.home,
            start_new_session=not die_with_parent,
            preexec_fn=preexec,  # noqa: PLW1509
        )

    def _wait_ready(self, process: subprocess.Popen[bytes], url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RegistryStartError(
                    f"the schema registry exited with {process.returncode}:\n{self.log_tail()}"
                )
            if answers(url, self.info_ca()):
                return
            time.sleep(0.2)
        raise RegistryStartError(
            f"the schema registry did not answer within {timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return False
        return b"quarkus-run.jar" in cmdline and f"kafka_esm.home={self.home}".encode() in cmdline


def answers(url: str, ca: str | None = None) -> bool:
    """True when the Confluent API at ``url`` lists subjects (``ca``: trust for HTTPS)."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(  # noqa: S310 - our own loopback URL
            f"{url}/subjects", timeout=1, context=context
        ) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def find_java(minimum: int) -> str:
    """A ``java`` of release ``minimum`` or newer: JAVA_HOME, then /usr/lib/jvm, then PATH."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    if _JVM_ROOT.is_dir():
        candidates.extend(sorted(_JVM_ROOT.iterdir(), reverse=True))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path).resolve().parent.parent)
    seen: list[str] = []
    for home in candidates:
        java = home / "bin" / "java"
        release = java_release(home)
        if java.is_file() and release is not None:
            seen.append(f"{home} (Java {release})")
            if release >= minimum:
                return str(java)
    found = "; found " + ", ".join(seen) if seen else "; found no Java at all"
    raise RegistryStartError(
        f"the local schema registry (Apicurio Registry {jars.REGISTRY_VERSION}) needs Java "
        f"{minimum}+: set JAVA_HOME to a JDK {minimum} or newer{found}"
    )


def java_release(home: Path) -> int | None:
    """The feature release of the JDK in ``home`` (its ``release`` file), or None."""
    try:
        text = (home / "release").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.MULTILINE)
    if found is None:
        return None
    major = int(found[1])
    return int(found[2] or 0) if major == 1 else major
