"""JSON Schema export of the catalog: one document per event type (CloudEvent + payload)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from events.registry import REGISTRY

_CE_ATTRIBUTES: dict[str, Any] = {
    "id": {"type": "string", "minLength": 1, "description": "Unique id of the event."},
    "source": {"type": "string", "minLength": 1, "description": "Component that published it."},
    "specversion": {"const": "1.0", "description": "CloudEvents version."},
    "time": {"type": "string", "format": "date-time", "description": "When it happened."},
    "subject": {"type": "string", "description": "What the event is about, within source."},
    "datacontenttype": {"const": "application/json", "description": "Media type of data."},
    "dataschema": {"type": "string", "description": "URN of the payload schema version."},
    "correlationid": {"type": "string", "description": "Id shared by every event of one flow."},
    "causationid": {"type": "string", "description": "Id of the event this one reacts to."},
    "partitionkey": {"type": "string", "description": "Kafka record key."},
}


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type, as a structured-mode CloudEvent."""
    model = REGISTRY[event_type]
    data = model.model_json_schema()
    defs = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": model.dataschema(),
        "title": event_type,
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "x-schema-version": model.schema_version,
        "x-partition-key": model.key_field,
        "properties": {
            **_CE_ATTRIBUTES,
            "type": {"const": event_type, "description": "CloudEvents type."},
            "data": data,
        },
        "required": ["id", "source", "specversion", "type", "time", "data"],
    }
    if defs:
        schema["$defs"] = defs
    return schema


def write_schemas(out_dir: Path) -> list[Path]:
    """Write ``<EventType>.v<N>.json`` for every registered type; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in sorted(REGISTRY):
        model = REGISTRY[event_type]
        path = out_dir / f"{event_type}.v{model.schema_version}.json"
        path.write_text(json.dumps(event_schema(event_type), indent=2, sort_keys=False) + "\n")
        written.append(path)
    return written
