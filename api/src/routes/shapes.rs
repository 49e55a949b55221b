//! `/v1` and `/admin` operations refuse what they do not take: a query
//! string where the operation has no query parameters (`400 invalid_query`,
//! as an unknown parameter is where it has some), and a body where it takes
//! none (`400 invalid_body`; none, or `{}`, is fine). Which operations take
//! what is read from the OpenAPI document the routes are built with, so the
//! two cannot disagree.

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::openapi::OpenApi;

/// Most bytes read from a body an operation does not take (enough for
/// `{}` with some whitespace).
const EMPTY_ENOUGH: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Shape {
    query: bool,
    body: bool,
}

/// The methods operations are routed on, in the order of [`slot`].
const METHODS: [Method; 5] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::PATCH,
];

/// Where `method`'s shape is kept in a route template's entry.
fn slot(method: &Method) -> Option<usize> {
    METHODS.iter().position(|m| m == method)
}

/// What each operation takes, by route template and then method (looked up
/// by `&str` on every request: no allocation).
#[derive(Debug, Default)]
pub struct Shapes(HashMap<String, [Option<Shape>; 5]>);

/// Whether the template is one of the refusing ones.
pub fn refuses(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/v1" || path.starts_with("/admin")
}

impl Shapes {
    pub fn of(api: &OpenApi) -> Arc<Self> {
        let mut map = HashMap::new();
        for (path, item) in &api.paths.paths {
            if !refuses(path) {
                continue;
            }
            let mut shapes = [None; 5];
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for (shape, op) in shapes.iter_mut().zip(operations) {
                let Some(op) = op else { continue };
                let query = op
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
                let body = op.request_body.is_some();
                *shape = Some(Shape { query, body });
            }
            map.insert(path.clone(), shapes);
        }
        Arc::new(Self(map))
    }
}

pub async fn refuse_unexpected(
    State(shapes): State<Arc<Shapes>>,
    req: Request,
    next: Next,
) -> Response {
    let shape = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| shapes.0.get(p.as_str()))
        .zip(slot(req.method()))
        .and_then(|(entry, slot)| entry[slot]);
    let Some(shape) = shape else {
        return next.run(req).await;
    };
    if !shape.query && req.uri().query().is_some_and(|q| !q.is_empty()) {
        return ApiError::bad_request("invalid_query", "this operation takes no query parameters")
            .into_response();
    }
    let sends_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if shape.body || !sends_body || matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let refused = || {
        ApiError::bad_request(
            "invalid_body",
            "this operation takes no body (send none, or {})",
        )
        .into_response()
    };
    let Ok(bytes) = axum::body::to_bytes(body, EMPTY_ENOUGH).await else {
        return refused();
    };
    let trimmed = bytes.trim_ascii();
    if !trimmed.is_empty() && trimmed != b"{}" {
        return refused();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}
