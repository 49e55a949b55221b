"""Schemathesis hooks for Hookline's contract tests (loaded through
SCHEMATHESIS_HOOKS by run.py).

Credentials: /v1 and /inflow operations get a tenant API key, /admin operations the
admin token, each as its security scheme in the document says. The tenant
key is minted through the admin API, and minted again whenever the server
answers 401: the run calls operations that legitimately end the key it
uses (POST /v1/api-keys/rotate with overlap_seconds=0, DELETE
/admin/tenants/{id} on the run's own tenant), and every operation after
them must still be tested with a working key rather than reported as 401s.
"""

import itertools
import os

import requests
import schemathesis

BASE_URL = os.environ["HOOKLINE_CONTRACT_URL"]
ADMIN_TOKEN = os.environ["HOOKLINE_ADMIN_TOKEN"]
_numbers = itertools.count(1)


def bearer(case, token):
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=None, retry_on=[401]).apply_to(path_regex="^/(v1|inflow)/")
class TenantKey:
    """A fresh tenant and its first key, made when none works any more."""

    key = None
    tenant_id = None

    @staticmethod
    def ensure():
        if TenantKey.key is None:
            res = requests.post(
                f"{BASE_URL}/admin/tenants",
                json={"name": f"contract tenant {next(_numbers)}"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=10,
            )
            res.raise_for_status()
            TenantKey.key = res.json()["api_key"]
            TenantKey.tenant_id = res.json()["tenant_id"]
        return TenantKey.key

    def get(self, case, context):
        return TenantKey.ensure()

    def set(self, case, data, context):
        bearer(case, data)


@schemathesis.hook
def after_call(context, case, response):
    # A 401 with the current key means the run itself ended it (see above):
    # the next /v1 case gets a new tenant.
    if response.status_code == 401 and case.operation.path.startswith(("/v1/", "/inflow/")):
        sent = (case.headers or {}).get("Authorization", "")
        if TenantKey.key and sent == f"Bearer {TenantKey.key}":
            TenantKey.key = None


# The Svix-compatible API (/api/v1) takes the organisation's token, which
# is the admin token (docs/svix-compatibility.md); its public operations
# (health, the document) ignore it.
@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex="^/(admin|api/v1)/")
class AdminToken:
    def get(self, case, context):
        return ADMIN_TOKEN

    def set(self, case, data, context):
        bearer(case, data)


# Cursors (`cursor`, and the audit log's `after` position) are opaque
# tokens the server hands out in `next_cursor`/`next_after`; a made-up one
# is rightly refused with 400 naming it (tests/e2e cover that). Generated
# ones are left out so every other parameter of the list operations is
# tested for acceptance.
OPAQUE = ("cursor", "after")


@schemathesis.hook
def filter_query(context, query):
    return not any(k in (query or {}) for k in OPAQUE)


# InFlow's API takes the tenant's id as `companyId`: a generated UUID is
# only ever another company (404, which the e2e tests cover), so the run
# uses its own tenant's id to reach the operations' logic.
@schemathesis.hook
def map_case(context, case):
    params = case.path_parameters or {}
    if "companyId" in params:
        TenantKey.ensure()
        params["companyId"] = TenantKey.tenant_id
    return case



def is_svix(context):
    return context.operation is not None and context.operation.path.startswith("/api/v1/")


# The Svix-compatible API: `iterator` is, like Hookline's cursors, an
# opaque token the server hands out (`iterator`/`prevIterator` of a page);
# a made-up one is refused with 422 naming it (tests/e2e/svix_api.rs). An
# empty query value (`?channel=`) counts as absent there, on purpose
# (docs/svix-compatibility.md, "Differences from Svix"). Cases with either
# are left out, in every phase (filter_case, unlike filter_query, also
# runs in the coverage phase), so that every other value is checked.
@schemathesis.hook
def filter_case(context, case):
    if not is_svix(context):
        return True
    query = case.query or {}
    return "iterator" not in query and all(v != "" for v in query.values())


# Integers written with a zero fraction (`"throttleRate": 2.0`) are JSON
# Schema integers but are refused with 422 by the Svix-compatible API, as
# by Svix's own server (serde reads them as floats): a documented
# difference. Generated ones are sent as the integers they are.
SVIX_INTEGERS = ("throttleRate", "rateLimit", "gracePeriodSeconds", "payloadRetentionPeriod", "payloadRetentionHours")


@schemathesis.hook("map_case")
def svix_integers(context, case):
    if is_svix(context) and isinstance(case.body, dict):
        for key in SVIX_INTEGERS:
            value = case.body.get(key)
            if isinstance(value, float) and value.is_integer():
                case.body[key] = int(value)
    return case
