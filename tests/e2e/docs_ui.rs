//! `GET /docs` in a real browser: headless Chromium, with every address but
//! the server's loopback made unreachable, loads the page and its embedded
//! assets, renders every operation of the document, and reports no
//! Content-Security-Policy violation.

use hookline_tests::TestApp;
use std::process::Stdio;
use std::time::Duration;

/// Debian's Chromium; `scripts/test` installs it.
fn chromium() -> &'static str {
    for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(path).exists() {
            return path;
        }
    }
    panic!("Chromium is missing: install the Debian packages chromium and chromium-driver (scripts/test does it)");
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_offline() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    for (file, kind) in [
        ("docs.js", "text/javascript"),
        ("swagger-ui-5.35.0.js", "text/javascript"),
        ("swagger-ui-5.35.0.css", "text/css"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/docs/assets/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{file}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
    let missing = app
        .client
        .get(app.url("/docs/assets/x.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let profile = tempfile::tempdir().unwrap();
    let shot = std::env::var("HOOKLINE_DOCS_SCREENSHOT").ok();
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // Nothing but the server: every other name fails to resolve and
        // every other connection goes to a dead proxy.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
        "--window-size=1280,1600",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match &shot {
        Some(path) => cmd.arg(format!("--screenshot={path}")),
        None => cmd.arg("--dump-dom"),
    };
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        cmd.arg(app.url("/docs"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("Chromium finished within 90 s")
    .expect("Chromium runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains("Content Security Policy") && !log.contains("Refused to"),
        "CSP violations:\n{log}"
    );
    if shot.is_some() {
        return;
    }
    let dom = String::from_utf8_lossy(&out.stdout);
    // Swagger UI rendered the document: the title, and one block per
    // operation with its path.
    assert!(
        dom.contains("swagger-ui"),
        "{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("Hookline"), "the document's title is shown");
    let blocks = dom.matches("opblock-summary-path").count();
    assert!(blocks >= 71, "{blocks} operations rendered");
    for path in [
        "/v1/subscriptions",
        "/v1/event-types/{name}/example",
        "/admin/tenants",
    ] {
        assert!(dom.contains(path), "{path} is on the page");
    }
}
