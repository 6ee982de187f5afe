"""What a local cluster is: its listeners, users and PKI, and how clients reach it.

``ClusterInfo`` is written to ``state.json`` (mode 0600) when a broker starts, so that
``status``, ``down``, the tests and the demo all read one description of the
cluster instead of re-deriving ports and credentials.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.devtools.pki import LocalPki

PLAINTEXT = "PLAINTEXT"
SASL_SSL = "SASL_SSL"
SSL = "SSL"
CONTROLLER = "CONTROLLER"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SUPER_USER = "admin"
USERS = (SUPER_USER, "alice", "bob")
"""SASL users created on every local cluster (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512)."""


ClientConfig = dict[str, Any]
"""confluent-kafka client settings."""


class ListenerNotAvailable(LookupError):
    """The cluster has no such listener (for example an external PLAINTEXT-only cluster)."""


@dataclass(frozen=True)
class ClusterInfo:
    """Addresses, users and PKI of a running cluster, as clients need them."""

    listeners: dict[str, str]
    """Listener name (PLAINTEXT, SASL_SSL, SSL) to ``host:port``."""
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    pki_root: str | None = None
    key_password: str | None = field(default=None, repr=False)
    pid: int | None = None
    home: str | None = None
    version: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The PLAINTEXT address: what the demo and most tests use."""
        return self.address(PLAINTEXT)

    @property
    def pki(self) -> LocalPki:
        """The PEM files of the secured listeners."""
        if self.pki_root is None:
            raise ListenerNotAvailable("this cluster has no local PKI (external cluster)")
        return LocalPki(Path(self.pki_root))

    @property
    def is_secured(self) -> bool:
        """True when the SASL_SSL and SSL listeners exist (always, for a local cluster)."""
        return SASL_SSL in self.listeners and SSL in self.listeners

    def address(self, listener: str) -> str:
        """``host:port`` of ``listener``."""
        try:
            return self.listeners[listener]
        except KeyError:
            raise ListenerNotAvailable(f"listener {listener} is not available") from None

    def plaintext_config(self) -> ClientConfig:
        """confluent-kafka settings for the PLAINTEXT listener."""
        return {"bootstrap.servers": self.address(PLAINTEXT)}

    def sasl_config(
        self, user: str, mechanism: str = "SCRAM-SHA-512", password: str | None = None
    ) -> ClientConfig:
        """confluent-kafka settings for SASL_SSL as ``user`` (its own password by default)."""
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"mechanism {mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}")
        return {
            "bootstrap.servers": self.address(SASL_SSL),
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": self.passwords[user] if password is None else password,
            "ssl.ca.location": str(self.pki.ca),
        }

    def mtls_config(self, client: str | None = "alice", key_form: str = "plain") -> ClientConfig:
        """confluent-kafka settings for the mutual-TLS listener as ``client`` (None: no cert)."""
        config: ClientConfig = {
            "bootstrap.servers": self.address(SSL),
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.pki.ca),
        }
        if client is not None:
            config["ssl.certificate.location"] = str(self.pki.client_cert(client))
            config["ssl.key.location"] = str(self.pki.client_key(client, key_form))
            if key_form != "plain" and self.key_password is not None:
                config["ssl.key.password"] = self.key_password
        return config

    def save(self, path: Path) -> None:
        """Write to ``path`` readable by the owner only: it holds the users' passwords."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> ClusterInfo:
        """Read what :meth:`save` wrote."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def external(cls, bootstrap_servers: str) -> ClusterInfo:
        """An existing cluster reached over PLAINTEXT only (``KAFKA_BOOTSTRAP_SERVERS``)."""
        return cls(listeners={PLAINTEXT: bootstrap_servers})
