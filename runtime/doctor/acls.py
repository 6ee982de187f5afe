"""The doctor's ACL check: each ACL AWS requires, tested by doing what needs it.

With the mapping's own credentials: DescribeConfigs on a broker, DescribeGroups, a
JoinGroup, topic metadata, a Fetch. The join uses an assignor the poller does not use,
so that a group with running members refuses it (INCONSISTENT_GROUP_PROTOCOL, after
authorizing it) instead of rebalancing. Nothing is committed or written. Kafka grants
Describe with Read, so a missing Describe ACL next to Read cannot be seen, and harms not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    ConfigResource,
    ResourceType,
)

from runtime.definition.model import AclOperation, AclRequirement, AclResourceType
from runtime.doctor.cluster import AUTHZ_ERROR, ClusterView, refused
from runtime.doctor.fixes import acl_command
from runtime.doctor.model import CheckResult, DoctorInputs, Findings, Status

__all__ = ["check_acls"]

_PROBE_POLL_S = 0.2
_IMPLIED = " (or implied by Read)"

Probe = Callable[[ClusterView, AclRequirement], tuple[Status, str]]


def check_acls(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """Each ACL AWS requires, tested by doing the operation that needs it."""
    assert found.mapping is not None
    cluster = ClusterView(inputs, found)
    rows = []
    for acl in found.mapping.required_acls():
        status, detail = _probe_for(acl)(cluster, acl)
        name = f"ACL {acl.operation.value} {acl.resource_type.value}"
        if status is Status.FAIL:
            principal = found.principal or "User:<principal>"
            fix = acl_command(acl, found.mapping, principal, inputs.mapping_path)
            rows.append(CheckResult(5, name, status, detail, AUTHZ_ERROR, fix))
        else:
            rows.append(CheckResult(5, name, status, detail))
    return rows


def _probe_for(acl: AclRequirement) -> Probe:
    probes: dict[tuple[AclResourceType, AclOperation], Probe] = {
        (AclResourceType.CLUSTER, AclOperation.DESCRIBE_CONFIGS): _describe_configs,
        (AclResourceType.GROUP, AclOperation.DESCRIBE): _describe_group,
        (AclResourceType.GROUP, AclOperation.READ): _join_group,
        (AclResourceType.TOPIC, AclOperation.DESCRIBE): _describe_topic,
        (AclResourceType.TOPIC, AclOperation.READ): _fetch_topic,
    }
    return probes.get((acl.resource_type, acl.operation), _untested)


def _describe_configs(cluster: ClusterView, acl: AclRequirement) -> tuple[Status, str]:
    resource = ConfigResource(ResourceType.BROKER, str(cluster.found.broker_id))
    try:
        cluster.admin.describe_configs([resource])[resource].result(timeout=cluster.timeout_s)
    except KafkaException as exc:
        return refused(exc.args[0], f"DescribeConfigs on broker {cluster.found.broker_id}")
    return Status.PASS, f"DescribeConfigs on broker {cluster.found.broker_id} allowed"


def _describe_group(cluster: ClusterView, acl: AclRequirement) -> tuple[Status, str]:
    group = acl.resource_name
    try:
        description = cluster.admin.describe_consumer_groups([group])[group].result(
            timeout=cluster.timeout_s
        )
    except KafkaException as exc:
        return refused(exc.args[0], f"DescribeGroups {group}")
    cluster.found.group_state = str(description.state.name)
    cluster.found.group_members = len(description.members)
    return Status.PASS, f"DescribeGroups {group} allowed{_IMPLIED}"


def _join_group(cluster: ClusterView, acl: AclRequirement) -> tuple[Status, str]:
    if cluster.topic_unknown():
        return Status.SKIP, "not tested: the topic does not exist (step 6)"
    consumer = cluster.consumer(
        **{"partition.assignment.strategy": "roundrobin", "enable.auto.commit": False}
    )
    joined: list[bool] = []
    consumer.subscribe([cluster.mapping.topic], on_assign=lambda *_: joined.append(True))
    try:
        outcome = _await(consumer, cluster.timeout_s, lambda: bool(joined), _JOIN_ERRORS)
    finally:
        consumer.close()
    group = acl.resource_name
    if outcome is None:
        return Status.PASS, f"JoinGroup {group} allowed (joined, left, committed nothing)"
    if outcome.code() == KafkaError.INCONSISTENT_GROUP_PROTOCOL:
        return Status.PASS, f"JoinGroup {group} allowed (consumers are running in it)"
    return refused(outcome, f"JoinGroup {group}")


_JOIN_ERRORS = frozenset(
    {KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.INCONSISTENT_GROUP_PROTOCOL}
)


def _describe_topic(cluster: ClusterView, acl: AclRequirement) -> tuple[Status, str]:
    error = cluster.topic_error(acl.resource_name)
    if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
        return refused(error, f"Metadata for topic {acl.resource_name}")
    if error is not None and acl.resource_name == cluster.mapping.topic:
        cluster.found.topic_missing = True
    return Status.PASS, f"Metadata for topic {acl.resource_name} allowed{_IMPLIED}"


def _fetch_topic(cluster: ClusterView, acl: AclRequirement) -> tuple[Status, str]:
    if cluster.topic_unknown():
        return Status.SKIP, "not tested: the topic does not exist (step 6)"
    consumer = cluster.consumer(**{"enable.partition.eof": True, "enable.auto.commit": False})
    consumer.assign([TopicPartition(acl.resource_name, 0, OFFSET_BEGINNING)])
    fetched: list[bool] = []
    try:
        outcome = _await(
            consumer,
            cluster.timeout_s,
            lambda: bool(fetched),
            frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED}),
            on_fetch=lambda: fetched.append(True),
        )
    finally:
        consumer.close()
    if outcome is None and fetched:
        return Status.PASS, f"Fetch from {acl.resource_name}-0 allowed"
    if outcome is None:
        return Status.WARN, f"not tested: no Fetch answer in {cluster.timeout_s:.0f} s"
    return refused(outcome, f"Fetch from {acl.resource_name}-0")


def _untested(cluster: ClusterView, acl: AclRequirement) -> tuple[Status, str]:
    return Status.SKIP, f"not tested: {acl.operation.value} would change {acl.resource_name}"


def _await(
    consumer: Consumer,
    timeout_s: float,
    done: Callable[[], bool],
    errors: frozenset[int],
    on_fetch: Callable[[], None] | None = None,
) -> KafkaError | None:
    """Poll until ``done()`` or one of ``errors``; returns that error (None otherwise)."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        message = consumer.poll(_PROBE_POLL_S)
        if message is None:
            continue
        error = message.error()
        if error is None or error.code() == KafkaError._PARTITION_EOF:
            if on_fetch is not None:
                on_fetch()
        elif error.code() in errors:
            return error
    return None
