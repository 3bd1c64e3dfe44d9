//! The store-data cache: in process ([`MemoryCache`]) by default, Redis
//! ([`RedisCache`]) when configured. Every key belongs to one shop, so a
//! shop's entries can be cleared at once (on uninstall).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::ShopDomain;

/// How long fetched store data stays cached by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The Redis key namespace; keys are `{namespace}{shop}:{item}`.
pub const DEFAULT_REDIS_NAMESPACE: &str = "hirecj:shopify:";

/// A cache key: the shop it belongs to and the item within that shop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The shop the data belongs to.
    pub shop: ShopDomain,
    /// The item, e.g. `store_counts` or `recent_orders:10`.
    pub item: String,
}

impl CacheKey {
    /// A key for `item` of `shop`.
    pub fn new(shop: &ShopDomain, item: impl Into<String>) -> Self {
        Self {
            shop: shop.clone(),
            item: item.into(),
        }
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.shop, self.item)
    }
}

/// A cache failure that the caller must know about (clearing on uninstall,
/// connecting). Reads and writes never fail: a broken cache is a miss.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis refused or failed a command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis has not been reached since the app started (it keeps trying).
    #[error("redis is not connected yet")]
    NotConnected,
}

/// A Redis connection that is made in the background: the app starts
/// whether or not Redis answers, and keeps trying (1 s, doubling to 30 s)
/// until it does; then the [`redis::aio::ConnectionManager`] reconnects by
/// itself. Cheap to clone.
#[derive(Clone)]
pub struct RedisLink {
    conn: Arc<std::sync::OnceLock<redis::aio::ConnectionManager>>,
}

impl fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLink")
            .field("connected", &self.conn.get().is_some())
            .finish()
    }
}

/// A Redis client for `url` whose TCP sockets send small writes at once
/// (`TCP_NODELAY`): a cache or budget round trip is never held back by
/// Nagle's algorithm waiting on the server's delayed ACK.
fn redis_client(url: &str) -> Result<redis::Client, redis::RedisError> {
    use redis::IntoConnectionInfo as _;
    let info = url
        .into_connection_info()?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    redis::Client::open(info)
}

/// One attempt to connect to `client` within `timeout`, which also bounds
/// each later command.
async fn connect_manager(
    client: &redis::Client,
    timeout: Duration,
) -> Result<redis::aio::ConnectionManager, CacheError> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2);
    tokio::time::timeout(
        timeout,
        redis::aio::ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
    .map_err(|_| CacheError::Timeout(timeout))?
    .map_err(CacheError::from)
}

impl RedisLink {
    /// Connects to `url` (`redis://…`), each attempt and later each
    /// command bounded by `timeout`: waits for the first attempt only, and
    /// on failure (logged for `what`) goes on in the background. Fails only
    /// for a URL that is not a Redis URL.
    pub async fn open(
        url: &str,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Self, CacheError> {
        let client = redis_client(url)?;
        let link = Self {
            conn: Arc::default(),
        };
        let attempt = move || {
            let client = client.clone();
            async move { connect_manager(&client, timeout).await }
        };
        match attempt().await {
            Ok(conn) => {
                let _ = link.conn.set(conn);
            }
            Err(e) => {
                tracing::warn!(what, error = %e, "Redis unavailable; running without it and retrying");
                let slot = link.conn.clone();
                tokio::spawn(async move {
                    let mut wait = Duration::from_secs(1);
                    loop {
                        tokio::time::sleep(wait).await;
                        match attempt().await {
                            Ok(conn) => {
                                let _ = slot.set(conn);
                                tracing::info!(what, "Redis connected");
                                return;
                            }
                            Err(e) => tracing::debug!(what, error = %e, "Redis still unavailable"),
                        }
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                });
            }
        }
        Ok(link)
    }

    /// The connection, once Redis has been reached.
    pub fn get(&self) -> Option<redis::aio::ConnectionManager> {
        self.conn.get().cloned()
    }
}

/// A string cache with per-entry TTL, scoped by shop.
#[async_trait]
pub trait Cache: Send + Sync + fmt::Debug {
    /// The cached value, if present and fresh. Errors count as a miss.
    async fn get(&self, key: &CacheKey) -> Option<String>;
    /// Stores `value` for `ttl`. Errors are logged and ignored.
    async fn set(&self, key: &CacheKey, value: String, ttl: Duration);
    /// Removes every entry of `shop`; returns how many were removed.
    async fn clear_prefix(&self, shop: &ShopDomain) -> Result<usize, CacheError>;
}

/// An in-process cache with TTL and a bound on the number of entries: when
/// full, expired entries go first, then those closest to expiry.
#[derive(Debug)]
pub struct MemoryCache {
    entries: Mutex<HashMap<CacheKey, (String, Instant)>>,
    max_entries: usize,
}

impl MemoryCache {
    /// The default bound on entries.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

    /// A cache holding at most [`Self::DEFAULT_MAX_ENTRIES`] entries.
    pub fn new() -> Self {
        Self::with_max_entries(Self::DEFAULT_MAX_ENTRIES)
    }

    /// A cache holding at most `max_entries` entries (at least one).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    /// Entries currently held, fresh or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, (String, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &CacheKey) -> Option<String> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    async fn set(&self, key: &CacheKey, value: String, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.lock();
        if !entries.contains_key(key) && entries.len() >= self.max_entries {
            entries.retain(|_, (_, expires)| *expires > now);
            while entries.len() >= self.max_entries {
                let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                entries.remove(&oldest);
            }
        }
        entries.insert(key.clone(), (value, now + ttl));
    }

    async fn clear_prefix(&self, shop: &ShopDomain) -> Result<usize, CacheError> {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|k, _| &k.shop != shop);
        Ok(before - entries.len())
    }
}

/// A Redis cache over a [`redis::aio::ConnectionManager`] (reconnects by
/// itself). Keys are `{namespace}{shop}:{item}` (namespace
/// [`DEFAULT_REDIS_NAMESPACE`] by default); clearing a shop runs `SCAN` +
/// `UNLINK` on `{namespace}{shop}:*`. Connecting and every command are
/// bounded by a timeout.
#[derive(Clone)]
pub struct RedisCache {
    conn: RedisLink,
    namespace: String,
    timeout: Duration,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: it is not kept, and not printed.
        f.debug_struct("RedisCache")
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// The default timeout of connecting and of each command.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects to `url` (`redis://…`) with the default namespace. An
    /// unreachable Redis is not an error: until it answers (see
    /// [`RedisLink`]) every read is a miss, writes are skipped and clearing
    /// a shop fails with [`CacheError::NotConnected`].
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        Ok(Self {
            conn: RedisLink::open(url, Self::DEFAULT_TIMEOUT, "cache").await?,
            namespace: DEFAULT_REDIS_NAMESPACE.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Connects with a key namespace (e.g. a unique one per test run) and a
    /// timeout for connecting and for each command; fails when Redis does
    /// not answer.
    pub async fn connect_with(
        url: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Self, CacheError> {
        let conn = connect_manager(&redis_client(url)?, timeout).await?;
        Ok(Self {
            conn: RedisLink {
                conn: Arc::new(std::sync::OnceLock::from(conn)),
            },
            namespace: namespace.to_owned(),
            timeout,
        })
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        format!("{}{}:{}", self.namespace, key.shop, key.item)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, CacheError> {
        let mut conn = self.conn.get().ok_or(CacheError::NotConnected)?;
        tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| CacheError::Timeout(self.timeout))?
            .map_err(CacheError::from)
    }
}

/// Escapes the glob characters of a `SCAN MATCH` pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &CacheKey) -> Option<String> {
        match self
            .run::<Option<String>>(redis::cmd("GET").arg(self.redis_key(key)))
            .await
        {
            Ok(value) => value,
            Err(CacheError::NotConnected) => None,
            Err(e) => {
                tracing::warn!(shop = %key.shop, error = %e, "redis cache read failed");
                None
            }
        }
    }

    async fn set(&self, key: &CacheKey, value: String, ttl: Duration) {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let cmd = redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(value)
            .arg("PX")
            .arg(millis)
            .to_owned();
        match self.run::<()>(&cmd).await {
            Ok(()) | Err(CacheError::NotConnected) => {}
            Err(e) => tracing::warn!(shop = %key.shop, error = %e, "redis cache write failed"),
        }
    }

    async fn clear_prefix(&self, shop: &ShopDomain) -> Result<usize, CacheError> {
        let pattern = format!("{}*", glob_escape(&format!("{}{}:", self.namespace, shop)));
        let mut cursor: u64 = 0;
        let mut removed = 0usize;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500),
                )
                .await?;
            if !keys.is_empty() {
                let n: usize = self.run(redis::cmd("UNLINK").arg(&keys)).await?;
                removed += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        tracing::info!(%shop, removed, "cleared the shop's cached Shopify data");
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(name: &str) -> ShopDomain {
        ShopDomain::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn memory_ttl_and_scoping() {
        let cache = MemoryCache::new();
        let a = CacheKey::new(&shop("a"), "counts");
        let b = CacheKey::new(&shop("b"), "counts");
        cache.set(&a, "1".into(), Duration::from_secs(10)).await;
        cache.set(&b, "2".into(), Duration::from_secs(10)).await;
        assert_eq!(cache.get(&a).await.as_deref(), Some("1"));
        assert_eq!(cache.get(&b).await.as_deref(), Some("2"));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(cache.get(&a).await, None);
        cache.set(&a, "3".into(), Duration::from_secs(10)).await;
        cache
            .set(&CacheKey::new(&shop("a"), "other"), "4".into(), DEFAULT_TTL)
            .await;
        assert_eq!(cache.clear_prefix(&shop("a")).await.ok(), Some(2));
        assert_eq!(cache.get(&a).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded() {
        let cache = MemoryCache::with_max_entries(3);
        for i in 0..5u64 {
            let key = CacheKey::new(&shop("a"), format!("k{i}"));
            cache
                .set(&key, i.to_string(), Duration::from_secs(10 + i))
                .await;
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&CacheKey::new(&shop("a"), "k0")).await, None);
        assert_eq!(
            cache.get(&CacheKey::new(&shop("a"), "k4")).await.as_deref(),
            Some("4")
        );
    }

    #[test]
    fn glob_is_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
