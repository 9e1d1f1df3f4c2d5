"""boto3 against a throttled tresor (`--throttle-principal-rps`): a noisy principal gets
ThrottlingException (HTTP 400) while another principal is served, and botocore's retry logic
classifies the error as throttling and retries it until the bucket refills."""

from __future__ import annotations

import botocore.config
import botocore.exceptions
import pytest

from conftest import ROOT_KEY, ROOT_SECRET, TresorServer, tresor_binary

MESSAGE = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."


def start(tmp_path, rps: str) -> TresorServer:
    return TresorServer(
        binary=tresor_binary(),
        workdir=tmp_path,
        extra_args=["--throttle-principal-rps", rps, "--throttle-principal-burst", "3"],
    ).start()


@pytest.fixture
def slow_refill_tresor(tmp_path):
    """One request every five seconds after a burst of three."""
    server = start(tmp_path, "0.2")
    yield server
    assert server.stop() == 0, server.log_tail()


@pytest.fixture
def throttled_tresor(tmp_path):
    """One request a second after a burst of three."""
    server = start(tmp_path, "1")
    yield server
    assert server.stop() == 0, server.log_tail()


def drain(kms) -> dict:
    """Calls ListKeys until one call is throttled; returns that error response."""
    for _ in range(50):
        try:
            kms.list_keys()
        except botocore.exceptions.ClientError as e:
            return e.response
    pytest.fail("never throttled")


def test_noisy_principal_is_throttled_and_others_are_not(slow_refill_tresor):
    noisy = slow_refill_tresor.client("kms")  # retries off
    other = slow_refill_tresor.client("kms", access_key=ROOT_KEY, secret_key=ROOT_SECRET)

    response = drain(noisy)
    assert response["Error"]["Code"] == "ThrottlingException", response
    assert response["Error"]["Message"] == MESSAGE
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Right after, another principal is served (a bucket of its own).
    for _ in range(3):
        other.list_keys()
    with pytest.raises(botocore.exceptions.ClientError) as info:
        noisy.list_keys()
    assert info.value.response["Error"]["Code"] == "ThrottlingException"


@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_botocore_retries_throttling_until_served(throttled_tresor, mode):
    noisy = throttled_tresor.client("kms")
    retrying = throttled_tresor.client(
        "kms", config=botocore.config.Config(retries={"mode": mode, "max_attempts": 10})
    )
    # One call first, so the retrying client's first-call set-up (endpoint rules, credentials:
    # up to a second on a cold, loaded machine) is behind it: the bucket refills a token a
    # second, and the checked call's first attempt must come right after the drain.
    retrying.list_keys()
    drain(noisy)
    # The bucket is empty: the first attempt is throttled, a retry after back-off succeeds.
    response = retrying.list_keys()
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RetryAttempts"] >= 1, response["ResponseMetadata"]
