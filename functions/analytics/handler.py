"""The analytics function: answers from the columnar replica (pyarrow), called by API functions.

Payload: ``{"action", "workspace", "dataset_id", ...}``; answer ``{"ok": ...}`` or
``{"error": {"status", "code", "message", "details"}}`` (see ``datasets_core.invoke``).
"""

from datasets_core.errors import ApiError
from datasets_core.observability import logger
from datasets_core.replica import service
from datasets_core.store import datasets

ACTIONS = {
    "query": lambda dataset, payload: service.query(dataset, payload["params"]),
    "count": lambda dataset, payload: service.count(dataset, payload["params"]),
    "match": lambda dataset, payload: service.match(dataset, payload.get("where")),
    "profile": lambda dataset, payload: service.profile(dataset, payload.get("params", {})),
    "export": lambda dataset, payload: service.export(dataset, payload.get("params", {})),
}


@logger.inject_lambda_context
def handler(event, context):
    try:
        action = ACTIONS[event["action"]]
        dataset = datasets.get(event["workspace"], event["dataset_id"])
        return {"ok": action(dataset, event)}
    except ApiError as exc:
        details = dict(exc.details)
        if exc.code == "internal_error":
            details["request_id"] = getattr(context, "aws_request_id", None)
        return {"error": {"status": exc.status, "code": exc.code, "message": exc.message, "details": details}}
