"""The published event contract: valid AsyncAPI 3, and the same as the code's models say."""

import json
from pathlib import Path

import jsonschema

from common.asyncapi import document
from common.events import EVENT_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_document_is_valid_asyncapi_3():
    schema = json.loads((DOCS / "schemas" / "asyncapi-3.0.0.json").read_text())
    jsonschema.validate(json.loads((DOCS / "asyncapi.json").read_text()), schema)


def test_the_committed_document_matches_the_models():
    committed = json.loads((DOCS / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(document())), (
        "docs/asyncapi.json is out of date: run `uv run python -m common.asyncapi > docs/asyncapi.json`"
    )


def test_every_event_type_is_a_channel_with_its_payload():
    channels = document()["channels"]
    assert {c["address"] for c in channels.values()} == set(EVENT_TYPES)
    assert {c["bindings"]["amqp"]["exchange"]["name"] for c in channels.values()} == {
        "shifts.events",
        "bookings.events",
        "accounts.events",
    }
