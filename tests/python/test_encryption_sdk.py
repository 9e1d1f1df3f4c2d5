"""The AWS Encryption SDK for Python (4.x, master-key-provider API) using tresor as its KMS.

The provider gets a botocore session whose KMS clients go to tresor: see
`TresorServer.botocore_session` in conftest.py (per-session config file with `endpoint_url`,
plus explicit credentials).
"""

from __future__ import annotations

import logging
import os

import aws_encryption_sdk
import botocore.exceptions
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, DecryptKeyError
from cryptography.exceptions import InvalidSignature, InvalidTag

CONTEXT = {"tenant": "a", "purpose": "test"}
MESSAGE = os.urandom(1024 * 1024)


@pytest.fixture(scope="module")
def esdk():
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture
def key_arn(kms) -> str:
    return kms.create_key(Description="esdk")["KeyMetadata"]["Arn"]


@pytest.fixture
def provider(tresor, key_arn):
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=tresor.botocore_session()
    )


@pytest.fixture
def encrypted(esdk, provider):
    ciphertext, header = esdk.encrypt(source=MESSAGE, key_provider=provider, encryption_context=CONTEXT)
    return ciphertext, header


def exception_chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_provider_clients_point_at_tresor(tresor, provider, key_arn):
    client = provider._client(key_arn)  # the client the provider will use for this key
    assert client.meta.endpoint_url == tresor.endpoint
    assert client.meta.region_name == "us-east-1"


def test_encrypt_decrypt_1mib(esdk, provider, encrypted, key_arn, kms):
    ciphertext, header = encrypted
    assert len(ciphertext) > len(MESSAGE)
    assert MESSAGE[:4096] not in ciphertext
    # Our pairs are in the header (the signing suites add aws-crypto-public-key).
    assert CONTEXT.items() <= header.encryption_context.items()
    assert header.algorithm.is_committing()
    [edk] = header.encrypted_data_keys
    assert edk.key_provider.provider_id == "aws-kms"
    assert edk.key_provider.key_info == key_arn.encode()
    # The EDK is a KMS ciphertext that tresor itself decrypts under the full header context.
    plain = kms.decrypt(CiphertextBlob=edk.encrypted_data_key, EncryptionContext=header.encryption_context)
    assert plain["KeyId"] == key_arn

    plaintext, decrypt_header = esdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == MESSAGE
    assert CONTEXT.items() <= decrypt_header.encryption_context.items()
    assert decrypt_header.encryption_context == header.encryption_context


def test_decrypt_with_a_fresh_provider(esdk, tresor, encrypted, key_arn):
    """A new provider (new session, new client) decrypts too: nothing is cached in-process."""
    ciphertext, _ = encrypted
    other = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=tresor.botocore_session()
    )
    plaintext, _ = esdk.decrypt(source=ciphertext, key_provider=other)
    assert plaintext == MESSAGE


def test_disabled_key_fails_decryption(esdk, provider, encrypted, key_arn, kms, caplog):
    ciphertext, _ = encrypted
    kms.disable_key(KeyId=key_arn)
    caplog.set_level(logging.WARNING, logger="aws_encryption_sdk")
    with pytest.raises(DecryptKeyError, match="Unable to decrypt any data key"):
        esdk.decrypt(source=ciphertext, key_provider=provider)
    # The ESDK swallows the KMS error into a generic DecryptKeyError but logs it with exc_info:
    # the KMS error must be DisabledException for this key.
    kms_errors = [
        exc
        for record in caplog.records
        if record.exc_info
        for exc in exception_chain(record.exc_info[1])
        if isinstance(exc, botocore.exceptions.ClientError)
    ]
    assert kms_errors, [r.getMessage() for r in caplog.records]
    error = kms_errors[0].response["Error"]
    assert error["Code"] == "DisabledException"
    assert error["Message"] == f"{key_arn} is disabled."

    # Re-enabled, the same message decrypts again.
    kms.enable_key(KeyId=key_arn)
    plaintext, _ = esdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == MESSAGE


def test_disabled_key_fails_encryption(esdk, provider, key_arn, kms, caplog):
    kms.disable_key(KeyId=key_arn)
    caplog.set_level(logging.CRITICAL, logger="aws_encryption_sdk")
    with pytest.raises(AWSEncryptionSDKClientError) as info:
        esdk.encrypt(source=b"x", key_provider=provider, encryption_context=CONTEXT)
    assert any(
        "DisabledException" in str(exc) for exc in exception_chain(info.value)
    ), list(exception_chain(info.value))


def test_tampered_body_fails(esdk, provider, encrypted, caplog):
    ciphertext, _ = encrypted
    caplog.set_level(logging.CRITICAL, logger="aws_encryption_sdk")
    tampered = bytearray(ciphertext)
    tampered[len(tampered) // 2] ^= 0x01  # inside a frame: AES-GCM tag check fails
    with pytest.raises(InvalidTag):
        esdk.decrypt(source=bytes(tampered), key_provider=provider)

    tampered = bytearray(ciphertext)
    tampered[-10] ^= 0x01  # inside the footer signature
    with pytest.raises(InvalidSignature):
        esdk.decrypt(source=bytes(tampered), key_provider=provider)


def test_tampered_data_key_fails_at_kms(esdk, provider, encrypted, caplog):
    """Flip a byte inside the encrypted data key: tresor must reject it (InvalidCiphertextException)."""
    ciphertext, header = encrypted
    [edk] = header.encrypted_data_keys
    offset = ciphertext.index(edk.encrypted_data_key)
    tampered = bytearray(ciphertext)
    tampered[offset + len(edk.encrypted_data_key) // 2] ^= 0x01
    caplog.set_level(logging.WARNING, logger="aws_encryption_sdk")
    with pytest.raises(DecryptKeyError):
        esdk.decrypt(source=bytes(tampered), key_provider=provider)
    codes = [
        exc.response["Error"]["Code"]
        for record in caplog.records
        if record.exc_info
        for exc in exception_chain(record.exc_info[1])
        if isinstance(exc, botocore.exceptions.ClientError)
    ]
    assert codes and set(codes) == {"InvalidCiphertextException"}, codes
