"""The audit trail through CloudTrail's own clients: `aws cloudtrail lookup-events` and boto3's
`lookup_events`, against a server of the test's own so the counts are exact."""

from __future__ import annotations

import json

import pytest

from conftest import ALICE_ACCOUNT, ALICE_ARN, AwsCli


def test_lookup_events_with_boto3(fresh_tresor):
    kms = fresh_tresor.client("kms")
    trail = fresh_tresor.client("cloudtrail")
    key = kms.create_key(Description="audited")["KeyMetadata"]
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"tenant": "a"})
    kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"tenant": "a"})
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"tenant": "b"})

    events = trail.lookup_events()["Events"]
    names = [e["EventName"] for e in events]
    # Newest first, one record per call, failures included.
    assert names == ["Decrypt", "Decrypt", "GenerateDataKey", "CreateKey"]
    failed = json.loads(events[0]["CloudTrailEvent"])
    assert failed["errorCode"] == "InvalidCiphertextException"
    assert failed["userIdentity"]["arn"] == ALICE_ARN
    assert failed["requestParameters"]["encryptionContext"] == {"tenant": "b"}
    assert events[0]["Username"] == "alice"
    assert events[0]["ReadOnly"] == "true"
    assert events[0]["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": key["Arn"]}]
    assert events[0]["EventSource"] == "kms.amazonaws.com"

    only_create = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}])
    assert [e["EventName"] for e in only_create["Events"]] == ["CreateKey"]
    create = json.loads(only_create["Events"][0]["CloudTrailEvent"])
    assert create["responseElements"]["keyMetadata"]["keyId"] == key["KeyId"]
    assert create["recipientAccountId"] == ALICE_ACCOUNT

    by_key = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}])
    assert len(by_key["Events"]) == 4

    # Pagination: two pages of two, then nothing more.
    page1 = trail.lookup_events(MaxResults=2)
    assert len(page1["Events"]) == 2 and "NextToken" in page1
    page2 = trail.lookup_events(MaxResults=2, NextToken=page1["NextToken"])
    assert len(page2["Events"]) == 2 and "NextToken" not in page2
    assert {e["EventId"] for e in page1["Events"]}.isdisjoint({e["EventId"] for e in page2["Events"]})

    # Other regions and other accounts see nothing of this.
    assert fresh_tresor.client("cloudtrail", region="eu-west-1").lookup_events()["Events"] == []


def test_lookup_events_with_the_cli(fresh_tresor):
    aws = AwsCli(fresh_tresor.endpoint)
    key = json.loads(aws("kms", "create-key").stdout)["KeyMetadata"]
    aws("kms", "describe-key", "--key-id", key["KeyId"])
    out = json.loads(
        aws(
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=DescribeKey",
        ).stdout
    )
    assert [e["EventName"] for e in out["Events"]] == ["DescribeKey"]
    record = json.loads(out["Events"][0]["CloudTrailEvent"])
    assert record["requestParameters"] == {"keyId": key["KeyId"]}
    assert record["userAgent"].startswith("aws-cli/")
    # The CLI paginates by itself across all pages.
    everything = json.loads(aws("cloudtrail", "lookup-events", "--page-size", "1").stdout)
    assert [e["EventName"] for e in everything["Events"]] == ["DescribeKey", "CreateKey"]
