"""Doctor step 9 against the real local registry and moto's Glue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.cli.launcher import InvokeTarget
from runtime.devtools.local_kafka.registry import RegistryInfo
from runtime.doctor.model import DoctorInputs, Status
from runtime.doctor.report import STEPS, run_doctor
from runtime.testing import KafkaTestCluster
from tests.registry_helpers import Producer, order

pytestmark = pytest.mark.integration


def _report(
    tmp_path: Path,
    registry: dict[str, Any],
    *,
    topic: str = "orders-doctor",
    servers: str = "b-1:9096",
    all_steps: bool = False,
) -> list[tuple[str, Status, str]]:
    doc = {
        "FunctionName": "fn",
        "Topics": [topic],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [servers]}},
        "SelfManagedKafkaEventSourceConfig": {"SchemaRegistryConfig": registry},
    }
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    inputs = DoctorInputs(path, InvokeTarget(handler="tests.unit.sample_handlers:echo"))
    step = next(s for s in STEPS if s.title == "schema registry")
    report = run_doctor(inputs, STEPS if all_steps else [STEPS[0], step])
    return [(r.check, r.status, r.detail) for r in report.results if r.step == 9]


def _confluent(uri: str) -> dict[str, Any]:
    return {
        "SchemaRegistryURI": uri,
        "EventRecordFormat": "JSON",
        "SchemaValidationConfigs": [{"Attribute": "KEY"}, {"Attribute": "VALUE"}],
    }


def test_a_reachable_registry_passes_and_a_missing_subject_warns(
    tmp_path: Path, schema_registry: RegistryInfo
):
    Producer("AVRO", schema_registry.url, "orders-doctor").value(order(1))
    rows = _report(tmp_path, _confluent(schema_registry.url))
    assert rows[0][1] is Status.PASS and "answers" in rows[0][2]
    assert ("subject orders-doctor-value", Status.PASS, "registered") in rows
    assert [r[1] for r in rows if r[0] == "subject orders-doctor-key"] == [Status.WARN]


def test_an_unreachable_registry_fails_naming_it(tmp_path: Path):
    rows = _report(tmp_path, _confluent("http://127.0.0.1:9/apis/ccompat/v7"))
    assert [(r[1], "cannot be reached" in r[2]) for r in rows] == [(Status.FAIL, True)]


def test_a_glue_registry_is_looked_up(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        created = boto3.client("glue", region_name="eu-west-1").create_registry(RegistryName="shop")
        arn = created["RegistryArn"]
        ok = _report(tmp_path, {**_confluent(arn)})
        missing = _report(tmp_path, _confluent(arn.replace("shop", "nope")))
    assert ok == [("schema registry", Status.PASS, f"Glue registry {arn} exists")]
    assert missing[0][1] is Status.FAIL and "EntityNotFoundException" in missing[0][2]


def test_the_newest_record_of_the_topic_is_decoded_as_a_sample(
    tmp_path: Path, schema_registry: RegistryInfo, kafka_cluster: KafkaTestCluster
):
    topic = kafka_cluster.create_topic()
    producer = Producer("AVRO", schema_registry.url, topic)
    kafka_cluster.produce(topic, values=[b"old junk", producer.value(order(1))])
    config = {
        **_confluent(schema_registry.url),
        "SchemaValidationConfigs": [{"Attribute": "VALUE"}],
    }
    rows = _report(
        tmp_path, config, topic=topic, servers=kafka_cluster.bootstrap_servers, all_steps=True
    )
    (sample,) = [r for r in rows if r[0] == "sample record"]
    assert sample[1] is Status.PASS and f"{topic}-0@1 decodes: value JSON schema" in sample[2]
    kafka_cluster.produce(topic, values=[b"new junk"])
    rows = _report(
        tmp_path, config, topic=topic, servers=kafka_cluster.bootstrap_servers, all_steps=True
    )
    (sample,) = [r for r in rows if r[0] == "sample record"]
    assert sample[1] is Status.WARN and "magic byte" in sample[2]
