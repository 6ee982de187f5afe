"""Whether the cluster answers, as LastProcessingResult shows it.

A mapping that cannot reach its cluster stays Enabled in AWS, and its
LastProcessingResult says ``PROBLEM: Connection error. …``. Here librdkafka's transport
errors (no broker answers, a refused or reset connection, a name that does not resolve)
set that result; its statistics, every few seconds, say when a broker is up again, and
the result goes back to what it was before (``No records processed`` when unknown) until
the next batch sets it. Processed records set ``OK`` as usual.
"""

from __future__ import annotations

import json
import threading

from confluent_kafka import KafkaError

from runtime.definition.vocabulary import CONNECTION_ERROR
from runtime.observability.state import NO_RECORDS_PROCESSED, MappingStatus, problem

__all__ = ["CONNECTION_PROBLEM", "STATS_INTERVAL_MS", "Reachability"]

CONNECTION_PROBLEM = problem(CONNECTION_ERROR)
STATS_INTERVAL_MS = 5000
"""How often librdkafka reports its brokers' states (the recovery signal)."""

_UNREACHABLE = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE})


class Reachability:
    """Sets and clears the connection problem on ``status`` from client callbacks."""

    def __init__(self, status: MappingStatus) -> None:
        self._status = status
        self._lock = threading.Lock()
        self._before: str | None = None  # the result the problem replaced, while it shows

    @property
    def unreachable(self) -> bool:
        """True while the connection problem is shown."""
        return self._before is not None

    def on_error(self, error: KafkaError) -> None:
        """A client-level error: transport failures mean the cluster does not answer."""
        if error.code() not in _UNREACHABLE:
            return
        with self._lock:
            previous = self._status.swap_result(CONNECTION_PROBLEM)
            if self._before is None:
                self._before = previous if previous != CONNECTION_PROBLEM else NO_RECORDS_PROCESSED

    def on_stats(self, document: str) -> None:
        """librdkafka's statistics: a known broker in state UP ends the problem."""
        if self._before is None or not _a_broker_is_up(document):
            return
        with self._lock:
            if self._before is not None:
                self._status.replace_result(CONNECTION_PROBLEM, self._before)
                self._before = None


def _a_broker_is_up(document: str) -> bool:
    try:
        brokers = json.loads(document).get("brokers", {})
    except ValueError:
        return False
    return any(
        isinstance(b, dict) and b.get("nodeid", -1) >= 0 and b.get("state") == "UP"
        for b in brokers.values()
    )
