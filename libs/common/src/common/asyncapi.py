"""The event contract as an AsyncAPI 3 document, generated from the models the producers use.

``python -m common.asyncapi > docs/asyncapi.json`` writes it; a test fails when the models
changed and the document was not regenerated.
"""

import json
import sys

from pydantic.json_schema import models_json_schema

from common.envelope import IntegrationEvent
from common.events import EVENT_TYPES


def _asyncapi_schema(node):
    """pydantic writes OpenAPI's ``discriminator: {propertyName, mapping}``; AsyncAPI's schema
    object takes the property name alone."""
    if isinstance(node, dict):
        return {
            key: value["propertyName"] if key == "discriminator" and isinstance(value, dict) else _asyncapi_schema(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    return node


def _name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))


def document() -> dict:
    payload_models = sorted({event.payload for event in EVENT_TYPES.values()}, key=lambda m: m.__name__)
    _, schemas = models_json_schema(
        [(model, "serialization") for model in [IntegrationEvent, *payload_models]], ref_template="#/components/schemas/{model}"
    )
    components = _asyncapi_schema(schemas["$defs"])
    channels, operations, messages = {}, {}, {}
    for event_type, event in EVENT_TYPES.items():
        model, service, exchange = event.payload, event.producer, event.exchange
        name = _name(event_type)
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else event_type,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "description": "AMQP properties mirror the envelope: message_id = event_id, type, correlation_id, timestamp",
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/IntegrationEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "data": {"$ref": f"#/components/schemas/{model.__name__}"},
                        },
                    },
                ]
            },
        }
        channels[name] = {
            "address": event_type,
            "description": f"Routing key {event_type!r} on the durable topic exchange {exchange!r}; persistent messages.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"The {service} service publishes {event_type} through its transactional outbox.",
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Appointments events",
            "version": "1.0.0",
            "description": (
                "Booking and shift events. Delivery is at least once, with publisher confirms; dedupe on "
                "event_id and keep the highest sequence per aggregate_id. Bind your own durable queue to "
                "the exchange with the routing keys you need."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components, "messages": messages},
    }


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
