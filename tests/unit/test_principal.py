"""The principal a certificate signs in as, and the doctor's fix commands that name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.definition.model import (
    AclOperation,
    AclRequirement,
    AclResourceType,
    EventSourceMapping,
    parse_mapping,
)
from runtime.doctor.fixes import acl_command, topic_command
from runtime.security.principal import (
    LOCAL_PRINCIPAL_RULES,
    certificate_principal,
    parse_rules,
)

DN = "CN=Alice,OU=Payments,O=Example"


@pytest.mark.parametrize(
    ("rules", "principal"),
    [
        (None, f"User:{DN}"),  # Kafka's default: the whole DN
        ("DEFAULT", f"User:{DN}"),
        (LOCAL_PRINCIPAL_RULES, "User:Alice"),
        ("RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L, DEFAULT", "User:alice@payments"),
        ("RULE:^CN=(.*?),.*$/$1/U", "User:ALICE"),
        ("RULE:^O=(.*)$/$1/,DEFAULT", f"User:{DN}"),  # no full match: the next rule
        ("RULE:^CN=(.*?)\\/x,.*$/$1/", f"User:{DN}"),  # an escaped slash is part of the pattern
        ("RULE:^CN=(.*?),.*$/$1", f"User:{DN}"),  # unreadable rules: the DN, not a guess
        ("RULE:^CN=([/$1/", f"User:{DN}"),  # a regex Python cannot compile: skipped
    ],
)
def test_rules_apply_as_kafkas_principal_mapper_does(rules: str | None, principal: str) -> None:
    assert certificate_principal(DN, rules) == principal


def test_unreadable_rules_parse_to_none() -> None:
    assert parse_rules("RULE:no-slashes") is None
    assert parse_rules("") is None
    rules = parse_rules("RULE:^CN=(.*)$/$1/L,DEFAULT")
    assert rules is not None and len(rules) == 2


def _mapping(server: str) -> EventSourceMapping:
    return parse_mapping(
        {
            "FunctionName": "fn",
            "Topics": ["orders"],
            "StartingPosition": "LATEST",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [server]}},
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g1"},
        }
    )


READ_TOPIC = AclRequirement(AclResourceType.TOPIC, "orders", AclOperation.READ)


def test_a_remote_cluster_gets_kafka_acls_with_its_address_and_no_placeholder() -> None:
    fix = acl_command(READ_TOPIC, _mapping("b-1.example.com:9096"), "User:alice", Path("m.json"))
    assert fix == (
        "kafka-acls.sh --bootstrap-server b-1.example.com:9096 --command-config admin.properties"
        " --add --allow-principal User:alice --operation Read --topic orders"
    )
    assert "local-kafka" not in topic_command(_mapping("b-1.example.com:9096"))


def test_a_loopback_cluster_gets_the_local_helper_first() -> None:
    fix = acl_command(READ_TOPIC, _mapping("127.0.0.1:9094"), "User:alice", Path("my dir/m.json"))
    helper, _, rest = fix.partition(" (every ACL the mapping needs); on another cluster: ")
    assert (
        helper == "kafka-esm local-kafka acl grant --mapping 'my dir/m.json' --principal User:alice"
    )
    assert rest.startswith("kafka-acls.sh --bootstrap-server 127.0.0.1:9094 ")
    assert topic_command(_mapping("localhost:9092")).startswith(
        "kafka-esm local-kafka topic create orders; on another cluster: kafka-topics.sh "
        "--bootstrap-server localhost:9092 --command-config admin.properties "
        "--create --topic orders"
    )


def test_a_mapping_from_the_environment_leaves_out_the_mapping_flag() -> None:
    fix = acl_command(READ_TOPIC, _mapping("127.0.0.1:9094"), "User:alice", None)
    assert fix.startswith("kafka-esm local-kafka acl grant --principal User:alice (")
