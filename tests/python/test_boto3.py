"""boto3 (botocore) against the real tresor binary: crypto round trips, listing, and the exact
error codes and messages AWS KMS sends (reference: aws-kms-s3-semantics.md §1.4-1.6, §2)."""

from __future__ import annotations

import re

import botocore.config
import botocore.exceptions
import pytest

from conftest import ALICE_ACCOUNT, ALICE_ARN, ROOT_ACCOUNT, ROOT_ARN, ROOT_KEY, ROOT_SECRET

CONTEXT = {"tenant": "a", "purpose": "test"}
KEY_ARN_RE = re.compile(rf"^arn:aws:kms:us-east-1:{ALICE_ACCOUNT}:key/[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}$")


def client_error(fn, **kwargs) -> dict:
    """Calls fn, requires a ClientError, and returns its parsed response."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(**kwargs)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    return response


def assert_error(fn, code: str, message: str, **kwargs) -> None:
    error = client_error(fn, **kwargs)["Error"]
    assert error["Code"] == code, error
    assert error["Message"] == message, error


@pytest.fixture(scope="module")
def key(kms) -> dict:
    metadata = kms.create_key(Description="python suite")["KeyMetadata"]
    return metadata


def new_key(kms) -> dict:
    return kms.create_key()["KeyMetadata"]


# ---- happy paths ---------------------------------------------------------------------------------


def test_create_key_metadata(key):
    assert KEY_ARN_RE.match(key["Arn"]), key["Arn"]
    assert key["Arn"].endswith("/" + key["KeyId"])
    assert key["AWSAccountId"] == ALICE_ACCOUNT
    assert key["Description"] == "python suite"
    assert key["Enabled"] is True
    assert key["KeyState"] == "Enabled"
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert key["KeyManager"] == "CUSTOMER"
    assert key["Origin"] == "AWS_KMS"
    assert key["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]


def test_generate_data_key_decrypt_round_trip(kms, key):
    generated = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=CONTEXT)
    assert generated["KeyId"] == key["Arn"], "crypto responses name the key by ARN"
    assert len(generated["Plaintext"]) == 32
    assert generated["CiphertextBlob"] and generated["Plaintext"] not in generated["CiphertextBlob"]

    decrypted = kms.decrypt(CiphertextBlob=generated["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert decrypted["Plaintext"] == generated["Plaintext"]
    assert decrypted["KeyId"] == key["Arn"]
    assert decrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    # Each call makes a new data key.
    again = kms.generate_data_key(KeyId=key["Arn"], NumberOfBytes=32, EncryptionContext=CONTEXT)
    assert again["Plaintext"] != generated["Plaintext"]


def test_generate_data_key_aes_128_and_number_of_bytes(kms, key):
    assert len(kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=1024)["Plaintext"]) == 1024
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=1)["Plaintext"]) == 1


def test_encrypt_decrypt(kms, key):
    plaintext = bytes(range(256)) * 16  # 4096 bytes, the maximum
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=CONTEXT)
    assert encrypted["KeyId"] == key["Arn"]
    assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert decrypted["Plaintext"] == plaintext
    # Naming the right key explicitly (by id or ARN) is allowed too.
    for key_id in (key["KeyId"], key["Arn"]):
        named = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=CONTEXT, KeyId=key_id)
        assert named["Plaintext"] == plaintext


def test_re_encrypt(kms, key):
    destination = new_key(kms)
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"move me", EncryptionContext=CONTEXT)
    moved = kms.re_encrypt(
        CiphertextBlob=encrypted["CiphertextBlob"],
        SourceEncryptionContext=CONTEXT,
        DestinationKeyId=destination["KeyId"],
        DestinationEncryptionContext={"tenant": "b"},
    )
    assert moved["SourceKeyId"] == key["Arn"]
    assert moved["KeyId"] == destination["Arn"]
    assert moved["CiphertextBlob"] != encrypted["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"tenant": "b"})
    assert decrypted["Plaintext"] == b"move me"
    assert decrypted["KeyId"] == destination["Arn"]
    # The new ciphertext is bound to the new context.
    assert_error(
        kms.decrypt,
        "InvalidCiphertextException",
        "",
        CiphertextBlob=moved["CiphertextBlob"],
        EncryptionContext=CONTEXT,
    )


def test_describe_key_by_id_and_arn(kms, key):
    for key_id in (key["KeyId"], key["Arn"]):
        described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert described["KeyId"] == key["KeyId"]
        assert described["Arn"] == key["Arn"]
        assert described["KeyState"] == "Enabled"


def test_list_keys_pagination(fresh_tresor):
    kms = fresh_tresor.client("kms")
    created = [kms.create_key()["KeyMetadata"] for _ in range(5)]

    first = kms.list_keys(Limit=2)
    assert len(first["Keys"]) == 2
    assert first["Truncated"] is True
    assert first["NextMarker"]

    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    assert [p["Truncated"] for p in pages] == [True, True, False]
    assert "NextMarker" not in pages[-1]
    listed = [k for p in pages for k in p["Keys"]]
    assert sorted(k["KeyId"] for k in listed) == sorted(k["KeyId"] for k in created)
    assert {k["KeyId"]: k["KeyArn"] for k in listed} == {k["KeyId"]: k["Arn"] for k in created}

    everything = kms.list_keys()
    assert everything["Truncated"] is False
    assert len(everything["Keys"]) == 5


def test_sts_get_caller_identity(sts):
    identity = sts.get_caller_identity()
    assert identity["Arn"] == ALICE_ARN
    assert identity["Account"] == ALICE_ACCOUNT
    assert identity["UserId"].startswith("AIDA")


def test_root_test_credentials(tresor):
    sts = tresor.client("sts", access_key=ROOT_KEY, secret_key=ROOT_SECRET)
    identity = sts.get_caller_identity()
    assert identity["Arn"] == ROOT_ARN
    assert identity["Account"] == ROOT_ACCOUNT
    assert identity["UserId"] == ROOT_ACCOUNT

    kms = tresor.client("kms", access_key=ROOT_KEY, secret_key=ROOT_SECRET)
    key = kms.create_key()["KeyMetadata"]
    assert key["AWSAccountId"] == ROOT_ACCOUNT
    assert key["Arn"].startswith(f"arn:aws:kms:us-east-1:{ROOT_ACCOUNT}:key/")
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"root")
    assert kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])["Plaintext"] == b"root"
    assert key["KeyId"] in {k["KeyId"] for k in kms.list_keys()["Keys"]}


# ---- errors --------------------------------------------------------------------------------------


def test_decrypt_with_changed_context_is_invalid_ciphertext(kms, key):
    blob = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=CONTEXT)["CiphertextBlob"]
    assert_error(
        kms.decrypt,
        "InvalidCiphertextException",
        "",
        CiphertextBlob=blob,
        EncryptionContext={"tenant": "a", "purpose": "other"},
    )
    assert_error(kms.decrypt, "InvalidCiphertextException", "", CiphertextBlob=blob)
    tampered = bytearray(blob)
    tampered[-1] ^= 0x01
    assert_error(
        kms.decrypt, "InvalidCiphertextException", "", CiphertextBlob=bytes(tampered), EncryptionContext=CONTEXT
    )


def test_describe_key_invalid_id(kms):
    assert_error(kms.describe_key, "NotFoundException", "Invalid keyId 'fake-key-id'", KeyId="fake-key-id")


def test_describe_key_unknown_id(kms):
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(
        kms.describe_key,
        "NotFoundException",
        f"Key 'arn:aws:kms:us-east-1:{ALICE_ACCOUNT}:key/{missing}' does not exist",
        KeyId=missing,
    )


def test_generate_data_key_number_of_bytes_too_large(kms, key):
    assert_error(
        kms.generate_data_key,
        "ValidationException",
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value less than or equal to 1024",
        KeyId=key["KeyId"],
        NumberOfBytes=1025,
    )


def test_disabled_key(kms):
    victim = new_key(kms)
    blob = kms.encrypt(KeyId=victim["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    kms.disable_key(KeyId=victim["KeyId"])
    assert kms.describe_key(KeyId=victim["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    message = f"{victim['Arn']} is disabled."
    assert_error(kms.encrypt, "DisabledException", message, KeyId=victim["KeyId"], Plaintext=b"x")
    assert_error(kms.decrypt, "DisabledException", message, CiphertextBlob=blob)
    kms.enable_key(KeyId=victim["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


def test_decrypt_with_another_keys_id_is_incorrect_key(kms, key):
    other = new_key(kms)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    for key_id in (other["KeyId"], other["Arn"]):
        assert_error(
            kms.decrypt,
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation.",
            CiphertextBlob=blob,
            KeyId=key_id,
        )


def test_wrong_secret_is_invalid_signature(tresor):
    bad = tresor.client("kms", secret_key="not-the-secret")
    assert_error(
        bad.list_keys,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )


def test_unknown_access_key_is_unrecognized_client(tresor):
    bad = tresor.client("kms", access_key="NOSUCHKEY", secret_key="whatever")
    assert_error(bad.list_keys, "UnrecognizedClientException", "The security token included in the request is invalid.")


def test_sts_auth_errors_use_sts_codes(tresor):
    # STS (query/XML protocol) names these errors as AWS STS does, with HTTP 403.
    cases = [
        ("NOSUCHKEY", "whatever", "InvalidClientTokenId", "The security token included in the request is invalid."),
        ("FOOBARKEY", "not-the-secret", "SignatureDoesNotMatch", None),
    ]
    for access_key, secret_key, code, message in cases:
        bad_sts = tresor.client("sts", access_key=access_key, secret_key=secret_key)
        with pytest.raises(botocore.exceptions.ClientError) as info:
            bad_sts.get_caller_identity()
        response = info.value.response
        assert response["Error"]["Code"] == code, response["Error"]
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
        if message is not None:
            assert response["Error"]["Message"] == message


@pytest.mark.parametrize(
    "call, kwargs, message",
    [
        ("generate_data_key", {}, "Please specify either number of bytes or key spec."),
        ("generate_data_key", {"KeySpec": "AES_256", "NumberOfBytes": 32}, "Please specify either number of bytes or key spec."),
        (
            "generate_data_key",
            {"NumberOfBytes": 0},
            "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
        (
            "encrypt",
            {"Plaintext": b"x" * 4097},
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
            "Member must have length less than or equal to 4096",
        ),
    ],
)
def test_validation_errors(tresor, key, call, kwargs, message):
    # botocore checks minimums client-side; turn that off so the server's own check is tested.
    raw = tresor.client("kms", config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=False))
    assert_error(getattr(raw, call), "ValidationException", message, KeyId=key["KeyId"], **kwargs)
