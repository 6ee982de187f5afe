"""Helpers for the security and doctor tests: secrets on disk, users, ACLs, a relay."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from runtime.definition.model import EventSourceMapping
from runtime.devtools.local_kafka import ClusterInfo, admin
from runtime.devtools.local_kafka.admin import acl_bindings


def write_secret(folder: Path, doc: dict[str, Any]) -> str:
    """Write ``doc`` as a secret file and return its ``file://`` URI."""
    return admin.write_secret(folder, doc)


def root_ca_doc(kafka: ClusterInfo, *, other: bool = False) -> dict[str, str]:
    """A SERVER_ROOT_CA_CERTIFICATE secret: the broker's CA, or an unrelated one."""
    ca = kafka.pki.other_ca if other else kafka.pki.ca
    return {"certificate": ca.read_text(encoding="utf-8")}


def client_certificate_doc(
    kafka: ClusterInfo, client: str, key_form: str = "plain"
) -> dict[str, str]:
    """A CLIENT_CERTIFICATE_TLS_AUTH secret for one of the local PKI's clients."""
    doc = admin.client_certificate_secret(kafka, client, key_form)
    if key_form != "plain":
        doc["privateKeyPassword"] = kafka.key_password or ""
    return doc


def mapping_request(
    server: str, topic: str, group: str, access: Iterable[tuple[str, str]], **fields: Any
) -> dict[str, Any]:
    """A CreateEventSourceMapping request with SourceAccessConfigurations ``access``."""
    doc: dict[str, Any] = {
        "FunctionName": "security-test",
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [server]}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
        "SourceAccessConfigurations": [{"Type": t, "URI": uri} for t, uri in access],
    }
    doc.update(fields)
    return doc


def scram_user(kafka: ClusterInfo, name: str | None = None) -> tuple[str, str]:
    """A fresh SCRAM-SHA-256/512 user (no ACLs): ``(name, password)``."""
    name = name or f"u{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    admin = AdminClient(kafka.plaintext_config())
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        # One credential of a user per request: the broker refuses two at once.
        upsert = UserScramCredentialUpsertion(
            name, ScramCredentialInfo(mechanism, 4096), password.encode()
        )
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)
    _await_sign_in(kafka, name, password)
    return name, password


def _await_sign_in(kafka: ClusterInfo, name: str, password: str, timeout_s: float = 15) -> None:
    """SCRAM credentials reach the broker's cache asynchronously: wait for them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        admin = AdminClient({**kafka.sasl_config(name, "SCRAM-SHA-512", password), "log_level": 0})
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException:
            time.sleep(0.1)
    raise AssertionError(f"SCRAM user {name} cannot sign in")


def grant(kafka: ClusterInfo, bindings: list[AclBinding]) -> None:
    """Create ACL bindings (the PLAINTEXT listener's principal is a super user)."""
    if not bindings:
        return
    admin = AdminClient(kafka.plaintext_config())
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)


def grant_all_but(
    kafka: ClusterInfo, principal: str, mapping: EventSourceMapping, missing: str | None = None
) -> None:
    """Grant the mapping's required ACLs to ``principal``, except ``"<Operation> <Type>"``."""
    wanted = [
        a
        for a in mapping.required_acls()
        if f"{a.operation.value} {a.resource_type.value}" != missing
    ]
    grant(kafka, acl_bindings(principal, wanted))


class Relay:
    """Relays ``127.0.0.2:<port>`` to ``upstream``: a broker address outside its certificate."""

    HOST = "127.0.0.2"

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server((self.HOST, 0))
        self._listener.settimeout(0.1)
        self.address = f"{self.HOST}:{self._listener.getsockname()[1]}"
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65_536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def relay(upstream: str) -> Iterator[Relay]:
    """A :class:`Relay` for the duration of the block."""
    running = Relay(upstream)
    try:
        yield running
    finally:
        running.close()
