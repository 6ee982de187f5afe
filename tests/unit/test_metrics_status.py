"""``kafka-esm status``: the status document, the table rows and the screen."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runtime.cli import status as status_command
from runtime.cli.status import desired_pollers, partition_rows, render
from runtime.cli.terminal import Painter
from runtime.definition.model import parse_mapping
from runtime.observability.lag import (
    GroupMember,
    GroupView,
    LagReadError,
    LagSnapshot,
    PartitionLag,
)
from runtime.observability.status import (
    INVOKING,
    POLLING,
    StatusDocument,
    StatusDocumentError,
    read_status_documents,
    status_path,
    write_status_document,
)

NOW = 1_700_000_100.0
MAPPING_DOC = {
    "FunctionName": "fn",
    "Topics": ["orders"],
    "StartingPosition": "TRIM_HORIZON",
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9092"]}},
    "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g1"},
}


def _document(**fields: Any) -> StatusDocument:
    values: dict[str, Any] = {
        "uuid": "u-1",
        "function_name": "fn",
        "topic": "orders",
        "group": "g1",
        "host": "box",
        "pid": 41,
        "updated_at": NOW - 1,
        "state": "Enabled",
        "state_transition_reason": "User action",
        "last_processing_result": "OK",
        "status_interval_s": 2.0,
        "partitions": {0: INVOKING, 1: POLLING},
        "counters": {"PolledEventCount": 3},
        "desired_pollers": 2,
    }
    values.update(fields)
    return StatusDocument(**values)


def _lag(read_at: float, *committed_end: tuple[int | None, int]) -> LagSnapshot:
    partitions = tuple(
        PartitionLag(p, c, 0, e, e - (c or 0)) for p, (c, e) in enumerate(committed_end)
    )
    return LagSnapshot("orders", "g1", partitions, read_at)


# ------------------------------------------------------------------------------ document


def test_document_survives_a_round_trip_through_disk(tmp_path: Path) -> None:
    path = status_path(tmp_path / "deep", "box", 41)
    write_status_document(path, _document())
    [read], problems = read_status_documents(tmp_path / "deep")
    assert read == _document()
    assert problems == []
    assert path.name == "box-41.json"
    assert [p.name for p in path.parent.iterdir()] == ["box-41.json"], "no temporary left"


def test_document_uses_aws_field_names() -> None:
    body = _document().to_json()
    assert body["State"] == "Enabled"
    assert body["LastProcessingResult"] == "OK"
    assert body["StateTransitionReason"] == "User action"
    assert body["partitions"] == {"0": INVOKING, "1": POLLING}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 9}, "version 9 is not 1"),
        ({"pid": "41"}, "field 'pid' is '41'"),
        ({"State": None}, "field 'State' is None"),
        ({"partitions": []}, "field 'partitions' is \\[\\]"),
    ],
)
def test_a_bad_document_names_the_file_and_the_field(change: dict[str, Any], message: str) -> None:
    body = {**_document().to_json(), **change}
    with pytest.raises(StatusDocumentError, match=f"some.json: {message}"):
        StatusDocument.from_json(body, "some.json")


def test_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    write_status_document(status_path(tmp_path, "a", 1), _document(pid=1, updated_at=NOW - 5))
    write_status_document(status_path(tmp_path, "b", 2), _document(pid=2, updated_at=NOW - 1))
    (tmp_path / "broken.json").write_text("{not json")
    documents, problems = read_status_documents(tmp_path)
    assert [d.pid for d in documents] == [2, 1], "newest first"
    [problem] = problems
    assert problem.startswith(f"{tmp_path / 'broken.json'}: unreadable")


def test_a_missing_directory_has_no_documents(tmp_path: Path) -> None:
    assert read_status_documents(tmp_path / "none") == ([], [])


def test_a_document_goes_stale_after_three_silent_intervals() -> None:
    assert not _document(updated_at=NOW - 5).is_stale(NOW)
    assert _document(updated_at=NOW - 7).is_stale(NOW)
    assert not _document(updated_at=NOW - 600, state="Disabled").is_stale(NOW)


# ---------------------------------------------------------------------------------- rows


def test_rows_join_offsets_with_what_the_pollers_say() -> None:
    lag = _lag(NOW, (10, 15), (20, 20), (5, 9), (None, 4))
    group = GroupView(
        "Stable",
        (
            GroupMember("m-1", "kafka-esm-1", "/10.0.0.1", (0, 1)),
            GroupMember("m-2", "kafka-esm-1", "/10.0.0.2", (2,)),
        ),
    )
    rows = partition_rows(lag, group, [_document()], None, NOW)
    assert [(r.partition, r.committed, r.end, r.lag, r.state, r.owner) for r in rows] == [
        (0, 10, 15, 5, INVOKING, "41@box"),
        (1, 20, 20, 0, "caught-up", "41@box"),
        (2, 5, 9, 4, "assigned", "kafka-esm-1@/10.0.0.2"),  # a poller on another machine
        (3, None, 4, 4, "unassigned", "-"),
    ]
    assert all(r.rate is None for r in rows), "no rate on the first reading"


def test_rate_is_committed_records_per_second_between_readings() -> None:
    before = _lag(NOW - 2, (10, 50), (None, 9))
    after = _lag(NOW, (40, 50), (3, 9))
    rows = partition_rows(after, None, [], before, NOW)
    assert [r.rate for r in rows] == [15.0, None]


def test_stale_and_disabled_documents_claim_no_partition() -> None:
    lag = _lag(NOW, (0, 5))
    stale = _document(updated_at=NOW - 60)
    disabled = _document(pid=7, state="Disabled")
    rows = partition_rows(lag, None, [stale, disabled], None, NOW)
    assert rows[0].state == "unassigned"


def test_the_newest_document_wins_a_partition_after_a_rebalance() -> None:
    lag = _lag(NOW, (0, 5))
    old = _document(pid=1, updated_at=NOW - 3, partitions={0: POLLING})
    new = _document(pid=2, updated_at=NOW - 1, partitions={0: INVOKING})
    rows = partition_rows(lag, None, [new, old], None, NOW)
    assert (rows[0].state, rows[0].owner) == (INVOKING, "2@box")


# -------------------------------------------------------------------------------- screen


def test_screen_shows_state_result_table_and_desired_pollers() -> None:
    mapping = parse_mapping(MAPPING_DOC)
    before = _lag(NOW - 1, (0, 30), (0, 0))
    lag = _lag(NOW, (10, 30), (0, 0))
    rows = partition_rows(lag, None, [_document()], before, NOW)
    screen = render(mapping, lag, rows, group=None, documents=[_document()], now=NOW)
    lines = screen.splitlines()
    assert lines[0] == f"Mapping {mapping.uuid}  function fn"
    assert lines[1] == "Topic orders  group g1"
    assert lines[2] == (
        "Poller 41@box  State Enabled (User action)  LastProcessingResult OK  updated 1s ago"
    )
    assert lines[4].split() == [
        "PARTITION",
        "COMMITTED",
        "END",
        "LAG",
        "RECORDS/S",
        "STATE",
        "OWNER",
    ]
    assert lines[5].split() == ["0", "10", "30", "20", "10.0", INVOKING, "41@box"]
    assert lines[6].split() == ["1", "0", "0", "0", "0.0", "caught-up", "41@box"]
    assert lines[7].split() == ["TOTAL", "20", "10.0"]
    assert lines[-1] == "OffsetLag 20  MaxOffsetLag 20  DesiredPollerCount 2"


def test_the_screen_shows_the_largest_count_a_poller_published() -> None:
    # the service scales on the maximum; a poller without a lag reading yet has none
    documents = [_document(desired_pollers=2), _document(pid=42, desired_pollers=None)]
    assert desired_pollers([*documents, _document(pid=43, desired_pollers=3)]) == "3"
    assert desired_pollers(documents[1:]) == "-"


def test_a_terminal_sees_states_in_colour_and_the_same_text() -> None:
    mapping = parse_mapping(MAPPING_DOC)
    lag = _lag(NOW, (10, 30), (0, 0))
    rows = partition_rows(lag, None, [_document()], None, NOW)
    screens = [
        render(
            mapping,
            lag,
            rows,
            group=None,
            documents=[_document()],
            now=NOW,
            paint=Painter(enabled=on),
        )
        for on in (False, True)
    ]
    assert "\033[32mEnabled\033[0m" in screens[1] and "\033[32minvoking" in screens[1]
    assert re.sub(r"\x1b\[[0-9;]*m", "", screens[1]) == screens[0]


def test_screen_says_when_no_poller_reports_its_state() -> None:
    mapping = parse_mapping(MAPPING_DOC)
    lag = _lag(NOW, (0, 0))
    rows = partition_rows(lag, None, [], None, NOW)
    screen = render(mapping, lag, rows, group=None, documents=[], now=NOW)
    assert "State unknown: no poller status document" in screen
    assert screen.splitlines()[-1].endswith("DesiredPollerCount -")


# ------------------------------------------------------------------------------- command


class FakeReader:
    def __init__(self, mapping: Any, overrides: dict[str, str]) -> None:
        self.overrides = overrides
        FakeReader.made.append(self)

    made: ClassVar[list[FakeReader]] = []
    fail: ClassVar[bool] = False

    def read(self) -> LagSnapshot:
        if FakeReader.fail:
            raise LagReadError("reading end offsets of topic 'orders': timed out")
        return _lag(NOW, (3, 8))

    def group(self) -> GroupView:
        raise LagReadError("not allowed")


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING_DOC))
    parser = argparse.ArgumentParser()
    status_command.add_arguments(parser)
    return parser.parse_args(["--mapping", str(mapping), "--status-dir", str(tmp_path), *extra])


def test_once_prints_one_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_command, "LagReader", FakeReader)
    FakeReader.fail = False
    out = io.StringIO()
    code = status_command.run(_args(tmp_path, "--once", "--consumer-config", "a=b"), out)
    assert code == 0
    assert "0          3          8    5" in out.getvalue()
    assert "\x1b[" not in out.getvalue(), "no screen clearing outside a terminal"
    # The user's settings plus the mapping's security (none here: PLAINTEXT).
    assert FakeReader.made[-1].overrides == {"a": "b", "security.protocol": "PLAINTEXT"}


def test_once_exits_1_when_the_broker_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status_command, "LagReader", FakeReader)
    FakeReader.fail = True
    err = io.StringIO()
    assert status_command.run(_args(tmp_path, "--once"), io.StringIO(), err) == 1
    assert "reading end offsets of topic 'orders': timed out" in err.getvalue()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--interval", "0"], "--interval 0.0 must be more than 0 seconds"),
        (["--consumer-config", "novalue"], "--consumer-config 'novalue' must be KEY=VALUE"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path, extra: list[str], message: str) -> None:
    err = io.StringIO()
    assert status_command.run(_args(tmp_path, "--once", *extra), io.StringIO(), err) == 2
    assert message in err.getvalue()
