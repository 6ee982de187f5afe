"""``kafka-esm serve``'s API through boto3, without a broker: every mapping here is created
with ``Enabled: false`` (or refused), so no poller process starts."""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runtime.cli import status_serve
from runtime.control.functions import (
    FunctionSpecError,
    FunctionTarget,
    load_functions_file,
    parse_function_flags,
)
from runtime.control.lambda_api import create_only_members
from runtime.control.server import ControlServer
from runtime.control.service import Functions, MappingService
from runtime.control.store import MappingStore, StateFileError
from runtime.control.supervisor import PollerCommand
from runtime.devtools.processes import free_ports
from runtime.testing.serve import ServeProcess
from tests.fault_harness import wait_until

HANDLER = "tests.unit.sample_handlers:echo"


class Serve:
    """An in-process server on a free port, over a state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.store = MappingStore(state_dir)
        functions = Functions(
            {"fn": FunctionTarget(handler=HANDLER), "fn2": FunctionTarget(handler=HANDLER)},
            aws_lookup=False,
        )
        self.service = MappingService(self.store, functions, PollerCommand(), state_dir)
        self.server = ControlServer(("127.0.0.1", 0), self.service)
        self.service.resume()
        self.server.ready.set()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def client(self, region: str = "eu-west-3") -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.server.url,
            region_name=region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}),
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.service.shutdown()
        self.store.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path)
    yield server
    server.stop()


def request(**extra: Any) -> dict[str, Any]:
    return {
        "FunctionName": "fn",
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9"]}},
        "Enabled": False,
        **extra,
    }


def error_of(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_create_answers_as_aws_with_defaults_filled_in(serve: Serve) -> None:
    client = serve.client()
    created = client.create_event_source_mapping(**request())
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = created["UUID"]
    assert created["State"] in ("Creating", "Disabled")
    assert created["FunctionArn"] == "arn:aws:lambda:eu-west-3:000000000000:function:fn"
    assert created["BatchSize"] == 100
    assert created["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": uuid}
    assert created["Topics"] == ["orders"]
    assert created["StartingPosition"] == "TRIM_HORIZON"
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["State"] == "Disabled"
    assert got["StateTransitionReason"] == "User action"
    assert got["LastProcessingResult"] == "No records processed"
    assert got["LastModified"].timestamp() == pytest.approx(created["LastModified"].timestamp())
    assert got["EventSourceMappingArn"].endswith(f":event-source-mapping:{uuid}")


def test_list_filters_by_function_and_pages(serve: Serve) -> None:
    client = serve.client()
    ids = [
        client.create_event_source_mapping(**request(Topics=[f"topic-{i}"]))["UUID"]
        for i in range(5)
    ]
    listed = client.list_event_source_mappings()["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == ids
    assert client.list_event_source_mappings(FunctionName="other")["EventSourceMappings"] == []
    by_arn = client.list_event_source_mappings(
        FunctionName="arn:aws:lambda:eu-west-3:000000000000:function:fn"
    )
    assert len(by_arn["EventSourceMappings"]) == 5
    seen, marker = [], None
    while True:
        page = client.list_event_source_mappings(
            MaxItems=2, **({"Marker": marker} if marker else {})
        )
        seen += [m["UUID"] for m in page["EventSourceMappings"]]
        marker = page.get("NextMarker")
        if marker is None:
            break
    assert seen == ids
    paginator = client.get_paginator("list_event_source_mappings")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 3}))
    assert [m["UUID"] for p in pages for m in p["EventSourceMappings"]] == ids
    arn_filter = client.list_event_source_mappings(EventSourceArn="arn:aws:kafka:x")
    assert arn_filter["EventSourceMappings"] == []


def test_update_changes_fields_and_keeps_identity(serve: Serve) -> None:
    client = serve.client()
    uuid = settled(client, client.create_event_source_mapping(**request())["UUID"])
    updated = client.update_event_source_mapping(UUID=uuid, BatchSize=7)
    assert updated["BatchSize"] == 7
    assert updated["UUID"] == uuid
    assert updated["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == uuid
    assert client.get_event_source_mapping(UUID=uuid)["BatchSize"] == 7


def test_delete_removes_the_mapping(serve: Serve) -> None:
    client = serve.client()
    uuid = settled(client, client.create_event_source_mapping(**request())["UUID"])
    deleted = client.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    wait_for(lambda: not client.list_event_source_mappings()["EventSourceMappings"])
    assert error_of(lambda: client.get_event_source_mapping(UUID=uuid))[:2] == (
        404,
        "ResourceNotFoundException",
    )


def settled(client: Any, uuid: str) -> str:
    """``uuid`` once its worker has applied the create (Creating refuses updates)."""
    wait_for(lambda: client.get_event_source_mapping(UUID=uuid)["State"] == "Disabled")
    return uuid


def wait_for(condition: Callable[[], bool]) -> None:
    wait_until(condition, 10, "condition")


# ------------------------------------------------------------------------------ errors


def test_invalid_field_names_it_with_the_validator_message(serve: Serve) -> None:
    client = serve.client()
    status, code, message = error_of(
        lambda: client.create_event_source_mapping(**request(BatchSize=20000))
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "BatchSize: 20000 must be an integer from 1 to 10000" in message


def test_missing_required_field(serve: Serve) -> None:
    client = serve.client()
    status, code, message = error_of(
        lambda: client.create_event_source_mapping(
            FunctionName="fn",
            Topics=["orders"],
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["h:9092"]}},
        )
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "StartingPosition: <missing> is required" in message


def test_unknown_function_is_refused_as_aws_does(serve: Serve) -> None:
    client = serve.client()
    status, code, message = error_of(
        lambda: client.create_event_source_mapping(**request(FunctionName="nope"))
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith("Function does not exist: ")
    assert "function:nope" in message and "fn" in message
    assert client.list_event_source_mappings()["EventSourceMappings"] == []


def test_second_mapping_on_a_consumer_group_conflicts(serve: Serve) -> None:
    client = serve.client()
    group = {"SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "shared"}}
    first = client.create_event_source_mapping(**request(**group))["UUID"]
    status, code, message = error_of(
        lambda: client.create_event_source_mapping(**request(Topics=["other"], **group))
    )
    assert (status, code) == (409, "ResourceConflictException")
    assert first in message and "ConsumerGroupId" in message


def test_unknown_uuid_is_not_found_for_every_operation(serve: Serve) -> None:
    client = serve.client()
    missing = "6f6b1b7e-0000-4000-8000-000000000000"
    for call in (
        lambda: client.get_event_source_mapping(UUID=missing),
        lambda: client.update_event_source_mapping(UUID=missing, BatchSize=5),
        lambda: client.delete_event_source_mapping(UUID=missing),
    ):
        assert error_of(call)[:2] == (404, "ResourceNotFoundException")


def test_create_only_fields_are_refused_in_update(serve: Serve) -> None:
    uuid = serve.client().create_event_source_mapping(**request())["UUID"]
    for field, value in (
        ("Topics", ["other"]),
        ("StartingPosition", "LATEST"),
        ("SelfManagedEventSource", {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["h:1"]}}),
        ("SelfManagedKafkaEventSourceConfig", {"ConsumerGroupId": "g2"}),
    ):
        status, body = raw(
            serve, "PUT", f"/2015-03-31/event-source-mappings/{uuid}", {field: value}
        )
        assert status == 400, field
        assert body["__type"] == "InvalidParameterValueException"
        assert "cannot be updated" in body["message"]
    assert {"Topics", "StartingPosition", "SelfManagedEventSource", "Tags"} <= create_only_members()


def test_update_during_updating_conflicts_and_delete_is_in_use(serve: Serve) -> None:
    client = serve.client()
    uuid = settled(client, client.create_event_source_mapping(**request())["UUID"])
    worker = serve.service.workers()[uuid]
    worker.shutdown()  # the worker stops following: the mapping stays Updating below
    worker.join()
    client.update_event_source_mapping(UUID=uuid, BatchSize=9)
    assert client.get_event_source_mapping(UUID=uuid)["State"] == "Updating"
    status, code, _ = error_of(lambda: client.update_event_source_mapping(UUID=uuid, BatchSize=8))
    assert (status, code) == (409, "ResourceConflictException")
    status, code, _ = error_of(lambda: client.delete_event_source_mapping(UUID=uuid))
    assert (status, code) == (400, "ResourceInUseException")


def test_bad_marker_and_max_items(serve: Serve) -> None:
    status, body = raw(serve, "GET", "/2015-03-31/event-source-mappings/?Marker=bogus")
    assert (status, body["__type"]) == (400, "InvalidParameterValueException")
    status, body = raw(serve, "GET", "/2015-03-31/event-source-mappings/?MaxItems=0")
    assert (status, body["__type"]) == (400, "InvalidParameterValueException")
    status, body = raw(serve, "GET", "/2015-03-31/event-source-mappings/?MaxItems=x")
    assert (status, body["__type"]) == (400, "InvalidParameterValueException")


def test_body_that_is_not_json(serve: Serve) -> None:
    status, body = raw(serve, "POST", "/2015-03-31/event-source-mappings/", b"{nope")
    assert (status, body["__type"]) == (400, "InvalidParameterValueException")


def test_health_and_unknown_paths(serve: Serve) -> None:
    status, body = raw(serve, "GET", "/health")
    assert status == 200 and body["status"] == "ready"
    assert raw(serve, "GET", "/2015-03-31/functions/")[0] == 404
    assert raw(serve, "PATCH", "/2015-03-31/event-source-mappings/")[0] == 405


def raw(serve: Serve, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(serve.server.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


# ------------------------------------------------------------------------------ state


def test_mappings_come_back_with_the_same_uuid_after_a_restart(tmp_path: Path) -> None:
    first = Serve(tmp_path)
    client = first.client()
    uuid = client.create_event_source_mapping(**request(BatchSize=3))["UUID"]
    first.stop()
    second = Serve(tmp_path)
    try:
        got = second.client().get_event_source_mapping(UUID=uuid)
        assert got["BatchSize"] == 3
        assert got["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == uuid
    finally:
        second.stop()


def test_a_corrupt_state_file_is_refused_not_reset(tmp_path: Path) -> None:
    path = tmp_path / "mappings.sqlite"
    path.write_bytes(b"this is not a database, but someone's file" * 100)
    with pytest.raises(StateFileError, match="not a kafka-esm serve database"):
        MappingStore(tmp_path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "mappings.sqlite") as db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(StateFileError, match="belongs to another program"):
        MappingStore(tmp_path)


def test_function_flags() -> None:
    targets = parse_function_flags(
        ["a=pkg.mod:handler", "b=http://127.0.0.1:9000", "c=rie+http://127.0.0.1:8080/"]
    )
    assert targets["a"].run_flags() == ["--handler", "pkg.mod:handler"]
    assert targets["b"].run_flags()[-1] == "invoke-http"
    assert targets["c"].run_flags() == [
        "--endpoint-url",
        "http://127.0.0.1:8080",
        "--endpoint-kind",
        "rie",
    ]
    for bad in ("a", "a=not a spec", "a=ftp://x"):
        with pytest.raises(FunctionSpecError, match="--function"):
            parse_function_flags([bad])


# ------------------------------------------------------------------------------ the command


def serve_command(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_serve_refuses_a_corrupt_state_file_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mappings.sqlite").write_bytes(b"garbage" * 1000)
    result = serve_command("--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert "not a kafka-esm serve database" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_bad_function_flag(tmp_path: Path) -> None:
    result = serve_command("--state-dir", str(tmp_path), "--function", "fn=not a handler")
    assert result.returncode == 2
    assert "--function fn=not a handler" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_preloads_mapping_files_once(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "one.json").write_text(json.dumps(request()))
    state = tmp_path / "state"
    for _ in range(2):  # the second start keeps the stored mapping instead of adding one
        serve = ServeProcess(state, {"fn": HANDLER}, extra_args=["--mappings", str(mappings)])
        serve.start()
        try:
            listed = serve.client().list_event_source_mappings()["EventSourceMappings"]
        finally:
            assert serve.stop() == 0
        assert len(listed) == 1
        assert listed[0]["Topics"] == ["orders"] and listed[0]["State"] == "Disabled"


def test_serve_refuses_an_invalid_mapping_file(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "bad.json").write_text(json.dumps(request(BatchSize=0)))
    result = serve_command(
        "--state-dir",
        str(tmp_path / "state"),
        "--local-only",
        "--function",
        f"fn={HANDLER}",
        "--mappings",
        str(mappings),
    )
    assert result.returncode == 2
    assert "BatchSize: 0 must be an integer from 1 to 10000" in result.stderr
    assert "bad.json" in result.stderr


def test_consumer_group_id_in_an_update_is_refused_through_boto3(serve: Serve) -> None:
    client = serve.client()
    uuid = client.create_event_source_mapping(**request())["UUID"]
    status, code, message = error_of(
        lambda: client.update_event_source_mapping(
            UUID=uuid, SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "other"}
        )
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "SelfManagedKafkaEventSourceConfig.ConsumerGroupId" in message
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == uuid


def test_functions_file(tmp_path: Path) -> None:
    path = tmp_path / "functions.json"
    path.write_text(json.dumps({"a": "app:handler", "b": "http://127.0.0.1:3001"}))
    targets = load_functions_file(path)
    assert targets["a"].handler == "app:handler"
    assert targets["b"].endpoint_url == "http://127.0.0.1:3001"
    path.write_text(json.dumps(["app:handler"]))
    with pytest.raises(FunctionSpecError, match="must be a JSON object"):
        load_functions_file(path)
    with pytest.raises(FunctionSpecError, match="cannot read it"):
        load_functions_file(tmp_path / "missing.json")


def test_status_endpoint_that_does_not_answer(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.cli.main",
            "status",
            "--endpoint",
            f"http://127.0.0.1:{port}",
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"kafka-esm status: http://127.0.0.1:{port}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_status_endpoint_lists_mappings(serve: Serve, tmp_path: Path) -> None:
    uuid = serve.client().create_event_source_mapping(**request())["UUID"]
    out = io.StringIO()
    args = argparse.Namespace(endpoint=serve.server.url, once=True, interval=1.0)
    assert status_serve.run(args, out, io.StringIO()) == 0
    header, row = out.getvalue().splitlines()
    assert header.split() == ["UUID", "FUNCTION", "TOPIC", "STATE", "LAG", "LASTPROCESSINGRESULT"]
    assert row.split()[:4] == [uuid, "fn", "orders", "Disabled"]


def test_update_function_name(serve: Serve) -> None:
    client = serve.client()
    uuid = settled(client, client.create_event_source_mapping(**request())["UUID"])
    updated = client.update_event_source_mapping(UUID=uuid, FunctionName="fn2")
    assert updated["FunctionArn"].endswith(":function:fn2")
    assert (
        client.list_event_source_mappings(FunctionName="fn2")["EventSourceMappings"][0]["UUID"]
        == uuid
    )
    wait_for(lambda: client.get_event_source_mapping(UUID=uuid)["State"] == "Disabled")
    status, code, message = error_of(
        lambda: client.update_event_source_mapping(UUID=uuid, FunctionName="gone")
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith("Function does not exist")
    assert client.get_event_source_mapping(UUID=uuid)["FunctionArn"].endswith(":function:fn2")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    MappingStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "mappings.sqlite") as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StateFileError, match="schema version 99"):
        MappingStore(tmp_path)


def test_a_second_serve_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = MappingStore(tmp_path)
    try:
        result = serve_command("--state-dir", str(tmp_path))
        assert result.returncode == 2
        assert f"in use by another kafka-esm serve (pid {os.getpid()})" in result.stderr
    finally:
        first.close()
    MappingStore(tmp_path).close()  # free again once the first let go


def test_an_interrupted_delete_is_finished_at_the_next_start(tmp_path: Path) -> None:
    store = MappingStore(tmp_path)
    store.add("5d1b6a0e-0000-4000-8000-000000000001", {**request(), "UUID": "x"}, "us-east-1")
    store.mark_deleting("5d1b6a0e-0000-4000-8000-000000000001")
    store.close()
    serve = Serve(tmp_path)
    try:
        assert serve.client().list_event_source_mappings()["EventSourceMappings"] == []
        assert serve.store.all() == []
    finally:
        serve.stop()
