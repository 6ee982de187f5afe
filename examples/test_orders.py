"""Tests of examples/orders.py with the kafka-esm pytest plugin.

Nothing here imports a conftest: ``pip install 'constructs-kafka[testing]'`` makes pytest
load the plugin, whose fixtures are ``kafka_cluster``, ``kafka_secured_cluster``,
``kafka_topic`` and ``run_mapping``. Tests with a broker start one real Apache Kafka per
session (Java 17+; or set KAFKA_BOOTSTRAP_SERVERS).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from moto import mock_aws

from examples import orders
from runtime.testing import (
    SASL_SSL,
    KafkaTestCluster,
    MappingRun,
    failure_document,
    kafka_event,
)

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def fresh_totals() -> Iterator[None]:
    orders.TOTALS.clear()
    yield
    orders.TOTALS.clear()


def order(order_id: str, quantity: int, price: float = 2.5) -> dict[str, object]:
    return {"id": order_id, "quantity": quantity, "price": price}


# -- no broker: the exact event, and the failure record --------------------------------


def test_the_handler_prices_each_order() -> None:
    event = kafka_event(
        [
            {"topic": "orders", "key": "o-1", "value": order("o-1", 2)},
            {"topic": "orders", "key": "o-2", "value": order("o-2", 4)},
            {"topic": "orders", "key": "o-3", "value": None},  # a tombstone
        ]
    )
    orders.handler(event, None)
    assert orders.TOTALS == {"o-1": 5.0, "o-2": 10.0}


def test_the_event_reads_with_powertools() -> None:
    event = KafkaEvent(kafka_event([{"topic": "orders", "value": order("o-1", 1)}]))
    [record] = list(event.records)
    assert record.json_value == order("o-1", 1)
    assert event.event_source == "SelfManagedKafka"


def test_the_dead_letter_handler_reads_aws_failure_records() -> None:
    document = failure_document(
        [{"topic": "orders", "partition": 1, "offset": 7, "value": order("o-9", 0)}]
    )
    assert orders.dead_letter_handler({"Records": [{"body": json.dumps(document)}]}, None) == [
        "orders-1@7-7"
    ]


# -- a real broker: the mapping runs with the handler ----------------------------------


def test_every_order_reaches_the_function_and_is_committed(
    kafka_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
) -> None:
    topic = kafka_topic(partitions=3)
    kafka_cluster.produce(
        topic, [{"key": f"o-{i}", "value": order(f"o-{i}", 1)} for i in range(30)]
    )
    run = run_mapping(kafka_cluster.mapping(topic, BatchSize=10), orders.handler)
    run.wait_for(records=30)
    run.wait_for(until=lambda r: r.counters["CommittedEventCount"] == 30)
    assert len(orders.TOTALS) == 30
    assert run.state == "Enabled" and run.last_processing_result == "OK"


def test_a_bad_order_goes_to_the_dead_letter_queue(
    kafka_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
) -> None:
    topic = kafka_topic()
    kafka_cluster.produce(topic, values=[order("good-1", 1), order("bad", 0), order("good-2", 1)])
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        mapping = kafka_cluster.mapping(
            topic,
            MaximumRetryAttempts=1,
            BisectBatchOnFunctionError=True,
            DestinationConfig={"OnFailure": {"Destination": arn["Attributes"]["QueueArn"]}},
        )
        run = run_mapping(mapping, orders.handler)
        run.wait_for(until=lambda r: r.counters["OnFailureDestinationDeliveredEventCount"] == 1)
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert orders.dead_letter_handler({"Records": [{"body": message["Body"]}]}, None) == [
        f"{topic}-0@1-1"
    ]
    assert set(orders.TOTALS) == {"good-1", "good-2"}
    assert "ValueError: order bad has quantity 0" in run.handler_errors[0].traceback


def test_a_sasl_mapping_reads_its_secret_from_secrets_manager(
    kafka_secured_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
) -> None:
    cluster = kafka_secured_cluster
    topic = kafka_topic()
    cluster.produce(topic, values=[order("o-1", 3)])
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        credentials = {"username": "alice", "password": cluster.info.passwords["alice"]}
        arn = secrets.create_secret(Name="kafka/alice", SecretString=json.dumps(credentials))
        [_, root_ca] = cluster.sasl_access("alice")  # the local CA, as a file:// secret
        access = [{"Type": "SASL_SCRAM_512_AUTH", "URI": arn["ARN"]}, root_ca]
        mapping = cluster.mapping(topic, listener=SASL_SSL, access=access)
        cluster.grant("User:alice", mapping)  # the ACLs Lambda's consumer needs
        run_mapping(mapping, orders.handler).wait_for(records=1)
    assert orders.TOTALS == {"o-1": 7.5}
