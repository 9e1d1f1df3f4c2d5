"""boto3 against the real tresor binary: the key lifecycle — aliases (and the predefined AWS
aliases), rotation, and imported key material wrapped exactly as the AWS documentation shows,
with OpenSSL's `pkeyutl`/`enc` and with the `cryptography` package (reference §2, §3.6, §3.9,
§3.10, §4)."""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

import botocore.exceptions
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

from conftest import ALICE_ACCOUNT, REGION


def alias_arn(name: str) -> str:
    return f"arn:aws:kms:{REGION}:{ALICE_ACCOUNT}:{name}"


def error_of(fn, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(**kwargs)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    return response["Error"]


def assert_error(fn, code: str, message: str | None = None, **kwargs) -> None:
    error = error_of(fn, **kwargs)
    assert error["Code"] == code, error
    if message is not None:
        assert error["Message"] == message, error


# ---- aliases ---------------------------------------------------------------------------------


def test_alias_flow(kms):
    a = kms.create_key()["KeyMetadata"]
    b = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/py/app", TargetKeyId=a["KeyId"])
    assert kms.describe_key(KeyId="alias/py/app")["KeyMetadata"]["KeyId"] == a["KeyId"]
    assert kms.describe_key(KeyId=alias_arn("alias/py/app"))["KeyMetadata"]["Arn"] == a["Arn"]

    listed = kms.list_aliases(KeyId=a["KeyId"])
    assert listed["Truncated"] is False
    [entry] = listed["Aliases"]
    assert entry["AliasName"] == "alias/py/app"
    assert entry["AliasArn"] == alias_arn("alias/py/app")
    assert entry["TargetKeyId"] == a["KeyId"]
    assert isinstance(entry["CreationDate"], datetime.datetime)
    assert isinstance(entry["LastUpdatedDate"], datetime.datetime)

    assert_error(
        kms.create_alias,
        "AlreadyExistsException",
        f"An alias with the name {alias_arn('alias/py/app')} already exists",
        AliasName="alias/py/app",
        TargetKeyId=b["KeyId"],
    )
    assert_error(
        kms.create_alias,
        "ValidationException",
        'Alias must start with the prefix "alias/". Please see '
        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
        AliasName="py-app",
        TargetKeyId=b["KeyId"],
    )
    assert_error(kms.create_alias, "NotAuthorizedException", AliasName="alias/aws/py", TargetKeyId=b["KeyId"])

    kms.update_alias(AliasName="alias/py/app", TargetKeyId=b["Arn"])
    out = kms.encrypt(KeyId="alias/py/app", Plaintext=b"through the alias")
    assert out["KeyId"] == b["Arn"]
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"through the alias"

    kms.delete_alias(AliasName="alias/py/app")
    missing = f"Alias {alias_arn('alias/py/app')} is not found."
    assert_error(kms.describe_key, "NotFoundException", missing, KeyId="alias/py/app")
    assert_error(kms.delete_alias, "NotFoundException", missing, AliasName="alias/py/app")


def test_aws_managed_aliases(fresh_tresor):
    kms = fresh_tresor.client("kms")
    paginator = kms.get_paginator("list_aliases")
    before = [a for page in paginator.paginate(PaginationConfig={"PageSize": 1}) for a in page["Aliases"]]
    s3 = [a for a in before if a["AliasName"] == "alias/aws/s3"]
    assert s3 and "TargetKeyId" not in s3[0], before
    assert any(a["AliasName"] == "alias/aws/domains" for a in before)

    metadata = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert metadata["KeyManager"] == "AWS"
    assert metadata["Description"] == "Default key that protects my S3 objects when no other key is defined"
    again = kms.describe_key(KeyId=alias_arn("alias/aws/s3"))["KeyMetadata"]
    assert again["KeyId"] == metadata["KeyId"]
    after = kms.list_aliases()["Aliases"]
    [s3] = [a for a in after if a["AliasName"] == "alias/aws/s3"]
    assert s3["TargetKeyId"] == metadata["KeyId"]
    status = kms.get_key_rotation_status(KeyId=metadata["KeyId"])
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 365
    assert error_of(kms.disable_key, KeyId=metadata["KeyId"])["Code"] == "AccessDeniedException"
    assert error_of(kms.delete_alias, AliasName="alias/aws/s3")["Code"] == "NotAuthorizedException"


# ---- rotation --------------------------------------------------------------------------------


def test_rotation_flow(kms):
    key = kms.create_key()["KeyMetadata"]
    key_id = key["KeyId"]
    assert kms.get_key_rotation_status(KeyId=key_id) | {"ResponseMetadata": None} == {
        "KeyRotationEnabled": False,
        "KeyId": key["Arn"],
        "ResponseMetadata": None,
    }
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 90
    assert isinstance(status["NextRotationDate"], datetime.datetime)
    assert_error(kms.enable_key_rotation, "ValidationException", KeyId=key_id, RotationPeriodInDays=2561)

    # Three generations: the first material and two on-demand rotations.
    generations = []
    for i in range(3):
        if i:
            assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == key["Arn"]
        material = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=f"generation {i}".encode())["CiphertextBlob"]
        generations.append((material, blob, f"generation {i}".encode()))
    assert len({m for m, _, _ in generations}) == 3
    for material, blob, plaintext in generations:
        out = kms.decrypt(CiphertextBlob=blob)
        assert out["Plaintext"] == plaintext
        assert out["KeyMaterialId"] == material

    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["KeyMaterialId"] for r in rotations] == [m for m, _, _ in generations[1:]]
    assert {r["RotationType"] for r in rotations} == {"ON_DEMAND"}
    everything = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [r["KeyMaterialState"] for r in everything] == ["NON_CURRENT", "NON_CURRENT", "CURRENT"]

    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.disable_key(KeyId=key_id)
    assert_error(kms.rotate_key_on_demand, "DisabledException", f"{key['Arn']} is disabled.", KeyId=key_id)


def test_deletion_flow(kms):
    key = kms.create_key()["KeyMetadata"]
    assert_error(
        kms.schedule_key_deletion,
        "ValidationException",
        "PendingWindowInDays must be between 7 and 30",
        KeyId=key["KeyId"],
        PendingWindowInDays=31,
    )
    out = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    assert isinstance(out["DeletionDate"], datetime.datetime)
    assert kms.cancel_key_deletion(KeyId=key["KeyId"])["KeyId"] == key["Arn"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"


# ---- imported key material -------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def wrap_with_openssl(params: dict, material: bytes, hybrid: bool, work: Path) -> bytes:
    """The AWS documentation's OpenSSL commands for RSAES_OAEP_SHA_256 / RSA_AES_KEY_WRAP_SHA_256."""
    (work / "WrappingPublicKey.bin").write_bytes(params["PublicKey"])
    (work / "PlaintextKeyMaterial.bin").write_bytes(material)
    oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]
    if not hybrid:
        openssl(
            "pkeyutl", "-encrypt", "-in", "PlaintextKeyMaterial.bin", "-out", "EncryptedKeyMaterial.bin",
            "-inkey", "WrappingPublicKey.bin", "-keyform", "DER", "-pubin", *oaep,
            cwd=work,
        )
        return (work / "EncryptedKeyMaterial.bin").read_bytes()
    aes_key = os.urandom(32)
    (work / "aes-key.bin").write_bytes(aes_key)
    openssl(
        "enc", "-id-aes256-wrap-pad", "-K", aes_key.hex(), "-iv", "A65959A6",
        "-in", "PlaintextKeyMaterial.bin", "-out", "key-material-wrapped.bin",
        cwd=work,
    )
    openssl(
        "pkeyutl", "-encrypt", "-in", "aes-key.bin", "-out", "aes-key-wrapped.bin",
        "-inkey", "WrappingPublicKey.bin", "-keyform", "DER", "-pubin", *oaep,
        cwd=work,
    )
    return (work / "aes-key-wrapped.bin").read_bytes() + (work / "key-material-wrapped.bin").read_bytes()


def wrap_with_cryptography(params: dict, material: bytes, algorithm: str) -> bytes:
    public = load_der_public_key(params["PublicKey"])
    digest = hashes.SHA256() if algorithm.endswith("SHA_256") else hashes.SHA1()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


@pytest.mark.parametrize(
    "algorithm,wrap",
    [
        ("RSAES_OAEP_SHA_256", "openssl"),
        ("RSA_AES_KEY_WRAP_SHA_256", "openssl"),
        ("RSAES_OAEP_SHA_1", "cryptography"),
        ("RSA_AES_KEY_WRAP_SHA_1", "cryptography"),
    ],
)
def test_import_delete_and_reimport(kms, tmp_path, algorithm, wrap):
    key = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    key_id, arn = key["KeyId"], key["Arn"]
    assert key["KeyState"] == "PendingImport" and key["Enabled"] is False
    pending = f"{arn} is pending import."
    assert_error(kms.encrypt, "KMSInvalidStateException", pending, KeyId=key_id, Plaintext=b"x")

    material = os.urandom(32)

    def wrapped_for(params: dict) -> bytes:
        if wrap == "openssl":
            return wrap_with_openssl(params, material, algorithm.startswith("RSA_AES"), tmp_path)
        return wrap_with_cryptography(params, material, algorithm)

    def import_material(**extra) -> dict:
        params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
        assert params["KeyId"] == arn
        return kms.import_key_material(
            KeyId=key_id,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrapped_for(params),
            **extra,
        )

    first = import_material(ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["KeyState"] == "Enabled"
    assert metadata["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert metadata["CurrentKeyMaterialId"] == first["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"imported material")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported material"

    deleted = kms.delete_imported_key_material(KeyId=key_id)
    assert deleted["KeyMaterialId"] == first["KeyMaterialId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert_error(kms.decrypt, "KMSInvalidStateException", pending, CiphertextBlob=blob)

    valid_to = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    second = import_material(ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    assert second["KeyMaterialId"] == first["KeyMaterialId"]
    out = kms.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"imported material"
    assert out["KeyMaterialId"] == first["KeyMaterialId"]
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs(metadata["ValidTo"].timestamp() - valid_to.timestamp()) < 1


def test_import_errors(kms):
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    normal = kms.create_key()["KeyMetadata"]
    assert_error(
        kms.get_parameters_for_import,
        "UnsupportedOperationException",
        f"{normal['Arn']} origin is AWS_KMS which is not valid for this operation.",
        KeyId=normal["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    params = kms.get_parameters_for_import(
        KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    wrapped = wrap_with_cryptography(params, os.urandom(32), "RSAES_OAEP_SHA_256")
    assert_error(
        kms.import_key_material,
        "ValidationException",
        "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrapped,
    )
    assert_error(
        kms.import_key_material,
        "InvalidCiphertextException",
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=b"\x00" * 256,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert_error(
        kms.import_key_material,
        "InvalidImportTokenException",
        KeyId=other["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
