"""The official Svix Python SDK (PyPI `svix`, pinned in
scripts/requirements-test.txt) against a running Hookline, unchanged except
`server_url`: the core flow of docs/svix-compatibility.md, with every
delivery received by a real HTTP server on 127.0.0.1 that verifies it with
the SDK's own `svix.webhooks.Webhook(secret).verify(body, headers)`.

    python tests/svix/sdk_flow.py --server http://127.0.0.1:8080 --token <operator key>

Exits 0 when every check passed; prints the first failure and exits 1
otherwise. Run by the e2e test `svix_sdk::python_sdk_core_flow`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from http.cookiejar import CookieJar
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from svix.api import (
    AppPortalAccessIn,
    AppPortalCapability,
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventExampleIn,
    EventTypeIn,
    EventTypeListOptions,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    MessageStatus,
    RecoverIn,
    Svix,
    SvixOptions,
)
from svix.api.errors.http_error import HttpError
from svix.api.errors.http_validation_error import HTTPValidationError
from svix.webhooks import Webhook, WebhookVerificationError

WAIT_SECONDS = 60.0


class Receiver:
    """A webhook receiver on 127.0.0.1. Paths: `/ok/<name>` answers 204
    after verifying, `/fail/<name>` answers 500 (after verifying too)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: dict[str, list[str]] = {}
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                parts = self.path.strip("/").split("/")
                name = parts[1] if len(parts) > 1 else ""
                with receiver.lock:
                    secrets = list(receiver.secrets.get(name, []))
                verified_with = []
                errors = []
                for secret in secrets:
                    try:
                        Webhook(secret).verify(body, headers)
                        verified_with.append(secret)
                    except WebhookVerificationError as e:
                        errors.append(str(e))
                with receiver.lock:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "name": name,
                            "body": body,
                            "headers": headers,
                            "verified_with": verified_with,
                            "errors": errors,
                        }
                    )
                status = 500 if parts[0] == "fail" else (204 if verified_with else 401)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def trust(self, name: str, *secrets: str) -> None:
        with self.lock:
            self.secrets[name] = list(secrets)

    def deliveries(self, name: str | None = None, svix_id: str | None = None) -> list[dict]:
        with self.lock:
            return [
                r
                for r in self.received
                if (name is None or r["name"] == name)
                and (svix_id is None or r["headers"].get("svix-id") == svix_id)
            ]

    def wait_for(self, what: str, count: int, **filters) -> list[dict]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            got = self.deliveries(**filters)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: {len(got)} of {count} deliveries within {WAIT_SECONDS}s")
            time.sleep(0.05)


def eventually(what: str, check):
    """`check()` until it returns a truthy value (deliveries and their
    attempts are recorded asynchronously)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_SECONDS}s")
        time.sleep(0.05)


def expect_error(what: str, status: int, code: str | None, call):
    try:
        call()
    except HttpError as e:
        assert e.status_code == status, f"{what}: status {e.status_code} ({e}), expected {status}"
        if code is not None:
            assert e.code == code, f"{what}: code {e.code!r}, expected {code!r}"
        assert e.detail, f"{what}: an empty detail"
        return e
    except HTTPValidationError as e:
        assert status == 422, f"{what}: a 422 ({e.detail}), expected {status}"
        assert e.detail and all(d.loc and d.msg and d.type for d in e.detail), f"{what}: {e.detail}"
        return e
    raise AssertionError(f"{what}: succeeded, expected {status}")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def run(server: str, token: str) -> None:
    receiver = Receiver()
    svix = Svix(token, SvixOptions(server_url=server))
    run_id = uuid.uuid4().hex[:8]
    step = lambda s: print(f"-- {s}", flush=True)  # noqa: E731

    step("health")
    svix.health.get()

    step("unauthenticated and unknown: errors in Svix's shape")
    bad = Svix("not-a-key", SvixOptions(server_url=server))
    expect_error("a wrong token", 401, "authentication_failed", lambda: bad.application.list())
    expect_error("an unknown app", 404, "not_found", lambda: svix.application.get(f"nobody-{run_id}"))

    step("1. create an app, then get-or-create it again")
    uid = f"acme-{run_id}"
    app = svix.application.create(ApplicationIn(name="Acme", uid=uid, metadata={"plan": "pro"}))
    check(app.id.startswith("app_") and app.uid == uid and app.name == "Acme", f"created {app}")
    check(app.metadata == {"plan": "pro"}, f"metadata {app.metadata}")
    again = svix.application.get_or_create(ApplicationIn(name="Ignored", uid=uid))
    check(again.id == app.id and again.name == "Acme", f"get_or_create {again}")
    expect_error("a second app with that uid", 409, "conflict",
                 lambda: svix.application.create(ApplicationIn(name="Twice", uid=uid)))
    check(svix.application.get(uid).id == app.id, "get by uid")
    check(svix.application.get(app.id).uid == uid, "get by id")
    expect_error("a blank name", 422, None, lambda: svix.application.create(ApplicationIn(name="")))

    step("event types")
    et_name = f"invoice.paid.{run_id}"
    et = svix.event_type.create(EventTypeIn(name=et_name, description="An invoice was paid"))
    check(et.name == et_name and et.deprecated is False, f"event type {et}")
    names = []
    it = None
    while True:
        page = svix.event_type.list(
            EventTypeListOptions(iterator=it, limit=250)
        )
        names += [e.name for e in page.data]
        if page.done:
            break
        it = page.iterator
    check(et_name in names, f"{et_name} listed")
    expect_error("an existing event type", 409, None,
                 lambda: svix.event_type.create(EventTypeIn(name=et_name, description="again")))

    step("2. endpoints pointing at the receiver")
    ep_all = svix.endpoint.create(uid, EndpointIn(url=receiver.url("/ok/all"), description="everything", uid="all"))
    check(ep_all.id.startswith("ep_") and ep_all.uid == "all", f"endpoint {ep_all}")
    check(ep_all.event_types is None and ep_all.channels is None, "no filters")
    ep_paid = svix.endpoint.create(
        uid, EndpointIn(url=receiver.url("/ok/paid"), event_types=[et_name], description="paid only")
    )
    ep_eu = svix.endpoint.create(uid, EndpointIn(url=receiver.url("/ok/eu"), channels=["eu"]))
    ep_fail = svix.endpoint.create(uid, EndpointIn(url=receiver.url("/fail/fail"), event_types=[et_name]))
    expect_error("an endpoint URL that is not http(s)", 422, None,
                 lambda: svix.endpoint.create(uid, EndpointIn(url="ftp://example.com/x")))
    expect_error("an endpoint of an unknown app", 404, "not_found",
                 lambda: svix.endpoint.create(f"nobody-{run_id}", EndpointIn(url=receiver.url("/ok/x"))))

    step("3. read the endpoint secrets")
    secrets = {}
    for name, ep in [("all", ep_all), ("paid", ep_paid), ("eu", ep_eu), ("fail", ep_fail)]:
        key = svix.endpoint.get_secret(uid, ep.id).key
        check(key.startswith("whsec_"), f"secret {key[:8]}…")
        secrets[name] = key
        receiver.trust(name, key)
    check(svix.endpoint.get_secret(uid, "all").key == secrets["all"], "secret by endpoint uid")

    step("4. send messages")
    payload = {"type": "invoice.paid", "id": "inv_1", "amount": 1250, "note": "é ✓", "nested": {"b": [1, 2], "a": None}}
    msg = svix.message.create(uid, MessageIn(event_type=et_name, event_id=f"evt-{run_id}", payload=payload))
    check(msg.id.startswith("msg_") and msg.event_id == f"evt-{run_id}", f"message {msg}")
    check(msg.payload == {}, "with_content=false leaves the payload out")
    expect_error("a duplicate eventId", 409, "conflict",
                 lambda: svix.message.create(uid, MessageIn(event_type=et_name, event_id=f"evt-{run_id}", payload={})))
    eu = svix.message.create(uid, MessageIn(event_type="order.shipped", payload={"order": 7}, channels=["eu"]))
    lonely = svix.message.create(uid, MessageIn(event_type="nobody.listens", payload={"x": 1}, channels=["mars"]))
    check(lonely.id.startswith("msg_"), "a message no endpoint wants is stored (202)")
    expect_error("an event type name with a space", 422, None,
                 lambda: svix.message.create(uid, MessageIn(event_type="has space", payload={})))

    # Idempotency: the same key twice is one message, answered the same.
    key = f"idem-{run_id}"
    first = svix.message.create(uid, MessageIn(event_type="order.placed", payload={"n": 1}),
                                MessageCreateOptions(idempotency_key=key))
    second = svix.message.create(uid, MessageIn(event_type="order.placed", payload={"n": 1}),
                                 MessageCreateOptions(idempotency_key=key))
    check(first.id == second.id, "an idempotency key replays the first answer")

    step("deliveries: verified with Webhook(secret).verify, raw payload, svix-id = message id")
    got = receiver.wait_for("the paid message to 'all'", 1, name="all", svix_id=msg.id)
    receiver.wait_for("the paid message to 'paid'", 1, name="paid", svix_id=msg.id)
    receiver.wait_for("the channel message to 'eu'", 1, name="eu", svix_id=eu.id)
    receiver.wait_for("the channel message to 'all'", 1, name="all", svix_id=eu.id)
    receiver.wait_for("the failing endpoint tried", 1, name="fail", svix_id=msg.id)
    d = got[0]
    check(json.loads(d["body"]) == payload, f"the body is the payload exactly: {d['body']!r}")
    check(list(json.loads(d["body"]).keys()) == list(payload.keys()), "key order kept")
    for h in ["svix-id", "svix-timestamp", "svix-signature", "webhook-id", "webhook-timestamp", "webhook-signature"]:
        check(h in d["headers"], f"header {h}")
    check(d["headers"]["webhook-id"] == msg.id, "webhook-id is the message id too")
    for r in receiver.deliveries():
        check(r["verified_with"], f"every delivery verifies: {r['path']} {r['errors']}")
    check(not receiver.deliveries(name="paid", svix_id=eu.id), "eventTypes filter: 'paid' did not get order.shipped")
    check(not receiver.deliveries(name="eu", svix_id=msg.id), "channels filter: 'eu' did not get a channel-less message")
    check(not receiver.deliveries(svix_id=lonely.id) or
          all(r["name"] == "all" for r in receiver.deliveries(svix_id=lonely.id)),
          "only catch-all endpoints get the 'mars' message")

    step("5. list messages, with filters")
    listed = svix.message.list(uid, MessageListOptions(with_content=True, limit=250))
    ids = [m.id for m in listed.data]
    for m in [msg, eu, lonely, first]:
        check(m.id in ids, f"{m.id} listed")
    by_id = {m.id: m for m in listed.data}
    check(by_id[msg.id].payload == payload, "with_content=true returns the payload")
    only_paid = svix.message.list(uid, MessageListOptions(event_types=[et_name]))
    check([m.id for m in only_paid.data] == [msg.id], f"event_types filter: {[m.id for m in only_paid.data]}")
    both = svix.message.list(uid, MessageListOptions(event_types=[et_name, "order.shipped"]))
    check({m.id for m in both.data} == {msg.id, eu.id}, "event_types filter with two types")
    on_eu = svix.message.list(uid, MessageListOptions(channel="eu"))
    check([m.id for m in on_eu.data] == [eu.id], "channel filter")
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    check(not svix.message.list(uid, MessageListOptions(after=future)).data, "after filter")
    check(len(svix.message.list(uid, MessageListOptions(before=future)).data) >= 4, "before filter (aware)")
    naive_future = datetime.utcnow() + timedelta(hours=1)  # the SDK sends it without an offset
    check(len(svix.message.list(uid, MessageListOptions(before=naive_future)).data) >= 4, "before filter (naive)")
    check(svix.message.get(uid, msg.id).event_type == et_name, "get a message")
    check(svix.message.get(uid, f"evt-{run_id}").id == msg.id, "get a message by eventId")
    check(svix.message.get(uid, msg.id, MessageGetOptions(with_content=True)).payload == payload, "get with content")
    expect_error("an unknown message", 404, "not_found", lambda: svix.message.get(uid, "msg_unknown"))

    step("6. attempts by message and by endpoint")
    by_msg = eventually("attempts of the paid message", lambda: (
        lambda a: a if len(a.data) >= 3 else None)(svix.message_attempt.list_by_msg(uid, msg.id)))
    for a in by_msg.data:
        check(a.id.startswith("atmpt_") and a.msg_id == msg.id, f"attempt {a}")
        check(a.response == "{}", "with_content=false: response is '{}'")
    statuses = {a.endpoint_id: a.status.value for a in by_msg.data}
    check(statuses[ep_all.id] == 0 and statuses[ep_paid.id] == 0, f"success status 0: {statuses}")
    check(statuses[ep_fail.id] == 2, f"fail status 2: {statuses}")
    failed = svix.message_attempt.list_by_msg(
        uid, msg.id, MessageAttemptListByMsgOptions(status=MessageStatus.FAIL)
    )
    check(failed.data and all(a.status.value == 2 and a.response_status_code == 500 for a in failed.data), "status filter")
    only_ep = svix.message_attempt.list_by_msg(uid, msg.id, MessageAttemptListByMsgOptions(endpoint_id="all"))
    check({a.endpoint_id for a in only_ep.data} == {ep_all.id}, "endpoint_id filter (by uid)")
    # Attempt lists are read models: wait for both messages' attempts.
    by_ep = eventually("attempts by endpoint", lambda: (
        lambda a: a if {msg.id, eu.id} <= {x.msg_id for x in a.data} else None)(
            svix.message_attempt.list_by_endpoint(uid, ep_all.id)))
    check({msg.id, eu.id} <= {a.msg_id for a in by_ep.data}, "attempts by endpoint")
    by_ep_paid = svix.message_attempt.list_by_endpoint(
        uid, ep_all.id, MessageAttemptListByEndpointOptions(event_types=[et_name])
    )
    check({a.msg_id for a in by_ep_paid.data} == {msg.id}, "event_types filter on attempts")
    expect_error("attempts of an unknown endpoint", 404, "not_found",
                 lambda: svix.message_attempt.list_by_endpoint(uid, "ep_unknown"))

    step("7. resend")
    before = len(receiver.deliveries(name="paid", svix_id=msg.id))
    svix.message_attempt.resend(uid, msg.id, ep_paid.id)
    receiver.wait_for("the resent message", before + 1, name="paid", svix_id=msg.id)
    resent = eventually("the manual attempt", lambda: [
        a for a in svix.message_attempt.list_by_msg(uid, msg.id).data
        if a.endpoint_id == ep_paid.id and a.trigger_type.value == 1
    ])
    check(resent[0].status.value == 0, "the manual attempt succeeded")
    expect_error("resend to an unknown endpoint", 404, "not_found",
                 lambda: svix.message_attempt.resend(uid, msg.id, "ep_unknown"))

    step("7b. endpoint headers, one attempt, destinations, stats")
    svix.endpoint.set_headers(uid, ep_eu.id, EndpointHeadersIn(headers={"X-Team": "eu", "Authorization": "Bearer t0ken-for-eu"}))
    heads = svix.endpoint.get_headers(uid, ep_eu.id)
    check(heads.headers == {"X-Team": "eu"} and list(heads.sensitive) == ["Authorization"], f"headers {heads}")
    svix.endpoint.patch_headers(uid, ep_eu.id, EndpointHeadersPatchIn(headers={"X-Region": "eu-west"}, delete_headers=["X-Team"]))
    heads = svix.endpoint.get_headers(uid, ep_eu.id)
    check(heads.headers == {"X-Region": "eu-west"} and list(heads.sensitive) == ["Authorization"], f"patched headers {heads}")
    one = svix.message_attempt.get(uid, msg.id, by_msg.data[0].id)
    check(one.id == by_msg.data[0].id and one.msg_id == msg.id, f"one attempt {one}")
    expect_error("an attempt of another message", 404, "not_found",
                 lambda: svix.message_attempt.get(uid, eu.id, by_msg.data[0].id))
    dests = svix.message_attempt.list_attempted_destinations(uid, msg.id)
    status_of = {d.id: d.status.value for d in dests.data}
    check(set(status_of) == {ep_all.id, ep_paid.id, ep_fail.id}, f"destinations {status_of}")
    check(status_of[ep_all.id] == 0 and status_of[ep_fail.id] in (1, 2), f"destination statuses {status_of}")
    stats = svix.endpoint.get_stats(uid, ep_all.id)
    check(stats.success >= 2 and stats.fail == 0 and stats.sending == 0, f"stats {stats}")

    step("7c. app portal access and logout, attempted messages, an example message")
    access = svix.authentication.app_portal_access(
        uid, AppPortalAccessIn(capabilities=[AppPortalCapability.VIEW_BASE, AppPortalCapability.VIEW_ENDPOINT_SECRET])
    )
    check(access.token.startswith("hlp_") and access.url.endswith(f"/console/portal?token={access.token}"), f"portal access {access}")
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(access.url, timeout=30) as page:
        html = page.read().decode()
    check(page.url.endswith("/console/subscriptions") and receiver.url("/ok/all") in html, "the portal shows the app's endpoints")
    check("read-only" in html, "ViewBase only: a read-only console")
    Svix(access.token, SvixOptions(server_url=server)).authentication.logout()
    try:
        urllib.request.urlopen(access.url, timeout=30)
        check(False, "a logged-out link opens nothing")
    except urllib.error.HTTPError as e:
        check(e.code == 410, f"a logged-out link answers 410: {e.code}")
    expect_error("logout with an organisation token", 401, "authentication_failed", lambda: svix.authentication.logout())

    sent_to_all = eventually("the endpoint's attempted messages", lambda: (
        lambda page: page if {msg.id, eu.id} <= {m.id for m in page.data} else None)(
            svix.message_attempt.list_attempted_messages(uid, ep_all.id)))
    mine = {m.id: m for m in sent_to_all.data}
    check(mine[msg.id].status.value == 0 and mine[msg.id].status_text.value == "success", f"attempted message {mine[msg.id]}")
    one = svix.message_attempt.list_attempted_messages(uid, ep_all.id, MessageAttemptListAttemptedMessagesOptions(limit=1))
    check(len(one.data) == 1 and not one.done and one.iterator, "a page of one")
    rest = svix.message_attempt.list_attempted_messages(
        uid, ep_all.id, MessageAttemptListAttemptedMessagesOptions(iterator=one.iterator, event_types=[et_name])
    )
    check(one.data[0].id not in {m.id for m in rest.data}, "the next page starts after the first")
    failed_here = svix.message_attempt.list_attempted_messages(
        uid, ep_fail.id, MessageAttemptListAttemptedMessagesOptions(status=MessageStatus.SUCCESS)
    )
    check(not failed_here.data, "no success on the failing endpoint")

    ping = svix.endpoint.send_example(uid, ep_all.id, EventExampleIn(event_type="svix.ping"))
    check(ping.event_type == "svix.ping" and ping.payload == {"success": True}, f"example {ping}")
    got = receiver.wait_for("the example message", 1, name="all", svix_id=ping.id)[0]
    check(json.loads(got["body"]) == {"success": True}, "the example's body")
    check(not receiver.deliveries(name="paid", svix_id=ping.id), "no other endpoint got the example")

    step("8. paginate with iterators")
    sent = [svix.message.create(uid, MessageIn(event_type="page.test", payload={"i": i})).id for i in range(7)]
    seen, it, pages = [], None, 0
    while True:
        page = svix.message.list(uid, MessageListOptions(event_types=["page.test"], limit=3, iterator=it))
        pages += 1
        check(len(page.data) <= 3, "limit honoured")
        seen += [m.id for m in page.data]
        if page.done:
            break
        check(page.iterator is not None, "an iterator while not done")
        it = page.iterator
    check(sorted(seen) == sorted(sent) and len(seen) == len(set(seen)), f"every message once: {len(seen)} of 7")
    check(seen == list(reversed(sent)), "newest first")
    check(pages == 3, f"three pages: {pages}")
    apps = svix.application.list(ApplicationListOptions(limit=250))
    check(app.id in [a.id for a in apps.data], "the app is listed")

    step("9. errors: validation, not found, conflict")
    expect_error("a bad limit", 422, None, lambda: svix.message.list(uid, MessageListOptions(limit=0)))
    expect_error("an endpoint uid taken", 409, "conflict",
                 lambda: svix.endpoint.create(uid, EndpointIn(url=receiver.url("/ok/x"), uid="all")))

    step("a typical integration: update, patch, rotate, recover, delete")
    patched = svix.application.patch(uid, ApplicationPatch(name="Acme Corp"))
    check(patched.name == "Acme Corp" and patched.uid == uid, f"patched app {patched}")
    upserted = svix.application.upsert(uid, ApplicationIn(name="Acme Inc", uid=uid))
    check(upserted.id == app.id and upserted.name == "Acme Inc", "upsert app")
    ep2 = svix.endpoint.patch(uid, ep_eu.id, EndpointPatch(description="EU only"))
    check(ep2.description == "EU only" and ep2.channels == ["eu"], f"patched endpoint {ep2}")
    ep3 = svix.endpoint.upsert(uid, ep_eu.id, EndpointUpsertIn(url=receiver.url("/ok/eu"), channels=["eu", "us"]))
    check(set(ep3.channels) == {"eu", "us"}, "upsert endpoint")
    check({e.id for e in svix.endpoint.list(uid).data} == {ep_all.id, ep_paid.id, ep_eu.id, ep_fail.id}, "endpoints listed")

    rotated = svix.endpoint.rotate_secret(uid, ep_paid.id, EndpointSecretRotateIn())
    new_key = svix.endpoint.get_secret(uid, ep_paid.id).key
    check(new_key != secrets["paid"] and new_key.startswith("whsec_"), "a new secret")
    if rotated is not None:
        check(rotated.key == new_key, "rotate answers the new key")
    # During the grace period deliveries are signed with both keys.
    receiver.trust("paid", new_key)
    m2 = svix.message.create(uid, MessageIn(event_type=et_name, payload={"after": "rotation"}))
    d2 = receiver.wait_for("a delivery after rotation", 1, name="paid", svix_id=m2.id)[0]
    check(d2["verified_with"] == [new_key], "verifies with the new secret")
    Webhook(secrets["paid"]).verify(d2["body"], d2["headers"])  # and with the old one, in the grace period
    check(len(d2["headers"]["svix-signature"].split(" ")) == 2, "two signatures during the grace period")

    since = datetime.now(timezone.utc) - timedelta(hours=1)
    rec = svix.endpoint.recover(uid, ep_fail.id, RecoverIn(since=since))
    check(rec.status.value in ("running", "finished") and rec.task.value == "endpoint.recover", f"recover {rec}")
    expect_error("recover over 14 days", 422, None,
                 lambda: svix.endpoint.recover(uid, ep_fail.id, RecoverIn(since=datetime.now(timezone.utc) - timedelta(days=30))))

    svix.endpoint.delete(uid, ep_fail.id)
    expect_error("a deleted endpoint", 404, "not_found", lambda: svix.endpoint.get(uid, ep_fail.id))
    other = svix.application.create(ApplicationIn(name="Temp", uid=f"temp-{run_id}"))
    svix.application.delete(other.id)
    expect_error("a deleted app", 404, "not_found", lambda: svix.application.get(other.id))

    for r in receiver.deliveries():
        check(r["verified_with"], f"every delivery verifies: {r['path']} {r['errors']}")
    print(f"ok: {len(receiver.deliveries())} deliveries verified", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    try:
        run(args.server, args.token)
    except Exception:  # noqa: BLE001 (report any failure)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
