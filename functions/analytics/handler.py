"""The analytics function: answers from the columnar replica (pyarrow), called by API functions.

Payload: ``{"action", "workspace", "dataset_id", ...}``; answer ``{"json": <text>}`` where the
text is ``{"ok": ...}`` or ``{"error": {"status", "code", "message", "details"}}`` (see
``datasets_core.invoke``): encoded here, because Lambda's own JSON encoding of a return value
has no exact form for decimal numbers.
"""

from datasets_core import jsonutil
from datasets_core.errors import ApiError
from datasets_core.observability import logger
from datasets_core.replica import service
from datasets_core.store import datasets

ACTIONS = {
    "query": lambda dataset, arguments: service.query(dataset, arguments["params"]),
    "count": lambda dataset, arguments: service.count(dataset, arguments["params"]),
    "match": lambda dataset, arguments: service.match(
        dataset, arguments.get("where"), arguments.get("limit")
    ),
    "profile": lambda dataset, arguments: service.profile(dataset, arguments.get("params", {})),
    "export": lambda dataset, arguments: service.export(dataset, arguments.get("params", {})),
}


@logger.inject_lambda_context
def handler(event, context):
    try:
        action = ACTIONS[event["action"]]
        dataset = datasets.get(event["workspace"], event["dataset_id"])
        answer = {"ok": action(dataset, jsonutil.loads(event["arguments"]))}
    except ApiError as exc:
        details = dict(exc.details)
        if exc.code == "internal_error":
            details["request_id"] = getattr(context, "aws_request_id", None)
        answer = {
            "error": {"status": exc.status, "code": exc.code, "message": exc.message, "details": details}
        }
    return {"json": jsonutil.dumps(answer)}
