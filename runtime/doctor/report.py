"""``kafka-esm doctor``: will this mapping work, and if not, what would AWS say and what to fix.

Eight steps, in the order a connection is made: the configuration, DNS and TCP, TLS,
authentication, each required ACL (by doing the operation), the topic, the consumer
group, the function; a ninth for a SchemaRegistryConfig (the registry). A step runs only
when the steps it builds on passed; the others show as skipped, so the first failure is
the one to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runtime.doctor.acls import check_acls
from runtime.doctor.checks import check_configuration, check_function, check_network
from runtime.doctor.kafka import check_authentication, check_group, check_topic
from runtime.doctor.model import CheckResult, DoctorInputs, DoctorReport, Findings, Status
from runtime.doctor.registry import check_registry
from runtime.doctor.tls import check_tls

__all__ = ["STEPS", "Step", "run_doctor"]

log = logging.getLogger("runtime.doctor.report")

Check = Callable[[DoctorInputs, Findings], list[CheckResult]]


@dataclass(frozen=True)
class Step:
    """One numbered check and the steps whose success it needs."""

    number: int
    title: str
    check: Check
    needs: tuple[int, ...] = ()


_KAFKA = (1, 2, 3, 4)
STEPS: tuple[Step, ...] = (
    Step(1, "configuration", check_configuration),
    Step(2, "network", check_network, (1,)),
    Step(3, "TLS", check_tls, (1, 2)),
    Step(4, "authentication", check_authentication, (1, 2, 3)),
    Step(5, "ACLs", check_acls, _KAFKA),
    Step(6, "topic", check_topic, _KAFKA),
    Step(7, "consumer group", check_group, _KAFKA),
    Step(8, "function", check_function, (1,)),
    Step(9, "schema registry", check_registry, (1,)),
)


def run_doctor(inputs: DoctorInputs, steps: Sequence[Step] = STEPS) -> DoctorReport:
    """Run ``steps`` in order and collect their rows."""
    found = Findings()
    results: list[CheckResult] = []
    blocked: set[int] = set()
    for step in steps:
        failed_needs = [n for n in step.needs if n in blocked]
        if failed_needs:
            detail = f"not run: step {failed_needs[0]} did not pass"
            results.append(CheckResult(step.number, step.title, Status.SKIP, detail))
            blocked.add(step.number)
            continue
        rows = _run(step, inputs, found)
        results += rows
        if any(r.status is Status.FAIL for r in rows):
            blocked.add(step.number)
    source = str(inputs.mapping_path) if inputs.mapping_path else "$KAFKA_ESM_MAPPING"
    return DoctorReport(source, tuple(results))


def _run(step: Step, inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    try:
        return step.check(inputs, found)
    except Exception as error:  # a bug in one check must not hide the others
        log.exception("doctor step %d crashed", step.number)
        detail = f"the check itself failed: {type(error).__name__}"
        return [CheckResult(step.number, step.title, Status.FAIL, detail, None, "report a bug")]
