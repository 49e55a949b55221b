//! Where deliveries go: a validated target URL, the allow-list of private
//! address ranges, and the classification of IP addresses as global or not.
//!
//! Validation here only sees the URL text. A host name that resolves to a
//! private address is caught again when an attempt connects (the SSRF guard
//! in the sender uses [`is_global`] and [`AllowList`] on resolved addresses).

use crate::ids::truncate_for_message;
use crate::ValidationError;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MIN_URL_LEN: usize = 10;
pub const MAX_URL_LEN: usize = 2048;
/// Longest URL once non-ASCII text is percent-encoded (as stored and
/// sent): room for a URL of [`MAX_URL_LEN`] characters with some
/// non-ASCII text, not for one made of it.
pub const MAX_ENCODED_URL_LEN: usize = 4 * MAX_URL_LEN;

/// Address ranges that targets may use although they are not global
/// (configured by `HOOKLINE_ALLOW_PRIVATE_TARGETS`, e.g. `127.0.0.0/8,::1/128`).
/// Hosts in these ranges may also use plain `http://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Parses a comma- or whitespace-separated list of CIDRs (a bare address
    /// means just that address).
    ///
    /// # Errors
    /// Names the first entry that is not a CIDR or address.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("'{item}' is not a CIDR such as 127.0.0.0/8 or ::1/128")
                })?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }
}

/// Whether a target may connect to `ip`: global addresses always, others
/// only when allow-listed.
pub fn is_permitted(ip: IpAddr, allow: &AllowList) -> bool {
    is_global(ip) || allow.allows(ip)
}

/// IPv4-mapped (`::ffff:10.0.0.1`) and SIIT-translated
/// (`::ffff:0:10.0.0.1`) IPv6 addresses are judged, and allow-listed, as
/// the IPv4 address they carry.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let seg = v6.segments();
            if seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
                let [.., a, b, c, d] = v6.octets();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// True for publicly routable unicast addresses; false for loopback,
/// private, link-local, CGNAT, multicast, documentation, benchmarking,
/// reserved, unspecified, ULA and the IPv6 forms that embed such an IPv4
/// address (mapped, NAT64, 6to4).
pub fn is_global(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network"
        || a == 10                             // private
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || a == 127                            // loopback
        || (a == 169 && b == 254)              // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (b == 18 || b == 19))  // benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    // IPv4-compatible (deprecated, ::a.b.c.d) and NAT64 (64:ff9b::/96):
    // judge the embedded IPv4 address.
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return false;
    }
    // NAT64 (RFC 6052) embeds one too (SIIT, ::ffff:0:a.b.c.d, is made
    // IPv4 by `canonical_ip`).
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return is_global_v4(v4);
    }
    // The rest of ::/8 (reserved by the IETF) is not global unicast; nor
    // is the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215), which may
    // embed any address.
    if seg[0] <= 0x00ff || seg[..3] == [0x64, 0xff9b, 1] {
        return false;
    }
    // 6to4 (2002::/16) embeds an IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return is_global_v4(v4);
    }
    !((seg[0] & 0xfe00) == 0xfc00             // ULA fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80        // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0        // site-local (deprecated)
        || (seg[0] & 0xff00) == 0xff00        // multicast
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (seg[0] == 0x2001 && seg[1] < 0x0200)) // IETF protocol assignments 2001::/23
}

/// A delivery target: `https://` (or `http://` for allow-listed hosts),
/// 10–2048 characters, no user-info, no private address unless allow-listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(String);

impl TargetUrl {
    /// # Errors
    /// A [`ValidationError`] on field `url` saying which rule failed.
    pub fn parse(input: &str, allow: &AllowList) -> Result<Self, ValidationError> {
        let err = |reason: String| ValidationError::new("url", reason);
        let len = input.chars().count();
        if !(MIN_URL_LEN..=MAX_URL_LEN).contains(&len) {
            return Err(err(format!(
                "must be between {MIN_URL_LEN} and {MAX_URL_LEN} characters (got {len})"
            )));
        }
        if input.trim() != input {
            return Err(err("must not start or end with spaces".into()));
        }
        // The URL parser would silently drop or rewrite these.
        if input.chars().any(char::is_control) {
            return Err(err("must not contain control characters".into()));
        }
        let url = url::Url::parse(input).map_err(|e| {
            err(format!(
                "'{}' is not a valid URL: {e}",
                truncate_for_message(input)
            ))
        })?;
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(err(format!("must use https:// (got '{scheme}:')")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(
                "must not contain user-info (user:password@); use custom headers for credentials"
                    .into(),
            ));
        }
        let host = url.host().ok_or_else(|| err("must name a host".into()))?;
        if url.port() == Some(0) {
            return Err(err(
                "port 0 cannot be connected to; use a port from 1 to 65535".into(),
            ));
        }
        let allowed_private = match host {
            url::Host::Ipv4(v4) => Some(check_ip(IpAddr::V4(v4), allow).map_err(err)?),
            url::Host::Ipv6(v6) => Some(check_ip(IpAddr::V6(v6), allow).map_err(err)?),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
                    Some(check_ip(loopback, allow).map_err(|_| {
                        err("'localhost' is not allowed: loopback addresses are not in HOOKLINE_ALLOW_PRIVATE_TARGETS".into())
                    })?)
                } else {
                    None
                }
            }
        };
        if scheme == "http" && allowed_private != Some(true) {
            return Err(err(
                "must use https:// (plain http:// is only allowed for hosts in HOOKLINE_ALLOW_PRIVATE_TARGETS)"
                    .into(),
            ));
        }
        // Non-ASCII text is %-encoded: the URL as sent must fit too.
        let normalized = url.to_string();
        if normalized.len() > MAX_ENCODED_URL_LEN {
            return Err(err(format!(
                "must be at most {MAX_ENCODED_URL_LEN} characters once non-ASCII text is percent-encoded (got {})",
                normalized.len()
            )));
        }
        Ok(Self(normalized))
    }

    /// Rebuilds a URL that was validated before (from the event log),
    /// without re-checking the allow-list, which may have changed since.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where attempts go: the host and port as written in the URL
    /// (`example.com:8443`), for sharing attempt slots fairly per
    /// destination.
    pub fn destination(&self) -> &str {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
        rest.split(['/', '?', '#']).next().unwrap_or(rest)
    }
}

/// Ok(true) when the address is private but allow-listed, Ok(false) when
/// global, Err when private and not allowed.
fn check_ip(ip: IpAddr, allow: &AllowList) -> Result<bool, String> {
    if allow.allows(ip) {
        return Ok(true);
    }
    if is_global(ip) {
        return Ok(false);
    }
    Err(format!(
        "'{ip}' is a private, loopback or reserved address; such targets must be in HOOKLINE_ALLOW_PRIVATE_TARGETS"
    ))
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TargetUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TargetUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_host_and_port() {
        let any = AllowList::default();
        for (url, dest) in [
            ("https://example.com/hooks?x=1", "example.com"),
            ("https://example.com:8443/a", "example.com:8443"),
            ("https://Example.COM", "example.com"),
            ("https://[2001:db8::1]:9/x", "[2001:db8::1]:9"),
        ] {
            let parsed = TargetUrl::parse(url, &any);
            if let Ok(u) = parsed {
                assert_eq!(u.destination(), dest, "{url}");
            }
        }
        assert_eq!(
            TargetUrl::from_trusted("http://127.0.0.1:9000#f".into()).destination(),
            "127.0.0.1:9000"
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_addresses() {
        for private in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1::808:808",
            "::1:0:0:1",
            "::ffff:0:0:a00:1",
            "ff::1",
        ] {
            assert!(!is_global(ip(private)), "{private} should not be global");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "::ffff:0:808:808",
            "64:ff9b::808:808",
            "172.32.0.1",
        ] {
            assert!(is_global(ip(public)), "{public} should be global");
        }
    }

    #[test]
    fn allow_list_parses_and_matches_mapped_addresses() {
        let allow = AllowList::parse("127.0.0.0/8, ::1/128 10.1.2.3").unwrap();
        assert!(allow.allows(ip("127.0.0.1")));
        assert!(allow.allows(ip("::ffff:127.0.0.2")));
        assert!(allow.allows(ip("::ffff:0:7f00:1")), "SIIT");
        assert!(!allow.allows(ip("::ffff:0:a01:204")));
        assert!(allow.allows(ip("::1")));
        assert!(allow.allows(ip("10.1.2.3")));
        assert!(!allow.allows(ip("10.1.2.4")));
        assert!(AllowList::parse("127.0.0.0/33").is_err());
        assert!(AllowList::parse("").unwrap().is_empty());
    }

    #[test]
    fn accepts_https_targets() {
        let none = AllowList::default();
        let url = TargetUrl::parse("https://example.com/hooks", &none).unwrap();
        assert_eq!(url.as_str(), "https://example.com/hooks");
        assert!(TargetUrl::parse("https://8.8.8.8:8443/x", &none).is_ok());
    }

    #[test]
    fn rejects_bad_targets_with_reasons() {
        let none = AllowList::default();
        let cases = [
            ("http://example.com/hook", "https"),
            ("ftp://example.com/hook", "https"),
            ("https://a", "between"),
            ("https://user:pw@example.com/", "user-info"),
            ("https://user@example.com/x", "user-info"),
            ("https://10.0.0.1/hook", "private"),
            ("https://169.254.169.254/latest", "private"),
            ("https://[::1]:8080/hook", "private"),
            ("https://localhost:8080/hook", "localhost"),
            ("not a url at all", "not a valid URL"),
            ("https://example.com:0/hook", "port 0"),
            (
                "https://example.com/\r\nX-Injected: y",
                "control characters",
            ),
            ("https://example.com/a\0b", "control characters"),
            ("https://example.com/\tx", "control characters"),
            (
                &format!("https://example.com/{}", "\u{1F600}".repeat(1000)),
                "percent-encoded",
            ),
        ];
        for (input, needle) in cases {
            let e = TargetUrl::parse(input, &none).unwrap_err();
            assert_eq!(e.field, "url");
            assert!(e.reason.contains(needle), "{input}: {}", e.reason);
        }
        let long = format!("https://example.com/{}", "a".repeat(2030));
        assert!(TargetUrl::parse(&long, &none).is_err());
    }

    #[test]
    fn allow_listed_hosts_may_use_http_and_private_addresses() {
        let allow = AllowList::parse("127.0.0.0/8,::1/128").unwrap();
        assert!(TargetUrl::parse("http://127.0.0.1:9000/hook", &allow).is_ok());
        assert!(TargetUrl::parse("http://[::1]:9000/hook", &allow).is_ok());
        assert!(TargetUrl::parse("http://localhost:9000/hook", &allow).is_ok());
        assert!(TargetUrl::parse("https://127.0.0.1:9000/hook", &allow).is_ok());
        assert!(TargetUrl::parse("http://10.0.0.1/hook", &allow).is_err());
        assert!(TargetUrl::parse("http://example.com/hook", &allow).is_err());
    }
}
