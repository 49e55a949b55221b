//! The HTTP sender: reqwest with connect and total timeouts, keep-alive
//! pools, no redirects, no proxies, a bounded response excerpt, and the SSRF
//! guard: host names are resolved here, every non-global address is refused
//! unless allow-listed, and the connection goes only to a checked address.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::ports::{OutgoingRequest, SendOutcome, SendResult, WebhookSender};
use hookline_domain::outcome::{ErrorKind, MAX_RESPONSE_EXCERPT_BYTES};
use hookline_domain::target_url::is_permitted;
use hookline_domain::AllowList;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderName, HeaderValue};
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The refusal the resolver reports for a host with no permitted address.
#[derive(Debug)]
struct BlockedTarget(String);

impl fmt::Display for BlockedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for BlockedTarget {}

/// A host name that did not resolve.
#[derive(Debug)]
struct DnsFailure(String);

impl fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for DnsFailure {}

/// Resolves with the system resolver and keeps only permitted addresses.
pub(crate) struct GuardedResolver {
    pub(crate) allow: AllowList,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| {
                    Box::new(DnsFailure(format!("could not resolve {host}: {e}")))
                        as Box<dyn StdError + Send + Sync>
                })?
                .collect();
            if resolved.is_empty() {
                return Err(Box::new(DnsFailure(format!("{host} has no addresses")))
                    as Box<dyn StdError + Send + Sync>);
            }
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| is_permitted(a.ip(), &allow))
                .collect();
            if permitted.is_empty() {
                let ips: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
                return Err(Box::new(BlockedTarget(format!(
                    "{host} resolves only to non-public addresses ({}); not in HOOKLINE_ALLOW_PRIVATE_TARGETS",
                    ips.join(", ")
                ))) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub timeout: Duration,
    pub allow: AllowList,
    /// Idle keep-alive connections kept per host.
    pub pool_per_host: usize,
}

#[derive(Debug, Clone)]
pub struct ReqwestSender {
    client: reqwest::Client,
    allow: AllowList,
}

/// How long an idle connection to a receiver is kept for the next attempt.
/// Shorter than the keep-alive of common receivers (gunicorn 2 s, Node 5 s):
/// one that closes an idle connection just as it is reused fails an attempt
/// the receiver never saw ("connection closed before message completed"),
/// which costs a retry interval and counts towards its circuit.
const POOL_IDLE: Duration = Duration::from_secs(1);

impl ReqwestSender {
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(settings: &SenderSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout)
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(settings.pool_per_host)
            .tcp_nodelay(true)
            .dns_resolver(Arc::new(GuardedResolver {
                allow: settings.allow.clone(),
            }))
            .use_rustls_tls()
            .build()?;
        Ok(Self {
            client,
            allow: settings.allow.clone(),
        })
    }

    async fn attempt(&self, request: OutgoingRequest) -> SendOutcome {
        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) => u,
            Err(e) => {
                return SendOutcome::Failed {
                    kind: ErrorKind::InvalidTarget,
                    message: format!("the target URL cannot be used: {e}"),
                }
            }
        };
        // IP literals never reach the resolver: check them here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(ip) = literal {
            if !is_permitted(ip, &self.allow) {
                return SendOutcome::Failed {
                    kind: ErrorKind::BlockedTarget,
                    message: format!(
                        "{ip} is not a public address and not in HOOKLINE_ALLOW_PRIVATE_TARGETS"
                    ),
                };
            }
        }
        let mut builder = self.client.post(url);
        for (name, value) in &request.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                builder = builder.header(n, v);
            }
        }
        let body = bytes::Bytes::from_owner(ArcBytes(request.body.clone()));
        let response = match builder.body(body).send().await {
            Ok(r) => r,
            Err(e) => return classify(&e),
        };
        let status = response.status().as_u16();
        let retry_after_secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let excerpt = match read_excerpt(response).await {
            Ok(text) => text,
            Err(e) => {
                // The status arrived; a broken body does not change it.
                tracing::debug!(error = %e, "response body could not be read");
                None
            }
        };
        SendOutcome::Response {
            status,
            retry_after_secs,
            excerpt,
        }
    }
}

/// At most [`MAX_RESPONSE_EXCERPT_BYTES`] of the body, as text.
async fn read_excerpt(mut response: reqwest::Response) -> Result<Option<String>, reqwest::Error> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_EXCERPT_BYTES + 4 - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_RESPONSE_EXCERPT_BYTES {
            break;
        }
    }
    if buf.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(Some(hookline_domain::outcome::truncate_bytes(
        &text,
        MAX_RESPONSE_EXCERPT_BYTES,
    )))
}

/// `Retry-After`: delay-seconds or an HTTP date, in any of the three forms
/// RFC 9110 has recipients accept (IMF-fixdate, RFC 850, asctime).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is still "a very long time" (the
        // policy caps it), not "no Retry-After".
        return Some(value.parse::<u64>().unwrap_or(u64::MAX));
    }
    let at = match httpdate::parse_http_date(value) {
        Ok(at) => DateTime::<Utc>::from(at),
        // Other RFC 2822 dates (a numeric zone, no weekday), as before.
        Err(_) => chrono::DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc),
    };
    // Whole seconds, rounded up: never before the time asked for (a date
    // 11.2 s ahead is 12 s, not 11).
    let millis = (at - Utc::now()).num_milliseconds();
    Some(u64::try_from(millis).map_or(0, |ms| ms.div_ceil(1000)))
}

fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = vec![e];
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s);
        cur = s.source();
    }
    out
}

/// A TLS failure: a rustls error, which reaches us inside `io::Error`s
/// (nested; their `source()` skips the error they wrap, hence `get_ref`).
fn is_tls(link: &(dyn StdError + 'static)) -> bool {
    if link.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    let mut io = link.downcast_ref::<std::io::Error>();
    while let Some(inner) = io.and_then(std::io::Error::get_ref) {
        if inner.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        io = inner.downcast_ref::<std::io::Error>();
    }
    false
}

fn classify(e: &reqwest::Error) -> SendOutcome {
    let links = chain(e);
    let mut text: Vec<String> = links.iter().map(ToString::to_string).collect();
    // The attempt records its URL already; a long one would crowd the
    // cause out of the 500-character message.
    if let (Some(url), Some(first)) = (e.url(), text.first_mut()) {
        *first = first.replace(&format!(" for url ({url})"), "");
    }
    let message = hookline_domain::outcome::truncate_chars(&text.join(": "), 500);
    let kind = if links
        .iter()
        .any(|l| l.downcast_ref::<BlockedTarget>().is_some())
    {
        ErrorKind::BlockedTarget
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if links
        .iter()
        .any(|l| l.downcast_ref::<DnsFailure>().is_some())
    {
        ErrorKind::Dns
    } else if links.iter().any(|l| is_tls(*l)) {
        ErrorKind::Tls
    } else if e.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    };
    SendOutcome::Failed { kind, message }
}

#[async_trait]
impl WebhookSender for ReqwestSender {
    async fn send(&self, request: OutgoingRequest) -> SendResult {
        // At the log's and the read models' precision (microseconds), so
        // an attempt reads the same from either.
        let started_at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let clock = Instant::now();
        let outcome = self.attempt(request).await;
        SendResult {
            started_at,
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome,
        }
    }
}

/// A body shared by every attempt of a message, handed to the HTTP client
/// without copying.
struct ArcBytes(std::sync::Arc<str>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after(" 7 "), Some(7));
        assert_eq!(parse_retry_after("18446744073709551616"), Some(u64::MAX));
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        let future = (Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let secs = parse_retry_after(&future).unwrap();
        assert!((85..=90).contains(&secs), "{secs}");
        assert_eq!(parse_retry_after("soon"), None);
        // Never before the date: rounded up to the next whole second.
        let at = Utc::now() + chrono::Duration::milliseconds(11_200);
        let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let secs = parse_retry_after(&date).unwrap();
        let after = Utc::now();
        let asked = chrono::DateTime::parse_from_rfc2822(&date.replace("GMT", "+0000"))
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            after + chrono::Duration::seconds(i64::try_from(secs).unwrap()) >= asked,
            "{secs} s from {after} is before {asked}"
        );
        // RFC 850 and asctime forms, which RFC 9110 has recipients accept.
        let at = Utc::now() + chrono::Duration::seconds(90);
        for form in [
            at.format("%A, %d-%b-%y %H:%M:%S GMT").to_string(),
            at.format("%a %b %e %H:%M:%S %Y").to_string(),
            at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ] {
            let secs = parse_retry_after(&form).unwrap_or_default();
            assert!((85..=90).contains(&secs), "{form}: {secs}");
        }
    }
}
