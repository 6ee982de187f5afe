"""At least once through broker faults: restarts (SIGTERM, SIGKILL) and dropped connections.

These tests own a broker of their own (never the shared one): its PLAINTEXT listener
advertises a TCP proxy on loopback, so every client connection passes through the
proxy, which the test resets, refuses or stalls. A live producer keeps writing while
the faults happen; what counts as produced is what the topic holds at the end.

Sizes: RELIABILITY_BROKER_RATE (records/s, 1,500), RELIABILITY_BROKER_STREAM_S (seconds
of stream around the faults, 6), RELIABILITY_DROPS (connection resets, 5),
RELIABILITY_STALL_S (one stall longer than the 10 s session timeout, 13; 0 skips it).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from runtime.devtools.local_kafka import BrokerStartError, ClusterInfo, LocalKafka
from runtime.devtools.local_kafka.settings import PLAINTEXT
from runtime.observability.counters import Metric
from tests.conftest import REPO_ROOT
from tests.delivery_ledger import (
    Ledger,
    Row,
    env_float,
    env_int,
    progress_after,
    redelivered_after,
    report,
    tally,
)
from tests.fault_harness import Fleet, LiveProducer, committed_offsets, end_offsets, wait_until
from tests.kafka_helpers import create_topic
from tests.poller_harness import mapping_doc
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

PARTITIONS = 4
RATE = env_float("RELIABILITY_BROKER_RATE", 1_500)
STREAM_S = env_float("RELIABILITY_BROKER_STREAM_S", 6)
DROPS = env_int("RELIABILITY_DROPS", 5)
STALL_S = env_float("RELIABILITY_STALL_S", 13)
_SETTLE_S = 90  # how long the poller may take to catch up once the faults are over


@dataclass
class FaultyCluster:
    """A broker of the test's own, reached only through ``proxy``."""

    broker: LocalKafka
    proxy: TcpProxy

    @property
    def client(self) -> ClusterInfo:
        """What clients are given: the proxy's address."""
        return ClusterInfo(listeners={PLAINTEXT: self.proxy.address})


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyCluster]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs a local broker of its own to restart")
    proxy = TcpProxy()
    cache = Path(os.environ.get("KAFKA_ESM_CACHE", REPO_ROOT / ".cache" / "kafka-esm"))
    broker = LocalKafka(
        tmp_path_factory.mktemp("faulty-kafka"), cache_dir=cache, advertise={PLAINTEXT: proxy.port}
    )
    info = broker.start(die_with_parent=True)
    proxy.upstream = info.address(PLAINTEXT)
    try:
        yield FaultyCluster(broker, proxy)
    finally:
        broker.stop()
        proxy.close()


@dataclass
class _Scenario:
    """One topic, a poller, a live producer and the faults' times."""

    cluster: FaultyCluster
    topic: str
    fleet: Fleet
    producer: LiveProducer
    ledger: Ledger
    faults: list[tuple[float, float]]
    """(start, end) wall-clock times of each fault."""

    @property
    def group(self) -> str:
        return str(self.fleet.mapping.consumer_group_id)


@pytest.fixture
def scenario(faulty: FaultyCluster, unique: Callable[[str], str]) -> Iterator[_Scenario]:
    topic = unique("faulty")
    create_topic(faulty.client, topic, PARTITIONS)
    ledger = Ledger()
    doc = mapping_doc(faulty.client, topic, BatchSize=200, MaximumBatchingWindowInSeconds=0)
    fleet = Fleet(doc, ledger, function=lambda _event, _context: time.sleep(0.005))
    producer = LiveProducer(faulty.client.plaintext_config(), topic, PARTITIONS, RATE)
    yield _Scenario(faulty, topic, fleet, producer, ledger, [])
    producer.stop(flush_s=0)
    fleet.stop_all()


def _stream(scenario: _Scenario, faults: Callable[[], None]) -> float:
    """Run the poller and the producer around ``faults``; returns the seconds it took."""
    started = time.monotonic()
    scenario.producer.start()
    scenario.fleet.start().wait_assigned(PARTITIONS, timeout_s=60)
    scenario.ledger.wait_handled(int(RATE), timeout_s=60)  # a second's worth: mid-stream
    faults()
    time.sleep(STREAM_S / 2)
    scenario.fleet.check_alive()
    scenario.producer.stop()
    config = scenario.cluster.client.plaintext_config()
    try:
        ends = end_offsets(config, scenario.topic, PARTITIONS)
        scenario.ledger.wait_handled(sum(ends.values()), timeout_s=_SETTLE_S)
        wait_until(
            lambda: committed_offsets(config, scenario.group, scenario.topic, PARTITIONS) == ends,
            _SETTLE_S,
            "committed offsets reach the end of the topic",
        )
    except (AssertionError, KafkaException) as exc:
        alive = scenario.cluster.broker.is_running()
        raise AssertionError(f"{exc} (the test's broker is {'up' if alive else 'DOWN'})") from exc
    scenario.fleet.stop_all()
    return time.monotonic() - started


def _judge(scenario: _Scenario, name: str, seconds: float, note: str = "") -> None:
    config = scenario.cluster.client.plaintext_config()
    ends = end_offsets(config, scenario.topic, PARTITIONS)
    deliveries = scenario.ledger.snapshot()
    result = tally(ends, deliveries)
    starts = [start for start, _ in scenario.faults]
    recovery = progress_after(deliveries, [end for _, end in scenario.faults])
    report(
        Row(
            scenario=name,
            records=result.produced,
            lost=len(result.lost),
            duplicates=result.duplicates,
            max_duplicates_per_fault=max(redelivered_after(deliveries, starts), default=0),
            recovery_s=max(recovery, default=None),
            seconds=seconds,
            note=note,
        )
    )
    result.assert_at_least_once()
    assert len(recovery) == len(scenario.faults), "no new record was handled after a fault"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_broker_restart_mid_stream_loses_nothing(scenario: _Scenario, kill: bool) -> None:
    def restart() -> None:
        started = time.time()
        scenario.cluster.broker.restart(kill=kill, down_s=1.0)
        scenario.faults.append((started, time.time()))

    seconds = _stream(scenario, restart)
    start, end = scenario.faults[0]
    _judge(
        scenario,
        f"broker restart ({'SIGKILL' if kill else 'SIGTERM'})",
        seconds,
        note=f"broker down {end - start:.1f} s; recovery counted from the broker's return",
    )


@pytest.mark.timeout(240)
def test_dropped_connections_lose_nothing(scenario: _Scenario) -> None:
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "drops"))
    proxy = scenario.cluster.proxy

    def drops() -> None:
        for _ in range(DROPS):
            started = time.time()
            refuse_s = rng.uniform(0.2, 2.0)
            proxy.cut(refuse_s=refuse_s)
            time.sleep(refuse_s)
            scenario.faults.append((started, time.time()))
            time.sleep(rng.uniform(0.5, 1.5))
        if STALL_S > 0:
            started = time.time()
            with proxy.stalled():
                time.sleep(STALL_S)
            scenario.faults.append((started, time.time()))

    seconds = _stream(scenario, drops)
    polling_errors = sum(
        r.poller.counters.get(Metric.POLLING_ERROR) for r in scenario.fleet.stopped
    )
    _judge(
        scenario,
        f"connection drops: {DROPS} resets" + (f" + {STALL_S:.0f} s stall" if STALL_S else ""),
        seconds,
        note=f"{proxy.resets} connections reset; {polling_errors} polling errors counted",
    )
    assert proxy.resets >= DROPS, "the proxy never carried the poller's connections"


@pytest.mark.parametrize(
    ("advertise", "message"),
    [
        ({"CONTROLLER": 9093}, "listener 'CONTROLLER' is not valid"),
        ({"PLAINTEXT": 0}, "advertise['PLAINTEXT']=0 is not valid"),
        ({"SSL": "9093"}, "advertise['SSL']='9093' is not valid"),
    ],
)
def test_advertise_names_what_is_wrong(
    tmp_path: Path, advertise: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LocalKafka(tmp_path, advertise=advertise)  # type: ignore[arg-type]


def test_restart_needs_a_running_broker(tmp_path: Path) -> None:
    with pytest.raises(BrokerStartError, match=r"no broker from .* is running"):
        LocalKafka(tmp_path).restart()
