//! Example requests and responses for the document, built from the seeds'
//! payloads (an Acme Corp invoice and its payment, an ERP endpoint). They
//! are checked against their schemas by the tests in `openapi.rs`, and a
//! contract tester replays the request examples against a live server, so
//! each must be valid and publishable (`invoice.created` data satisfies
//! the built-in type's JSON Schema).

use serde_json::{json, Value};

pub const TENANT_ID: &str = "01936f2e-4a10-7c3d-8e4f-1a2b3c4d5e01";
pub const SUBSCRIPTION_ID: &str = "01936f2e-5b7a-7c3d-9e4f-1a2b3c4d5e6f";
pub const EVENT_ID: &str = "01936f2e-6c01-7d2e-8f30-2b3c4d5e6f70";
pub const DELIVERY_ID: &str = "01936f2e-6c02-7a11-9b22-3c4d5e6f7081";
pub const SECOND_DELIVERY_ID: &str = "01936f2e-6c03-7b45-8c12-4d5e6f708192";
pub const ATTEMPT_ID: &str = "01936f2e-7d10-7b33-a044-4d5e6f708192";
pub const KEY_ID: &str = "01936f2e-4a11-7e55-b066-5e6f708192a3";
pub const NEW_KEY_ID: &str = "01936f31-0a20-7f01-8d77-6f708192a3b4";
pub const REQUEST_ID: &str = "req-erp-7f3a9c";
pub const URL: &str = "https://erp.example.com/webhooks/hookline";
pub const SECRET: &str = "whsec_AoWbZ9xydX76UUBmXDpED3JLwdD2bcY4";
pub const API_KEY: &str = "hlk_hLmvgjSfhR6bxPd6kHGWMfKgyWVatuPbzQ1oQQdqGEI";
pub const NEW_API_KEY: &str = "hlk_Dy_Sv428ZT7Bw16ABLaVVlg2_AoU6SYWDsVnzj6k1vQ";
pub const CREATED_AT: &str = "2026-02-14T10:30:00.123456Z";
pub const UPDATED_AT: &str = "2026-02-14T11:05:42.654321Z";

/// The seeds' `invoice.created` data (valid for the built-in schema).
pub fn invoice_created() -> Value {
    json!({
        "invoice_id": "inv-123",
        "invoice_number": "001-001-000000001",
        "amount": "1500.00",
        "currency": "USD",
        "customer": "Acme Corp",
        "status": "draft"
    })
}

/// The seeds' `payment.received` data (valid for the built-in schema).
pub fn payment_received() -> Value {
    json!({
        "payment_id": "pay-456",
        "invoice_id": "inv-123",
        "amount": "1500.00",
        "method": "bank_transfer"
    })
}

pub fn create_subscription() -> Value {
    json!({
        "url": URL,
        "events": ["invoice.created", "payment.received"],
        "headers": {"X-Erp-Token": "erp-token-5f2c81d9"},
        "description": "ERP sync for Acme Corp"
    })
}

pub fn update_subscription() -> Value {
    json!({
        "events": ["invoice.*", "payment.received"],
        "description": "ERP sync for Acme Corp (all invoice events)"
    })
}

/// A subscription as reads show it, or (`revealed`) as its creation
/// answers it: the secret and header values in full.
pub fn subscription(revealed: bool) -> Value {
    json!({
        "id": SUBSCRIPTION_ID,
        "tenant_id": TENANT_ID,
        "url": URL,
        "events": ["invoice.created", "payment.received"],
        "headers": {"X-Erp-Token": if revealed { "erp-token-5f2c81d9" } else { "…81d9" }},
        "description": "ERP sync for Acme Corp",
        "signature_scheme": "standard-webhooks",
        "payload_format": "hookline",
        "status": "active",
        "secret": if revealed { SECRET } else { "whsec_…bcY4" },
        "rate_limit": 50,
        "circuit": null,
        "backlog": 0,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT
    })
}

pub fn updated_subscription() -> Value {
    let mut s = subscription(true);
    s["events"] = json!(["invoice.*", "payment.received"]);
    s["description"] = json!("ERP sync for Acme Corp (all invoice events)");
    s["secret"] = json!("whsec_…bcY4");
    s["updated_at"] = json!(UPDATED_AT);
    s
}

pub fn rotated_subscription() -> Value {
    let mut s = subscription(false);
    s["secret"] = json!("whsec_JTovS3efa/bKLU8R/B/654AvxjVeRuUz");
    s["previous_secret_expires_at"] = json!("2026-02-15T11:05:42.654321Z");
    s["updated_at"] = json!(UPDATED_AT);
    s
}

pub fn disabled_subscription() -> Value {
    let mut s = subscription(false);
    s["status"] = json!("disabled");
    s["disabled_reason"] = json!("ERP maintenance window");
    s["updated_at"] = json!(UPDATED_AT);
    s
}

pub fn subscription_page() -> Value {
    json!({"data": [subscription(false)]})
}

/// An aggregate's history with one event.
pub fn history(event_type: &str, payload: Value) -> Value {
    json!({"data": [{
        "sequence": 1,
        "position": 1042,
        "event_type": event_type,
        "event_version": "1.0",
        "recorded_at": CREATED_AT,
        "payload": payload,
        "metadata": {
            "request_id": REQUEST_ID,
            "tenant_id": TENANT_ID,
            "actor": format!("api_key:{KEY_ID}"),
            "occurred_at": CREATED_AT
        }
    }]})
}

pub fn publish() -> Value {
    json!({
        "event_type": "invoice.created",
        "data": invoice_created(),
        "resource_type": "invoice",
        "resource_id": "inv-123"
    })
}

pub fn publish_seed() -> Value {
    json!({"event": "payment.received", "payload": payment_received()})
}

pub fn published(count: bool) -> Value {
    let mut v = json!({
        "event_id": EVENT_ID,
        "deliveries": [{"id": DELIVERY_ID, "subscription_id": SUBSCRIPTION_ID, "status": "pending"}]
    });
    if count {
        v["count"] = json!(1);
    }
    v
}

pub fn delivery() -> Value {
    json!({
        "id": DELIVERY_ID,
        "tenant_id": TENANT_ID,
        "subscription_id": SUBSCRIPTION_ID,
        "event_id": EVENT_ID,
        "event_type": "invoice.created",
        "status": "delivered",
        "attempts": 2,
        "next_attempt_at": null,
        "url": URL,
        "request_id": REQUEST_ID,
        "last_status_code": 200,
        "last_error_kind": null,
        "last_error": null,
        "created_at": CREATED_AT,
        "updated_at": "2026-02-14T10:30:31.402113Z",
        "delivered_at": "2026-02-14T10:30:31.402113Z"
    })
}

pub fn retried_delivery() -> Value {
    let mut d = delivery();
    d["status"] = json!("pending");
    d["next_attempt_at"] = json!("2026-02-14T11:05:42.654321Z");
    d["last_status_code"] = json!(503);
    d["last_error_kind"] = json!("http_status");
    d["last_error"] = json!("HTTP 503 Service Unavailable");
    d["delivered_at"] = json!(null);
    d["updated_at"] = json!(UPDATED_AT);
    d
}

pub fn attempts() -> Vec<Value> {
    vec![
        json!({
            "id": ATTEMPT_ID,
            "delivery_id": DELIVERY_ID,
            "attempt": 1,
            "subscription_id": SUBSCRIPTION_ID,
            "request_id": REQUEST_ID,
            "triggered_by": null,
            "url": URL,
            "started_at": "2026-02-14T10:30:00.201000Z",
            "duration_ms": 412,
            "status_code": 503,
            "outcome": "pending",
            "error_kind": "http_status",
            "error_message": "HTTP 503 Service Unavailable",
            "response_excerpt": "{\"error\":\"maintenance\"}",
            "next_attempt_at": "2026-02-14T10:30:30.201000Z"
        }),
        json!({
            "id": "01936f2e-7d11-7c44-b155-5e6f708192a3",
            "delivery_id": DELIVERY_ID,
            "attempt": 2,
            "subscription_id": SUBSCRIPTION_ID,
            "request_id": REQUEST_ID,
            "triggered_by": null,
            "url": URL,
            "started_at": "2026-02-14T10:30:31.120000Z",
            "duration_ms": 96,
            "status_code": 200,
            "outcome": "delivered",
            "error_kind": null,
            "error_message": null,
            "response_excerpt": "{\"received\":true}",
            "next_attempt_at": null
        }),
    ]
}

/// The envelope receivers get for the example invoice.
pub fn envelope() -> Value {
    json!({
        "id": EVENT_ID,
        "timestamp": "2026-02-14T10:30:00.123Z",
        "event": "invoice.created",
        "data": invoice_created(),
        "tenant_id": TENANT_ID,
        "resource_type": "invoice",
        "resource_id": "inv-123"
    })
}

pub fn delivery_detail() -> Value {
    let mut d = delivery();
    d["payload"] = envelope();
    d["attempt_log"] = json!(attempts());
    d
}

pub fn delivery_page() -> Value {
    json!({"data": [delivery()]})
}

pub fn attempt_list() -> Value {
    json!({"data": attempts()})
}

pub fn recover() -> Value {
    json!({"since": "2026-02-14T00:00:00Z"})
}

pub fn recovered() -> Value {
    json!({"recovered": 2, "delivery_ids": [DELIVERY_ID, SECOND_DELIVERY_ID]})
}

pub fn test_sent() -> Value {
    json!({"event_id": EVENT_ID, "delivery_id": DELIVERY_ID})
}

pub fn create_event_type() -> Value {
    json!({
        "name": "credit_note.issued",
        "group": "Credit notes",
        "description": "A credit note was issued against an invoice.",
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["credit_note_id", "invoice_id", "amount"],
            "properties": {
                "credit_note_id": {"type": "string"},
                "invoice_id": {"type": "string"},
                "amount": {"type": "string"},
                "reason": {"type": "string"}
            }
        },
        "example": {
            "credit_note_id": "cn-77",
            "invoice_id": "inv-123",
            "amount": "150.00",
            "reason": "Damaged goods"
        }
    })
}

pub fn event_type() -> Value {
    let mut v = create_event_type();
    v["deprecated"] = json!(false);
    v["archived"] = json!(false);
    v["builtin"] = json!(false);
    v["created_at"] = json!(CREATED_AT);
    v["updated_at"] = json!(CREATED_AT);
    v
}

pub fn builtin_event_type() -> Value {
    json!({
        "name": "invoice.created",
        "group": "Invoices",
        "description": "An invoice was created.",
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["invoice_id", "invoice_number", "amount", "currency"],
            "properties": {
                "invoice_id": {"type": "string"},
                "invoice_number": {"type": "string"},
                "amount": {"type": "string"},
                "currency": {"type": "string"},
                "customer": {"type": "string"},
                "status": {"type": "string"}
            }
        },
        "example": invoice_created(),
        "deprecated": false,
        "archived": false,
        "builtin": true,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT
    })
}

pub fn update_event_type() -> Value {
    json!({"description": "A credit note was issued against an invoice (partial or full).", "deprecated": true})
}

pub fn updated_event_type() -> Value {
    let mut v = event_type();
    v["description"] = json!("A credit note was issued against an invoice (partial or full).");
    v["deprecated"] = json!(true);
    v["deprecated_at"] = json!(UPDATED_AT);
    v["updated_at"] = json!(UPDATED_AT);
    v
}

pub fn event_type_page() -> Value {
    json!({
        "data": [builtin_event_type()],
        "groups": [{"name": "Invoices", "event_types": ["invoice.created"]}],
        "next_cursor": "MTc3MTA2NTAwMDEyMzQ1NjowMTkzNmYyZS00YTEwLTdjM2QtOGU0Zi0xYTJiM2M0ZDVlMDE"
    })
}

pub fn settings(strict: bool) -> Value {
    json!({"strict_event_types": strict})
}

fn audit_event() -> Value {
    json!({
        "position": 1043,
        "tx_id": 88412,
        "aggregate_type": "Delivery",
        "aggregate_id": DELIVERY_ID,
        "sequence": 1,
        "event_type": "DeliveryEnqueued",
        "event_version": "2.0",
        "payload": {"DeliveryEnqueued": {
            "tenant_id": TENANT_ID,
            "subscription_id": SUBSCRIPTION_ID,
            "event_id": EVENT_ID,
            "event_type": "invoice.created",
            "url": URL
        }},
        "metadata": {
            "request_id": REQUEST_ID,
            "tenant_id": TENANT_ID,
            "actor": format!("api_key:{KEY_ID}"),
            "occurred_at": CREATED_AT
        },
        "recorded_at": CREATED_AT
    })
}

pub fn audit_page() -> Value {
    json!({"data": [audit_event()], "next_after": 1043})
}

pub fn trace() -> Value {
    json!({
        "request_id": REQUEST_ID,
        "summary": {"events": 1, "deliveries": 1, "attempts": 2},
        "events": [audit_event()],
        "deliveries": [delivery()],
        "attempts": attempts(),
        "next": {}
    })
}

pub fn trace_deliveries() -> Value {
    json!({"data": [delivery()]})
}

pub fn trace_attempts() -> Value {
    json!({"data": attempts()})
}

pub fn tenant_request() -> Value {
    json!({"name": "Acme Corp"})
}

pub fn created_tenant() -> Value {
    json!({"tenant_id": TENANT_ID, "api_key": API_KEY})
}

pub fn tenant() -> Value {
    json!({
        "id": TENANT_ID,
        "name": "Acme Corp",
        "status": "active",
        "active_keys": 1,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT
    })
}

pub fn tenant_page() -> Value {
    json!({"data": [tenant()]})
}

pub fn issued_key(rotated: bool) -> Value {
    let mut v = json!({
        "id": NEW_KEY_ID,
        "api_key": NEW_API_KEY,
        "hint": "hlk_…k1vQ",
        "created_at": UPDATED_AT
    });
    if rotated {
        v["previous_key_id"] = json!(KEY_ID);
        v["previous_key_expires_at"] = json!("2026-02-14T12:05:42.654321Z");
    }
    v
}

pub fn api_keys() -> Value {
    json!({"data": [
        {"id": KEY_ID, "hint": "hlk_…qGEI", "created_at": CREATED_AT, "revoked_at": null, "active": true}
    ]})
}

pub const SOURCE_ID: &str = "01936f2f-1a20-7b44-9c55-6d7e8f901a2b";
pub const UPSTREAM_ID: &str = "01936f2f-2b30-7c55-8d66-7e8f901a2b3c";
pub const SOURCE_SECRET: &str = "c2VjcmV0LWZyb20taW5mbG93LTEyMzQ1Njc4OTA=";

/// An InFlow source as created (secret in full) or read (masked).
pub fn source(revealed: bool) -> Value {
    json!({
        "id": SOURCE_ID,
        "tenant_id": TENANT_ID,
        "name": "InFlow sales orders",
        "kind": "inflow",
        "ingest_url": format!("https://hooks.example.com/in/{SOURCE_ID}"),
        "event_type": "/event",
        "data": "/data",
        "idempotency": {"window_seconds": 86400},
        "status": "active",
        "secret": if revealed { SOURCE_SECRET } else { "c2Vj…OTA=" },
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT
    })
}

pub fn create_source() -> Value {
    json!({
        "name": "InFlow sales orders",
        "kind": "inflow",
        "event_type": "/event",
        "data": "/data"
    })
}

pub fn update_source() -> Value {
    json!({"name": "InFlow sales orders (warehouse 2)"})
}

pub fn rejection() -> Value {
    json!({"data": [{
        "id": 17,
        "source_id": SOURCE_ID,
        "reason": "signature_invalid",
        "detail": "the x-inflow-hmac-sha256 signature does not match the body",
        "remote_addr": "203.0.113.7:50312",
        "request_id": REQUEST_ID,
        "body_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "body_bytes": 88,
        "received_at": CREATED_AT
    }]})
}

/// InFlow's delivery, as its seed shows it.
pub fn inflow_delivery() -> Value {
    json!({
        "event": "salesOrder.updated",
        "data": {"salesOrderId": "8d0bb46c-3c4e-4c8f-9a0f-5d2a5b7e1c11"},
        "timestamp": "2025-10-28T12:00:00Z"
    })
}

pub fn inbound_accepted() -> Value {
    json!({
        "status": "accepted",
        "inbound_id": "01936f2f-3c40-7d66-9e77-8f901a2b3c4d",
        "event_id": EVENT_ID,
        "deliveries": 2
    })
}

pub fn provision_siigo() -> Value {
    json!({
        "via_source": true,
        "events": ["products.create", "products.stock.update"],
        "username": "api@acme.example.com",
        "access_key": "YTk5ZWM3ZjEtYWNtZS1rZXk=",
        "client_id": "AcmeHookline",
        "client_secret": "acme-client-secret",
        "description": "Acme stock to the ERP",
        "headers": {"X-Erp-Token": "erp-token-5f2c81d9"}
    })
}

pub fn upstream(with_source: bool) -> Value {
    let mut v = json!({
        "id": UPSTREAM_ID,
        "tenant_id": TENANT_ID,
        "provider": "siigo",
        "base_url": "https://api.siigo.com",
        "url": format!("https://hooks.example.com/in/{SOURCE_ID}"),
        "events": [
            {"event": "products.create", "topic": "public.siigoapi.products.create",
             "upstream_id": "a5e1c1b0-1d3f-4e57-9c61-0f4a3e2b1c01"},
            {"event": "products.stock.update", "topic": "public.siigoapi.products.stock.update",
             "upstream_id": "a5e1c1b0-1d3f-4e57-9c61-0f4a3e2b1c02"}
        ],
        "upstream_ids": ["a5e1c1b0-1d3f-4e57-9c61-0f4a3e2b1c01", "a5e1c1b0-1d3f-4e57-9c61-0f4a3e2b1c02"],
        "description": "Acme stock to the ERP",
        "header_names": ["x-erp-token", "x-hookline-secret"],
        "source_id": SOURCE_ID,
        "account": "api@a…e.com",
        "status": "active",
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT
    });
    if with_source {
        let mut s = source(true);
        s["name"] = json!("Siigo products");
        s["kind"] = json!("header-secret");
        s["header_name"] = json!("x-hookline-secret");
        s["event_type"] = json!("/topic");
        s["data"] = json!("");
        s["secret"] = json!("Q2zV8b1mX3nR5tY7uI9oP1aS3dF5gH7j");
        v["source"] = s;
    }
    v
}

pub fn inflow_subscribe() -> Value {
    json!({
        "webHookSubscriptionId": SUBSCRIPTION_ID,
        "webHookSubscriptionRequestId": "5b1f0c2e-8a44-4d0e-9b57-1c2d3e4f5a6b",
        "url": URL,
        "events": ["salesOrder.created", "salesOrder.updated"]
    })
}

pub fn inflow_subscription(revealed: bool) -> Value {
    let mut v = json!({
        "webHookSubscriptionId": SUBSCRIPTION_ID,
        "url": URL,
        "events": ["salesOrder.created", "salesOrder.updated"],
        "isDisabled": false
    });
    if revealed {
        v["secret"] = json!(SOURCE_SECRET);
    }
    v
}
