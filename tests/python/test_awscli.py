"""The aws CLI (v1, from .venv) against the real tresor binary, used the way a person would."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess

import pytest

from conftest import ALICE_ACCOUNT, ALICE_ARN, AWS_CLI, REPO_ROOT, ROOT_ARN, ROOT_KEY, ROOT_SECRET, AwsCli


def as_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout)


def test_cli_data_key_round_trip(aws, tmp_path):
    """create-key → generate-data-key → save the decoded CiphertextBlob → decrypt it with fileb://."""
    key = as_json(aws("kms", "create-key"))["KeyMetadata"]
    assert key["Arn"] == f"arn:aws:kms:us-east-1:{ALICE_ACCOUNT}:key/{key['KeyId']}"
    assert key["KeyState"] == "Enabled"

    data_key = as_json(aws("kms", "generate-data-key", "--key-id", key["KeyId"], "--key-spec", "AES_256"))
    assert data_key["KeyId"] == key["Arn"]
    plaintext = base64.b64decode(data_key["Plaintext"], validate=True)
    assert len(plaintext) == 32

    blob_file = tmp_path / "data-key.enc"
    blob_file.write_bytes(base64.b64decode(data_key["CiphertextBlob"], validate=True))

    decrypted = as_json(aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob_file}"))
    assert decrypted["KeyId"] == key["Arn"]
    assert base64.b64decode(decrypted["Plaintext"], validate=True) == plaintext


README = REPO_ROOT / "README.md"
README_SECTION = "## A first session with the aws CLI"


def readme_session() -> str:
    """The sh block of the README's first-session section, verbatim."""
    text = README.read_text()
    assert README_SECTION in text, f"{README} has no section {README_SECTION!r}"
    section = text.split(README_SECTION, 1)[1]
    match = re.search(r"^```sh\n(.*?)^```", section, re.S | re.M)
    assert match, f"no ```sh block in {README_SECTION!r}"
    return match.group(1)


def test_readme_first_session_verbatim(tresor, kms, tmp_path):
    """Runs the README's aws CLI session as printed, in bash, with the bootstrap administrator's
    credentials file the server wrote. Only the port differs (the suite's server listens on :0)."""
    block = readme_session()
    # The server printed the bootstrap administrator on its first start, as the README says.
    assert any(line.startswith("tresor: created the bootstrap administrator") for line in tresor.stdout_lines)
    assert any("export AWS_SHARED_CREDENTIALS_FILE=" in line for line in tresor.stdout_lines)
    assert re.search(r"^ENDPOINT=http://127\.0\.0\.1:4599$", block, re.M), block
    script = re.sub(r"^ENDPOINT=.*$", f"ENDPOINT={tresor.endpoint}", block, flags=re.M)

    # "from the directory where the server was started": $PWD/tresor-data is the data directory.
    (tmp_path / "tresor-data").symlink_to(tresor.workdir / "data", target_is_directory=True)
    env = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update(
        PATH=f"{AWS_CLI.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, f"README session failed\nscript:\n{script}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    # Output: the get-caller-identity JSON, then the decrypted data key in base64.
    identity_json, _, printed_key = proc.stdout.rpartition("}")
    identity = json.loads(identity_json + "}")
    assert identity["Arn"] == f"arn:aws:iam::{ALICE_ACCOUNT}:user/admin"
    assert identity["Account"] == ALICE_ACCOUNT
    data_key = base64.b64decode(printed_key.strip(), validate=True)
    assert len(data_key) == 32

    # The file the session wrote is a real KMS ciphertext bound to tenant=a ...
    blob = (tmp_path / "data-key.enc").read_bytes()
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "a"})["Plaintext"] == data_key
    # ... and, as the README says, tenant=b fails with InvalidCiphertextException.
    # The README's environment lines (export ..., ENDPOINT=...), then the same decrypt with tenant=b.
    prelude = script[: script.index("\n", script.index("ENDPOINT=")) + 1]
    wrong = subprocess.run(
        ["bash", "-c", prelude + "aws kms decrypt --endpoint-url $ENDPOINT --ciphertext-blob fileb://data-key.enc "
         "--encryption-context tenant=b --query Plaintext --output text"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert wrong.returncode in (254, 255), wrong
    assert "An error occurred (InvalidCiphertextException) when calling the Decrypt operation" in wrong.stderr


def test_cli_encrypt_decrypt_with_context(aws, tmp_path):
    key_id = aws("kms", "create-key", "--query", "KeyMetadata.KeyId", "--output", "text").stdout.strip()
    (tmp_path / "msg.txt").write_bytes(b"hello from the CLI")
    blob = aws(
        "kms", "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{tmp_path / 'msg.txt'}",
        "--encryption-context", "tenant=a,purpose=test", "--query", "CiphertextBlob", "--output", "text",
    ).stdout.strip()
    (tmp_path / "msg.enc").write_bytes(base64.b64decode(blob, validate=True))
    out = as_json(aws(
        "kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'msg.enc'}",
        "--encryption-context", "tenant=a,purpose=test",
    ))
    assert base64.b64decode(out["Plaintext"]) == b"hello from the CLI"
    assert out["KeyId"].endswith("/" + key_id)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (
            ["kms", "describe-key", "--key-id", "fake-key-id"],
            "NotFoundException",
            "when calling the DescribeKey operation: Invalid keyId 'fake-key-id'",
        ),
        (
            ["kms", "generate-data-key", "--key-id", "fake-key-id", "--number-of-bytes", "1025"],
            "ValidationException",
            "when calling the GenerateDataKey operation: 1 validation error detected: Value '1025' at "
            "'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
        ),
    ],
)
def test_cli_error(aws, args, code, message):
    proc = aws(*args, check=False)
    assert proc.returncode in (254, 255), proc
    assert proc.stdout == ""
    assert f"An error occurred ({code}) {message}" in proc.stderr, proc.stderr


def test_cli_decrypt_with_wrong_context_fails(aws, tmp_path):
    key_id = aws("kms", "create-key", "--query", "KeyMetadata.KeyId", "--output", "text").stdout.strip()
    blob = aws(
        "kms", "encrypt", "--key-id", key_id, "--plaintext", "aGVsbG8=",
        "--encryption-context", "tenant=a", "--query", "CiphertextBlob", "--output", "text",
    ).stdout.strip()
    (tmp_path / "c.enc").write_bytes(base64.b64decode(blob))
    proc = aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'c.enc'}",
               "--encryption-context", "tenant=b", check=False)
    assert proc.returncode in (254, 255)
    assert "An error occurred (InvalidCiphertextException) when calling the Decrypt operation" in proc.stderr


def test_cli_bad_credentials(tresor):
    proc = AwsCli(tresor.endpoint, secret_key="wrong")("kms", "list-keys", check=False)
    assert proc.returncode in (254, 255)
    assert "An error occurred (InvalidSignatureException) when calling the ListKeys operation" in proc.stderr


def test_sts_get_caller_identity(aws, tresor):
    identity = as_json(aws("sts", "get-caller-identity"))
    assert identity["Arn"] == ALICE_ARN
    assert identity["Account"] == ALICE_ACCOUNT
    assert identity["UserId"]

    root = as_json(AwsCli(tresor.endpoint, ROOT_KEY, ROOT_SECRET)("sts", "get-caller-identity"))
    assert root["Arn"] == ROOT_ARN
    assert root["Account"] == "000000000000"
