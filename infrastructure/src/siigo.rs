//! The Siigo API client behind the application's `SiigoApi` port. Its wire
//! contract is in docs/connectors/siigo.md:
//!
//! * `POST {base}/auth` `{"username", "access_key"}` (with `Partner-Id`)
//!   answers `{"access_token", "expires_in"}`;
//! * `POST {base}/v1/webhooks` `{"application_id", "name"?, "url", "topic",
//!   "headers"?}`, `GET {base}/v1/webhooks`, `DELETE {base}/v1/webhooks/{id}`
//!   with `Authorization: Bearer <token>` and `Partner-Id`.
//!
//! Tokens are cached per credential set for 25 minutes (less when Siigo
//! says they expire sooner), in memory and sealed in Postgres so every
//! process and CLI run shares them, and refreshed a minute before expiry,
//! one refresh at a time. A 401 refreshes the token once and retries once.
//! 5xx answers, 429 and timeouts are retried with backoff; a create is
//! only retried after checking it did not happen. TLS is verified unless
//! the base URL is a loopback address (the local sandbox).

use crate::sender::GuardedResolver;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::ports::{
    SecretCipher, SiigoAccount, SiigoApi, SiigoWebhook, SiigoWebhookRequest, UpstreamFailure,
};
use hookline_domain::{AllowList, Sealed};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `application_id` Hookline registers its subscriptions under.
pub const APPLICATION_ID: &str = "Hookline";
/// Most bytes of an answer read from Siigo (a list of a few thousand
/// subscriptions fits); a longer one is not read into memory.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Most characters of Siigo's error text put into a message.
const MAX_DETAIL_CHARS: usize = 300;

#[derive(Debug, Clone)]
pub struct SiigoSettings {
    /// How long a token is used at most (the seed's 25 minutes).
    pub token_ttl: Duration,
    /// Each request's total timeout.
    pub timeout: Duration,
    /// Tries of a call that fails transiently (5xx, 429, timeouts).
    pub attempts: u32,
    /// The first pause between tries; it doubles.
    pub backoff: Duration,
    /// Private ranges Siigo's base URL may resolve to (a sandbox).
    pub allow: AllowList,
}

impl Default for SiigoSettings {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(25 * 60),
            timeout: Duration::from_secs(15),
            attempts: 3,
            backoff: Duration::from_millis(200),
            allow: AllowList::default(),
        }
    }
}

#[derive(Clone)]
struct Token {
    value: String,
    expires_at: DateTime<Utc>,
}

impl Token {
    /// Used until a minute before it expires.
    fn fresh(&self) -> bool {
        Utc::now() + chrono::Duration::seconds(60) < self.expires_at
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Where tokens outlive the process: `upstream_tokens`, sealed.
#[derive(Clone)]
struct TokenStore {
    pool: PgPool,
    cipher: Arc<dyn SecretCipher>,
}

impl TokenStore {
    fn context(key: &str) -> String {
        format!("upstream-token:{key}")
    }

    async fn get(&self, key: &str) -> Option<Token> {
        let row: (Value, DateTime<Utc>) =
            sqlx::query_as("SELECT token, expires_at FROM upstream_tokens WHERE cache_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| tracing::warn!(error = %e, "reading a cached Siigo token failed"))
                .ok()??;
        let sealed: Sealed = serde_json::from_value(row.0).ok()?;
        let bytes = self.cipher.open(&sealed, &Self::context(key)).ok()?;
        Some(Token {
            value: String::from_utf8(bytes).ok()?,
            expires_at: row.1,
        })
    }

    async fn put(&self, key: &str, token: &Token) {
        let Ok(sealed) = self
            .cipher
            .seal(token.value.as_bytes(), &Self::context(key))
        else {
            return;
        };
        let Ok(json) = serde_json::to_value(&sealed) else {
            return;
        };
        if let Err(e) = sqlx::query(
            "INSERT INTO upstream_tokens (cache_key, token, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (cache_key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at",
        )
        .bind(key)
        .bind(json)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        {
            tracing::warn!(error = %e, "caching a Siigo token failed");
        }
    }
}

pub struct SiigoClient {
    verifying: reqwest::Client,
    /// For a loopback base URL only (the local sandbox): TLS unverified.
    loopback: reqwest::Client,
    slots: Mutex<HashMap<String, Slot>>,
    store: Option<TokenStore>,
    settings: SiigoSettings,
}

impl fmt::Debug for SiigoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiigoClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A transient failure (worth another try) or a final one.
enum CallError {
    Transient(String),
    Final(UpstreamFailure),
}

struct Answer {
    status: StatusCode,
    body: Value,
    /// Siigo's error text as Hookline may show it ([`detail_of`]).
    detail: String,
}

impl SiigoClient {
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(
        settings: SiigoSettings,
        store: Option<(PgPool, Arc<dyn SecretCipher>)>,
    ) -> Result<Self, reqwest::Error> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
                .timeout(settings.timeout)
                .user_agent(format!("Hookline/{}", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(GuardedResolver {
                    allow: settings.allow.clone(),
                }))
                .danger_accept_invalid_certs(insecure)
                .use_rustls_tls()
                .build()
        };
        Ok(Self {
            verifying: build(false)?,
            loopback: build(true)?,
            slots: Mutex::new(HashMap::new()),
            store: store.map(|(pool, cipher)| TokenStore { pool, cipher }),
            settings,
        })
    }

    /// The client for `base`: unverified TLS only for a loopback host;
    /// plain HTTP only to a loopback host.
    fn client_for(&self, base: &reqwest::Url) -> Result<&reqwest::Client, UpstreamFailure> {
        let loopback = match base.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        };
        if loopback {
            return Ok(&self.loopback);
        }
        if base.scheme() != "https" {
            return Err(UpstreamFailure::Protocol(
                "Siigo's base URL must use https:// (plain http only for a loopback sandbox)"
                    .into(),
            ));
        }
        Ok(&self.verifying)
    }

    fn url(base: &str, path: &str) -> Result<reqwest::Url, UpstreamFailure> {
        reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|e| UpstreamFailure::Protocol(format!("the base URL {base} is unusable: {e}")))
    }

    fn slot(&self, key: &str) -> Slot {
        match self.slots.lock() {
            Ok(mut slots) => slots.entry(key.to_string()).or_default().clone(),
            Err(_) => Slot::default(),
        }
    }

    /// One request, no retries: transport errors, 5xx and 429 are
    /// transient.
    async fn send(
        &self,
        account: &SiigoAccount,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let url = Self::url(&account.base_url, path).map_err(CallError::Final)?;
        let client = self.client_for(&url).map_err(CallError::Final)?;
        let mut request = client
            .request(method, url)
            .header("Accept", "application/json")
            .header("Partner-Id", &account.partner_id);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            CallError::Transient(if e.is_timeout() {
                format!("{path} timed out")
            } else {
                format!("{path} could not be reached: {}", without_url(&e))
            })
        })?;
        let status = response.status();
        // An answer cut off or too long is a lost answer: a create is
        // checked against Siigo's list before it is tried again.
        let text = read_bounded(response)
            .await
            .map_err(|why| CallError::Transient(format!("{path} answered {status}, but {why}")))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = detail_of(&text, account, bearer);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(CallError::Transient(format!(
                "{path} answered {status}: {detail}"
            )));
        }
        Ok(Answer {
            status,
            body,
            detail,
        })
    }

    /// Tries `call` until it succeeds, fails for good or the tries are
    /// used up.
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, UpstreamFailure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut pause = self.settings.backoff;
        let mut last = String::new();
        for attempt in 0..self.settings.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            match call().await {
                Ok(v) => return Ok(v),
                Err(CallError::Final(f)) => return Err(f),
                Err(CallError::Transient(why)) => {
                    tracing::warn!(attempt = attempt + 1, reason = %why, "Siigo call failed; retrying");
                    last = why;
                }
            }
        }
        Err(UpstreamFailure::Unavailable(last))
    }

    /// `POST /auth`.
    async fn authenticate(&self, account: &SiigoAccount) -> Result<Token, UpstreamFailure> {
        let body = json!({"username": account.username, "access_key": account.access_key});
        let answer = self
            .retrying(|| self.send(account, Method::POST, "/auth", None, Some(&body)))
            .await?;
        if !answer.status.is_success() {
            return Err(UpstreamFailure::Unauthorized(format!(
                "/auth answered {}: {}",
                answer.status,
                answer.detail.clone()
            )));
        }
        let value = answer
            .body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                UpstreamFailure::Protocol("/auth answered without an access_token".into())
            })?;
        let ttl = answer
            .body
            .get("expires_in")
            .and_then(Value::as_u64)
            .map_or(self.settings.token_ttl, |s| {
                Duration::from_secs(s).min(self.settings.token_ttl)
            });
        let ttl = chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::minutes(25));
        tracing::info!(base_url = %account.base_url, "Siigo token obtained");
        Ok(Token {
            value: value.to_string(),
            expires_at: Utc::now() + ttl,
        })
    }

    /// A fresh token for the account: cached (this process, then the
    /// shared store), or a new one. `stale` is a token Siigo just refused:
    /// it is never handed out again. One refresh at a time per account;
    /// callers waiting meanwhile get its result.
    async fn token(
        &self,
        account: &SiigoAccount,
        stale: Option<&str>,
    ) -> Result<Token, UpstreamFailure> {
        let key = cache_key(account);
        let slot = self.slot(&key);
        let mut held = slot.lock().await;
        let usable = |t: &Token| t.fresh() && Some(t.value.as_str()) != stale;
        if let Some(t) = held.as_ref().filter(|t| usable(t)) {
            return Ok(t.clone());
        }
        if let Some(store) = &self.store {
            if let Some(t) = store.get(&key).await.filter(|t| usable(t)) {
                *held = Some(t.clone());
                return Ok(t);
            }
        }
        let token = self.authenticate(account).await?;
        if let Some(store) = &self.store {
            store.put(&key, &token).await;
        }
        *held = Some(token.clone());
        Ok(token)
    }

    /// One authorised request: on a 401 the token is refreshed once and
    /// the request made once more.
    async fn authorised(
        &self,
        account: &SiigoAccount,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let token = self.token(account, None).await.map_err(CallError::Final)?;
        let answer = self
            .send(account, method.clone(), path, Some(&token.value), body)
            .await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        tracing::info!("Siigo refused the cached token; refreshing it once");
        let fresh = self
            .token(account, Some(&token.value))
            .await
            .map_err(CallError::Final)?;
        let answer = self
            .send(account, method, path, Some(&fresh.value), body)
            .await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Err(CallError::Final(UpstreamFailure::Unauthorized(format!(
                "{path} answered 401 with a fresh token: {}",
                answer.detail.clone()
            ))));
        }
        Ok(answer)
    }

    /// A subscription Siigo already has for this URL and topic (a create
    /// whose answer was lost). Siigo's list is a bare array, or
    /// `{results: […]}` pages (with `pagination.total_results`), read one
    /// `?page=N` after the other until one holds it, they hold that many,
    /// a page comes back empty, or [`MAX_LIST_PAGES`] were read. A page
    /// that cannot be read ends the search with what was found before it
    /// (nothing).
    async fn existing(
        &self,
        account: &SiigoAccount,
        request: &SiigoWebhookRequest,
    ) -> Option<SiigoWebhook> {
        let found = |items: &[Value]| {
            items.iter().find_map(|item| {
                let same = item.get("url").and_then(Value::as_str) == Some(request.url.as_str())
                    && item.get("topic").and_then(Value::as_str) == Some(request.topic.as_str());
                same.then(|| webhook(item, &request.topic)).flatten()
            })
        };
        let mut seen: u64 = 0;
        for page in 1..=MAX_LIST_PAGES {
            let path = if page == 1 {
                "/v1/webhooks".to_string()
            } else {
                format!("/v1/webhooks?page={page}")
            };
            let answer = self
                .retrying(|| self.authorised(account, Method::GET, &path, None))
                .await
                .ok()?;
            if !answer.status.is_success() {
                return None;
            }
            let Value::Object(mut map) = answer.body else {
                return match answer.body {
                    Value::Array(all) => found(&all),
                    _ => None,
                };
            };
            let items = match map.remove("results") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            if let Some(hit) = found(&items) {
                return Some(hit);
            }
            seen += items.len() as u64;
            let total = map
                .get("pagination")
                .and_then(|p| p.get("total_results"))
                .and_then(Value::as_u64);
            if items.is_empty() || total.is_none_or(|t| seen >= t) {
                return None;
            }
        }
        None
    }
}

fn refused(answer: &Answer) -> UpstreamFailure {
    UpstreamFailure::Refused {
        status: answer.status.as_u16(),
        detail: answer.detail.clone(),
    }
}

/// Pages of Siigo's list read at most (a lost create is looked for in
/// them): thousands of subscriptions at Siigo's page sizes.
const MAX_LIST_PAGES: u32 = 100;

/// Text from Siigo's answer that Hookline records: 1–256 characters, none
/// of them a control character (a NUL cannot be stored in the read
/// models, and would stop them for every tenant).
fn recordable(text: &str) -> Option<&str> {
    let fits =
        !text.is_empty() && text.chars().count() <= 256 && !text.chars().any(char::is_control);
    fits.then_some(text)
}

/// Siigo's subscription in its answer; `None` when it has no id Hookline
/// can record.
fn webhook(item: &Value, topic: &str) -> Option<SiigoWebhook> {
    let id = match item.get("id")? {
        Value::String(s) => recordable(s)?.to_string(),
        // A whole number Hookline holds exactly; a larger one (or a
        // fraction) arrives rounded, and removing it at Siigo would
        // name another webhook.
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return None,
    };
    let text = |field: &str| item.get(field).and_then(Value::as_str).and_then(recordable);
    Some(SiigoWebhook {
        id,
        topic: text("topic").unwrap_or(topic).to_string(),
        company_key: text("company_key").map(str::to_string),
    })
}

/// The credential set a token belongs to, as a digest (no secret in
/// the key).
fn cache_key(account: &SiigoAccount) -> String {
    let mut digest = Sha256::new();
    for part in [
        account.base_url.trim_end_matches('/'),
        &account.username,
        &account.access_key,
        &account.partner_id,
    ] {
        digest.update(part.as_bytes());
        digest.update([0u8]);
    }
    hex::encode(digest.finalize())
}

/// Siigo's error text for a message: its error body decoded
/// ([`raw_error_detail`]), then the credentials it may quote redacted
/// (after decoding: JSON may escape them, `\u002B` for `+`), then made
/// printable and cut to [`MAX_DETAIL_CHARS`] characters.
fn detail_of(text: &str, account: &SiigoAccount, bearer: Option<&str>) -> String {
    printable(&redacted(raw_error_detail(text), account, bearer))
}

/// Siigo's error body (`{"Errors": [{"Code", "Message"}]}`) in a line, or
/// whatever it sent.
fn raw_error_detail(text: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let errors = value
            .get("Errors")
            .or_else(|| value.get("errors"))
            .and_then(Value::as_array);
        if let Some(errors) = errors {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e
                        .get("Code")
                        .or_else(|| e.get("code"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let message = e
                        .get("Message")
                        .or_else(|| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    format!("{code}: {message}")
                        .trim_matches([':', ' '])
                        .to_string()
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        if let Some(m) = value
            .get("message")
            .or_else(|| value.get("error"))
            .and_then(Value::as_str)
        {
            return m.to_string();
        }
        // Another shape: as JSON again, with its strings' escapes undone
        // (`\u002B`, `\/`), so what it quotes can be recognised.
        return value.to_string();
    }
    if text.is_empty() {
        "(no body)".to_string()
    } else {
        text.to_string()
    }
}

/// The answer's body as text, at most [`MAX_ANSWER_BYTES`] of it.
///
/// # Errors
/// Why it could not be read whole: cut off, or too long.
async fn read_bounded(mut response: reqwest::Response) -> Result<String, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(format!("its body is over {MAX_ANSWER_BYTES} bytes"));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("its body is over {MAX_ANSWER_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(e) => return Err(format!("its body was cut off ({})", without_url(&e))),
        }
    }
}

/// `text` with the account's secrets and the token, if it quotes them,
/// replaced by `[redacted]`.
fn redacted(text: String, account: &SiigoAccount, bearer: Option<&str>) -> String {
    let secrets: Vec<&str> = [
        Some(account.access_key.as_str()),
        Some(account.client_secret.as_str()),
        bearer,
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.len() >= 6)
    .collect();
    // Percent-encoded in any case or only in part (`%2b`, `%2B/=`): the
    // text with its escapes undone is the one shown when it quotes one.
    let decoded = percent_decoded(&text);
    let mut text = if decoded != text && secrets.iter().any(|s| decoded.contains(s)) {
        decoded
    } else {
        text
    };
    for secret in [
        Some(account.access_key.as_str()),
        Some(account.client_secret.as_str()),
        bearer,
    ]
    .into_iter()
    .flatten()
    {
        // A very short value would redact ordinary words.
        if secret.len() < 6 {
            continue;
        }
        // As given, and percent-encoded (upper or lower case hex).
        let encoded = url_segment(secret);
        for form in [secret.to_string(), encoded.clone(), encoded.to_lowercase()] {
            if text.contains(&form) {
                text = text.replace(&form, "[redacted]");
            }
        }
    }
    text
}

/// `text` with its `%XX` escapes (either case) undone where they make
/// UTF-8; the rest as it is.
fn percent_decoded(text: &str) -> String {
    String::from_utf8(hookline_domain::percent::decode(text)).unwrap_or_else(|_| text.to_string())
}

/// Text from Siigo for a message: control characters (terminal escapes,
/// line breaks), line separators and bidirectional controls as spaces, at most [`MAX_DETAIL_CHARS`] characters.
fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_DETAIL_CHARS)
        .map(|c| {
            let reorders = matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || reorders {
                ' '
            } else {
                c
            }
        })
        .collect();
    if text.chars().nth(MAX_DETAIL_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A reqwest error without the URL (which names the base URL already
/// known to the caller).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    text
}

#[async_trait]
impl SiigoApi for SiigoClient {
    async fn create_webhook(
        &self,
        account: &SiigoAccount,
        request: &SiigoWebhookRequest,
    ) -> Result<SiigoWebhook, UpstreamFailure> {
        let mut body = json!({
            "application_id": APPLICATION_ID,
            "url": request.url,
            "topic": request.topic,
        });
        if let Some(name) = &request.name {
            body["name"] = json!(name);
        }
        if !request.headers.is_empty() {
            body["headers"] = json!(request.headers);
        }
        let mut pause = self.settings.backoff;
        let mut last = String::new();
        for attempt in 0..self.settings.attempts.max(1) {
            if attempt > 0 {
                // The create may have happened before the answer was lost.
                if let Some(found) = self.existing(account, request).await {
                    return Ok(found);
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            match self
                .authorised(account, Method::POST, "/v1/webhooks", Some(&body))
                .await
            {
                Ok(answer) if answer.status.is_success() => {
                    if let Some(made) = webhook(&answer.body, &request.topic) {
                        return Ok(made);
                    }
                    // Made, but the answer does not say as what: Siigo's
                    // list may.
                    return self.existing(account, request).await.ok_or_else(|| {
                        UpstreamFailure::Protocol(
                            "/v1/webhooks answered without an id Hookline can record for the subscription (1–256 characters, no control characters, or a whole number within 64 bits), and Siigo's list has none for this URL and topic".into(),
                        )
                    });
                }
                Ok(answer) => return Err(refused(&answer)),
                Err(CallError::Final(f)) => return Err(f),
                Err(CallError::Transient(why)) => {
                    tracing::warn!(attempt = attempt + 1, reason = %why, "creating a Siigo subscription failed; retrying");
                    last = why;
                }
            }
        }
        // The last try's answer may have been lost too.
        if let Some(found) = self.existing(account, request).await {
            return Ok(found);
        }
        Err(UpstreamFailure::Unavailable(last))
    }

    async fn delete_webhook(
        &self,
        account: &SiigoAccount,
        id: &str,
    ) -> Result<(), UpstreamFailure> {
        let path = format!("/v1/webhooks/{}", url_segment(id));
        let answer = self
            .retrying(|| self.authorised(account, Method::DELETE, &path, None))
            .await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(refused(&answer))
        }
    }
}

/// A path segment, percent-encoded.
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recordable_text_from_siigos_answer_is_kept() {
        let made = |v: Value| webhook(&v, "public.siigoapi.products.create");
        let ok =
            made(serde_json::json!({"id": "ab-1", "topic": "t\u{0}x", "company_key": "c\u{0}"}))
                .unwrap();
        assert_eq!(ok.id, "ab-1");
        assert_eq!(ok.topic, "public.siigoapi.products.create");
        assert_eq!(ok.company_key, None);
        assert!(made(serde_json::json!({"id": "ab\u{0}cd"})).is_none());
        assert!(made(serde_json::json!({"id": ""})).is_none());
        assert!(made(serde_json::json!({"id": "x".repeat(257)})).is_none());
        assert_eq!(made(serde_json::json!({"id": 42})).unwrap().id, "42");
        assert_eq!(
            made(serde_json::json!({"id": 9_007_199_254_740_993_u64}))
                .unwrap()
                .id,
            "9007199254740993"
        );
        let huge: Value = serde_json::from_str(r#"{"id": 12345678901234567890123}"#).unwrap();
        assert!(made(huge).is_none(), "a rounded id is not recorded");
        assert!(made(serde_json::json!({"id": 4.5})).is_none());
    }

    fn account() -> SiigoAccount {
        SiigoAccount {
            base_url: "http://127.0.0.1:1".into(),
            username: "u".into(),
            access_key: "AKEY-secret+/=value".into(),
            client_id: "c".into(),
            client_secret: "client-secret".into(),
            partner_id: "p".into(),
        }
    }

    fn error_detail(text: &str) -> String {
        detail_of(text, &account(), None)
    }

    #[test]
    fn error_text_is_printable_short_and_without_credentials() {
        let message = format!("\u{1b}[31mred\nline \u{202E}x\u{2028}{}", "x".repeat(1000));
        let detail =
            error_detail(&json!({"Errors": [{"Code": "bad", "Message": message}]}).to_string());
        assert!(!detail.chars().any(char::is_control), "{detail}");
        assert!(detail.starts_with("bad:  [31mred line  x x"), "{detail}");
        assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS + 1);
        // Quoted as JSON escapes them: redacted once decoded.
        let escaped =
            r#"{"Errors": [{"Code": "k", "Message": "bad key AKEY-secret\u002B\/=value"}]}"#;
        assert_eq!(error_detail(escaped), "k: bad key [redacted]");
        let other_shape = r#"{"Detail": "bad key AKEY-secret\u002B\/=value"}"#;
        assert_eq!(
            error_detail(other_shape),
            r#"{"Detail":"bad key [redacted]"}"#
        );
        for encoded in [
            "key=AKEY-secret%2B%2F%3Dvalue",
            "key=AKEY-secret%2b%2f%3dvalue",
            "key=AKEY-secret%2b%2F=value",
            "key=AKEY-secret%2B/=value",
        ] {
            assert_eq!(error_detail(encoded), "key=[redacted]", "{encoded}");
        }
        assert_eq!(percent_decoded("100% sure %zz %41"), "100% sure %zz A");
        let account = SiigoAccount {
            access_key: "ACCESSKEY-SECRET".into(),
            ..account()
        };
        let text = redacted(
            "bad key ACCESSKEY-SECRET, client-secret, token tok-123456".into(),
            &account,
            Some("tok-123456"),
        );
        assert_eq!(text, "bad key [redacted], [redacted], token [redacted]");
    }

    #[test]
    fn error_details_read_siigos_shape() {
        assert_eq!(
            error_detail(
                r#"{"Status":400,"Errors":[{"Code":"invalid_reference","Message":"The topic is invalid","Params":["topic"]}]}"#
            ),
            "invalid_reference: The topic is invalid"
        );
        assert_eq!(error_detail(r#"{"message":"nope"}"#), "nope");
        assert_eq!(error_detail(""), "(no body)");
    }

    #[test]
    fn cache_keys_differ_per_credential_set_and_hold_no_secret() {
        let a = SiigoAccount {
            base_url: "https://api.siigo.com".into(),
            username: "u".into(),
            access_key: "k1".into(),
            client_id: String::new(),
            client_secret: String::new(),
            partner_id: "Hookline".into(),
        };
        let b = SiigoAccount {
            access_key: "k2".into(),
            ..a.clone()
        };
        assert_ne!(cache_key(&a), cache_key(&b));
        assert!(!cache_key(&a).contains("k1"));
        assert_eq!(url_segment("a/b c"), "a%2Fb%20c");
    }
}
