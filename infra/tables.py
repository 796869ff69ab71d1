"""DynamoDB table definitions: the single source for the CDK stack, the local stack and tests.

Plain data (no aws_cdk import) so the local stack and the test fixtures can create the very
same tables with boto3; ``tests/infra`` asserts the synthesized template matches these.

Layout (see README "Design"):

- ``meta``: workspaces, plans and counters, datasets (+ a name-reservation item per
  dataset name), API keys (GSI ``gsi1`` lists a workspace's keys), imports (``gsi1`` lists a
  dataset's imports).
- ``rows``: one item per row, ``pk = <dataset_id>#<shard>``, ``sk = row_index`` (number), so
  the default order is the table's own order and a dataset spreads over several partitions.
  GSIs ``idx1``..``idx5`` (keys ``x<n>p``/``x<n>s``) are the five index slots a dataset may
  use (binary, order-preserving encoded keys). They project keys only: an index entry changes
  only when its own column does, so a row write costs one index write per index whose key
  it changes, not one per index (README "Index projections"); an index page reads the
  entries' keys and fetches the page's rows with one batched get. Audit-trail items live
  here too, expiring through TTL.
- ``idempotency``: Powertools' idempotency persistence layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INDEX_SLOTS = 5


KEYS_ONLY = "KEYS_ONLY"
ALL = "ALL"


@dataclass(frozen=True)
class Gsi:
    name: str
    partition_key: tuple[str, str]
    sort_key: tuple[str, str] | None
    projection: str = ALL  # DynamoDB's ProjectionType: ALL or KEYS_ONLY


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    local_name: str
    partition_key: tuple[str, str]
    sort_key: tuple[str, str] | None = None
    gsis: tuple[Gsi, ...] = field(default=())
    ttl_attribute: str | None = None
    settings_env: str = ""


META = TableSpec(
    logical_id="MetaTable",
    local_name="datasets-meta",
    partition_key=("pk", "S"),
    sort_key=("sk", "S"),
    gsis=(Gsi("gsi1", ("gsi1pk", "S"), ("gsi1sk", "S")),),
    ttl_attribute="expires_at_epoch",
    settings_env="META_TABLE",
)

ROWS = TableSpec(
    logical_id="RowsTable",
    local_name="datasets-rows",
    partition_key=("pk", "S"),
    sort_key=("sk", "N"),
    gsis=tuple(
        Gsi(f"idx{n}", (f"x{n}p", "S"), (f"x{n}s", "B"), KEYS_ONLY) for n in range(1, INDEX_SLOTS + 1)
    ),
    ttl_attribute="expires_at_epoch",
    settings_env="ROWS_TABLE",
)

IDEMPOTENCY = TableSpec(
    logical_id="IdempotencyTable",
    local_name="datasets-idempotency",
    partition_key=("id", "S"),
    ttl_attribute="expiration",
    settings_env="IDEMPOTENCY_TABLE",
)

ALL_TABLES = (META, ROWS, IDEMPOTENCY)


def create_table_kwargs(spec: TableSpec, name: str | None = None) -> dict:
    """boto3 ``create_table`` arguments for ``spec`` (on-demand, like the deployed tables)."""
    attrs: dict[str, str] = {}
    keys = [{"AttributeName": spec.partition_key[0], "KeyType": "HASH"}]
    attrs[spec.partition_key[0]] = spec.partition_key[1]
    if spec.sort_key:
        keys.append({"AttributeName": spec.sort_key[0], "KeyType": "RANGE"})
        attrs[spec.sort_key[0]] = spec.sort_key[1]
    gsis = []
    for gsi in spec.gsis:
        schema = [{"AttributeName": gsi.partition_key[0], "KeyType": "HASH"}]
        attrs[gsi.partition_key[0]] = gsi.partition_key[1]
        if gsi.sort_key:
            schema.append({"AttributeName": gsi.sort_key[0], "KeyType": "RANGE"})
            attrs[gsi.sort_key[0]] = gsi.sort_key[1]
        gsis.append(
            {"IndexName": gsi.name, "KeySchema": schema, "Projection": {"ProjectionType": gsi.projection}}
        )
    kwargs: dict = {
        "TableName": name or spec.local_name,
        "KeySchema": keys,
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": t} for k, t in attrs.items()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    return kwargs


def create_local_tables(dynamodb_client, names: dict[str, str] | None = None) -> None:
    """Create every table (and its TTL setting) against ``dynamodb_client`` (moto)."""
    for spec in ALL_TABLES:
        name = (names or {}).get(spec.logical_id, spec.local_name)
        dynamodb_client.create_table(**create_table_kwargs(spec, name))
        if spec.ttl_attribute:
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
