//! `GET /docs`: the API reference, rendered from `/openapi.json` by Swagger
//! UI (swagger-ui-dist 5.35.0, Apache-2.0, vendored under `api/assets/`).
//! Every asset is embedded in the binary, so the page works offline; its
//! Content-Security-Policy allows nothing but this server.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const INDEX: &str = include_str!("../../assets/docs/index.html");
const DOCS_JS: &[u8] = include_bytes!("../../assets/docs/docs.js");
const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui-5.35.0/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui-5.35.0/swagger-ui.css");

/// Scripts and styles from this server only; the page fetches only
/// `/openapi.json` (and, with "Try it out", the API itself).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
/// Versioned file names never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(asset))
}

/// API reference (HTML)
///
/// This document rendered by Swagger UI, served with its assets from the
/// binary (no network needed).
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "get_docs_page",
    tag = "service",
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html",
            example = json!("<!doctype html><html lang=\"en\">…</html>")),
    )
)]
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX,
    )
        .into_response()
}

/// API reference assets
///
/// The page's script and style sheets: `docs.js`,
/// `swagger-ui-5.35.0.js`, `swagger-ui-5.35.0.css`.
#[utoipa::path(
    get,
    path = "/docs/assets/{file}",
    operation_id = "get_docs_asset",
    tag = "service",
    params(("file" = String, Path, description = "The asset's name.",
        pattern = r"^(docs\.js|swagger-ui-5\.35\.0\.(js|css))$", example = "docs.js")),
    responses(
        (status = 200, description = "The file: a script or a style sheet.", content(
            (String = "text/javascript", example = json!("window.addEventListener(\"load\", …);")),
            (String = "text/css", example = json!(".swagger-ui { … }")),
        )),
        (status = 404, description = "- `not_found`: no such asset", body = crate::error::ErrorBody),
    )
)]
async fn asset(Path(file): Path<String>) -> ApiResult<Response> {
    let (body, content_type, cache) = match file.as_str() {
        "docs.js" => (DOCS_JS, JS, "no-cache"),
        "swagger-ui-5.35.0.js" => (BUNDLE, JS, IMMUTABLE),
        "swagger-ui-5.35.0.css" => (CSS, "text/css; charset=utf-8", IMMUTABLE),
        _ => return Err(ApiError::not_found("no such asset of the docs page")),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
