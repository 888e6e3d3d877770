"""JSON schemas of the gateway's request and reply bodies, for its OpenAPI document.

They describe what the handlers accept and return; the handlers still check every input
themselves (a schema is a contract for clients and fuzzers, not the validation). Vertex's
own objects are open (`additionalProperties`), because new Vertex fields flow through.
"""

from typing import Any

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
USD = {"type": "string", "description": "USD as an exact decimal string", "example": "0.0012"}
LABELS = {"type": "object", "additionalProperties": STRING, "maxProperties": 64}
STRINGS = {"type": "array", "items": STRING}
OPEN_OBJECT = {"type": "object", "additionalProperties": True}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


GOOGLE_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": INTEGER,
                "message": STRING,
                "status": STRING,
                "details": {"type": "array", "items": OPEN_OBJECT},
            },
        }
    },
}

BATCH_JOB_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["displayName", "model", "inputConfig", "outputConfig"],
    "properties": {
        "displayName": STRING,
        "model": {
            "type": "string",
            "description": "gemini-2.5-flash, publishers/google/models/NAME or the full path",
        },
        "inputConfig": {
            "type": "object",
            "properties": {
                "instancesFormat": {"type": "string", "example": "jsonl"},
                "gcsSource": {
                    "type": "object",
                    "properties": {"uris": {"type": "array", "items": STRING, "maxItems": 100}},
                },
            },
        },
        "outputConfig": {
            "type": "object",
            "properties": {
                "predictionsFormat": {"type": "string", "example": "jsonl"},
                "gcsDestination": {
                    "type": "object",
                    "properties": {"outputUriPrefix": STRING},
                },
            },
        },
        "labels": LABELS,
    },
    "additionalProperties": True,
}

BATCH_JOB = {
    "type": "object",
    "properties": {
        "name": STRING,
        "displayName": STRING,
        "model": STRING,
        "state": {"oneOf": [STRING, INTEGER]},
        "inputConfig": OPEN_OBJECT,
        "outputConfig": OPEN_OBJECT,
        "labels": LABELS,
        "createTime": STRING,
    },
    "additionalProperties": True,
}

BATCH_JOB_LIST = {
    "type": "object",
    "properties": {
        "batchPredictionJobs": {"type": "array", "items": ref("BatchPredictionJob")},
        "nextPageToken": STRING,
    },
}

OPERATION = {
    "type": "object",
    "properties": {"name": STRING, "done": BOOLEAN},
    "additionalProperties": True,
}

KEY_FIELDS = {
    "alias": STRING,
    "team": STRING,
    "models": STRINGS,
    "inputPrefixes": STRINGS,
    "outputPrefixes": STRINGS,
    "labels": LABELS,
    "teamAdmin": BOOLEAN,
    "budgetUsd": {"oneOf": [USD, {"type": "number"}, {"type": "null"}]},
    "budgetPeriod": {"type": "string", "enum": ["day", "month", "none"]},
}
KEY_CREATE = {
    "type": "object",
    "required": ["alias"],
    "properties": KEY_FIELDS,
    "additionalProperties": False,
}
KEY_UPDATE = {"type": "object", "properties": KEY_FIELDS, "additionalProperties": False}
KEY = {
    "type": "object",
    "properties": {
        "id": STRING,
        **KEY_FIELDS,
        "createTime": STRING,
        "revokeTime": {"type": ["string", "null"]},
        "key": {"type": "string", "description": "only in the create reply, shown once"},
    },
}
KEY_LIST = {"type": "object", "properties": {"keys": {"type": "array", "items": ref("Key")}}}

TEAM_BUDGET = {
    "type": "object",
    "properties": {
        "budgetUsd": KEY_FIELDS["budgetUsd"],
        "budgetPeriod": KEY_FIELDS["budgetPeriod"],
    },
    "additionalProperties": False,
}
TEAM = {
    "type": "object",
    "properties": {
        "team": STRING,
        "budgetUsd": {"type": ["string", "null"]},
        "budgetPeriod": STRING,
        "updateTime": {"type": ["string", "null"]},
        "status": OPEN_OBJECT,
    },
}
BUDGETS = {"type": "object", "properties": {"budgets": {"type": "array", "items": OPEN_OBJECT}}}
ESTIMATE = {
    "type": "object",
    "properties": {
        "method": STRING,
        "inputFiles": INTEGER,
        "inputBytes": INTEGER,
        "rows": INTEGER,
        "costUsd": {"type": "object", "additionalProperties": USD},
        "budgets": {"type": "array", "items": OPEN_OBJECT},
    },
    "additionalProperties": True,
}
JOB_COST = {
    "type": "object",
    "properties": {"jobId": STRING, "costFinal": BOOLEAN},
    "additionalProperties": True,
}
SPEND = {
    "type": "object",
    "properties": {
        "start": STRING,
        "end": STRING,
        "groupBy": STRING,
        "currency": STRING,
        "totals": OPEN_OBJECT,
        "groups": {"type": "array", "items": OPEN_OBJECT},
    },
}
HEALTH = {
    "type": "object",
    "properties": {"status": STRING, "models": STRINGS, "deploymentCount": INTEGER},
    "additionalProperties": True,
}
OPENAPI = {"type": "object", "properties": {"openapi": STRING}, "additionalProperties": True}
EMPTY = {"type": "object"}
REPRICE = {
    "type": "object",
    "properties": {"note": {"type": "string", "maxLength": 500}},
    "additionalProperties": False,
}
PRICE_IMPORT = {
    "type": "object",
    "properties": {
        "source": {"type": "string", "enum": ["litellm", "billing"]},
        "document": {"type": ["object", "array"]},
        "models": {"type": "array", "items": STRING, "maxItems": 200},
        "apply": BOOLEAN,
        "note": {"type": "string", "maxLength": 500},
    },
    "required": ["source", "document"],
    "additionalProperties": False,
}

OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {"message": STRING, "type": STRING, "param": {}, "code": {}},
        }
    },
}

COMPONENTS = {
    "GoogleError": GOOGLE_ERROR,
    "OpenAIError": OPENAI_ERROR,
    "BatchPredictionJob": BATCH_JOB,
    "Key": KEY,
}

# Query parameters, by route group.
LIST_QUERY = {
    "filter": STRING,
    "pageSize": INTEGER,
    "pageToken": STRING,
    "readMask": STRING,
}
ALT_QUERY = {"$alt": STRING}
# A create's idempotency key, as a query parameter (or the Idempotency-Key header).
CREATE_QUERY = {**ALT_QUERY, "requestId": {"type": "string", "minLength": 1, "maxLength": 255}}
SPEND_QUERY = {
    "start": {"type": "string", "format": "date"},
    "end": {"type": "string", "format": "date"},
    "groupBy": STRING,
}
SPEND_EXPORT_QUERY = {**SPEND_QUERY, "format": {"type": "string", "enum": ["csv", "jsonl"]}}

# The OpenAI Batch API door (its objects are OpenAI's; open, as they grow).
OPENAI_OBJECT = {
    "type": "object",
    "properties": {"id": STRING, "object": STRING},
    "additionalProperties": True,
}
OPENAI_LIST = {
    "type": "object",
    "properties": {"object": STRING, "data": {"type": "array", "items": OPENAI_OBJECT}},
    "additionalProperties": True,
}
OPENAI_LIST_QUERY = {"limit": INTEGER, "after": STRING}
OPENAI_FILE_UPLOAD = {
    "type": "object",
    "required": ["purpose", "file"],
    "properties": {
        "purpose": {"type": "string", "example": "batch"},
        "file": {"type": "string", "format": "binary"},
    },
}
OPENAI_BATCH_CREATE = {
    "type": "object",
    "required": ["input_file_id", "endpoint", "completion_window"],
    "properties": {
        "input_file_id": STRING,
        "endpoint": {"type": "string", "example": "/v1/chat/completions"},
        "completion_window": {"type": "string", "example": "24h"},
        "metadata": {"type": ["object", "null"], "additionalProperties": STRING},
        "output_expires_after": {
            "type": "object",
            "properties": {"anchor": {"const": "created_at"}, "seconds": INTEGER},
        },
    },
    "additionalProperties": True,
}
OPENAI_UPLOAD_CREATE = {
    "type": "object",
    "required": ["bytes", "filename", "mime_type", "purpose"],
    "properties": {
        "bytes": INTEGER,
        "filename": STRING,
        "mime_type": {"type": "string", "example": "application/jsonl"},
        "purpose": {"type": "string", "example": "batch"},
    },
    "additionalProperties": True,
}
OPENAI_UPLOAD_PART = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string", "format": "binary"}},
}
OPENAI_UPLOAD_COMPLETE = {
    "type": "object",
    "required": ["part_ids"],
    "properties": {"part_ids": {"type": "array", "items": STRING}, "md5": STRING},
    "additionalProperties": True,
}
GATEWAY_JOBS_QUERY = {"pageSize": INTEGER, "state": STRING, "label": STRING, "before": STRING}

# Webhook endpoints of a key (shared/openai/webhooks.py).
WEBHOOK_CREATE = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "example": "https://example.com/hooks/vbg"},
        "events": {"type": "array", "items": STRING},
        "description": STRING,
    },
}
WEBHOOK = {
    "type": "object",
    "required": ["id", "url"],
    "properties": {
        "id": STRING,
        "url": STRING,
        "events": {"type": ["array", "null"], "items": STRING},
        "description": STRING,
        "created_at": INTEGER,
        "secret": STRING,
    },
    "additionalProperties": True,
}
WEBHOOK_LIST = {
    "type": "object",
    "properties": {"webhooks": {"type": "array", "items": WEBHOOK}},
}
WEBHOOK_DELIVERY = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {"id": STRING, "status": STRING, "event": OPEN_OBJECT},
    "additionalProperties": True,
}
WEBHOOK_DELIVERIES = {
    "type": "object",
    "properties": {
        "deliveries": {"type": "array", "items": WEBHOOK_DELIVERY},
        "next_after": STRING,
    },
}
WEBHOOK_DELIVERIES_QUERY = {"limit": INTEGER, "after": STRING}

# --- runs (shared/runs/) and upload sessions ------------------------------------------------

RUN_CREATE = {
    **BATCH_JOB_CREATE,
    "properties": {
        **BATCH_JOB_CREATE["properties"],
        "maxConcurrentJobs": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "description": "most pieces of this run submitted or running at once",
        },
    },
}
RUN_COST = {
    "type": "object",
    "required": ["runId", "totalUsd", "total", "pieces", "final"],
    "properties": {
        "runId": STRING,
        "totalUsd": STRING,
        "final": {"type": "boolean"},
        "total": {"type": "object"},
        "pieces": {"type": "array", "items": {"type": "object"}},
    },
}
RUN = {
    "type": "object",
    "required": ["runId", "state", "pieces", "outputDirectory"],
    "properties": {
        "runId": STRING,
        "state": STRING,
        "pieces": {"type": "integer"},
        "rows": {"type": "integer"},
        "outputDirectory": STRING,
        "pieceList": {"type": "array", "items": {"type": "object"}},
        "cost": RUN_COST,
    },
}
RUN_LIST = {
    "type": "object",
    "required": ["runs"],
    "properties": {"runs": {"type": "array", "items": {"type": "object"}}, "nextBefore": STRING},
}
RUNS_QUERY = {"pageSize": {"type": "integer", "minimum": 1}, "before": STRING}
UPLOAD_CREATE = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "description": "the file's name (kept, made safe)"},
        "size": {"type": "integer", "minimum": 0, "description": "the object's size in bytes"},
        "inputPrefix": {"type": "string", "description": "gs:// folder inside the key's"},
    },
}
UPLOAD = {
    "type": "object",
    "required": ["uri", "sessionUri"],
    "properties": {
        "uri": STRING,
        "sessionUri": {"type": "string", "description": "PUT the bytes here (GCS resumable)"},
        "size": {"type": ["integer", "null"]},
    },
}
