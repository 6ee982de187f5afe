"""The JSON users already have from the AWS CLI and boto3, read as a mapping definition."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from runtime.definition.aws_json import OUTPUT_ONLY
from runtime.definition.checks import MappingValidationError
from runtime.definition.model import MappingLoadError, load_mapping
from tests.cli_helpers import KAFKA_ESM, kafka_esm, run_kafka_esm

UUID = "a1b2c3d4-5678-90ab-cdef-111122223333"

GET_ANSWER: dict[str, Any] = {
    # `aws lambda get-event-source-mapping --uuid ...` as the CLI prints it.
    "UUID": UUID,
    "StartingPosition": "AT_TIMESTAMP",
    "StartingPositionTimestamp": "2026-01-01T00:00:00+00:00",
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 1,
    "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:orders",
    "LastModified": "2026-11-30T10:00:00+00:00",
    "LastProcessingResult": "OK",
    "State": "Enabled",
    "StateTransitionReason": "USER_INITIATED",
    "Topics": ["orders"],
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1.example.com:9092"]}},
    "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "orders-group"},
    "EventSourceMappingArn": f"arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:{UUID}",
    "ResponseMetadata": {"HTTPStatusCode": 200},
}


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc))
    return path


def test_output_only_fields_are_botocores() -> None:
    model = botocore.session.get_session().get_service_model("lambda")
    answer = set(model.shape_for("EventSourceMappingConfiguration").members)
    request = set(model.operation_model("CreateEventSourceMapping").input_shape.members)
    assert answer - request - {"UUID"} | {"ResponseMetadata"} == OUTPUT_ONLY


def test_a_get_answer_runs_with_one_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        mapping = load_mapping(_write(tmp_path, GET_ANSWER))
    assert mapping.function_name == "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    assert mapping.uuid == UUID  # the same identity as the mapping in AWS
    assert mapping.consumer_group_id == "orders-group"
    assert mapping.starting_position_timestamp == 1_767_225_600
    assert mapping.enabled
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1
    assert "EventSourceMappingArn, FunctionArn, LastModified, LastProcessingResult" in notices[0]


@pytest.mark.parametrize(
    "stamp", ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00"]
)
def test_iso_timestamps_are_read_as_the_aws_cli_reads_them(tmp_path: Path, stamp: str) -> None:
    request = {**_request(), "StartingPositionTimestamp": stamp}
    assert load_mapping(_write(tmp_path, request)).starting_position_timestamp == 1_767_225_600


def test_a_string_that_is_no_timestamp_is_still_refused(tmp_path: Path) -> None:
    request = {**_request(), "StartingPositionTimestamp": "yesterday"}
    with pytest.raises(MappingValidationError, match="must be a number of epoch seconds"):
        load_mapping(_write(tmp_path, request))


def test_a_disabled_mapping_stays_disabled(tmp_path: Path) -> None:
    answer = {**GET_ANSWER, "State": "Disabled"}
    assert not load_mapping(_write(tmp_path, answer)).enabled


def test_a_list_answer_with_one_mapping_runs_it(tmp_path: Path) -> None:
    listed = {"EventSourceMappings": [GET_ANSWER], "NextMarker": None}
    assert load_mapping(_write(tmp_path, listed)).uuid == UUID


def test_a_list_answer_with_two_mappings_says_what_to_do(tmp_path: Path) -> None:
    listed = {"EventSourceMappings": [GET_ANSWER, GET_ANSWER]}
    with pytest.raises(MappingLoadError, match=r"holds 2 mappings.*one process per mapping"):
        load_mapping(_write(tmp_path, listed))


def test_a_top_level_consumer_group_id_is_pointed_to_its_place(tmp_path: Path) -> None:
    request = {**_request(), "ConsumerGroupId": "g"}
    with pytest.raises(MappingValidationError) as refused:
        load_mapping(_write(tmp_path, request))
    assert "ConsumerGroupId" in str(refused.value)
    assert "belongs under SelfManagedKafkaEventSourceConfig" in str(refused.value)


def test_the_aws_cli_file_form_is_accepted(tmp_path: Path) -> None:
    mapping = _write(tmp_path, {**_request(), "Enabled": False})
    argv = [*KAFKA_ESM, "run", "--mapping", f"file://{mapping}"]
    done = run_kafka_esm([*argv, "--handler", "tests.unit.sample_handlers:echo"])
    assert done.returncode == 0, done.stderr


def test_two_mappings_on_one_command_line_are_refused(tmp_path: Path) -> None:
    mapping = _write(tmp_path, _request())
    done = run_kafka_esm(kafka_esm("run", mapping, "--mapping", str(mapping)))
    assert done.returncode == 2
    assert "--mapping is given twice" in done.stderr


def _request() -> dict[str, Any]:
    return {
        "FunctionName": "orders",
        "Topics": ["orders"],
        "StartingPosition": "AT_TIMESTAMP",
        "StartingPositionTimestamp": 1_767_225_600,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}},
    }
