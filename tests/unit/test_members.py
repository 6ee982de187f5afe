"""``run --processes``: the command line each member gets."""

from __future__ import annotations

from runtime.cli.members import member_argv


def test_a_member_runs_without_processes_and_with_its_own_static_id() -> None:
    argv = ["run", "--mapping", "m.json", "--processes", "3", "--group-instance-id", "host"]
    assert member_argv(argv, 2, "host") == [
        "run",
        "--mapping",
        "m.json",
        "--group-instance-id",
        "host-2",
    ]


def test_the_equals_forms_are_dropped_too_and_queue_members_get_no_static_id() -> None:
    argv = ["run", "--processes=2", "--group-instance-id=x", "--mapping", "m.json"]
    assert member_argv(argv, 0, None) == ["run", "--mapping", "m.json"]


def test_the_kip_848_protocol_drops_the_classic_protocols_settings() -> None:
    from runtime.client_settings import consumer_settings
    from runtime.definition.model import parse_mapping

    mapping = parse_mapping(
        {
            "FunctionName": "f",
            "Topics": ["orders"],
            "StartingPosition": "LATEST",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b:9092"]}},
        }
    )
    classic = consumer_settings(mapping)
    assert classic["partition.assignment.strategy"] == "cooperative-sticky"
    modern = consumer_settings(mapping, {"group.protocol": "consumer"})
    assert "partition.assignment.strategy" not in modern
    assert "session.timeout.ms" not in modern
