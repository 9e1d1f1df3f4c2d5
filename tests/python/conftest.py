"""Fixtures for Tresor's real-client tests: the real `tresor` binary, boto3 clients and the aws CLI.

The server under test is `$TRESOR_BIN` (default: target/debug/tresor in the repo root), started as
`tresor serve --data-dir <tmp>/data --listen 127.0.0.1:0 --config <tmp>/tresor.toml`. Its address is
taken from the `tresor: listening on http://127.0.0.1:<port>` line it prints on stdout. It is stopped
with SIGTERM and must exit 0.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import boto3
import botocore.config
import botocore.session
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

# Identities declared in the server's config file.
ALICE_ACCOUNT = "111122223333"
ALICE_ARN = f"arn:aws:iam::{ALICE_ACCOUNT}:user/alice"
ALICE_KEY, ALICE_SECRET = "FOOBARKEY", "FOOBARSECRET"
ROOT_ACCOUNT = "000000000000"
ROOT_ARN = f"arn:aws:iam::{ROOT_ACCOUNT}:root"
ROOT_KEY, ROOT_SECRET = "test", "test"

CONFIG_TOML = f"""\
default_account = "{ALICE_ACCOUNT}"
# alice uses keys through the default key policy's delegation to identity policies.
[[principals]]
arn = "{ALICE_ARN}"
[[principals.policies]]
name = "KmsFullAccess"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}]}}'
[[access_keys]]
id = "{ALICE_KEY}"
secret = "{ALICE_SECRET}"
principal = "{ALICE_ARN}"
[[access_keys]]
id = "{ROOT_KEY}"
secret = "{ROOT_SECRET}"
principal = "{ROOT_ARN}"
"""

LISTENING_RE = re.compile(r"^tresor: listening on (http://127\.0\.0\.1:(\d+))$")
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20

# Keep the test process hermetic: no profile, shared config, credentials or endpoint override
# from the machine may leak into the clients; loopback never goes through a proxy.
for _name in list(os.environ):
    if _name.startswith("AWS_") and _name != "AWS_CA_BUNDLE":
        del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

NO_RETRIES = botocore.config.Config(retries={"max_attempts": 1})


def tresor_binary() -> Path:
    raw = os.environ.get("TRESOR_BIN", "target/debug/tresor")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"tresor binary not found or not executable at {path} "
            f"(TRESOR_BIN={os.environ.get('TRESOR_BIN', '<unset>')}); "
            "build it with `cargo build -p tresor` or run scripts/test",
            pytrace=False,
        )
    return path


@dataclass
class TresorServer:
    """One running `tresor serve` process with its own data directory."""

    binary: Path
    workdir: Path
    proc: subprocess.Popen | None = None
    endpoint: str = ""
    port: int = 0
    stdout_lines: list[str] = field(default_factory=list)
    # Extra `tresor serve` flags (e.g. throttling limits).
    extra_args: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.workdir / "tresor.stderr.log"

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    def start(self) -> "TresorServer":
        config = self.workdir / "tresor.toml"
        config.write_text(CONFIG_TOML)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRESOR_")}
        env["RUST_BACKTRACE"] = "1"
        stderr = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "serve",
                    "--data-dir",
                    str(self.workdir / "data"),
                    "--listen",
                    "127.0.0.1:0",
                    "--config",
                    str(config),
                    *self.extra_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=self.workdir,
                text=True,
                bufsize=1,
            )
        finally:
            stderr.close()

        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            # Drains stdout for the server's whole life so it can never block on a full pipe.
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.stdout_lines.append(line.rstrip("\n"))
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, name="tresor-stdout", daemon=True).start()

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self._kill()
                pytest.fail(
                    f"tresor did not print its listening line within {START_TIMEOUT_S}s\n"
                    f"stdout: {self.stdout_lines}\nstderr:\n{self.log_tail()}",
                    pytrace=False,
                )
            if line is None:
                code = self.proc.wait(timeout=STOP_TIMEOUT_S)
                pytest.fail(
                    f"tresor exited with {code} before listening\n"
                    f"stdout: {self.stdout_lines}\nstderr:\n{self.log_tail()}",
                    pytrace=False,
                )
            m = LISTENING_RE.match(line)
            if m:
                self.endpoint, self.port = m.group(1), int(m.group(2))
                return self

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, wait, return the exit code (kills it if it does not stop in time)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
                pytest.fail(
                    f"tresor did not exit within {STOP_TIMEOUT_S}s of SIGTERM\nstderr:\n{self.log_tail()}",
                    pytrace=False,
                )
        return self.proc.returncode

    # ---- clients -------------------------------------------------------------------------

    def client(
        self,
        service: str = "kms",
        access_key: str = ALICE_KEY,
        secret_key: str = ALICE_SECRET,
        region: str = REGION,
        config: botocore.config.Config = NO_RETRIES,
    ):
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    def botocore_session(self, access_key: str = ALICE_KEY, secret_key: str = ALICE_SECRET) -> botocore.session.Session:
        """A botocore session whose clients (any service) go to this server with these credentials.

        botocore has no session-wide endpoint setting, but it reads `endpoint_url` from the
        profile of its config file (botocore >= 1.31, "configured endpoints"); the session
        variable `config_file` points this one session at its own file, so nothing global changes.
        """
        path = self.workdir / f"aws-config-{access_key}"
        path.write_text(f"[default]\nregion = {REGION}\nendpoint_url = {self.endpoint}\n")
        session = botocore.session.Session()
        session.set_config_variable("config_file", str(path))
        session.set_config_variable("credentials_file", os.devnull)
        session.set_credentials(access_key, secret_key)
        return session


def _run_server(tmp: Path) -> TresorServer:
    return TresorServer(binary=tresor_binary(), workdir=tmp).start()


def _finish(server: TresorServer) -> None:
    code = server.stop()
    assert code == 0, f"tresor exited with {code} after SIGTERM\nstderr:\n{server.log_tail()}"


@pytest.fixture(scope="module")
def tresor(tmp_path_factory) -> TresorServer:
    """A server shared by the tests of one module (tests must not depend on a clean slate)."""
    server = _run_server(tmp_path_factory.mktemp("tresor"))
    yield server
    _finish(server)


@pytest.fixture
def fresh_tresor(tmp_path_factory) -> TresorServer:
    """A server of the test's own, for tests that count or change global state."""
    server = _run_server(tmp_path_factory.mktemp("tresor-fresh"))
    yield server
    _finish(server)


@pytest.fixture(scope="module")
def kms(tresor):
    """boto3 KMS client as alice (arn:aws:iam::111122223333:user/alice)."""
    return tresor.client("kms")


@pytest.fixture(scope="module")
def sts(tresor):
    return tresor.client("sts")


# ---- the aws CLI ----------------------------------------------------------------------------

AWS_CLI = Path(sys.executable).parent / "aws"


@dataclass
class AwsCli:
    endpoint: str
    access_key: str = ALICE_KEY
    secret_key: str = ALICE_SECRET

    def env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        return env

    def __call__(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        if not AWS_CLI.exists():
            pytest.fail(f"aws CLI not found at {AWS_CLI}; run scripts/setup-python and use .venv/bin/pytest", pytrace=False)
        cmd = [str(AWS_CLI), *args, "--endpoint-url", self.endpoint]
        proc = subprocess.run(cmd, env=self.env(), cwd=cwd, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}",
                pytrace=False,
            )
        return proc


@pytest.fixture(scope="module")
def aws(tresor) -> Callable[..., subprocess.CompletedProcess]:
    """Runs `.venv/bin/aws <args> --endpoint-url <tresor>` as alice in an isolated environment."""
    return AwsCli(tresor.endpoint)
