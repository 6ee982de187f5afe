"""``kafka-esm serve`` end to end: a real broker, real HTTP, boto3 (and the AWS CLI) as clients,
one ``kafka-esm run`` process per mapping."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from runtime.devtools.processes import alive
from runtime.observability.status import read_status_documents
from runtime.testing.serve import ServeProcess
from tests.conftest import REPO_ROOT
from tests.fault_harness import committed_offsets, end_offsets, wait_until
from tests.kafka_helpers import produce
from tests.security_helpers import mapping_request, root_ca_doc, write_secret

pytestmark = pytest.mark.integration

RECORD = "tests.integration.serve_handler:record"
CRASH = "tests.integration.serve_handler:crash"


class Deliveries:
    """What the handlers wrote: one file per function."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def lines(self, function: str) -> list[list[str]]:
        path = self.directory / f"{function}.log"
        if not path.exists():
            return []
        return [line.split(" ", 4) for line in path.read_text().splitlines()]

    def values(self, function: str) -> set[str]:
        return {line[4] for line in self.lines(function)}

    def batch_sizes(self, function: str) -> list[int]:
        return [int(line[0]) for line in self.lines(function)]


@pytest.fixture
def deliveries(tmp_path: Path) -> Deliveries:
    directory = tmp_path / "deliveries"
    directory.mkdir()
    return Deliveries(directory)


@pytest.fixture
def start_serve(tmp_path: Path, deliveries: Deliveries) -> Any:
    started: list[ServeProcess] = []

    def start(
        functions: dict[str, str],
        state_dir: Path | None = None,
        delay: float = 0,
        extra_args: tuple[str, ...] | list[str] = (),
    ) -> ServeProcess:
        serve = ServeProcess(
            state_dir or tmp_path / "state",
            functions,
            extra_args=["--drain-timeout", "10", *extra_args],
            env={
                "SERVE_DELIVERY_DIR": str(deliveries.directory),
                "SERVE_HANDLER_DELAY": str(delay),
            },
            cwd=REPO_ROOT,
        ).start()
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()


def request(kafka: ClusterInfo, function: str, topic: str, **extra: Any) -> dict[str, Any]:
    return {
        "FunctionName": function,
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "MaximumBatchingWindowInSeconds": 0,
        **extra,
    }


def state_of(client: Any, uuid: str) -> str:
    return str(client.get_event_source_mapping(UUID=uuid)["State"])


def wait_state(
    client: Any, uuid: str, state: str, serve: ServeProcess, timeout_s: float = 60
) -> None:
    try:
        wait_until(lambda: state_of(client, uuid) == state, timeout_s, f"{uuid} {state}")
    except AssertionError as exc:
        got = client.get_event_source_mapping(UUID=uuid)
        now = f"now {got['State']} ({got['StateTransitionReason']})"
        raise AssertionError(f"{exc}; {now}:\n{poller_log(serve, uuid)}") from None


def poller_log(serve: ServeProcess, uuid: str) -> str:
    path = serve.state_dir / "mappings" / uuid / "poller.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no poller log)"


def poller_pids(serve: ServeProcess, uuid: str) -> set[int]:
    documents, _ = read_status_documents(serve.state_dir / "mappings" / uuid / "status")
    return {d.pid for d in documents}


def test_three_mappings_on_three_topics_reach_their_handlers(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    start_serve: Any,
    deliveries: Deliveries,
) -> None:
    functions = {f"fn{i}": RECORD for i in range(3)}
    serve = start_serve(functions)
    client = serve.client(region="ap-south-1")
    topics = [topic_factory() for _ in range(3)]
    for topic in topics:
        produce(kafka.plaintext_config(), topic, [f"{topic}-{n}".encode() for n in range(10)])
    started = time.monotonic()
    ids = [
        client.create_event_source_mapping(**request(kafka, f"fn{i}", topic))["UUID"]
        for i, topic in enumerate(topics)
    ]
    wait_until(lambda: all(deliveries.lines(f"fn{i}") for i in range(3)), 60, "first records")
    first_delivery_s = time.monotonic() - started
    for i, topic in enumerate(topics):
        expected = {f"{topic}-{n}" for n in range(10)}
        wait_until(lambda i=i, e=expected: deliveries.values(f"fn{i}") == e, 60, f"fn{i} records")
    listed = client.list_event_source_mappings()["EventSourceMappings"]
    assert sorted(m["UUID"] for m in listed) == sorted(ids)
    assert {m["Topics"][0] for m in listed} == set(topics)
    for uuid in ids:
        wait_until(
            lambda u=uuid: client.get_event_source_mapping(UUID=u)["LastProcessingResult"] == "OK",
            30,
            f"{uuid} LastProcessingResult OK",
        )
        got = client.get_event_source_mapping(UUID=uuid)
        assert got["State"] == "Enabled"
        assert got["FunctionArn"].startswith("arn:aws:lambda:ap-south-1:")
    print(f"create -> first record delivered (three mappings at once): {first_delivery_s:.2f}s")


def test_update_disable_and_enable_without_loss(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    start_serve: Any,
    deliveries: Deliveries,
) -> None:
    serve = start_serve({"fn": RECORD})
    client = serve.client()
    topic = topic_factory(partitions=2)
    config = kafka.plaintext_config()
    produce(config, topic, [b"a%d" % n for n in range(20)])
    uuid = client.create_event_source_mapping(**request(kafka, "fn", topic, BatchSize=50))["UUID"]
    wait_until(lambda: len(deliveries.values("fn")) == 20, 60, "first 20")
    wait_state(client, uuid, "Enabled", serve)

    updated = client.update_event_source_mapping(UUID=uuid, BatchSize=2)
    assert updated["State"] == "Updating" and updated["BatchSize"] == 2
    wait_state(client, uuid, "Enabled", serve)
    before = len(deliveries.lines("fn"))
    produce(config, topic, [b"b%d" % n for n in range(10)])
    wait_until(lambda: len(deliveries.values("fn")) == 30, 60, "10 after the update")
    assert max(deliveries.batch_sizes("fn")[before:]) <= 2  # the poller follows BatchSize

    disabled = client.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert disabled["State"] == "Disabling"
    wait_state(client, uuid, "Disabled", serve)
    assert not any(alive(pid) for pid in poller_pids(serve, uuid))  # consumption stopped
    # Everything delivered before the stop is committed: nothing read twice on enable.
    assert committed_offsets(config, uuid, topic, 2) == end_offsets(config, topic, 2)
    produce(config, topic, [b"c%d" % n for n in range(10)])

    enabled = client.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert enabled["State"] == "Enabling"
    wait_until(lambda: len(deliveries.values("fn")) == 40, 60, "10 produced while disabled")
    wait_state(client, uuid, "Enabled", serve)
    expected = {f"{p}{n}" for p, count in (("a", 20), ("b", 10), ("c", 10)) for n in range(count)}
    assert deliveries.values("fn") == expected


def test_serve_restarts_mid_stream_sigterm_then_kill9_nothing_lost(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    start_serve: Any,
    deliveries: Deliveries,
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "restart-state"
    serve = start_serve({"fn": RECORD}, state_dir, delay=0.1)
    client = serve.client()
    topic = topic_factory(partitions=2)
    config = kafka.plaintext_config()
    produce(config, topic, [b"r%03d" % n for n in range(200)])
    uuid = client.create_event_source_mapping(**request(kafka, "fn", topic, BatchSize=5))["UUID"]
    wait_until(lambda: len(deliveries.values("fn")) >= 30, 60, "mid-stream")

    pollers = poller_pids(serve, uuid)
    assert serve.stop() == 0
    assert pollers and not any(alive(pid) for pid in pollers)
    assert len(deliveries.values("fn")) < 200  # it really stopped mid-stream

    serve = start_serve({"fn": RECORD}, state_dir, delay=0.1)
    client = serve.client()
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == uuid
    wait_until(lambda: len(deliveries.values("fn")) >= 120, 60, "after the SIGTERM restart")
    pollers = poller_pids(serve, uuid) - pollers
    serve.kill()
    wait_until(lambda: not any(alive(pid) for pid in pollers), 10, "pollers die with serve")
    produce(config, topic, [b"r%03d" % n for n in range(200, 250)])

    serve = start_serve({"fn": RECORD}, state_dir)
    client = serve.client()
    wait_until(lambda: len(deliveries.values("fn")) == 250, 90, "all 250 after kill -9")
    assert deliveries.values("fn") == {f"r{n:03d}" for n in range(250)}
    wait_state(client, uuid, "Enabled", serve)
    assert len(client.list_event_source_mappings()["EventSourceMappings"]) == 1


def test_a_crashing_poller_is_restarted_and_says_why_others_unaffected(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    start_serve: Any,
    deliveries: Deliveries,
) -> None:
    serve = start_serve({"good": RECORD, "bad": CRASH})
    client = serve.client()
    good_topic, bad_topic = topic_factory(), topic_factory()
    produce(kafka.plaintext_config(), bad_topic, [b"x"])
    bad = client.create_event_source_mapping(**request(kafka, "bad", bad_topic))["UUID"]
    good = client.create_event_source_mapping(**request(kafka, "good", good_topic))["UUID"]

    def restarting() -> bool:
        got = client.get_event_source_mapping(UUID=bad)
        return "poller exited with code 70" in got["StateTransitionReason"]

    wait_until(restarting, 60, "the crash shows in StateTransitionReason")
    got = client.get_event_source_mapping(UUID=bad)
    assert got["LastProcessingResult"] == "PROBLEM: poller exited with code 70"
    produce(kafka.plaintext_config(), good_topic, [b"fine"])
    wait_until(lambda: deliveries.values("good") == {"fine"}, 60, "the other mapping delivers")
    wait_state(client, good, "Enabled", serve)
    wait_until(
        lambda: (
            "restart 2 in 2 s" in client.get_event_source_mapping(UUID=bad)["StateTransitionReason"]
        ),
        60,
        "a second restart, with backoff",
    )


def test_a_hung_poller_is_killed_and_restarted_without_loss(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    start_serve: Any,
    deliveries: Deliveries,
) -> None:
    serve = start_serve({"fn": RECORD}, extra_args=["--stuck-after", "8"])
    client = serve.client()
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"h1"])
    uuid = client.create_event_source_mapping(**request(kafka, "fn", topic))["UUID"]
    wait_until(lambda: deliveries.values("fn") == {"h1"}, 60, "first record")
    (hung,) = poller_pids(serve, uuid)
    os.kill(hung, signal.SIGSTOP)  # the loop stops: no heartbeat, no reads
    produce(kafka.plaintext_config(), topic, [b"h2"])

    def reported() -> bool:
        reason = client.get_event_source_mapping(UUID=uuid)["StateTransitionReason"]
        return "poller loop stuck" in reason

    wait_until(reported, 60, "the hang shows in StateTransitionReason")
    assert not alive(hung)
    wait_until(lambda: deliveries.values("fn") == {"h1", "h2"}, 60, "h2 after the restart")
    wait_state(client, uuid, "Enabled", serve)


def test_a_mapping_the_poller_refuses_is_disabled_with_its_reason(
    kafka: ClusterInfo, topic_factory: Callable[..., str], start_serve: Any
) -> None:
    serve = start_serve({"fn": "tests.integration.no_such_module:handler"})
    client = serve.client()
    uuid = client.create_event_source_mapping(**request(kafka, "fn", topic_factory()))["UUID"]
    wait_state(client, uuid, "Disabled", serve)
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["StateTransitionReason"] in ("ESM_CONFIG_NOT_VALID", "FUNCTION_CONFIG_NOT_VALID")
    assert got["LastProcessingResult"].startswith("PROBLEM: ")
    assert "no_such_module" in got["LastProcessingResult"]


def test_an_authentication_failure_disables_the_mapping_with_aws_reason(
    secured_kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    start_serve: Any,
    tmp_path: Path,
) -> None:
    serve = start_serve({"security-test": RECORD})
    client = serve.client()
    access = [
        ("SASL_SCRAM_512_AUTH", write_secret(tmp_path, {"username": "alice", "password": "no"})),
        ("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp_path, root_ca_doc(secured_kafka))),
    ]
    doc = mapping_request(secured_kafka.address("SASL_SSL"), topic_factory(), "g-auth", access)
    uuid = client.create_event_source_mapping(**doc)["UUID"]
    wait_state(client, uuid, "Disabled", serve, timeout_s=90)
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["StateTransitionReason"] == "EVENT_SOURCE_AUTHN_ERROR"
    assert got["LastProcessingResult"] == "PROBLEM: SASL authentication failed"


def test_status_lists_every_mapping_of_a_running_serve(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    kafka_esm_serve: Callable[..., ServeProcess],
    deliveries: Deliveries,
) -> None:
    serve = kafka_esm_serve(  # the plugin's fixture, as the README shows it
        {"fn": RECORD}, env={"SERVE_DELIVERY_DIR": str(deliveries.directory)}, cwd=REPO_ROOT
    )
    client = serve.client()
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"s%d" % n for n in range(5)])
    uuid = client.create_event_source_mapping(**request(kafka, "fn", topic))["UUID"]
    wait_until(lambda: len(deliveries.values("fn")) == 5, 60, "5 delivered")
    wait_until(
        lambda: client.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK",
        30,
        "LastProcessingResult OK",
    )
    result = subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "status", "--endpoint", serve.url, "--once"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(uuid))
    assert row.split() == [uuid, "fn", topic, "Enabled", "0", "OK"]


@pytest.mark.skipif(
    shutil.which("aws", path=os.path.dirname(sys.executable)) is None,
    reason="awscli is not installed",
)
def test_the_aws_cli_creates_and_lists(
    kafka: ClusterInfo, topic_factory: Callable[..., str], start_serve: Any, tmp_path: Path
) -> None:
    serve = start_serve({"fn": RECORD})
    aws = [
        os.path.join(os.path.dirname(sys.executable), "aws"),
        "lambda",
        "--endpoint-url",
        serve.url,
        "--region",
        "eu-central-1",
        "--output",
        "json",
    ]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_CONFIG_FILE": "/dev/null",
    }
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps(request(kafka, "fn", topic_factory(), Enabled=False)))
    created = subprocess.run(
        [*aws, "create-event-source-mapping", "--cli-input-json", f"file://{mapping}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    uuid = json.loads(created.stdout)["UUID"]
    listed = subprocess.run(
        [*aws, "list-event-source-mappings", "--function-name", "fn"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [m["UUID"] for m in json.loads(listed.stdout)["EventSourceMappings"]] == [uuid]
    refused = subprocess.run(
        [*aws, "get-event-source-mapping", "--uuid", "00000000-0000-4000-8000-000000000000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "ResourceNotFoundException" in refused.stderr
