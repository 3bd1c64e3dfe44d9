//! What one client may hold and start: the client's address, chat
//! WebSockets per session and per address, and the budgets of CJ turns per
//! session, per merchant and per address (and of new conversations per
//! session). Every frame that starts a turn is counted here, in one place
//! ([`TurnBudget::charge`]); the counts are shared across replicas through
//! Redis when `REDIS_URL` is set, and kept in process otherwise.
//!
//! The settings are in [`crate::config::Limits`]; `docs/security.md` lists
//! the threats each one answers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use hirecj_domain::UserId;
use hirecj_shopify::RedisLink;

use crate::app::AppState;
use crate::config::Limits;

/// The client's address: the TCP peer, or the last `X-Forwarded-For`
/// entry (the one the app's own proxy added) when
/// `HIRECJ_TRUST_FORWARDED_FOR` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address of a request from `peer` with `headers`.
    pub fn of(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> Self {
        if trust_forwarded_for
            && let Some(ip) = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|part| part.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return Self(ip);
        }
        Self(peer.ip())
    }

    /// Is the client on this machine, talking to the app directly?
    pub fn is_direct_loopback(&self, headers: &HeaderMap) -> bool {
        self.0.is_loopback()
            && !headers.contains_key("x-forwarded-for")
            && !headers.contains_key("forwarded")
    }
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        Ok(Self::of(
            peer,
            &parts.headers,
            state.settings.limits.trust_forwarded_for,
        ))
    }
}

/// Open chat WebSockets by session and by client address.
#[derive(Debug, Clone, Default)]
pub struct SocketCounts {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// Why a WebSocket was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRefusal {
    PerSession(usize),
    PerAddress(usize),
}

impl std::fmt::Display for SocketRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerSession(n) => write!(f, "this browser already has {n} chats open"),
            Self::PerAddress(n) => write!(f, "this address already has {n} chats open"),
        }
    }
}

/// One open WebSocket's place in [`SocketCounts`]; freed when dropped.
#[derive(Debug)]
pub struct SocketSlot {
    counts: SocketCounts,
    keys: [String; 2],
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.counts.lock();
        for key in &self.keys {
            if let Some(n) = open.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

impl SocketCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for one more WebSocket of `session` from `address`, or
    /// says which cap it would pass.
    pub fn open(
        &self,
        limits: &Limits,
        session: &str,
        address: ClientAddress,
    ) -> Result<SocketSlot, SocketRefusal> {
        let keys = [format!("s:{session}"), format!("a:{}", address.0)];
        let mut open = self.lock();
        if open.get(&keys[0]).copied().unwrap_or(0) >= limits.ws_per_session {
            return Err(SocketRefusal::PerSession(limits.ws_per_session));
        }
        if open.get(&keys[1]).copied().unwrap_or(0) >= limits.ws_per_address {
            return Err(SocketRefusal::PerAddress(limits.ws_per_address));
        }
        for key in &keys {
            *open.entry(key.clone()).or_default() += 1;
        }
        drop(open);
        Ok(SocketSlot {
            counts: self.clone(),
            keys,
        })
    }
}

/// Who is starting a turn.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    pub session_id: &'a str,
    pub user_id: Option<&'a UserId>,
    pub address: ClientAddress,
}

/// What a frame costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// A merchant message or a workflow switch: one turn.
    Turn,
    /// A new conversation: one turn (CJ's first action) and one conversation.
    Conversation,
}

/// A refused turn: which budget ran out and when it refills.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}; try again in {} s", retry_after.as_secs().max(1))]
pub struct BudgetExceeded {
    pub what: &'static str,
    pub retry_after: Duration,
}

/// One budget: at most `limit` per `window`, as a token bucket (GCRA): a
/// full bucket allows a burst of `limit`, and it refills evenly over the
/// window, so there is no window edge at which twice the budget fits.
#[derive(Debug, Clone, Copy)]
struct Rule {
    scope: &'static str,
    limit: u32,
    window: Duration,
    what: &'static str,
}

impl Rule {
    /// Time between two turns at the sustained rate, in milliseconds.
    fn interval_ms(&self) -> u64 {
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        (window / u64::from(self.limit.max(1))).max(1)
    }
}

/// Where the buckets live: each key's theoretical arrival time (ms since
/// the epoch); a key at or before now is a full bucket.
#[derive(Clone)]
enum Counter {
    Memory(Arc<Mutex<HashMap<String, u64>>>),
    Redis {
        conn: RedisLink,
        /// Used while Redis does not answer: each replica then counts alone.
        fallback: Arc<Mutex<HashMap<String, u64>>>,
    },
}

/// The turn budgets. Cheap to clone.
#[derive(Clone)]
pub struct TurnBudget {
    limits: Limits,
    counter: Counter,
}

impl std::fmt::Debug for TurnBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnBudget")
            .field("limits", &self.limits)
            .field("shared", &matches!(self.counter, Counter::Redis { .. }))
            .finish()
    }
}

/// The Redis key prefix of the budgets.
const REDIS_PREFIX: &str = "hirecj:budget:";
/// Longest wait for Redis on the message path; past it the replica counts alone.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Checks every bucket (KEYS; ARGV: now, then interval and limit per key)
/// and takes one turn from each only when all have one: returns
/// `{0, 0}`, or the 1-based index of the bucket that refused and the
/// milliseconds until it has a turn again. Atomic, like every script.
const GCRA_SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local next_tats = {}
local refused, wait = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allowed_at = next_tat - interval * limit
  if allowed_at > now and allowed_at - now > wait then
    refused, wait = i, allowed_at - now
  end
  next_tats[i] = next_tat
end
if refused == 0 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], next_tats[i], 'PX', next_tats[i] - now + 1000)
  end
end
return {refused, wait}
"#;

impl TurnBudget {
    /// Budgets counted in this process.
    pub fn in_process(limits: Limits) -> Self {
        Self {
            limits,
            counter: Counter::Memory(Arc::default()),
        }
    }

    /// Budgets counted in Redis (shared by every replica). While Redis
    /// cannot be reached (at start, or later), each replica counts in
    /// process and says so; the connection is retried in the background.
    /// An unusable URL counts in process for good.
    pub async fn connect(limits: Limits, redis_url: &str) -> Self {
        match RedisLink::open(redis_url, REDIS_TIMEOUT, "turn budgets").await {
            Ok(conn) => Self {
                limits,
                counter: Counter::Redis {
                    conn,
                    fallback: Arc::default(),
                },
            },
            Err(e) => {
                tracing::warn!(error = %e, "turn budgets: unusable Redis URL; counting in this process");
                Self::in_process(limits)
            }
        }
    }

    fn rules(&self, charge: Charge) -> Vec<Rule> {
        let l = &self.limits;
        let mut rules = vec![
            Rule {
                scope: "session",
                limit: l.turns_per_minute_session,
                window: MINUTE,
                what: "too many messages from this browser",
            },
            Rule {
                scope: "merchant",
                limit: l.turns_per_minute_merchant,
                window: MINUTE,
                what: "too many messages for this store",
            },
            Rule {
                scope: "address",
                limit: l.turns_per_minute_address,
                window: MINUTE,
                what: "too many messages from this address",
            },
        ];
        if charge == Charge::Conversation {
            rules.push(Rule {
                scope: "conversations",
                limit: l.conversations_per_hour,
                window: HOUR,
                what: "too many new conversations from this browser",
            });
        }
        rules
    }

    /// Takes one turn from every budget that applies to `who`, or refuses
    /// the frame (taking nothing) when any of them is spent.
    pub async fn charge(&self, who: &Requester<'_>, charge: Charge) -> Result<(), BudgetExceeded> {
        let mut buckets = Vec::new();
        for rule in self.rules(charge) {
            let id = match rule.scope {
                "session" | "conversations" => who.session_id.to_owned(),
                "merchant" => match who.user_id {
                    Some(u) => u.to_string(),
                    None => continue,
                },
                _ => who.address.0.to_string(),
            };
            buckets.push((format!("{REDIS_PREFIX}{}:{id}", rule.scope), rule));
        }
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        match self.take(&buckets, now).await {
            None => Ok(()),
            Some((rule, wait_ms)) => {
                tracing::info!(
                    scope = rule.scope,
                    limit = rule.limit,
                    "turn budget spent; refused"
                );
                Err(BudgetExceeded {
                    what: rule.what,
                    retry_after: Duration::from_millis(wait_ms),
                })
            }
        }
    }

    /// Takes a turn from every bucket, or says which refused and for how long.
    async fn take(&self, buckets: &[(String, Rule)], now: u64) -> Option<(Rule, u64)> {
        let refused = match &self.counter {
            Counter::Memory(map) => take_in(map, buckets, now),
            // Not reached yet: each replica counts alone meanwhile.
            Counter::Redis { conn, fallback } => match conn.get() {
                None => take_in(fallback, buckets, now),
                Some(mut conn) => {
                    let mut eval = redis::cmd("EVAL");
                    eval.arg(GCRA_SCRIPT).arg(buckets.len());
                    for (key, _) in buckets {
                        eval.arg(key);
                    }
                    eval.arg(now);
                    for (_, rule) in buckets {
                        eval.arg(rule.interval_ms()).arg(rule.limit);
                    }
                    match tokio::time::timeout(
                        REDIS_TIMEOUT,
                        eval.query_async::<(usize, u64)>(&mut conn),
                    )
                    .await
                    {
                        Ok(Ok((0, _))) => None,
                        Ok(Ok((i, wait))) => Some((i - 1, wait)),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "turn budgets: Redis failed; counting in this process");
                            take_in(fallback, buckets, now)
                        }
                        Err(_) => {
                            tracing::warn!(
                                "turn budgets: Redis did not answer; counting in this process"
                            );
                            take_in(fallback, buckets, now)
                        }
                    }
                }
            },
        };
        refused.and_then(|(i, wait)| buckets.get(i).map(|(_, rule)| (*rule, wait)))
    }
}

/// The in-process buckets (the same algorithm as [`GCRA_SCRIPT`]): the
/// index of the bucket that refused and the wait in ms, or `None` after
/// taking a turn from each.
fn take_in(
    map: &Mutex<HashMap<String, u64>>,
    buckets: &[(String, Rule)],
    now: u64,
) -> Option<(usize, u64)> {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() > 100_000 {
        // A bucket whose time has passed is full: the same as no entry.
        map.retain(|_, tat| *tat > now);
    }
    let mut next = Vec::with_capacity(buckets.len());
    let mut refused: Option<(usize, u64)> = None;
    for (i, (key, rule)) in buckets.iter().enumerate() {
        let interval = rule.interval_ms();
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let next_tat = tat.saturating_add(interval);
        let allowed_at = next_tat.saturating_sub(interval.saturating_mul(u64::from(rule.limit)));
        if allowed_at > now && refused.is_none_or(|(_, wait)| allowed_at - now > wait) {
            refused = Some((i, allowed_at - now));
        }
        next.push(next_tat);
    }
    if refused.is_none() {
        for ((key, _), tat) in buckets.iter().zip(next) {
            map.insert(key.clone(), tat);
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_client_address_is_the_peer_unless_the_proxy_is_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7"
                .parse()
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
        let peer = addr("127.0.0.1:5000");
        assert_eq!(ClientAddress::of(peer, &h, false).0, peer.ip());
        assert_eq!(
            ClientAddress::of(peer, &h, true).0.to_string(),
            "198.51.100.7",
            "the entry the app's own proxy added, not one the client wrote"
        );
        assert!(!ClientAddress(peer.ip()).is_direct_loopback(&h));
        assert!(ClientAddress(peer.ip()).is_direct_loopback(&HeaderMap::new()));
    }

    #[test]
    fn sockets_are_capped_per_session_and_per_address() {
        let limits = Limits {
            ws_per_session: 2,
            ws_per_address: 3,
            ..Limits::default()
        };
        let counts = SocketCounts::default();
        let a = ClientAddress(addr("10.0.0.1:1").ip());
        let first = counts.open(&limits, "s1", a).ok();
        let second = counts.open(&limits, "s1", a).ok();
        assert!(first.is_some() && second.is_some());
        assert_eq!(
            counts.open(&limits, "s1", a).err(),
            Some(SocketRefusal::PerSession(2))
        );
        let third = counts.open(&limits, "s2", a).ok();
        assert!(third.is_some());
        assert_eq!(
            counts.open(&limits, "s3", a).err(),
            Some(SocketRefusal::PerAddress(3))
        );
        drop(first);
        assert!(
            counts.open(&limits, "s1", a).is_ok(),
            "a closed socket frees its slot"
        );
    }

    #[tokio::test]
    async fn turn_budgets_count_per_session_merchant_and_address() {
        let budget = TurnBudget::in_process(Limits {
            turns_per_minute_session: 3,
            turns_per_minute_merchant: 5,
            turns_per_minute_address: 100,
            conversations_per_hour: 1,
            ..Limits::default()
        });
        let address = ClientAddress(addr("10.0.0.1:1").ip());
        let user: UserId = "usr_abcdefgh".parse().unwrap_or_else(|e| panic!("{e:?}"));
        let who = |session| Requester {
            session_id: session,
            user_id: Some(&user),
            address,
        };
        for _ in 0..3 {
            assert!(budget.charge(&who("s1"), Charge::Turn).await.is_ok());
        }
        let refused = budget.charge(&who("s1"), Charge::Turn).await.err();
        assert!(
            refused
                .as_ref()
                .is_some_and(|r| r.what.contains("browser") && r.retry_after <= MINUTE)
        );
        // Another session of the same merchant: the merchant's budget (5)
        // has two turns left (a refused frame takes nothing).
        assert!(budget.charge(&who("s2"), Charge::Turn).await.is_ok());
        assert!(budget.charge(&who("s2"), Charge::Turn).await.is_ok());
        let refused = budget.charge(&who("s2"), Charge::Turn).await.err();
        assert!(refused.is_some_and(|r| r.what.contains("store")));
        // Conversations per session per hour.
        let visitor = Requester {
            session_id: "s3",
            user_id: None,
            address,
        };
        assert!(budget.charge(&visitor, Charge::Conversation).await.is_ok());
        let refused = budget.charge(&visitor, Charge::Conversation).await.err();
        assert!(refused.is_some_and(|r| r.what.contains("conversations") && r.retry_after <= HOUR));
    }
}
