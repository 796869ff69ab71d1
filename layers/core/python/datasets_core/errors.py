"""Domain exceptions, one per error code of SPEC §2. ``http.py`` renders them in the envelope."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after  # seconds; answered as a Retry-After header

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class InvalidQuery(ApiError):
    status, code = 400, "invalid_query"


class InvalidBody(ApiError):
    status, code = 400, "invalid_body"


class InvalidRowId(ApiError):
    status, code = 400, "invalid_row_id"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class InsufficientScope(ApiError):
    status, code = 403, "insufficient_scope"

    def __init__(self, required_scope: str) -> None:
        super().__init__(
            f"This API key lacks the '{required_scope}' scope.", {"required_scope": required_scope}
        )


class PlanLimitExceeded(ApiError):
    status, code = 403, "plan_limit_exceeded"


class NotFound(ApiError):
    status, code = 404, "not_found"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"

    def __init__(self, dataset_id: str = "") -> None:
        super().__init__("Dataset not found.", {"dataset_id": dataset_id} if dataset_id else None)


class RowNotFound(NotFound):
    code = "row_not_found"

    def __init__(self, row_id: str = "") -> None:
        super().__init__("Row not found.", {"row_id": row_id} if row_id else None)


class ImportNotFound(NotFound):
    code = "import_not_found"

    def __init__(self, import_id: str = "") -> None:
        super().__init__("Import not found.", {"import_id": import_id} if import_id else None)


class VersionNotFound(NotFound):
    code = "version_not_found"

    def __init__(self, version: int) -> None:
        super().__init__(
            f"Version {version} of this dataset is not kept (GET /v1/datasets/{{id}}/versions lists them).",
            {"version": version},
        )


class KeyNotFound(NotFound):
    code = "key_not_found"

    def __init__(self, key_id: str = "") -> None:
        super().__init__("API key not found.", {"key_id": key_id} if key_id else None)


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class DatasetNameTaken(ApiError):
    status, code = 409, "dataset_name_taken"

    def __init__(self, name: str) -> None:
        super().__init__(f"A dataset named '{name}' already exists in this workspace.", {"name": name})


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class RateLimited(ApiError):
    """Over a key's request limit (``ratelimit``); always says when to retry."""

    status, code = 429, "rate_limited"
