//! One headless Chromium for every browser test: Debian's `chromedriver`
//! (which starts `/usr/bin/chromium`) on a free loopback port, driven with
//! fantoccini. Tests take turns with it (a lock) on one runtime; a watchdog
//! stops chromedriver and its browser when this test process ends.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hookline_tests::{eventually, Tenant, TestApp};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const WAIT: Duration = Duration::from_secs(20);
const AXE: &str = include_str!("../fixtures/axe-4.14.1.min.js");

struct Harness {
    rt: tokio::runtime::Runtime,
    client: Client,
    turn: Mutex<()>,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> Harness {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: the browser tests need Debian's packages `chromium` and \
             `chromium-driver` (scripts/test installs them when run as root)"
        );
    }
    let port = free_port();
    let me = std::process::id();
    // chromedriver and the browser it starts live in a process group of
    // their own; the watchdog ends the group once this process is gone (it
    // outlives this process by design, so it is not waited for).
    #[allow(clippy::zombie_processes)]
    let _watchdog = std::process::Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "{CHROMEDRIVER} --port={port} --allowed-ips=127.0.0.1 >/dev/null 2>&1 & \
             while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -TERM 0"
        ))
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt.block_on(async {
        let http = reqwest::Client::new();
        let status = format!("http://127.0.0.1:{port}/status");
        eventually("chromedriver answers", WAIT, || async {
            let r = http.get(&status).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,900", "--lang=en-US", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking"]
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session")
    });
    Harness {
        rt,
        client,
        turn: Mutex::new(()),
    }
}

/// Runs one browser test with the shared browser (tests take turns).
pub fn run<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let h = HARNESS.get_or_init(start);
    let _turn = h.turn.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    h.rt.block_on(async {
        let c = h.client.clone();
        let _ = c.set_window_size(1280, 900).await;
        test(c).await;
    });
    eprintln!(
        "browser test {name}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// Waits for the element and returns it.
pub async fn find(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
}

pub async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.expect("click");
}

pub async fn type_into(c: &Client, css: &str, text: &str) {
    let el = find(c, css).await;
    el.clear().await.expect("clear");
    el.send_keys(text).await.expect("type");
}

/// The page's visible text.
pub async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .unwrap_or_default()
}

/// Waits until the page's text contains `text` (looking again while a
/// navigation has no body yet).
pub async fn wait_text(c: &Client, text: &str) {
    eventually(&format!("the page shows {text:?}"), WAIT, || async {
        let body = c.find(Locator::Css("body")).await.ok()?;
        body.text().await.ok()?.contains(text).then_some(())
    })
    .await;
}

/// Waits until an element's text contains `text`.
pub async fn wait_text_in(c: &Client, css: &str, text: &str) {
    eventually(&format!("{css} shows {text:?}"), WAIT, || async {
        let el = c.find(Locator::Css(css)).await.ok()?;
        el.text().await.ok()?.contains(text).then_some(())
    })
    .await;
}

/// Waits until the browser is at a URL whose path starts with `path`.
pub async fn wait_path(c: &Client, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(url) = c.current_url().await {
            if url.path().starts_with(path) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the browser did not reach {path}: it is at {url}, showing:\n{}",
                    body_text(c).await
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in with a tenant's key through the sign-in form.
pub async fn sign_in(c: &Client, app: &TestApp, tenant: &Tenant) {
    c.delete_all_cookies().await.ok();
    c.goto(&app.url("/console/sign-in")).await.expect("goto");
    type_into(c, "#api_key", &tenant.api_key).await;
    click(c, "form:has(#api_key) button[type=submit]").await;
    wait_path(c, "/console/dashboard").await;
}

/// Signs in as the operator.
pub async fn sign_in_operator(c: &Client, app: &TestApp) {
    c.delete_all_cookies().await.ok();
    c.goto(&app.url("/console/sign-in")).await.expect("goto");
    type_into(c, "#admin_token", hookline_tests::server::ADMIN_TOKEN).await;
    click(c, "form:has(#admin_token) button[type=submit]").await;
    wait_path(c, "/console/tenants").await;
}

/// Saves a screenshot into docs/console/ when HOOKLINE_SCREENSHOTS is set
/// (the committed ones were made that way), else only takes it.
pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("HOOKLINE_SCREENSHOTS").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        std::fs::create_dir_all(&dir).expect("docs/console");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// axe-core's serious and critical violations on the current page.
pub async fn axe_violations(c: &Client) -> Vec<Value> {
    c.execute(AXE, vec![]).await.expect("inject axe");
    let result = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
                                   resultTypes: ["violations"] })
                  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                          nodes: v.nodes.map(n => n.html).slice(0, 3)}))))
                  .catch(e => done({error: String(e)}));"#,
            vec![],
        )
        .await
        .expect("run axe");
    let list = result
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("axe failed: {result}"));
    list.into_iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect()
}

/// Evaluates a JavaScript expression in the page.
pub async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .expect("execute")
}
