//! The console's static files, embedded in the binary (no CDN, no build
//! step): served under a name carrying a hash of their content, so they can
//! be cached for a year and a new binary's files are fetched anew.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/console.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/icon.svg"),
    },
];

/// Each file's served name (`console-1a2b3c4d5e.css`) and ETag.
static NAMES: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| {
            let hash = hex::encode(&Sha256::digest(a.bytes)[..5]);
            let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
            (format!("{stem}-{hash}.{ext}"), format!("\"{hash}\""))
        })
        .collect()
});

/// The URL of an embedded file.
pub fn url(name: &str) -> String {
    FILES
        .iter()
        .position(|a| a.name == name)
        .and_then(|i| NAMES.get(i))
        .map_or_else(
            || format!("/console/assets/{name}"),
            |(served, _)| format!("/console/assets/{served}"),
        )
}

/// `GET /console/assets/{file}`.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = NAMES.iter().position(|(served, _)| *served == file) else {
        return super::web::Failure::new(StatusCode::NOT_FOUND, "page_not_found").into_response();
    };
    let (Some(asset), Some((_, etag))) = (FILES.get(i), NAMES.get(i)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [cache, (header::ETAG, etag_value)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            cache,
            (header::ETAG, etag_value),
        ],
        asset.bytes,
    )
        .into_response()
}
