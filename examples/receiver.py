#!/usr/bin/env python3
"""A small webhook receiver that verifies Hookline's signatures.

Standard library only. Run it, point a subscription at it, publish an event:

    python3 examples/receiver.py --port 9000 --secret whsec_...
    python3 examples/receiver.py --port 9000 --secret my-secret --scheme hmac-sha256-hex

`--secret` may be given more than once: a request verified by any of them
is accepted (while you switch to a rotated secret under a scheme that
carries one signature).

It answers 204 to every request whose signature verifies and 401 otherwise,
skips repeats of a delivery it already processed (deduplicating on
`X-Hookline-Delivery`, else `webhook-id`: with the `svix` scheme
`webhook-id` is the message's, the same for every subscription), and prints
one JSON line per request on stdout. `--port 0` picks a free port; the first
line printed says which.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300
# The fields of Hookline's envelope (docs/receiving.md).
ENVELOPE = {"id", "timestamp", "event", "data"}


def standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
        if not key:
            raise ValueError("empty key")
        return key
    return secret.encode()


def verify_standard(secret: str, headers, body: bytes) -> bool:
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    # Digits only, and few of them: int() takes signs and spaces, and a
    # number of hundreds of digits overflows the float subtraction.
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        return False
    if abs(time.time() - int(ts)) > TOLERANCE_SECONDS:
        return False
    mac = hmac.new(standard_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
    expected = base64.b64encode(mac.digest()).decode()
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        # Bytes: compare_digest refuses str with non-ASCII characters.
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return True
    return False


def verify_hex(secret: str, headers, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(expected.encode(), s.encode())
        for s in headers.get("x-signature", "").split(" ")
    )


def verify_base64(secret: str, headers, body: bytes) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected.encode(), s.encode())
        for s in headers.get("x-inflow-hmac-sha256", "").split(" ")
    )


VERIFIERS = {
    "standard-webhooks": verify_standard,
    # svix-* headers, and the same values as webhook-*: verified as
    # Standard Webhooks.
    "svix": verify_standard,
    "hmac-sha256-hex": verify_hex,
    "hmac-sha256-base64": verify_base64,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, action="append",
                        help="the subscription's secret (repeat it to accept several, during a rotation)")
    parser.add_argument("--scheme", choices=sorted(VERIFIERS), default="standard-webhooks")
    args = parser.parse_args()
    for secret in args.secret:
        try:
            standard_key(secret)
        except ValueError:
            parser.error("--secret starts with whsec_ but does not continue in base64: copy it whole from the create response")
        if not secret.strip():
            # An empty secret verifies nothing and answers every delivery
            # 401, which Hookline does not retry.
            parser.error("--secret is empty: pass the subscription's secret (whsec_… for standard-webhooks)")
    verify_one = VERIFIERS[args.scheme]

    def verify(secrets, headers, body):
        return any(verify_one(secret, headers, body) for secret in secrets)
    seen = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's naming)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            delivery = self.headers.get("x-hookline-delivery") or self.headers.get("webhook-id")
            line = {
                "delivery": delivery,
                "attempt": self.headers.get("x-hookline-attempt"),
                "event": self.headers.get("x-event"),
                "request_id": self.headers.get("x-request-id"),
            }
            if not verify(args.secret, self.headers, body):
                line["verified"] = False
                self.send_response(401)
            else:
                line["verified"] = True
                line["duplicate"] = delivery in seen
                seen.add(delivery)
                if not line["duplicate"]:
                    # The envelope's data; a `raw` subscription's body is
                    # the data itself (any JSON, perhaps with a `data` key
                    # of its own: only Hookline's whole envelope counts).
                    payload = json.loads(body)
                    is_envelope = isinstance(payload, dict) and ENVELOPE <= payload.keys()
                    line["data"] = payload["data"] if is_envelope else payload
                self.send_response(204)
            self.end_headers()
            print(json.dumps(line), flush=True)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
