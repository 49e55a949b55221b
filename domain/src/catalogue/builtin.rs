//! The catalogue every tenant starts with: the business events of the
//! systems Hookline grew from (invoices, payments, customers, sales orders,
//! inventory, purchase orders, documents, errors), grouped, each with a
//! JSON Schema for its `data` and an example. A tenant may change, deprecate
//! or archive any of them, or add its own.

/// One built-in event type, as JSON text (parsed when used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub group: &'static str,
    pub description: &'static str,
    pub schema: &'static str,
    pub example: &'static str,
}

/// `{"type": "object", "required": [...], "properties": {...}}` with the
/// given properties, each a string unless said otherwise.
macro_rules! schema {
    ($($req:literal),* ; $($prop:literal : $ty:literal),* $(,)?) => {
        concat!(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["#,
            schema!(@list $($req),*),
            r#"],"properties":{"#,
            schema!(@props $($prop : $ty),*),
            "}}"
        )
    };
    (@list) => { "" };
    (@list $first:literal $(, $rest:literal)*) => {
        concat!("\"", $first, "\"" $(, ",\"", $rest, "\"")*)
    };
    (@props $first:literal : $fty:literal $(, $prop:literal : $ty:literal)*) => {
        concat!("\"", $first, "\":{\"type\":\"", $fty, "\"}" $(, ",\"", $prop, "\":{\"type\":\"", $ty, "\"}")*)
    };
}

pub const BUILTINS: [Builtin; 24] = [
    Builtin {
        name: "invoice.created",
        group: "Invoices",
        description: "An invoice was created.",
        schema: schema!("invoice_id", "invoice_number", "amount", "currency";
            "invoice_id": "string", "invoice_number": "string", "amount": "string",
            "currency": "string", "customer": "string", "status": "string"),
        example: r#"{"invoice_id":"inv-123","invoice_number":"001-001-000000001","amount":"1500.00","currency":"USD","customer":"Acme Corp","status":"draft"}"#,
    },
    Builtin {
        name: "invoice.sent",
        group: "Invoices",
        description: "An invoice was sent to its customer.",
        schema: schema!("invoice_id", "sent_at";
            "invoice_id": "string", "invoice_number": "string", "sent_at": "string"),
        example: r#"{"invoice_id":"inv-123","invoice_number":"001-001-000000001","sent_at":"2024-02-14T10:30:00"}"#,
    },
    Builtin {
        name: "invoice.authorized",
        group: "Invoices",
        description: "The tax authority authorized an invoice.",
        schema: schema!("invoice_id", "authorization_number";
            "invoice_id": "string", "authorization_number": "string", "authorization_date": "string"),
        example: r#"{"invoice_id":"inv-123","authorization_number":"1234567890","authorization_date":"2024-02-14T10:35:00"}"#,
    },
    Builtin {
        name: "invoice.rejected",
        group: "Invoices",
        description: "The tax authority rejected an invoice.",
        schema: schema!("invoice_id", "rejection_reason";
            "invoice_id": "string", "rejection_reason": "string", "rejected_at": "string"),
        example: r#"{"invoice_id":"inv-123","rejection_reason":"Invalid RUC","rejected_at":"2024-02-14T10:40:00"}"#,
    },
    Builtin {
        name: "invoice.cancelled",
        group: "Invoices",
        description: "An invoice was cancelled.",
        schema: schema!("invoice_id";
            "invoice_id": "string", "reason": "string", "cancelled_at": "string"),
        example: r#"{"invoice_id":"inv-123","reason":"Duplicated","cancelled_at":"2024-02-15T09:00:00"}"#,
    },
    Builtin {
        name: "payment.received",
        group: "Payments",
        description: "A payment was received.",
        schema: schema!("payment_id", "amount";
            "payment_id": "string", "invoice_id": "string", "amount": "string",
            "method": "string", "reference": "string", "received_at": "string"),
        example: r#"{"payment_id":"pay-456","invoice_id":"inv-123","amount":"1500.00","method":"bank_transfer","reference":"TR-2024-001","received_at":"2024-02-14T11:00:00"}"#,
    },
    Builtin {
        name: "payment.failed",
        group: "Payments",
        description: "A payment failed.",
        schema: schema!("payment_id", "reason";
            "payment_id": "string", "invoice_id": "string", "amount": "string",
            "reason": "string", "failed_at": "string"),
        example: r#"{"payment_id":"pay-457","invoice_id":"inv-124","amount":"80.00","reason":"card_declined","failed_at":"2024-02-14T11:05:00"}"#,
    },
    Builtin {
        name: "customer.created",
        group: "Customers",
        description: "A customer was created.",
        schema: schema!("customer_id", "business_name";
            "customer_id": "string", "business_name": "string", "ruc": "string",
            "country": "string", "created_at": "string"),
        example: r#"{"customer_id":"cust-789","business_name":"Acme Corp","ruc":"1234567890001","country":"Ecuador","created_at":"2024-02-14T12:00:00"}"#,
    },
    Builtin {
        name: "customer.updated",
        group: "Customers",
        description: "A customer was updated.",
        schema: schema!("customer_id";
            "customer_id": "string", "business_name": "string", "updated_at": "string"),
        example: r#"{"customer_id":"cust-789","business_name":"Acme Corp Updated","updated_at":"2024-02-14T12:05:00"}"#,
    },
    Builtin {
        name: "sales_order.created",
        group: "Sales orders",
        description: "A sales order was created.",
        schema: concat!(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["order_id"],"#,
            r#""properties":{"order_id":{"type":"string"},"customer_id":{"type":"string"},"amount":{"type":"string"},"#,
            r#""items_count":{"type":"integer","minimum":0},"created_at":{"type":"string"}}}"#
        ),
        example: r#"{"order_id":"so-001","customer_id":"cust-789","amount":"2500.00","items_count":5,"created_at":"2024-02-14T13:00:00"}"#,
    },
    Builtin {
        name: "sales_order.confirmed",
        group: "Sales orders",
        description: "A sales order was confirmed.",
        schema: schema!("order_id"; "order_id": "string", "confirmed_at": "string"),
        example: r#"{"order_id":"so-001","confirmed_at":"2024-02-14T13:15:00"}"#,
    },
    Builtin {
        name: "sales_order.cancelled",
        group: "Sales orders",
        description: "A sales order was cancelled.",
        schema: schema!("order_id";
            "order_id": "string", "reason": "string", "cancelled_at": "string"),
        example: r#"{"order_id":"so-002","reason":"customer_request","cancelled_at":"2024-02-14T14:00:00"}"#,
    },
    Builtin {
        name: "inventory.updated",
        group: "Inventory",
        description: "A product's stock level changed.",
        schema: concat!(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["product_id","quantity"],"#,
            r#""properties":{"product_id":{"type":"string"},"warehouse":{"type":"string"},"quantity":{"type":"number"},"#,
            r#""updated_at":{"type":"string"}}}"#
        ),
        example: r#"{"product_id":"prod-42","warehouse":"main","quantity":120,"updated_at":"2024-02-14T15:00:00"}"#,
    },
    Builtin {
        name: "inventory.low",
        group: "Inventory",
        description: "A product's stock fell below its minimum.",
        schema: concat!(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["product_id","quantity","minimum"],"#,
            r#""properties":{"product_id":{"type":"string"},"warehouse":{"type":"string"},"quantity":{"type":"number"},"#,
            r#""minimum":{"type":"number"}}}"#
        ),
        example: r#"{"product_id":"prod-42","warehouse":"main","quantity":3,"minimum":10}"#,
    },
    Builtin {
        name: "purchase_order.created",
        group: "Purchase orders",
        description: "A purchase order was created.",
        schema: schema!("purchase_order_id";
            "purchase_order_id": "string", "supplier_id": "string", "amount": "string", "created_at": "string"),
        example: r#"{"purchase_order_id":"po-77","supplier_id":"sup-9","amount":"980.00","created_at":"2024-02-14T16:00:00"}"#,
    },
    Builtin {
        name: "document.updated",
        group: "Documents",
        description: "A document was updated.",
        schema: schema!("document_id";
            "document_id": "string", "document_type": "string", "updated_at": "string"),
        example: r#"{"document_id":"doc-5","document_type":"credit_note","updated_at":"2024-02-14T17:00:00"}"#,
    },
    Builtin {
        name: "error.occurred",
        group: "Errors",
        description: "An error occurred in an integration.",
        schema: schema!("code", "message";
            "code": "string", "message": "string", "source": "string", "occurred_at": "string"),
        example: r#"{"code":"sri_timeout","message":"The tax authority did not answer","source":"invoicing","occurred_at":"2024-02-14T18:00:00"}"#,
    },
    Builtin {
        name: "webhook.test",
        group: "hookline",
        description: "A test event, sent by POST /v1/subscriptions/{id}/test to one subscription whatever its filter.",
        schema: schema!("message", "subscription_id"; "message": "string", "subscription_id": "string"),
        example: r#"{"message":"This is a test event sent by Hookline.","subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e"}"#,
    },
    Builtin {
        name: "hookline.subscription.disabled",
        group: "hookline",
        description: "One of the tenant's subscriptions was disabled: by an API client, after its receiver answered 410 Gone, or automatically after failing for HOOKLINE_AUTO_DISABLE_AFTER (reason `auto: failing since …`). Events it matches are recorded as skipped deliveries until it is enabled.",
        schema: schema!("subscription_id", "url", "reason", "disabled_at";
            "subscription_id": "string", "url": "string", "description": "string", "reason": "string",
            "automatic": "boolean", "disabled_at": "string"),
        example: r#"{"subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e","url":"https://erp.example.com/hooks","description":"ERP","reason":"auto: failing since 2024-02-09T18:00:00Z","automatic":true,"disabled_at":"2024-02-14T18:00:00.000Z"}"#,
    },
    Builtin {
        name: "hookline.subscription.enabled",
        group: "hookline",
        description: "One of the tenant's subscriptions was enabled again; `POST /v1/subscriptions/{id}/recover` sends what was skipped meanwhile.",
        schema: schema!("subscription_id", "url", "enabled_at";
            "subscription_id": "string", "url": "string", "description": "string", "enabled_at": "string"),
        example: r#"{"subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e","url":"https://erp.example.com/hooks","description":"ERP","enabled_at":"2024-02-14T19:00:00.000Z"}"#,
    },
    Builtin {
        name: "hookline.circuit.opened",
        group: "hookline",
        description: "A subscription's circuit opened after HOOKLINE_CIRCUIT_FAILURE_THRESHOLD consecutive failed attempts: its deliveries wait (using up no retries) while one probe per interval tests the receiver.",
        schema: schema!("subscription_id", "url", "consecutive_failures", "cause", "opened_at", "next_probe_at";
            "subscription_id": "string", "url": "string", "description": "string",
            "consecutive_failures": "integer", "cause": "object", "opened_at": "string", "next_probe_at": "string"),
        example: r#"{"subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e","url":"https://erp.example.com/hooks","description":"ERP","consecutive_failures":10,"cause":{"delivery_id":"0193f2c5-0000-7000-8000-000000000001","error_kind":"http_status","status_code":503,"message":"the receiver answered 503","failed_at":"2024-02-14T18:00:00.000Z"},"opened_at":"2024-02-14T18:00:01.000Z","next_probe_at":"2024-02-14T18:00:31.000Z"}"#,
    },
    Builtin {
        name: "hookline.circuit.closed",
        group: "hookline",
        description: "A subscription's circuit closed: a probe succeeded, and its waiting deliveries go out in due order within its rate limit. (Enabling a subscription also clears its circuit, announced as hookline.subscription.enabled.)",
        schema: schema!("subscription_id", "url", "closed_at";
            "subscription_id": "string", "url": "string", "description": "string",
            "delivery_id": "string", "closed_at": "string"),
        example: r#"{"subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e","url":"https://erp.example.com/hooks","description":"ERP","delivery_id":"0193f2c5-0000-7000-8000-000000000001","closed_at":"2024-02-14T18:10:00.000Z"}"#,
    },
    Builtin {
        name: "hookline.delivery.abandoned",
        group: "hookline",
        description: "A delivery used up its retries without success. `POST /v1/deliveries/{id}/retry` sends it again. Never sent about deliveries of operational events.",
        schema: schema!("delivery_id", "subscription_id", "event_id", "event_type", "url", "attempts", "abandoned_at";
            "delivery_id": "string", "subscription_id": "string", "event_id": "string", "event_type": "string",
            "url": "string", "attempts": "integer", "last_status_code": "integer", "last_error_kind": "string",
            "last_error": "string", "request_id": "string", "abandoned_at": "string"),
        example: r#"{"delivery_id":"0193f2c5-0000-7000-8000-000000000001","subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e","event_id":"0193f2c5-0000-7000-8000-000000000002","event_type":"invoice.created","url":"https://erp.example.com/hooks","attempts":6,"last_status_code":500,"last_error_kind":"http_status","last_error":"the receiver answered 500","request_id":"req-42","abandoned_at":"2024-02-14T20:00:00.000Z"}"#,
    },
    Builtin {
        name: "hookline.secret.rotation_ending",
        group: "hookline",
        description: "A subscription's previous signing secret stops being used for signatures in an hour (or sooner, for a shorter overlap): receivers still verifying with it must switch to the new one.",
        schema: schema!("subscription_id", "url", "previous_secret_hint", "secret_hint", "previous_secret_expires_at";
            "subscription_id": "string", "url": "string", "description": "string",
            "previous_secret_hint": "string", "secret_hint": "string", "previous_secret_expires_at": "string"),
        example: r#"{"subscription_id":"0193f2c4-5b6e-7c3a-9d2e-6f1a2b3c4d5e","url":"https://erp.example.com/hooks","description":"ERP","previous_secret_hint":"whsec_…a1b2","secret_hint":"whsec_…c3d4","previous_secret_expires_at":"2024-02-15T18:00:00.000Z"}"#,
    },
];

/// The built-in event type with this name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_valid_json_with_an_example_of_its_schema_kind() {
        for b in BUILTINS {
            let schema: serde_json::Value = serde_json::from_str(b.schema).unwrap();
            let example: serde_json::Value = serde_json::from_str(b.example).unwrap();
            assert_eq!(schema["type"], "object", "{}", b.name);
            assert!(example.is_object(), "{}", b.name);
            for required in schema["required"].as_array().unwrap() {
                assert!(
                    example.get(required.as_str().unwrap()).is_some(),
                    "{}: example lacks {required}",
                    b.name
                );
            }
            crate::EventType::parse(b.name, "name").unwrap();
        }
    }
}
