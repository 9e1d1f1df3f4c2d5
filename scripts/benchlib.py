"""Shared by the Python benchmark scripts (scripts/bench-cpu, scripts/bench-instr): start
`tresor serve` in a work directory with scripts/bench.toml and wait for its endpoint."""
import os
import re
import subprocess
import time

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
