//! Console sessions: an opaque random id in an HttpOnly, SameSite=Lax
//! cookie, the session itself in this process's memory (only the SHA-256
//! of the id is kept). Sessions end after an idle time and after a
//! lifetime; signing out removes them. Failed sign-ins are counted per
//! client address and refused for a while past a limit.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hookline_application::portal::PortalGrant;
use hookline_domain::TenantId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Most sessions kept at once; past it the least recently used go first.
const MAX_SESSIONS: usize = 10_000;
/// Most sessions of one owner — a tenant signed in with its keys, one
/// portal link, or the operators; past it that owner's least recently used
/// goes first, so that signing in (or opening a link) again and again ends
/// only one's own sessions.
const MAX_SESSIONS_PER_OWNER: usize = 100;
/// Most sessions opened with all the portal links of one tenant (a tenant
/// issuing many links could otherwise fill the whole store).
const MAX_PORTAL_SESSIONS_PER_TENANT: usize = 1000;

/// Whose sessions count together against [`MAX_SESSIONS_PER_OWNER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Tenant(TenantId),
    PortalLink(Uuid),
    Operators,
}

impl Role {
    fn owner(&self) -> Owner {
        match self {
            Self::Tenant { tenant_id, .. } => Owner::Tenant(*tenant_id),
            Self::Portal(grant) => Owner::PortalLink(grant.link_id),
            Self::Operator { .. } => Owner::Operators,
        }
    }

    /// The tenant whose portal links opened this session, if any.
    fn portal_tenant(&self) -> Option<TenantId> {
        match self {
            Self::Portal(grant) => Some(grant.tenant_id),
            _ => None,
        }
    }
}

/// Who a session acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Signed in with one of the tenant's API keys.
    Tenant { tenant_id: TenantId, key_id: Uuid },
    /// Signed in with `HOOKLINE_ADMIN_TOKEN`; `viewing` is the tenant whose
    /// console the operator opened, if any.
    Operator { viewing: Option<TenantId> },
    /// Opened with a portal link.
    Portal(PortalGrant),
}

#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    /// Sent back with every state change (forms and fetches).
    pub csrf: String,
    /// Fingerprint of the admin token an operator signed in with: sessions
    /// end when the token changes.
    pub admin_fingerprint: Option<[u8; 32]>,
    /// Secrets, keys and portal links just made, each shown once by the
    /// page the POST redirects to (a reload then does not make another).
    /// At most [`SHOWN_ONCE_HELD`], the oldest dropped.
    pub shown_once: Vec<ShownOnce>,
    created: Instant,
    last_seen: Instant,
}

/// What a page shows once, after the POST that made it redirected there
/// (a reload or Back then shows the object's ordinary page and does not
/// make another).
#[derive(Debug, Clone)]
pub enum ShownOnce {
    /// A subscription with its secret in full, just created (else rotated).
    Secret {
        view: Box<hookline_application::subscriptions::SubscriptionView>,
        created: bool,
    },
    /// An API key just issued; with the tenant when it was just created.
    Key {
        tenant_id: hookline_domain::TenantId,
        key: hookline_application::tenants::IssuedKey,
        new_tenant: Option<String>,
    },
    /// A portal link just issued, with its URL.
    PortalLink {
        link: hookline_application::portal::IssuedLink,
        url: String,
    },
}

impl ShownOnce {
    /// The id of what it shows (a subscription, key or link).
    pub fn id(&self) -> uuid::Uuid {
        match self {
            Self::Secret { view, .. } => *view.id.as_uuid(),
            Self::Key { key, .. } => key.id,
            Self::PortalLink { link, .. } => link.id,
        }
    }
}

/// How many shown-once values a session holds until their pages are opened.
pub const SHOWN_ONCE_HELD: usize = 16;

impl Session {
    pub fn new(role: Role, csrf: String, admin_fingerprint: Option<[u8; 32]>) -> Self {
        let now = Instant::now();
        Self {
            role,
            csrf,
            admin_fingerprint,
            shown_once: Vec::new(),
            created: now,
            last_seen: now,
        }
    }

    /// Holds `once` for its page, replacing what was held for the same
    /// object (a subscription's secret replaced since).
    pub fn hold_shown_once(&mut self, once: ShownOnce) {
        self.shown_once.retain(|o| o.id() != once.id());
        if self.shown_once.len() >= SHOWN_ONCE_HELD {
            self.shown_once.remove(0);
        }
        self.shown_once.push(once);
    }

    /// What is held for the object `id`, handed out once, when `fits` it
    /// (the page asking is that object's: otherwise it stays held).
    pub fn take_shown_once(
        &mut self,
        id: uuid::Uuid,
        fits: impl Fn(&ShownOnce) -> bool,
    ) -> Option<ShownOnce> {
        let at = self
            .shown_once
            .iter()
            .position(|o| o.id() == id && fits(o))?;
        Some(self.shown_once.remove(at))
    }
}

/// A session's id as the cookie carries it.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand_fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rand_fill(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rngs::OsRng.fill_bytes(buf);
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    map: Mutex<HashMap<[u8; 32], Session>>,
    /// Sessions of portal links that ended (revoked, expired, what made
    /// them gone), remembered a while so that every later request with
    /// the cookie, not only the first, is told the link ended.
    links_ended: Mutex<HashMap<[u8; 32], Instant>>,
}

/// How long, and for how many sessions, the end of a portal link is
/// remembered.
const LINK_ENDED_KEPT: Duration = Duration::from_secs(3600);
const LINK_ENDED_HELD: usize = 10_000;

impl Sessions {
    pub fn new(idle: Duration, lifetime: Duration) -> Self {
        Self {
            idle,
            lifetime,
            map: Mutex::new(HashMap::new()),
            links_ended: Mutex::new(HashMap::new()),
        }
    }

    /// Ends a session whose portal link ended, remembering why.
    pub fn end_because_link_ended(&self, token: &str) {
        self.end(token);
        let now = Instant::now();
        let mut ended = self.links_ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() >= LINK_ENDED_HELD {
            ended.retain(|_, at| now.duration_since(*at) < LINK_ENDED_KEPT);
            if ended.len() >= LINK_ENDED_HELD {
                ended.clear();
            }
        }
        ended.insert(digest(token), now);
    }

    /// Whether the session of this cookie ended with its portal link.
    pub fn link_ended(&self, token: &str) -> bool {
        let ended = self.links_ended.lock().unwrap_or_else(|e| e.into_inner());
        ended
            .get(&digest(token))
            .is_some_and(|at| at.elapsed() < LINK_ENDED_KEPT)
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.created) < self.lifetime
    }

    /// Starts a session; returns the cookie value.
    pub fn start(&self, session: Session) -> String {
        let token = new_token();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let owner = session.role.owner();
        let owned = |s: &Session| s.role.owner() == owner;
        if map.values().filter(|s| owned(s)).count() >= MAX_SESSIONS_PER_OWNER {
            map.retain(|_, s| !owned(s) || self.live(s, now));
            Self::evict_oldest(&mut map, MAX_SESSIONS_PER_OWNER, owned);
        }
        if let Some(tenant) = session.role.portal_tenant() {
            let its_links = |s: &Session| s.role.portal_tenant() == Some(tenant);
            Self::evict_oldest(&mut map, MAX_PORTAL_SESSIONS_PER_TENANT, its_links);
        }
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| self.live(s, now));
            Self::evict_oldest(&mut map, MAX_SESSIONS, |_| true);
        }
        map.insert(digest(&token), session);
        token
    }

    /// Removes the least recently used of the sessions `among` picks while
    /// `max` or more of them are kept.
    fn evict_oldest(
        map: &mut HashMap<[u8; 32], Session>,
        max: usize,
        among: impl Fn(&Session) -> bool,
    ) {
        while map.values().filter(|s| among(s)).count() >= max {
            let Some(oldest) = map
                .iter()
                .filter(|(_, s)| among(s))
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
            else {
                return;
            };
            map.remove(&oldest);
        }
    }

    /// The live session of a cookie value (its idle clock restarted).
    pub fn get(&self, token: &str) -> Option<Session> {
        self.find(token, true)
    }

    /// The live session of a cookie value, its idle clock left alone: for
    /// the pages' own refreshes, which are not the user's activity.
    pub fn peek(&self, token: &str) -> Option<Session> {
        self.find(token, false)
    }

    fn find(&self, token: &str, touch: bool) -> Option<Session> {
        let key = digest(token);
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let live = map.get(&key).is_some_and(|s| self.live(s, now));
        if !live {
            map.remove(&key);
            return None;
        }
        let session = map.get_mut(&key)?;
        if touch {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    /// Changes a session in place (an operator switching tenants).
    pub fn update(&self, token: &str, f: impl FnOnce(&mut Session)) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(&digest(token)) {
            f(s);
        }
    }

    pub fn end(&self, token: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&digest(token));
    }
}

/// Failed sign-ins per client address: past `limit` within `window`, more
/// attempts are refused until the window has passed.
#[derive(Debug)]
pub struct SignInLimiter {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl SignInLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `client` must wait before trying again.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = map.get(&client)?;
        let elapsed = since.elapsed();
        (*count >= self.limit && elapsed < self.window).then(|| self.window - elapsed)
    }

    pub fn failed(&self, client: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = map.entry(client).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenant_signing_in_again_and_again_evicts_only_its_own_sessions() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let tenant = |n: u128| Role::Tenant {
            tenant_id: TenantId::from_uuid(Uuid::from_u128(n)),
            key_id: Uuid::from_u128(n),
        };
        let operator = sessions.start(Session::new(
            Role::Operator { viewing: None },
            "c".into(),
            None,
        ));
        let other = sessions.start(Session::new(tenant(2), "c".into(), None));
        let mut last = String::new();
        for _ in 0..(MAX_SESSIONS_PER_OWNER * 3) {
            last = sessions.start(Session::new(tenant(1), "c".into(), None));
        }
        // A portal link's holder opening it again and again ends only that
        // link's sessions, not the tenant's own.
        let grant = hookline_application::portal::PortalGrant {
            link_id: Uuid::from_u128(9),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            read_only: true,
            subscription_filter: None,
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        };
        for _ in 0..(MAX_SESSIONS_PER_OWNER * 2) {
            sessions.start(Session::new(Role::Portal(grant.clone()), "c".into(), None));
        }
        assert!(sessions.get(&operator).is_some(), "the operator stays");
        assert!(sessions.get(&other).is_some(), "the other tenant stays");
        assert!(sessions.get(&last).is_some());
        let map = sessions.map.lock().unwrap();
        assert_eq!(map.len(), 2 * MAX_SESSIONS_PER_OWNER + 2);
    }

    #[test]
    fn sessions_end_when_idle_and_on_sign_out() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let token = sessions.start(Session::new(
            Role::Operator { viewing: None },
            "c".into(),
            None,
        ));
        assert!(sessions.get(&token).is_some());
        assert!(sessions.get("not-a-session").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&token).is_none(), "idle too long");
        let token = sessions.start(Session::new(
            Role::Operator { viewing: None },
            "c".into(),
            None,
        ));
        sessions.end(&token);
        assert!(sessions.get(&token).is_none());
    }

    #[test]
    fn a_peek_does_not_keep_a_session_alive() {
        let sessions = Sessions::new(Duration::from_millis(80), Duration::from_secs(60));
        let token = sessions.start(Session::new(
            Role::Operator { viewing: None },
            "c".into(),
            None,
        ));
        std::thread::sleep(Duration::from_millis(50));
        assert!(sessions.peek(&token).is_some());
        std::thread::sleep(Duration::from_millis(50));
        assert!(sessions.peek(&token).is_none(), "idle for 100 ms");
    }

    #[test]
    fn sign_ins_are_refused_past_the_limit() {
        let limiter = SignInLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.blocked(ip).is_none());
            limiter.failed(ip);
        }
        assert!(limiter.blocked(ip).is_some());
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limiter.blocked(other).is_none());
    }
}
