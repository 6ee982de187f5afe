"""Records written the way producers write them for a schema registry, and the schemas.

The Protobuf messages are built from a FileDescriptorProto at run time (no protoc): a
generated module would hold the same descriptor. ``Order`` nests ``Line``, and the second
top-level message ``Customer`` nests ``Address``, so message indexes other than ``[0]``
(``[1, 0]``) go over the wire.
"""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

ORDER_AVRO = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "amount", "type": "double"},
            {"name": "zip", "type": "string"},
            {
                "name": "lines",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Line",
                        "fields": [
                            {"name": "sku", "type": "string"},
                            {"name": "qty", "type": "int"},
                        ],
                    },
                },
            },
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
)
KEY_AVRO = json.dumps(
    {
        "type": "record",
        "name": "OrderKey",
        "namespace": "shop",
        "fields": [{"name": "customer", "type": "long"}],
    }
)
ORDER_JSON_SCHEMA = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "amount": {"type": "number"},
            "zip": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["id", "amount"],
    }
)
KEY_JSON_SCHEMA = json.dumps(
    {"type": "object", "properties": {"customer": {"type": "integer"}}, "required": ["customer"]}
)


def _proto_file() -> descriptor_pb2.FileDescriptorProto:
    string, int32, double, message = 9, 5, 1, 11
    optional, repeated = 1, 3
    proto = descriptor_pb2.FileDescriptorProto(
        name="tests/shop.proto", package="shop", syntax="proto3"
    )
    order = proto.message_type.add(name="Order")
    order.field.add(name="id", number=1, type=string, label=optional)
    order.field.add(name="amount", number=2, type=double, label=optional)
    order.field.add(name="zip", number=3, type=string, label=optional)
    order.field.add(
        name="lines", number=4, type=message, label=repeated, type_name=".shop.Order.Line"
    )
    line = order.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=string, label=optional)
    line.field.add(name="qty", number=2, type=int32, label=optional)
    customer = proto.message_type.add(name="Customer")
    customer.field.add(name="name", number=1, type=string, label=optional)
    address = customer.nested_type.add(name="Address")
    address.field.add(name="customer", number=1, type=3, label=optional)  # int64
    address.field.add(name="city", number=2, type=string, label=optional)
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_proto_file())
Order = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("shop.Order"))
Address = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("shop.Customer.Address"))


def order(number: int) -> dict[str, Any]:
    """One order as a plain object (what every format should decode to)."""
    return {
        "id": f"o-{number}",
        "amount": number + 0.5,
        "zip": f"{20000 + number}",
        "lines": [{"sku": f"s-{number}-{i}", "qty": i + 1} for i in range(2)],
    }


def key(number: int) -> dict[str, Any]:
    return {"customer": 1000 + number}


class Producer:
    """Serializes keys and values with confluent-kafka's serializers for one format."""

    def __init__(self, fmt: str, registry: str | SchemaRegistryClient, topic: str) -> None:
        """``registry``: the registry's URL, or a client (an in-process mock one)."""
        client = (
            SchemaRegistryClient({"url": registry, "timeout": 30})
            if isinstance(registry, str)
            else registry
        )
        self.format = fmt
        self.topic = topic
        if fmt == "AVRO":
            self._key = AvroSerializer(client, KEY_AVRO)
            self._value = AvroSerializer(client, ORDER_AVRO)
        elif fmt == "JSON":
            self._key = JSONSerializer(KEY_JSON_SCHEMA, client)
            self._value = JSONSerializer(ORDER_JSON_SCHEMA, client)
        else:
            self._key = ProtobufSerializer(Address, client, {"use.deprecated.format": False})
            self._value = ProtobufSerializer(Order, client, {"use.deprecated.format": False})

    def value(self, data: dict[str, Any]) -> bytes:
        return self._serialize(self._value, data, MessageField.VALUE)

    def key(self, data: dict[str, Any]) -> bytes:
        return self._serialize(self._key, data, MessageField.KEY)

    def _serialize(self, serializer: Any, data: dict[str, Any], field: MessageField) -> bytes:
        if self.format == "AVRO":
            data = {**data, "note": None} if "lines" in data else data
        if self.format == "PROTOBUF":
            message = (Order if field is MessageField.VALUE else Address)()
            json_format.ParseDict(data, message)
            data = message
        out: bytes = serializer(data, SerializationContext(self.topic, field))
        return out


def expected(fmt: str, data: dict[str, Any], *, is_key: bool) -> dict[str, Any]:
    """What a consumer decodes ``data`` to, in ``fmt``'s JSON mapping."""
    if fmt == "AVRO" and not is_key:
        return {**data, "note": None}
    if fmt == "PROTOBUF":
        message = (Address if is_key else Order)()
        json_format.ParseDict(data, message)
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    return data
