"""Tables match infra/tables.py; the drop bucket is private, encrypted, SSL-only, versioned."""

from __future__ import annotations

import pytest

from infra import tables
from infra.tables import TableSpec, create_table_kwargs
from tests.infra.cfn import Synth

RETAINED = {tables.META.logical_id, tables.ROWS.logical_id}


@pytest.mark.parametrize("spec", tables.ALL_TABLES, ids=lambda s: s.logical_id)
def test_table_matches_spec(synth: Synth, spec: TableSpec) -> None:
    # Given the boto3 definition derived from the same spec (what the local stack creates),
    expected = create_table_kwargs(spec)
    # when reading the synthesized table,
    table = synth.resources[spec.logical_id]
    props = table["Properties"]
    # then keys, attribute types, GSIs and TTL are the spec's.
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        expected["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    gsis = {g["IndexName"]: g for g in props.get("GlobalSecondaryIndexes", [])}
    assert gsis == {g["IndexName"]: g for g in expected.get("GlobalSecondaryIndexes", [])}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    if spec.logical_id in RETAINED:
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_only_the_spec_tables_exist(synth: Synth) -> None:
    assert set(synth.of_type("AWS::DynamoDB::Table")) == {spec.logical_id for spec in tables.ALL_TABLES}


def test_drop_bucket_is_private_encrypted_versioned_and_logged(synth: Synth) -> None:
    bucket = synth.resources["DropBucket"]
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    assert bucket["DeletionPolicy"] == "Retain"


def test_drop_bucket_lifecycle_and_cors(synth: Synth) -> None:
    props = synth.resources["DropBucket"]["Properties"]
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    [cors] = props["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["PUT"]


def test_replica_bucket_keeps_snapshots_and_expires_exports(synth: Synth) -> None:
    props = synth.resources["ReplicaBucket"]["Properties"]
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    # Exports are presigned downloads that expire, and so do a crashed import's staging parts;
    # snapshot versions expire by the product's own retention (they must stay as long as a
    # version is listed), never by a bucket rule.
    assert rules["expire-exports"]["Prefix"] == "exports/"
    assert rules["expire-exports"]["ExpirationInDays"] == 7
    assert rules["expire-import-staging"]["Prefix"] == "replica/_staging/"
    expiring = {rule.get("Prefix", "") for rule in rules.values() if "ExpirationInDays" in rule}
    assert expiring == {"exports/", "replica/_staging/"}


@pytest.mark.parametrize("bucket", ["DropBucket", "AccessLogsBucket"])
def test_buckets_deny_requests_without_tls(synth: Synth, bucket: str) -> None:
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    [statements] = policies
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
