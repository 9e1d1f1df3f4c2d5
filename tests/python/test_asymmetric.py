"""Asymmetric, HMAC and key agreement keys through boto3, checked with an independent implementation
(Python `cryptography`, and the standard library's hmac/hashlib):

* signatures made by Tresor verify with the public key from GetPublicKey (RSA PKCS#1 v1.5 and PSS,
  ECDSA on P-256/P-384/P-521/secp256k1, Ed25519, ML-DSA-44/65/87), for RAW and DIGEST messages;
* RSA-OAEP ciphertexts made by `cryptography` decrypt in Tresor, with the plaintext limits of AWS;
* ECDH shared secrets agree with `cryptography`'s;
* data key pairs are PKCS#8 keys that `cryptography` loads and that match their public keys;
* MACs are HMACs of the hash length, deterministic and checked in constant time (the key never
  leaves Tresor, so `hmac` can only check their form and comparisons, not recompute them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import botocore.exceptions
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

try:  # ML-DSA arrived in cryptography 47.
    from cryptography.hazmat.primitives.asymmetric import mldsa
except ImportError:  # pragma: no cover - the pinned version has it
    mldsa = None

MESSAGE = b"Tresor signs; cryptography verifies."

HASHES = {"SHA_256": hashes.SHA256, "SHA_384": hashes.SHA384, "SHA_512": hashes.SHA512}

SIGNING = {
    "RSA_2048": ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
                 "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"],
    "RSA_3072": ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_512"],
    "RSA_4096": ["RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256"],
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_EDWARDS25519": ["ED25519_SHA_512"],
    "ML_DSA_44": ["ML_DSA_SHAKE_256"],
    "ML_DSA_65": ["ML_DSA_SHAKE_256"],
    "ML_DSA_87": ["ML_DSA_SHAKE_256"],
}

CURVES = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}


def client_error(fn, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(**kwargs)
    return info.value.response["Error"]


def hash_of(algorithm: str):
    return HASHES[algorithm[-7:]]()


def digest(algorithm: str, message: bytes) -> bytes:
    h = hashes.Hash(hash_of(algorithm))
    h.update(message)
    return h.finalize()


def independent_verify(public_der: bytes, key_spec: str, algorithm: str, message: bytes, signature: bytes) -> None:
    """Verifies with `cryptography` only; raises InvalidSignature on failure."""
    public = serialization.load_der_public_key(public_der)
    if algorithm.startswith("RSASSA_PSS"):
        assert isinstance(public, rsa.RSAPublicKey)
        h = hash_of(algorithm)
        public.verify(signature, message, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    elif algorithm.startswith("RSASSA_PKCS1"):
        public.verify(signature, message, padding.PKCS1v15(), hash_of(algorithm))
    elif algorithm.startswith("ECDSA"):
        assert isinstance(public.curve, CURVES[key_spec])
        public.verify(signature, message, ec.ECDSA(hash_of(algorithm)))
    elif algorithm == "ED25519_SHA_512":
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(signature, message)
    elif algorithm == "ML_DSA_SHAKE_256":
        public.verify(signature, message)
    else:  # pragma: no cover
        raise AssertionError(algorithm)


@pytest.fixture(scope="module")
def signing_keys(kms) -> dict[str, str]:
    return {
        spec: kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        for spec in SIGNING
    }


@pytest.mark.parametrize("key_spec,algorithm", [(s, a) for s, algs in SIGNING.items() for a in algs])
def test_signatures_verify_with_cryptography(kms, signing_keys, key_spec, algorithm):
    if key_spec.startswith("ML_DSA") and mldsa is None:  # pragma: no cover
        pytest.skip("cryptography without ML-DSA")
    key = signing_keys[key_spec]
    public = kms.get_public_key(KeyId=key)
    assert public["KeySpec"] == key_spec
    assert public["KeyUsage"] == "SIGN_VERIFY"
    assert algorithm in public["SigningAlgorithms"]
    assert "EncryptionAlgorithms" not in public and "KeyAgreementAlgorithms" not in public
    der = public["PublicKey"]

    signature = kms.sign(KeyId=key, Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"]
    independent_verify(der, key_spec, algorithm, MESSAGE, signature)
    with pytest.raises(InvalidSignature):
        independent_verify(der, key_spec, algorithm, MESSAGE + b"!", signature)

    if "SHA_" in algorithm and not algorithm.startswith("ED25519"):
        # A signature over the digest is a signature over the message.
        signature = kms.sign(KeyId=key, Message=digest(algorithm, MESSAGE), MessageType="DIGEST",
                             SigningAlgorithm=algorithm)["Signature"]
        independent_verify(der, key_spec, algorithm, MESSAGE, signature)

    assert kms.verify(KeyId=key, Message=MESSAGE, Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]
    error = client_error(kms.verify, KeyId=key, Message=MESSAGE + b"!", Signature=signature,
                         SigningAlgorithm=algorithm)
    assert error["Code"] == "KMSInvalidSignatureException"
    assert error.get("Message", "") == ""


def test_ed25519ph_digest_signatures(kms, signing_keys):
    key = signing_keys["ECC_NIST_EDWARDS25519"]
    prehash = hashlib.sha512(MESSAGE).digest()
    signature = kms.sign(KeyId=key, Message=prehash, MessageType="DIGEST",
                         SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
    assert len(signature) == 64
    assert kms.verify(KeyId=key, Message=prehash, MessageType="DIGEST", Signature=signature,
                      SigningAlgorithm="ED25519_PH_SHA_512")["SignatureValid"]
    # Ed25519ph is not pure Ed25519 over the digest (domain separation).
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key)["PublicKey"])
    with pytest.raises(InvalidSignature):
        public.verify(signature, prehash)
    error = client_error(kms.sign, KeyId=key, Message=MESSAGE, SigningAlgorithm="ED25519_PH_SHA_512")
    assert error["Code"] == "ValidationException"


def test_ecdsa_signatures_made_by_cryptography_verify_in_tresor_only_with_the_right_key(kms, signing_keys):
    # A signature by another key (made locally) is refused: Verify uses the KMS key.
    local = ec.generate_private_key(ec.SECP256R1())
    signature = local.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    error = client_error(kms.verify, KeyId=signing_keys["ECC_NIST_P256"], Message=MESSAGE, Signature=signature,
                         SigningAlgorithm="ECDSA_SHA_256")
    assert error["Code"] == "KMSInvalidSignatureException"
    # A prehashed signature by Tresor verifies with cryptography's Prehashed helper.
    d = hashlib.sha256(MESSAGE).digest()
    signature = kms.sign(KeyId=signing_keys["ECC_NIST_P256"], Message=d, MessageType="DIGEST",
                         SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=signing_keys["ECC_NIST_P256"])["PublicKey"])
    public.verify(signature, d, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_digest_length_message(kms, signing_keys):
    error = client_error(kms.sign, KeyId=signing_keys["RSA_2048"], Message=b"\x00" * 31, MessageType="DIGEST",
                         SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert error == {"Code": "ValidationException", "Message": "Digest is invalid length for algorithm RSASSA_PSS_SHA_256."}


LIMITS = {("RSA_2048", "RSAES_OAEP_SHA_1"): 214, ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
          ("RSA_3072", "RSAES_OAEP_SHA_1"): 342, ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
          ("RSA_4096", "RSAES_OAEP_SHA_1"): 470, ("RSA_4096", "RSAES_OAEP_SHA_256"): 446}


@pytest.mark.parametrize("key_spec", ["RSA_2048", "RSA_3072", "RSA_4096"])
def test_rsa_oaep_interop(kms, key_spec):
    key = kms.create_key(KeySpec=key_spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert key["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    assert "CurrentKeyMaterialId" not in key
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key["KeyId"])["PublicKey"])
    assert public.key_size == int(key_spec[4:])
    for algorithm, h in (("RSAES_OAEP_SHA_1", hashes.SHA1), ("RSAES_OAEP_SHA_256", hashes.SHA256)):
        limit = LIMITS[(key_spec, algorithm)]
        plaintext = bytes(range(256)) * 2
        plaintext = plaintext[:limit]
        # cryptography encrypts with the public key; Tresor decrypts.
        ciphertext = public.encrypt(plaintext, padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
        out = kms.decrypt(KeyId=key["Arn"], CiphertextBlob=ciphertext, EncryptionAlgorithm=algorithm)
        assert out["Plaintext"] == plaintext
        assert out["EncryptionAlgorithm"] == algorithm
        assert "KeyMaterialId" not in out
        # Tresor encrypts; Tresor decrypts (cryptography cannot: it lacks the private key).
        ct = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionAlgorithm=algorithm)["CiphertextBlob"]
        assert len(ct) == public.key_size // 8
        assert kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm=algorithm)["Plaintext"] == plaintext
        error = client_error(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x" * (limit + 1), EncryptionAlgorithm=algorithm)
        assert error == {
            "Code": "ValidationException",
            "Message": f"Algorithm {algorithm} and key spec {key_spec} cannot encrypt data larger than {limit} bytes.",
        }
    error = client_error(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert error == {"Code": "InvalidKeyUsageException",
                     "Message": f"Algorithm SYMMETRIC_DEFAULT is incompatible with key spec {key_spec}."}


@pytest.mark.parametrize("key_spec,curve", [("ECC_NIST_P256", ec.SECP256R1), ("ECC_NIST_P384", ec.SECP384R1),
                                            ("ECC_NIST_P521", ec.SECP521R1)])
def test_ecdh_agrees_with_cryptography(kms, key_spec, curve):
    key = kms.create_key(KeySpec=key_spec, KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    assert key["KeyAgreementAlgorithms"] == ["ECDH"]
    public = kms.get_public_key(KeyId=key["KeyId"])
    assert public["KeyAgreementAlgorithms"] == ["ECDH"]
    tresor_public = serialization.load_der_public_key(public["PublicKey"])
    peer = ec.generate_private_key(curve())
    peer_der = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = kms.derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), tresor_public)
    assert out["KeyOrigin"] == "AWS_KMS"
    # A compressed point, or a key on another curve, is not a valid peer key.
    compressed = peer.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    other = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (compressed, other):
        error = client_error(kms.derive_shared_secret, KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=bad)
        assert error["Code"] == "ValidationException"
        assert error.get("Message", "") == ""


PAIR_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
              "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"]


@pytest.mark.parametrize("pair_spec", PAIR_SPECS)
def test_data_key_pairs_load_in_cryptography(kms, pair_spec):
    wrapping = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"app": "pairs"}
    out = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec=pair_spec, EncryptionContext=context)
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    derived = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert derived == out["PublicKey"]
    if pair_spec.startswith("RSA"):
        assert private.key_size == int(pair_spec[4:])
    elif pair_spec in CURVES:
        assert isinstance(private.curve, CURVES[pair_spec])
    else:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
    # The ciphertext is a symmetric KMS ciphertext of the PKCS#8 bytes under the same context.
    assert kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=context)["Plaintext"] == \
        out["PrivateKeyPlaintext"]
    without = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping, KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in without
    pkcs8 = kms.decrypt(CiphertextBlob=without["PrivateKeyCiphertextBlob"])["Plaintext"]
    loaded = serialization.load_der_private_key(pkcs8, password=None)
    assert loaded.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo) == without["PublicKey"]


@pytest.mark.parametrize("key_spec,algorithm,hash_name", [
    ("HMAC_224", "HMAC_SHA_224", "sha224"), ("HMAC_256", "HMAC_SHA_256", "sha256"),
    ("HMAC_384", "HMAC_SHA_384", "sha384"), ("HMAC_512", "HMAC_SHA_512", "sha512")])
def test_macs(kms, key_spec, algorithm, hash_name):
    key = kms.create_key(KeySpec=key_spec, KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert key["MacAlgorithms"] == [algorithm]
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm)["Mac"]
    # An HMAC is as long as its hash's output (RFC 2104); a second call gives the same MAC.
    assert len(mac) == hashlib.new(hash_name).digest_size
    again = kms.generate_mac(KeyId=key["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm)["Mac"]
    assert hmac.compare_digest(mac, again)
    other = kms.generate_mac(KeyId=key["KeyId"], Message=MESSAGE + b".", MacAlgorithm=algorithm)["Mac"]
    assert not hmac.compare_digest(mac, other)
    assert kms.verify_mac(KeyId=key["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm, Mac=mac)["MacValid"]
    tampered = bytes([mac[0] ^ 1]) + mac[1:]
    error = client_error(kms.verify_mac, KeyId=key["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm, Mac=tampered)
    assert error["Code"] == "KMSInvalidMacException"
    assert error.get("Message", "") == ""
    with pytest.raises(botocore.exceptions.ClientError):
        kms.get_public_key(KeyId=key["KeyId"])


def test_hmac_algorithm_mismatch_message(kms):
    key = kms.create_key(KeySpec="HMAC_224", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    error = client_error(kms.generate_mac, KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert error == {"Code": "InvalidKeyUsageException",
                     "Message": "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224."}


def test_wrong_key_usage_message(kms):
    key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    error = client_error(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error == {"Code": "InvalidKeyUsageException",
                     "Message": f"{key['Arn']} key usage is SIGN_VERIFY which is not valid for Encrypt."}


def test_aws_cli_sign_and_verify(aws, kms, signing_keys, tmp_path):
    """The aws CLI (v1) round trip with a file message and a base64 signature."""
    key = signing_keys["ECC_NIST_P384"]
    message = tmp_path / "message.bin"
    message.write_bytes(MESSAGE)
    out = json.loads(aws("kms", "sign", "--key-id", key, "--message", f"fileb://{message}",
                         "--signing-algorithm", "ECDSA_SHA_384").stdout)
    signature = base64.b64decode(out["Signature"])
    public = kms.get_public_key(KeyId=key)["PublicKey"]
    independent_verify(public, "ECC_NIST_P384", "ECDSA_SHA_384", MESSAGE, signature)
    sig_file = tmp_path / "sig.bin"
    sig_file.write_bytes(signature)
    verified = json.loads(aws("kms", "verify", "--key-id", key, "--message", f"fileb://{message}",
                              "--signature", f"fileb://{sig_file}", "--signing-algorithm", "ECDSA_SHA_384").stdout)
    assert verified["SignatureValid"] is True
