"""Contract tests: the OpenAPI document checked against the running server.

1. Starts `hookline serve` (its own embedded Postgres in a temporary
   directory, the API role only, so no webhook is ever sent anywhere),
   with HOOKLINE_SIIGO_URL pointing at a local Siigo stand-in
   (`hookline connectors siigo sandbox`), so provisioning calls stay on
   this machine.
2. Validates the served /openapi.json and /api/v1/openapi.json (the
   Svix-compatible API) and their committed copies docs/openapi.json and
   docs/svix-openapi.json with openapi-spec-validator (OpenAPI 3.1).
3. Runs schemathesis over every operation of each document (the Svix one
   with the admin token as the organisation token): examples, coverage, fuzzing and
   stateful phases, all checks, a fixed seed and a bounded number of
   examples per operation (CONTRACT_MAX_EXAMPLES, default 8; a longer sweep:
   CONTRACT_MAX_EXAMPLES=200 CONTRACT_SEED=$RANDOM; one document only:
   CONTRACT_ONLY=hookline or CONTRACT_ONLY=svix).

Usage: run.py PATH/TO/hookline   (scripts/test runs it with the venv's python)
Exit status: 0 when everything passed.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.dirname(sys.executable)


def say(msg):
    print(f"contract: {msg}", file=sys.stderr, flush=True)


def start_sandbox(binary):
    """The Siigo stand-in on a free loopback port: (process, base URL)."""
    proc = subprocess.Popen(
        [binary, "connectors", "siigo", "sandbox", "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
    proc.kill()
    sys.exit("contract: the Siigo sandbox did not start")


def start_server(binary, data_dir, admin_token, siigo_url):
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "HOOKLINE_ADMIN_TOKEN": admin_token,
            "HOOKLINE_SIIGO_URL": siigo_url,
            "RUST_LOG": "info",
        }
    )
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--role", "api", "--data-dir", data_dir],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found = {}
    logs = []

    def read():
        for line in proc.stderr:
            logs.append(line)
            if "Hookline is listening" in line and "address" not in found:
                m = re.search(r'"address":"([^"]+)"', line) or re.search(r"address=\"?([0-9.:\[\]]+)", line)
                if m:
                    found["address"] = m.group(1)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 90
    while "address" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit("contract: hookline serve did not start:\n" + "".join(logs[-40:]))
        time.sleep(0.05)
    return proc, f"http://{found['address']}", logs


def validate(document_path):
    out = subprocess.run(
        [os.path.join(VENV_BIN, "openapi-spec-validator"), "--schema", "3.1", document_path],
        capture_output=True,
        text=True,
    )
    say(f"openapi-spec-validator {os.path.relpath(document_path, ROOT)}: {out.stdout.strip() or out.stderr.strip()}")
    return out.returncode == 0


def check_copy(url, work, path, committed, how):
    """Validates the document served at `path` and its committed copy
    docs/`committed`, and checks that they are the same."""
    served = os.path.join(work, committed)
    with urllib.request.urlopen(f"{url}{path}", timeout=10) as res, open(served, "wb") as f:
        f.write(res.read())
    copy = os.path.join(ROOT, "docs", committed)
    ok = validate(served)
    ok &= validate(copy)
    with open(served) as a, open(copy) as b:
        if json.load(a) != json.load(b):
            say(f"docs/{committed} differs from what the server serves at {path} ({how} says how to regenerate it)")
            ok = False
    return ok


def schemathesis(label, document, url, env, work, report_dir):
    """Runs schemathesis over every operation of `document`: True when
    everything passed."""
    cmd = [
        os.path.join(VENV_BIN, "st"),
        "--config-file",
        os.path.join(HERE, "schemathesis.toml"),
        "run",
        document,
        "--url",
        url,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        os.environ.get("CONTRACT_SEED", "42"),
        "--max-examples",
        os.environ.get("CONTRACT_MAX_EXAMPLES", "8"),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "junit",
        "--report-dir",
        report_dir,
        "--no-color",
    ]
    say(f"{label}: schemathesis " + " ".join(cmd[4:]))
    started = time.monotonic()
    run = subprocess.run(cmd, env=env, cwd=work)
    say(f"{label}: schemathesis finished in {time.monotonic() - started:.0f} s with status {run.returncode}")
    return run.returncode == 0


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="hookline-contract-")
    admin_token = secrets.token_urlsafe(24)
    sandbox, siigo_url = start_sandbox(binary)
    proc, url, logs = start_server(binary, os.path.join(work, "data"), admin_token, siigo_url)
    ok = True
    try:
        ok &= check_copy(url, work, "/openapi.json", "openapi.json", "the e2e test openapi")
        ok &= check_copy(url, work, "/api/v1/openapi.json", "svix-openapi.json", "the unit test the_committed_svix_copy_is_current")
        report_dir = os.path.join(ROOT, "target", "contract")
        shutil.rmtree(report_dir, ignore_errors=True)
        env = dict(os.environ)
        env.update(
            {
                "SCHEMATHESIS_HOOKS": "hooks",
                "PYTHONPATH": HERE,
                "HOOKLINE_CONTRACT_URL": url,
                "HOOKLINE_ADMIN_TOKEN": admin_token,
            }
        )
        runs = [
            ("hookline", "Hookline's API", f"{url}/openapi.json"),
            ("svix", "the Svix-compatible API", f"{url}/api/v1/openapi.json"),
        ]
        only = os.environ.get("CONTRACT_ONLY")
        for name, label, document in runs:
            if only and only != name:
                continue
            ok &= schemathesis(label, document, url, env, work, os.path.join(report_dir, name))
        if proc.poll() is not None:
            say("the server exited during the run:\n" + "".join(logs[-40:]))
            ok = False
        if not ok:
            errors = [line for line in logs if " ERROR " in line]
            if errors:
                say("the server logged errors (the cause of any 5xx):\n" + "".join(errors[-20:]))
        panics = [line for line in logs if "panicked" in line]
        if panics:
            say("the server logged panics:\n" + "".join(panics[:10]))
            ok = False
    finally:
        sandbox.terminate()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
