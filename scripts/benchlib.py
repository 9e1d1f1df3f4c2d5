"""Shared by the benchmark scripts (scripts/bench, scripts/bench-cpu, scripts/bench-instr): start
`tresor serve` in a work directory with scripts/bench.toml and wait for its endpoint; give a
fakecloud peer started with `--verify-sigv4 --iam strict` the benchmark's IAM user.

    python3 scripts/benchlib.py fakecloud-user http://127.0.0.1:4813   # prints "<access key> <secret>"
"""
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "scripts/bench.toml")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def start_tresor(tresor, work, log_filter="warn", prefix=(), wait_s=10.0):
    """Starts `tresor serve` on a free port (its output to <work>/server.out, its data in
    <work>/data), optionally under a wrapper such as valgrind (`prefix`), and returns
    (process, endpoint). The endpoint is None if the server did not say "listening on" within
    `wait_s` seconds or exited; the process is returned either way, for the caller to stop."""
    out = os.path.join(work, "server.out")
    log = open(out, "w")
    server = subprocess.Popen(
        list(prefix) + [tresor, "serve", "--data-dir", os.path.join(work, "data"), "--listen",
                        "127.0.0.1:0", "--config", CONFIG, "--log", log_filter],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with open(out, errors="replace") as f:
            m = re.search(r"listening on (\S+)", ANSI.sub("", f.read()))
        if m:
            return server, m.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    return server, None


# fakecloud's strict mode (`--verify-sigv4 --iam strict`) verifies the signature of every request
# and evaluates the caller's IAM policies, except for its reserved `test*` root identity, which
# bypasses both. So a like-for-like run signs with an IAM user of its own, made here through
# fakecloud's IAM API as that root identity (whose signature fakecloud does not check), with the
# identity policy scripts/bench.toml gives Tresor's benchmark user.
FAKECLOUD_ROOT_AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, "
                       "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
KMS_FULL_ACCESS = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", '
                   '"Resource": "*"}]}')


def _fakecloud_iam(endpoint, **params):
    body = urllib.parse.urlencode(dict(params, Version="2010-05-08")).encode()
    req = urllib.request.Request(endpoint, data=body, method="POST", headers={
        "Authorization": FAKECLOUD_ROOT_AUTH, "X-Amz-Date": "20260101T000000Z",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return ET.fromstring(resp.read())


def fakecloud_strict_user(endpoint, name="bench"):
    """Creates the IAM user `name` with a kms:* identity policy and an access key on the
    fakecloud at `endpoint`; returns (access key id, secret)."""
    _fakecloud_iam(endpoint, Action="CreateUser", UserName=name)
    _fakecloud_iam(endpoint, Action="PutUserPolicy", UserName=name, PolicyName="KmsFullAccess",
                   PolicyDocument=KMS_FULL_ACCESS)
    key = _fakecloud_iam(endpoint, Action="CreateAccessKey", UserName=name)
    found = {el.tag.rsplit("}", 1)[-1]: el.text for el in key.iter()}
    if not found.get("AccessKeyId") or not found.get("SecretAccessKey"):
        raise RuntimeError(f"fakecloud CreateAccessKey gave no key: {ET.tostring(key)[:300]!r}")
    return found["AccessKeyId"], found["SecretAccessKey"]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "fakecloud-user":
        print(*fakecloud_strict_user(sys.argv[2]))
    else:
        sys.exit("usage: benchlib.py fakecloud-user <endpoint>")
