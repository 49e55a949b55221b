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


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex="^/admin/")
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
