"""Start and stop one real Apache Kafka node (KRaft: broker and controller in one JVM).

The node binds 127.0.0.1 only, with three client listeners (on free ports, or on the
ports it is asked to prefer, which ``kafka-esm local-kafka up`` does, kept across restarts):
PLAINTEXT, SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and SSL with required
client certificates, and the StandardAuthorizer enforcing ACLs on the secured ones.
For fault-injection tests a node can be restarted on its data (``restart``), and a
listener can advertise another port (``advertise``: a proxy the test controls).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Final

from runtime.devtools import processes
from runtime.devtools.local_kafka import jars
from runtime.devtools.local_kafka.settings import (
    CONTROLLER,
    PLAINTEXT,
    SASL_SSL,
    SSL,
    SUPER_USER,
    USERS,
    ClusterInfo,
)
from runtime.devtools.pki import write_local_pki
from runtime.devtools.progress import Progress
from runtime.security.principal import LOCAL_PRINCIPAL_RULES

HOST = "127.0.0.1"
STATE_FILE = "state.json"
PORTS_FILE = "ports.json"
"""The ports of the last start, kept through a restart of the same home (``up`` again)."""
DEFAULT_PORTS: Final[Mapping[str, int]] = {
    PLAINTEXT: 9092,
    CONTROLLER: 9093,
    SSL: 9094,
    SASL_SSL: 9096,
}
"""What ``local-kafka up`` prefers: Kafka's 9092, and MSK's 9094 (TLS) and 9096 (SASL)."""
SHARE_VERSION = 1
"""The ``share.version`` feature level formatted in: 1 turns share groups (KIP-932) on."""
MIN_RECORD_LOCK_MS = 1000
"""Lowest share-group record lock the node allows, so tests can expire locks quickly."""


class BrokerStartError(RuntimeError):
    """The broker did not become ready; the message carries its log's last lines."""


class LocalKafka:
    """One local Kafka node living in ``home`` (config, data, PKI, logs, state).

    ``advertise`` maps a client listener (PLAINTEXT, SASL_SSL, SSL) to the port the
    node tells clients to use instead of the one it binds: a test puts a TCP proxy
    there to cut connections. By default every listener advertises its own port.
    """

    def __init__(
        self,
        home: Path,
        cache_dir: Path | None = None,
        *,
        advertise: Mapping[str, int] | None = None,
        preferred_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.home = home.resolve()
        self.preferred_ports = dict(preferred_ports or {})
        self.port_notices: list[str] = []
        """Preferred ports that were taken, and the ones used instead (after ``start``)."""
        self.cache_dir = cache_dir or jars.default_cache_dir()
        self.state_path = self.home / STATE_FILE
        self.advertise = _checked_advertise(advertise or {})
        self._die_with_parent = False

    # -- lifecycle -----------------------------------------------------------------
    def start(
        self,
        *,
        die_with_parent: bool = False,
        timeout_s: float = 60.0,
        progress: Progress | None = None,
    ) -> ClusterInfo:
        """Fetch (if needed), format and start the node; return once clients can connect.

        ``die_with_parent`` asks the kernel to kill the JVM when this process dies,
        so that a crashed test run never leaves a broker behind. ``progress`` hears
        each phase (the fetch, the PKI, formatting, starting, waiting for metadata).
        """
        say = progress.phase if progress else _quiet
        if not jars.is_cached(self.cache_dir):
            say(f"fetching Apache Kafka {jars.KAFKA_VERSION} (once) into {self.cache_dir}")
        libs = jars.ensure_broker_jars(
            self.cache_dir, on_progress=progress.detail if progress else None
        )
        previous = self._saved_ports()
        self._reset_home()
        self._die_with_parent = die_with_parent
        listeners = self._choose_ports(previous)
        (self.home / PORTS_FILE).write_text(json.dumps(listeners), encoding="utf-8")
        passwords = {user: secrets.token_urlsafe(18) for user in USERS}
        key_password = secrets.token_urlsafe(12)
        say("writing the local certificates (CA, broker, clients)")
        pki = write_local_pki(self.home / "pki", key_password)
        config = self.home / "server.properties"
        config.write_text(
            _server_properties(
                self.home,
                listeners,
                passwords,
                pki.ca,
                pki.broker_keystore,
                advertise=self.advertise,
            ),
            encoding="utf-8",
        )
        config.chmod(0o600)
        say("formatting the KRaft storage")
        self._format(libs, config, passwords)
        process = self._spawn(libs, config, die_with_parent)
        say(f"starting the broker (pid {process.pid}); waiting for its listeners and metadata")
        info = ClusterInfo(
            listeners={
                name: f"{HOST}:{port}" for name, port in listeners.items() if name != CONTROLLER
            },
            passwords=passwords,
            pki_root=str(pki.root),
            key_password=key_password,
            pid=process.pid,
            home=str(self.home),
            version=jars.KAFKA_VERSION,
        )
        try:
            self._wait_ready(process, info, timeout_s)
        except BaseException:
            processes.terminate(process.pid, grace_s=5)
            raise
        info.save(self.state_path)
        return info

    def stop(self, grace_s: float = 20.0) -> bool:
        """SIGTERM the node, wait up to ``grace_s``, then SIGKILL. False if none ran."""
        info = self.info()
        if info is None or info.pid is None or not self._is_our_broker(info.pid):
            self.state_path.unlink(missing_ok=True)
            return False
        processes.terminate(info.pid, grace_s)
        self.state_path.unlink(missing_ok=True)
        return True

    def restart(
        self,
        *,
        kill: bool = False,
        down_s: float = 0.0,
        grace_s: float = 20.0,
        timeout_s: float = 60.0,
    ) -> ClusterInfo:
        """Stop the running node and start it again on the same data, config and ports.

        Unlike :meth:`start` nothing is wiped or formatted, so topics, records and
        committed offsets survive, as in a real broker restart. ``kill`` stops it with
        SIGKILL (a crash: no controlled shutdown, log recovery on start) instead of
        SIGTERM; ``down_s`` keeps it down that long before starting it again.
        """
        info = self.info()
        if info is None or info.pid is None or not self._is_our_broker(info.pid):
            raise BrokerStartError(f"no broker from {self.home} is running: start() one first")
        if kill:
            processes.kill(info.pid)
        else:
            processes.terminate(info.pid, grace_s)
        time.sleep(max(down_s, 0.0))
        libs = jars.ensure_broker_jars(self.cache_dir)
        process = self._spawn(libs, self.home / "server.properties", self._die_with_parent)
        restarted = replace(info, pid=process.pid)
        try:
            self._wait_ready(process, restarted, timeout_s)
        except BaseException:
            processes.terminate(process.pid, grace_s=5)
            self.state_path.unlink(missing_ok=True)
            raise
        restarted.save(self.state_path)
        return restarted

    def info(self) -> ClusterInfo | None:
        """The running node's description, or None when none was started from ``home``."""
        if not self.state_path.is_file():
            return None
        return ClusterInfo.load(self.state_path)

    def is_running(self) -> bool:
        """True when the node recorded in ``home`` is alive."""
        info = self.info()
        return info is not None and info.pid is not None and self._is_our_broker(info.pid)

    # -- steps -----------------------------------------------------------------------
    def _saved_ports(self) -> dict[str, int]:
        """The ports of this home's last start, when ports are preferred at all."""
        path = self.home / PORTS_FILE
        if not self.preferred_ports or not path.is_file():
            return {}
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return {}
        valid = isinstance(saved, dict) and set(saved) == set(DEFAULT_PORTS)
        return saved if valid and all(isinstance(p, int) for p in saved.values()) else {}

    def _choose_ports(self, previous: Mapping[str, int]) -> dict[str, int]:
        """Each listener's port: the last one, else the preferred one, else a free one
        (then a notice says which preferred port was taken)."""
        names = (PLAINTEXT, SASL_SSL, SSL, CONTROLLER)
        spare = iter(processes.free_ports(len(names)))
        chosen: dict[str, int] = {}
        for name in names:
            wanted = previous.get(name) or self.preferred_ports.get(name)
            if wanted is not None and processes.port_free(wanted):
                chosen[name] = wanted
                continue
            chosen[name] = next(spare)
            if wanted is not None:
                self.port_notices.append(
                    f"{name} port {wanted} is taken: using {chosen[name]} instead"
                )
        return chosen

    def _reset_home(self) -> None:
        if self.is_running():
            raise BrokerStartError(f"a broker from {self.home} is already running")
        if self.home.exists():
            shutil.rmtree(self.home)
        (self.home / "logs").mkdir(parents=True)
        self.home.chmod(0o700)

    def _java_command(self, libs: Path, main: str, *args: str, heap: str) -> list[str]:
        log_config = resources.files("runtime.devtools.local_kafka").joinpath("log4j2.properties")
        return [
            _java(),
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log_config}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format(self, libs: Path, config: Path, passwords: dict[str, str]) -> None:
        cluster_id = _cluster_id()
        scram = [
            arg
            for user, password in passwords.items()
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            for arg in ("--add-scram", f"{mechanism}=[name={user},password={password}]")
        ]
        command = self._java_command(
            libs,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
            # Share groups (Queue mode) on from the first start, whatever the release's default.
            "--feature",
            f"share.version={SHARE_VERSION}",
            *scram,
            heap="256m",
        )
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            # The command line holds the SCRAM passwords: report only the tool's output.
            raise BrokerStartError(f"formatting the KRaft log failed:\n{_redact(done, passwords)}")

    def _spawn(self, libs: Path, config: Path, die_with_parent: bool) -> subprocess.Popen[bytes]:
        command = self._java_command(libs, "kafka.Kafka", str(config), heap="768m")
        out = (self.home / "logs" / "stdout.log").open("ab")  # a restart keeps the old log
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

    def _wait_ready(
        self, process: subprocess.Popen[bytes], info: ClusterInfo, timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        addresses = list(info.listeners.values())
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerStartError(
                    f"the broker exited with {process.returncode}:\n{self.log_tail()}"
                )
            if all(processes.port_open(a) for a in addresses) and _metadata_answers(info):
                return
            time.sleep(0.2)
        raise BrokerStartError(
            f"the broker was not ready within {timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the broker's log, for error messages."""
        for name in ("server.log", "stdout.log"):
            path = self.home / "logs" / name
            if path.is_file() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no broker log)"

    def _is_our_broker(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return False
        return b"kafka.Kafka" in cmdline and str(self.home).encode() in cmdline


def _quiet(_: str) -> None:
    """No progress wanted."""


def _cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with "-": the storage
    tool would read it as an option and refuse to format (1 start in 64).
    """
    while True:
        candidate = base64.urlsafe_b64encode(random_bytes()).decode("ascii").rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _checked_advertise(advertise: Mapping[str, int]) -> dict[str, int]:
    clients = (PLAINTEXT, SASL_SSL, SSL)
    for name, port in advertise.items():
        if name not in clients:
            raise ValueError(
                f"advertise: listener {name!r} is not valid: must be one of {', '.join(clients)}"
            )
        if type(port) is not int or not 1 <= port <= 65535:
            raise ValueError(f"advertise[{name!r}]={port!r} is not valid: must be a port 1-65535")
    return dict(advertise)


def _server_properties(
    home: Path,
    ports: dict[str, int],
    passwords: dict[str, str],
    ca: Path,
    keystore: Path,
    *,
    advertise: Mapping[str, int] | None = None,
) -> str:
    plain_users = " ".join(f'user_{u}="{p}"' for u, p in passwords.items())
    admin = passwords[SUPER_USER]
    plain_jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{SUPER_USER}" password="{admin}" {plain_users};'
    )
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    listeners = ",".join(f"{name}://{HOST}:{port}" for name, port in ports.items())
    shown = {**ports, **(advertise or {})}
    advertised = ",".join(
        f"{name}://{HOST}:{port}" for name, port in shown.items() if name != CONTROLLER
    )
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{ports[CONTROLLER]}",
        "controller.listener.names": CONTROLLER,
        "listeners": listeners,
        "advertised.listeners": advertised,
        "inter.broker.listener.name": PLAINTEXT,
        "listener.security.protocol.map": (
            f"{PLAINTEXT}:PLAINTEXT,{CONTROLLER}:PLAINTEXT,{SASL_SSL}:SASL_SSL,{SSL}:SSL"
        ),
        "log.dirs": str(home / "data"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # Share groups (Queue mode): the protocol on, short locks and sessions allowed.
        "group.coordinator.rebalance.protocols": "classic,consumer,share",
        "group.share.min.record.lock.duration.ms": str(MIN_RECORD_LOCK_MS),
        "group.share.min.session.timeout.ms": "1000",
        "group.share.min.heartbeat.interval.ms": "500",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        # TLS from PEM files; no store passwords with PEM.
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": LOCAL_PRINCIPAL_RULES,
        # SASL on the SASL_SSL listener only.
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain_jaas,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram_jaas,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram_jaas,
        # ACLs. The broker reaches itself over PLAINTEXT as ANONYMOUS, which must
        # therefore be a super user: ACLs bite on the SASL_SSL and SSL listeners.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{SUPER_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerStartError("Java 17+ is needed to run the local Kafka broker; none is on PATH")
    return found


def _metadata_answers(info: ClusterInfo) -> bool:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - keep import cost off the CLI

    admin = AdminClient({**info.plaintext_config(), "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:  # any failure only means "not ready yet"
        return False
    return bool(metadata.brokers)


def _redact(done: subprocess.CompletedProcess[str], passwords: dict[str, str]) -> str:
    text = (done.stdout + done.stderr).strip()
    for password in passwords.values():
        text = text.replace(password, "***")
    return "\n".join(text.splitlines()[-20:])
