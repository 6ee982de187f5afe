"""A function run under the real Lambda RIE by the integration tests; the event says what to do.

Lambda events carry no "action": the tests send plain JSON documents here, and the
poller-driven test sends a Kafka batch, which gets the partial batch response.
"""

import base64
import os
import time


def handler(event, context):
    action = event.get("action") if isinstance(event, dict) else None
    if action == "echo":
        return {"echo": event.get("value"), "function": context.function_name}
    if action == "fail":
        raise ValueError("asked to fail")
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return "woke up"
    if action == "big":
        return "x" * int(event["bytes"])
    return _kafka_batch(event)


_failed_once: set[str] = set()


def _kafka_batch(event):
    """Log every record to $RIE_TEST_LOG; report a "retry-once" record failed the first time."""
    failures = []
    with open(os.environ["RIE_TEST_LOG"], "a") as log:
        for records in event["records"].values():
            for record in records:
                partition = f"{record['topic']}-{record['partition']}"
                item = f"{partition} {record['offset']}"
                log.write(f"{item}\n")
                if base64.b64decode(record["value"]) == b"retry-once" and item not in _failed_once:
                    _failed_once.add(item)
                    failures.append(
                        {"itemIdentifier": {"partition": partition, "offset": record["offset"]}}
                    )
    return {"batchItemFailures": failures}
