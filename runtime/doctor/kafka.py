"""The doctor's checks against the cluster: sign-in (step 4), topic (6), group (7)."""

from __future__ import annotations

import math
import re

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    ConfigResource,
    OffsetSpec,
    ResourceType,
)
from cryptography import x509

from runtime.definition.vocabulary import (
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    SASL_AUTHENTICATION_FAILED,
    SERVER_FAILED_TO_AUTHENTICATE,
)
from runtime.doctor.cluster import AUTHZ_ERROR, ClusterView, LogCapture, client_config, refused
from runtime.doctor.fixes import topic_command
from runtime.doctor.model import CheckResult, DoctorInputs, Findings, Status, aws_error
from runtime.observability.state import MappingStopped, StateTransitionReason, problem
from runtime.pipeline.share_source import (
    LOCK_SETTING,
    ShareGroupsUnavailable,
    read_share_group_terms,
)
from runtime.security.plan import AuthMethod, classify_client_error, is_loopback
from runtime.security.principal import LOCAL_PRINCIPAL_RULES, certificate_principal
from runtime.security.session import sign_in

__all__ = ["check_authentication", "check_group", "check_topic"]

_AUTH_FIXES = {
    SASL_AUTHENTICATION_FAILED: (
        "check the username and password in the secret, and that the broker has this user "
        "for this mechanism (SCRAM users: kafka-configs.sh --alter --entity-type users)"
    ),
    SERVER_FAILED_TO_AUTHENTICATE: (
        "the broker must trust the CA that issued the client certificate (its "
        "ssl.truststore) and its listener must use ssl.client.auth=required"
    ),
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER: (
        "store the CA that issued the broker certificate as SERVER_ROOT_CA_CERTIFICATE, "
        "and connect through a name in the certificate's SAN (step 3 says which)"
    ),
}
# librdkafka's hints when the security protocol and the listener do not match.
_HINTS = (
    ("connecting to a PLAINTEXT broker listener", "the port is a PLAINTEXT listener"),
    ("connecting to a SSL listener", "the port is a TLS listener"),
    (
        "SSL connection closed by peer",
        "the broker closed the connection after the TLS handshake: is the listener set "
        "for this authentication (mTLS needs ssl.client.auth=required, SASL a SASL_SSL listener)?",
    ),
)

# --- 4. authentication ----------------------------------------------------------------


def check_authentication(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """Sign in with the mapping's credentials and read the cluster's metadata."""
    assert found.plan is not None
    captured = LogCapture()
    errors: list[KafkaError] = []
    admin = AdminClient(client_config(found, captured, error_cb=errors.append))
    broker_id, refused = sign_in(admin, errors, found.plan.method, inputs.timeout_s)
    rules = _mapping_rules(admin, broker_id, inputs.timeout_s) if broker_id is not None else None
    found.principal = _principal(found, rules)
    if broker_id is not None:
        found.broker_id = broker_id
        how = found.plan.sasl_mechanism or found.plan.method.value
        detail = f"signed in as {found.principal} ({how})"
        return [CheckResult(4, "authentication", Status.PASS, detail)]
    stopped = classify_client_error(refused, found.plan.method) if refused else None
    if refused is not None and stopped is not None:
        fix = _AUTH_FIXES.get(stopped.result.removeprefix("PROBLEM: "), "see the detail")
        detail = f"as {found.principal}: {_tidy(refused.str())}"
        return [CheckResult(4, "authentication", Status.FAIL, detail, aws_error(stopped), fix)]
    return [_no_answer(inputs.timeout_s, errors, captured.lines, found.plan.method)]


_BROKER_PREFIX = re.compile(r"^\S+://\S+/(bootstrap|\d+): ")
_ELAPSED_SUFFIX = re.compile(r" \(after \d+ms in state \w+\)$")


def _tidy(text: str) -> str:
    """librdkafka's message without its broker prefix and timing suffix."""
    return _ELAPSED_SUFFIX.sub("", _BROKER_PREFIX.sub("", text))


def _no_answer(
    timeout_s: float, errors: list[KafkaError], lines: list[str], method: AuthMethod
) -> CheckResult:
    texts = [e.str() for e in errors] + lines
    hint = next((h for needle, h in _HINTS for t in texts if needle in t), None)
    detail = f"no metadata from the cluster in {timeout_s:.0f} s"
    if hint is None:
        last = texts[-1] if texts else "no error reported"
        return CheckResult(
            4, "authentication", Status.FAIL, f"{detail}: {last}", None, "see step 2"
        )
    error = None
    if method is AuthMethod.MTLS and "closed the connection" in hint:
        error = aws_error(
            MappingStopped(
                StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR,
                problem(SERVER_FAILED_TO_AUTHENTICATE),
            )
        )
    fix = "use the listener that matches the mapping's authentication"
    return CheckResult(4, "authentication", Status.FAIL, f"{detail}: {hint}", error, fix)


def _principal(found: Findings, rules: str | None) -> str:
    """The principal the broker sees; for mTLS its mapping rules applied to the subject
    (unreadable rules: the local broker's on loopback, Kafka's default elsewhere)."""
    assert found.plan is not None and found.mapping is not None
    if found.plan.method is AuthMethod.SASL:
        return f"User:{found.settings.get('sasl.username', '?')}"
    pem = found.settings.get("ssl.certificate.pem")
    if found.plan.method is AuthMethod.MTLS and isinstance(pem, str):
        subject = x509.load_pem_x509_certificates(pem.encode("ascii"))[0].subject
        if rules is None and all(is_loopback(s) for s in found.mapping.bootstrap_servers):
            rules = LOCAL_PRINCIPAL_RULES
        return certificate_principal(subject.rfc4514_string(), rules)
    return "User:ANONYMOUS"


_RULES_KEY = "ssl.principal.mapping.rules"


def _mapping_rules(admin: AdminClient, broker_id: int, timeout_s: float) -> str | None:
    """The broker's principal mapping rules, or None where DescribeConfigs is denied."""
    resource = ConfigResource(ResourceType.BROKER, str(broker_id))
    try:
        configs = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    except KafkaException:
        return None
    entry = configs.get(_RULES_KEY)
    return None if entry is None or entry.value is None else str(entry.value)


# --- 6. topic ---------------------------------------------------------------------------


def check_topic(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """The topic exists; its partition count bounds the poller's parallelism."""
    assert found.mapping is not None
    topic = found.mapping.topic
    if found.topic_partitions is None and not found.topic_missing:
        ClusterView(inputs, found).topic_unknown()
    if found.topic_missing:
        fix = topic_command(found.mapping)
        detail = f"topic {topic} does not exist"
        return [CheckResult(6, "topic", Status.FAIL, detail, "none: Lambda polls nothing", fix)]
    if found.topic_partitions is None:
        return [
            CheckResult(6, "topic", Status.SKIP, "not visible: Describe on the topic is denied")
        ]
    count = found.topic_partitions
    detail = f"{topic}: {count} partition(s), so at most {count} batch(es) in flight"
    return [CheckResult(6, "topic", Status.PASS, detail)]


# --- 7. consumer group --------------------------------------------------------------------


def check_group(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """The group's state and committed offsets: where the poller will start; in Queue
    mode the share group's support, record lock and delivery limit."""
    assert found.mapping is not None
    mapping = found.mapping
    group = mapping.consumer_group_id
    if found.topic_partitions is None:
        return [CheckResult(7, "group", Status.SKIP, f"{group}: the topic is not visible (step 6)")]
    cluster = ClusterView(inputs, found)
    if mapping.is_queue:
        return [_share_group_row(cluster, group, inputs.target.timeout_s)]
    partitions = [TopicPartition(mapping.topic, p) for p in range(found.topic_partitions)]
    try:
        committed = _committed(cluster, group, partitions)
        ends = _log_ends(cluster, partitions)
    except KafkaException as exc:
        status, detail = refused(exc.args[0], f"OffsetFetch for group {group}")
        return [
            CheckResult(7, "group", status, detail, AUTHZ_ERROR if status is Status.FAIL else None)
        ]
    state = _GROUP_STATES.get(found.group_state or "", (found.group_state or "unknown").lower())
    where = f"{group}: {state}, {found.group_members} member(s)"
    if not committed:
        detail = f"{where}, no committed offset: starts at {mapping.starting_position.value}"
        return [_group_row(detail, found)]
    positions = ", ".join(
        f"{mapping.topic}-{p}={offset} (lag {max(ends.get(p, offset) - offset, 0)})"
        for p, offset in sorted(committed.items())
    )
    detail = f"{where}, resumes at {positions}; StartingPosition is ignored"
    return [_group_row(detail, found)]


def _share_group_row(cluster: ClusterView, group: str, function_timeout_s: float) -> CheckResult:
    """Share groups served, and a record lock that outlasts the function timeout."""
    try:
        terms = read_share_group_terms(cluster.admin, group, cluster.timeout_s)
    except ShareGroupsUnavailable as exc:
        fix = "upgrade to Apache Kafka 4.2+ and enable share groups (the detail says how)"
        return CheckResult(7, "share group", Status.FAIL, exc.result, aws_error(exc), fix)
    except KafkaException as exc:
        status, detail = refused(exc.args[0], f"DescribeConfigs for share group {group}")
        return CheckResult(7, "share group", status, detail)
    detail = (
        f"{group}: share groups served; record lock {terms.record_lock_ms} ms "
        f"({terms.lock_source}), {terms.delivery_limit} deliveries before a record is archived"
    )
    lock_problem = terms.lock_problem(function_timeout_s)
    if lock_problem is None:
        return CheckResult(7, "share group", Status.PASS, detail)
    seconds = math.ceil(function_timeout_s) * 1000
    fix = (
        f"kafka-configs.sh --bootstrap-server {cluster.mapping.bootstrap_servers[0]} --alter "
        f"--entity-type groups --entity-name {group} --add-config {LOCK_SETTING}={seconds}, "
        "or a shorter --function-timeout"
    )
    return CheckResult(7, "share group", Status.WARN, f"{detail}; {lock_problem}", None, fix)


_GROUP_STATES = {"DEAD": "not created yet", "EMPTY": "no consumer running", "STABLE": "in use"}


def _group_row(detail: str, found: Findings) -> CheckResult:
    if found.group_members:
        fix = "stop the other consumers, or give the mapping its own ConsumerGroupId"
        detail += "; the poller would share the partitions with the running members"
        return CheckResult(7, "group", Status.WARN, detail, None, fix)
    return CheckResult(7, "group", Status.PASS, detail)


def _committed(
    cluster: ClusterView, group: str, partitions: list[TopicPartition]
) -> dict[int, int]:
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    result = cluster.admin.list_consumer_group_offsets(request)[group].result(
        timeout=cluster.timeout_s
    )
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def _log_ends(cluster: ClusterView, partitions: list[TopicPartition]) -> dict[int, int]:
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = cluster.admin.list_offsets({tp: latest for tp in partitions})
    return {
        tp.partition: future.result(timeout=cluster.timeout_s).offset
        for tp, future in futures.items()
    }
