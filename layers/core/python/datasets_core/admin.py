"""``datasets-admin``: provision workspaces, keys and plans (SPEC §3).

    datasets-admin create-key --workspace W --scopes datasets:read,datasets:write
                              [--name N] [--expires-at ISO]
    datasets-admin revoke-key KEY_ID
    datasets-admin set-plan --workspace W [--max-rows N] [--max-datasets N]
                            [--rate-limit N] [--rate-window SECONDS]
    datasets-admin list-keys --workspace W [--json]

Target: the local stack by default (``AWS_ENDPOINT_URL`` if set, else
``http://127.0.0.1:$AWS_PORT``, port 4566 by default, with dummy credentials when none are
set), or a deployed stack with ``--stack NAME [--region R]``: the standard AWS credentials
and region apply, and the table names come from the stack's CloudFormation outputs.

Keys are created, listed and revoked by the same ``logic``/``store`` code the API uses.
Exit codes: 0 ok, 1 failure (key not found, stack or endpoint unreachable), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

# The stack's CloudFormation outputs → the settings' environment variables they set.
STACK_OUTPUTS = {
    "MetaTableName": "META_TABLE",
    "RowsTableName": "ROWS_TABLE",
    "IdempotencyTableName": "IDEMPOTENCY_TABLE",
    "DropBucketName": "DROP_BUCKET",
    "DropPrefix": "DROP_PREFIX",
}
REQUIRED_OUTPUTS = ("MetaTableName",)
DEFAULT_AWS_PORT = 4566
_WORKSPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


class AdminError(Exception):
    """A failure to report on stderr (no traceback) with an exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- argument parsing ---------------------------------------------------------------------------
def _workspace(text: str) -> str:
    if not _WORKSPACE_RE.match(text):
        raise argparse.ArgumentTypeError(
            f"invalid workspace {text!r}: 1–63 characters of A-Z a-z 0-9 . _ - "
            "(it names a drop-folder directory)"
        )
    return text


def _scopes(text: str) -> list[str]:
    from .auth import SCOPES

    scopes = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if not scopes or unknown:
        what = f"unknown scope(s): {', '.join(unknown)}" if unknown else "no scope given"
        raise argparse.ArgumentTypeError(f"{what}; valid scopes: {', '.join(SCOPES)}")
    return scopes


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _window(text: str) -> int:
    seconds = _positive(text)
    if seconds > 3600:
        raise argparse.ArgumentTypeError(f"a rate window is 1 to 3600 seconds, got {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    target = argparse.ArgumentParser(add_help=False)
    group = target.add_argument_group("target (default: the local stack of `make run`)")
    group.add_argument("--stack", default=argparse.SUPPRESS, help="name of a deployed stack")
    group.add_argument("--region", default=argparse.SUPPRESS, help="region of the deployed stack")

    parser = argparse.ArgumentParser(
        prog="datasets-admin",
        description="Provision API keys and plans of the Datasets API.",
        parents=[target],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create-key", parents=[target], help="create a key (prints it last)")
    create.add_argument("--workspace", required=True, type=_workspace)
    create.add_argument("--scopes", required=True, type=_scopes, help="comma-separated scopes")
    create.add_argument("--name", default="datasets-admin", help="a label for the key")
    create.add_argument(
        "--expires-at", default=None, help="ISO 8601 with a timezone, e.g. 2027-01-01T00:00:00Z"
    )
    create.set_defaults(run=create_key)

    revoke = commands.add_parser("revoke-key", parents=[target], help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the id shown at creation (dsk_<id>_… also works)")
    revoke.set_defaults(run=revoke_key)

    plan = commands.add_parser("set-plan", parents=[target], help="set a workspace's limits")
    plan.add_argument("--workspace", required=True, type=_workspace)
    plan.add_argument("--max-rows", type=_count, default=None)
    plan.add_argument("--max-datasets", type=_count, default=None)
    plan.add_argument(
        "--rate-limit", type=_positive, default=None, help="requests per window, per API key (default 100)"
    )
    plan.add_argument(
        "--rate-window", type=_window, default=None, help="the rate limit's window in seconds (default 1)"
    )
    plan.set_defaults(run=set_plan)

    show = commands.add_parser("show-workspace", parents=[target], help="a workspace's plan and usage (JSON)")
    show.add_argument("--workspace", required=True, type=_workspace)
    show.set_defaults(run=show_workspace)

    listing = commands.add_parser("list-keys", parents=[target], help="list a workspace's keys (no secrets)")
    listing.add_argument("--workspace", required=True, type=_workspace)
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    listing.set_defaults(run=list_keys)
    return parser


# --- target ---------------------------------------------------------------------------------
def use_local_stack() -> str:
    """Point boto3 at the local stack's moto endpoint; fail fast when nothing listens there."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or (
        f"http://127.0.0.1:{os.environ.get('AWS_PORT') or DEFAULT_AWS_PORT}"
    )
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        os.environ["AWS_ACCESS_KEY_ID"] = "test"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", port), timeout=3).close()
    except OSError as exc:
        raise AdminError(
            f"cannot reach the local stack at {endpoint} ({exc.strerror or exc}); "
            "start it with `make run` (same AWS_PORT), or pass --stack NAME for a deployed stack"
        ) from exc
    return endpoint


def use_deployed_stack(stack: str, region: str | None) -> dict[str, str]:
    """Read the stack's outputs and export them as the settings' environment; the outputs used."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    try:
        cloudformation = boto3.session.Session().client("cloudformation", region_name=region)
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise AdminError(f"cannot read stack {stack!r}: {exc.response['Error'].get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise AdminError(f"cannot read stack {stack!r}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    found: dict[str, str] = {}
    for output, env in STACK_OUTPUTS.items():
        # CDK suffixes outputs declared inside constructs with a hash: accept those too.
        matches = [key for key in outputs if key == output or re.fullmatch(rf"\w*{output}[0-9A-F]{{8}}", key)]
        if matches:
            found[output] = os.environ[env] = outputs[sorted(matches, key=len)[0]]
    missing = [output for output in REQUIRED_OUTPUTS if output not in found]
    if missing:
        raise AdminError(
            f"stack {stack!r} has no output {', '.join(missing)} "
            f"(its outputs: {', '.join(sorted(outputs)) or 'none'})"
        )
    return found


def _fresh_settings() -> None:
    """Forget settings and clients read before the target was chosen."""
    from . import auth, aws
    from .config import settings

    settings.cache_clear()
    aws.reset()
    auth.forget_cached_keys()


# --- commands -------------------------------------------------------------------------------
def create_key(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .auth import SCOPES, Principal
    from .logic import keys
    from .models import CreateKey

    try:
        request = CreateKey(name=args.name, scopes=args.scopes, expires_at=args.expires_at)
    except ValidationError as exc:
        raise AdminError(_pydantic_message(exc), 2) from exc
    # The operator acts for the workspace with every scope: logic.keys validates as for the API.
    operator = Principal(args.workspace, "datasets-admin", frozenset(SCOPES))
    created = keys.create(operator, request)
    print(f"Created key {created['id']} in workspace '{args.workspace}'")
    print(f"  name        {created['name']}")
    print(f"  scopes      {', '.join(created['scopes'])}")
    print(f"  created_at  {created['created_at']}")
    print(f"  expires_at  {created['expires_at'] or 'never'}")
    print("The key is shown this once (only its hash is stored):")
    print(created["key"])
    return 0


def key_id_of(text: str) -> str:
    """A key id from what an operator may paste: the id, ``dsk_<id>``, or the whole key."""
    from .auth import KEY_PREFIX, split_key

    text = text.strip()
    if re.fullmatch(rf"{KEY_PREFIX}[a-z0-9]{{16}}_[A-Za-z0-9_\-]{{43}}", text):
        return split_key(text)[0]
    if text.startswith(KEY_PREFIX):
        return text[len(KEY_PREFIX) :]
    return text


def revoke_key(args: argparse.Namespace) -> int:
    from .errors import KeyNotFound
    from .store import keys as key_store
    from .timeutil import now_iso

    key_id = key_id_of(args.key_id)
    record = key_store.get_key(key_id)
    if record is None:
        raise AdminError(f"key not found: {key_id}")
    if record.get("revoked_at"):
        print(
            f"Key {key_id} (workspace '{record['workspace']}') was already revoked at {record['revoked_at']}."
        )
        return 0
    try:
        key_store.revoke_key(key_id, now_iso())
    except KeyNotFound as exc:  # revoked by someone else in between
        raise AdminError(f"key not found: {key_id}") from exc
    print(f"Revoked key {key_id} (workspace '{record['workspace']}'); effective everywhere within 60 s.")
    return 0


def set_plan(args: argparse.Namespace) -> int:
    from .store import workspaces

    plan = workspaces.set_plan(
        args.workspace,
        max_rows=args.max_rows,
        max_datasets=args.max_datasets,
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
    )
    print(
        f"Workspace '{args.workspace}': max_rows={plan['max_rows']} (used {plan['row_count']}), "
        f"max_datasets={plan['max_datasets']} (used {plan['dataset_count']}), "
        f"rate limit {plan['rate_limit']} requests per {plan['rate_window_seconds']} s per key"
    )
    return 0


def show_workspace(args: argparse.Namespace) -> int:
    from .store import workspaces

    print(json.dumps({"workspace": args.workspace, **workspaces.get(args.workspace)}, indent=2))
    return 0


def list_keys(args: argparse.Namespace) -> int:
    from .store import keys as key_store

    records = sorted(key_store.list_keys(args.workspace), key=lambda key: key["created_at"])
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        print(f"No keys in workspace '{args.workspace}'.")
        return 0
    columns = ("id", "name", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at")
    rows = [[_cell(record.get(column)) for column in columns] for record in records]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(columns)]
    for line in [list(columns), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return ",".join(value) if isinstance(value, list) else str(value)


def _pydantic_message(exc: Any) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}" for error in exc.errors()
    )


# --- entry point ----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command == "set-plan" and all(
        getattr(args, name) is None for name in ("max_rows", "max_datasets", "rate_limit", "rate_window")
    ):
        print(
            "datasets-admin: set-plan needs --max-rows, --max-datasets, --rate-limit and/or --rate-window",
            file=sys.stderr,
        )
        return 2
    run: Callable[[argparse.Namespace], int] = args.run
    from botocore.exceptions import BotoCoreError, ClientError

    from .errors import ApiError

    try:
        stack = getattr(args, "stack", None)
        if stack:
            use_deployed_stack(stack, getattr(args, "region", None))
        else:
            if getattr(args, "region", None):
                os.environ["AWS_DEFAULT_REGION"] = args.region
            use_local_stack()
        _fresh_settings()
        return run(args)
    except AdminError as exc:
        print(f"datasets-admin: {exc}", file=sys.stderr)
        return exc.exit_code
    except ApiError as exc:  # the API's own validation (e.g. an expiry in the past)
        print(f"datasets-admin: {exc.message}", file=sys.stderr)
        return 2 if exc.status < 404 else 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"datasets-admin: AWS error {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"datasets-admin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
