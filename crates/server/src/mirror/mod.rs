//! The store mirror: each merchant's orders, line items, refunds, products
//! and customers, copied into our store so that CJ's tools answer by SQL
//! (DESIGN.md §9).
//!
//! * **Backfill** ([`Mirror::run`]): after an install the shop is
//!   registered (its time zone and currency) and a backfill is owed. Any
//!   replica may take it: [`hirecj_store::Store::claim_backfill`] is one
//!   atomic statement, so exactly one replica runs a shop's backfill, under
//!   a lease it renews while it works. It reads the store with Shopify's
//!   Bulk Operations — orders (with line items and refunds), then products,
//!   then customers — polling each operation, streaming its JSONL file and
//!   upserting in batches. Progress (the resource, the running operation's
//!   id, the counts) is stored after every step, so a replica that dies
//!   mid-backfill leaves it to the next one, which resumes polling the same
//!   operation rather than starting over.
//! * **Kept current** by webhooks (`shopify/webhooks.rs`: orders,
//!   products, customers, deletions, applied newest-wins) and by a
//!   **reconcile** every `HIRECJ_MIRROR_RECONCILE_SECS`: one replica per
//!   shop (a second lease) reads again, with bulk queries, everything
//!   updated since shortly before the previous reconcile, so a lost
//!   webhook is repaired within one interval. Shopify's searches do not
//!   return deleted objects, so the reconcile then **sweeps**: it lists
//!   the ids Shopify still has (id-only bulk queries) and deletes what the
//!   mirror holds beyond them, leaving tombstones, so a lost deletion is
//!   repaired within the same interval.
//! * **Answers** ([`MirroredStore`]): once the backfill is complete the
//!   tools read the mirror; until then they read live and say the figures
//!   may be partial.

mod data;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;
use hirecj_domain::UserId;
use hirecj_domain::mirror::{MirrorSync, ShopTimeZone};
use hirecj_shopify::bulk::{
    BulkError, BulkOperation, BulkOperationStatus, CUSTOMER_IDS_BULK_QUERY, CUSTOMERS_BULK_QUERY,
    CustomerParser, DownloadLimits, IdParser, OrderParser, PRODUCT_IDS_BULK_QUERY,
    PRODUCTS_BULK_QUERY, ProductParser, customers_updated_bulk_query, order_ids_bulk_query,
    orders_bulk_query, orders_updated_bulk_query, orders_visible_since,
    products_updated_bulk_query,
};
use hirecj_shopify::webhook_subscriptions::MIRROR_TOPICS;
use hirecj_shopify::{MoneyFormat, ShopifyDataFetcher};
use hirecj_store::{MirrorKind, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use data::MirroredStore;

use crate::shopify::ShopifyRuntime;
use crate::shopify::service::{AccessError, ShopAccess, access_token_for};

/// Objects mirrored before a backfill first refreshes the planner's
/// statistics; then again each time the count doubles.
const STATISTICS_FROM: i64 = 8_192;

/// Whether a batch that took the backfill from `before` to `after` objects
/// mirrored crossed [`STATISTICS_FROM`] or one of its doublings.
fn statistics_due(before: i64, after: i64) -> bool {
    let mut mark = STATISTICS_FROM;
    while mark <= after {
        if before < mark {
            return true;
        }
        mark = mark.saturating_mul(2);
    }
    false
}

/// The shortest lease: longer than the longest wait between two renewals
/// (a poll).
const MIN_LEASE: Duration = Duration::from_secs(5);
/// How often the runner looks for owed backfills when not woken.
const SCAN_EVERY: Duration = Duration::from_secs(15);
/// Records per upsert.
const BATCH: usize = 500;
/// First and longest wait between two polls of a bulk operation.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);
/// A bulk operation that runs longer than this is abandoned (and the
/// backfill tried again later).
const OPERATION_DEADLINE: Duration = Duration::from_secs(6 * 60 * 60);
/// A reconcile reads from this long before the previous one began, so a
/// change that raced it (or a clock a little off) is read again.
const RECONCILE_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// A sweep leaves alone the orders within this much of the edge of the
/// 60 days Shopify shows without `read_all_orders` (they may have just
/// left its window, not the store).
const SWEEP_WINDOW_MARGIN: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// A sweep that would delete more than half of a kind's mirrored rows (of
/// at least this many) is not applied: that looks like a fault (a lost
/// scope, a broken export), not like the merchant's deletions.
const SWEEP_GUARD_FROM: usize = 100;

/// Which lease a step holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    Backfill,
    Reconcile,
}

/// What a backfill reads, in order: one bulk operation each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Orders,
    Products,
    Customers,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Orders, Phase::Products, Phase::Customers];

    fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Products => "products",
            Self::Customers => "customers",
        }
    }
}

/// The mirror's service: registers shops and runs their backfills.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    shopify: ShopifyRuntime,
    /// Where Shopify sends the mirror's webhooks.
    webhook_uri: String,
    /// How often each complete mirror is reconciled.
    reconcile_every: Duration,
    /// How long a claimed backfill or reconcile is this replica's without
    /// renewal.
    lease: Duration,
    /// This replica, as a lease owner.
    owner: String,
    wake: Notify,
    /// A bulk operation finished (its webhook came): stop waiting for the
    /// next poll.
    bulk_finished: Notify,
    /// Told of every backfill this replica completes.
    history_read: tokio::sync::broadcast::Sender<HistoryRead>,
}

/// A backfill completed: the shop's order history is in the mirror.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRead {
    pub shop: String,
    /// Orders mirrored.
    pub orders: i64,
    /// The earliest day the mirror covers (`None`: the whole history).
    pub since: Option<chrono::NaiveDate>,
    /// When the backfill completed.
    pub at: chrono::DateTime<Utc>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("owner", &self.inner.owner)
            .finish_non_exhaustive()
    }
}

/// Why a backfill stopped before completing.
#[derive(Debug, thiserror::Error)]
enum BackfillError {
    #[error("store: {0}")]
    Store(#[from] hirecj_store::StoreError),
    #[error("shop access: {0}")]
    Access(#[from] AccessError),
    #[error("Shopify: {0}")]
    Bulk(#[from] BulkError),
    #[error("the bulk operation did not finish in time")]
    Deadline,
    #[error("the shop has no merchant")]
    NoMerchant,
    #[error("another replica took the backfill over")]
    LeaseLost,
    #[error("shutting down")]
    Shutdown,
}

impl Mirror {
    /// The mirror over `store`, reading Shopify through `shopify`,
    /// subscribing its webhooks at `webhook_uri`, reconciling each shop
    /// every `reconcile_every` and claiming work for `lease` at a time
    /// (renewed at every poll and batch, so at least a few seconds).
    pub fn new(
        store: Store,
        shopify: ShopifyRuntime,
        webhook_uri: String,
        reconcile_every: Duration,
        lease: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                shopify,
                webhook_uri,
                reconcile_every,
                lease: lease.max(MIN_LEASE),
                owner: format!("replica-{}", uuid::Uuid::new_v4().simple()),
                wake: Notify::new(),
                bulk_finished: Notify::new(),
                history_read: tokio::sync::broadcast::channel(64).0,
            }),
        }
    }

    /// After an install, before CJ's first message is prepared: registers
    /// the shop (its time zone and currency, read live) so that a backfill
    /// is owed and the first message can say how far the reading has come,
    /// (the runner is woken once the webhooks are subscribed, see
    /// [`Self::subscribe`]). An install that newly grants `read_all_orders`
    /// to a mirror that holds only the last 60 days asks for a fresh
    /// backfill, which reads the whole history. Never fails the install:
    /// problems are logged and the next install or scan tries again.
    pub async fn register(&self, user: &UserId) {
        let inner = &self.inner;
        let access = match access_token_for(&inner.store, &inner.shopify, user).await {
            Ok(access) => access,
            Err(e) => {
                tracing::warn!(user_id = %user, error = %e, "cannot register the store mirror");
                return;
            }
        };
        let shop = access.shop.as_str().to_owned();
        let fetcher = ShopifyDataFetcher::new(
            inner.shopify.admin.clone(),
            access.shop.clone(),
            access.token.clone(),
            inner.shopify.cache.clone(),
        );
        let (zone, currency, money_format) = match fetcher.shop_info().await {
            Ok(info) => (
                info.timezone
                    .as_deref()
                    .and_then(|z| z.parse::<ShopTimeZone>().ok())
                    .unwrap_or(ShopTimeZone::UTC),
                Some(info.currency),
                // Kept as plain text, only when usable.
                info.money_format.as_deref().and_then(|f| match MoneyFormat::parse(f) {
                    Ok(format) => Some(format.to_string()),
                    Err(e) => {
                        tracing::warn!(%shop, error = %e, "the shop's money format is not usable; amounts follow its currency");
                        None
                    }
                }),
            ),
            Err(e) => {
                tracing::warn!(%shop, error = %e, "shop details unavailable; mirror registered in UTC");
                (ShopTimeZone::UTC, None, None)
            }
        };
        let before = match inner.store.mirror_sync(&shop).await {
            Ok(before) => before,
            Err(e) => {
                tracing::error!(%shop, error = %e, "could not read the store mirror's state");
                return;
            }
        };
        if let Err(e) = inner
            .store
            .mirror_register_shop(&shop, zone, currency.as_deref(), money_format.as_deref())
            .await
        {
            tracing::error!(%shop, error = %e, "could not register the store mirror");
            return;
        }
        tracing::info!(%shop, time_zone = %zone, "store mirror registered");
        // A mirror cut at Shopify's 60-day window, now that the whole
        // history is visible: read it all again.
        let widened = orders_visible_since(Utc::now(), zone, &access.scopes).is_none();
        if widened && let Some(before) = before.filter(|b| b.covers_since.is_some()) {
            match inner.store.mirror_request_backfill(&shop).await {
                Ok(true) => tracing::info!(
                    %shop,
                    orders_mirrored = before.orders_mirrored,
                    "read_all_orders granted; the store mirror reads the whole history again"
                ),
                // Not complete yet: the running backfill keeps its window
                // and the next install after it widens it.
                Ok(false) => {}
                Err(e) => tracing::error!(%shop, error = %e, "could not ask for a fresh backfill"),
            }
        }
    }

    /// Subscribes the shop's webhooks that keep its mirror current (and
    /// `app/uninstalled`), after an install, in the background. Subscribing
    /// again is not an error. A topic that cannot be subscribed is logged:
    /// the reconcile repairs what its webhooks would have brought.
    pub async fn subscribe(&self, user: &UserId) {
        let inner = &self.inner;
        let access = match access_token_for(&inner.store, &inner.shopify, user).await {
            Ok(access) => access,
            Err(e) => {
                tracing::warn!(user_id = %user, error = %e, "cannot subscribe the store's webhooks");
                return;
            }
        };
        let mut subscribed = 0;
        for topic in MIRROR_TOPICS {
            match inner
                .shopify
                .admin
                .create_webhook_subscription(&access.shop, &access.token, topic, &inner.webhook_uri)
                .await
            {
                Ok(_) => subscribed += 1,
                Err(e) => {
                    tracing::warn!(shop = %access.shop, topic, error = %e, "webhook subscription failed")
                }
            }
        }
        tracing::info!(shop = %access.shop, subscribed, "store webhooks subscribed");
    }

    /// The backfills this replica completes, from now on.
    pub fn history_read(&self) -> tokio::sync::broadcast::Receiver<HistoryRead> {
        self.inner.history_read.subscribe()
    }

    /// Wakes the runner (a shop was registered, a backfill is owed).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// A bulk operation finished (`bulk_operations/finish`): whatever
    /// waits for one polls now.
    pub fn bulk_finished(&self) {
        self.inner.bulk_finished.notify_waiters();
        self.inner.wake.notify_one();
    }

    /// The mirror's state for `shop`.
    pub async fn sync(&self, shop: &str) -> Result<Option<MirrorSync>, hirecj_store::StoreError> {
        self.inner.store.mirror_sync(shop).await
    }

    /// Runs owed backfills, one at a time, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        loop {
            let owed = match inner.store.shops_awaiting_backfill(8).await {
                Ok(owed) => owed,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list owed backfills");
                    Vec::new()
                }
            };
            for shop in owed {
                if shutdown.is_cancelled() {
                    return;
                }
                let claimed = match inner
                    .store
                    .claim_backfill(&shop, &inner.owner, inner.lease)
                    .await
                {
                    Ok(Some(sync)) => sync,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(%shop, error = %e, "could not claim a backfill");
                        continue;
                    }
                };
                let started = std::time::Instant::now();
                tracing::info!(%shop, phase = claimed.phase.as_deref(), "store mirror backfill claimed");
                match self.backfill(&shop, claimed, &shutdown).await {
                    Ok(orders) => {
                        tracing::info!(
                            %shop,
                            orders,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "store mirror backfill complete"
                        );
                        if let Ok(Some(sync)) = inner.store.mirror_sync(&shop).await {
                            let _ = inner.history_read.send(HistoryRead {
                                shop: shop.clone(),
                                orders: sync.orders_mirrored,
                                since: sync.covers_since.map(|at| at.date_naive()),
                                at: sync.completed_at.unwrap_or_else(Utc::now),
                            });
                        }
                    }
                    Err(BackfillError::Shutdown) => return,
                    Err(BackfillError::LeaseLost) => {
                        tracing::warn!(%shop, "backfill lease lost; another replica continues it");
                    }
                    Err(e) => {
                        tracing::warn!(%shop, error = %e, "store mirror backfill failed; it will be retried");
                        if let Err(e2) = inner
                            .store
                            .fail_backfill(&shop, &inner.owner, &e.to_string())
                            .await
                        {
                            tracing::warn!(%shop, error = %e2, "could not record the failed backfill");
                        }
                    }
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
            self.reconcile_due(&shutdown).await;
            // A backfill left by a dead replica is owed again once its
            // lease lapses: look again within a lease.
            let scan = SCAN_EVERY.min(inner.reconcile_every).min(inner.lease);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(scan) => {}
            }
        }
    }

    /// Reconciles every shop whose last reconcile is older than the
    /// interval (each claimed by one replica).
    async fn reconcile_due(&self, shutdown: &CancellationToken) {
        let inner = &self.inner;
        let every = chrono::TimeDelta::from_std(inner.reconcile_every)
            .unwrap_or(chrono::TimeDelta::minutes(15));
        let due_before = Utc::now() - every;
        let due = match inner.store.shops_due_for_reconcile(due_before, 8).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the mirrors due for a reconcile");
                return;
            }
        };
        for shop in due {
            if shutdown.is_cancelled() {
                return;
            }
            match inner
                .store
                .claim_reconcile(&shop, &inner.owner, inner.lease, due_before)
                .await
            {
                Ok(Some(sync)) => {
                    if let Err(e) = self.reconcile(&shop, &sync, shutdown).await {
                        tracing::warn!(%shop, error = %e, "store mirror reconcile failed; it will be retried");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%shop, error = %e, "could not claim a reconcile"),
            }
        }
    }

    /// Reconciles `shop` now, whenever it was last reconciled: reads again
    /// every order, product and customer changed since shortly before the
    /// last reconcile (or the backfill) and applies them (older records
    /// never overwrite newer ones). Returns the orders read. This is what
    /// repairs a lost webhook.
    pub async fn reconcile_now(&self, shop: &str) -> Result<u64, String> {
        let inner = &self.inner;
        let far_future = Utc::now() + chrono::TimeDelta::days(365 * 100);
        let sync = inner
            .store
            .claim_reconcile(shop, &inner.owner, inner.lease, far_future)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("{shop} has no complete mirror, or another replica is reconciling it")
            })?;
        self.reconcile(shop, &sync, &CancellationToken::new())
            .await
            .map_err(|e| e.to_string())
    }

    /// One reconcile under a claimed lease; releases it either way.
    async fn reconcile(
        &self,
        shop: &str,
        sync: &MirrorSync,
        shutdown: &CancellationToken,
    ) -> Result<u64, BackfillError> {
        let inner = &self.inner;
        let read_from = Utc::now();
        let result = self.reconcile_inner(shop, sync, shutdown).await;
        let recorded = match &result {
            Ok(orders) => {
                tracing::info!(shop, orders, "store mirror reconciled");
                inner
                    .store
                    .finish_reconcile(shop, &inner.owner, Some(read_from))
                    .await
            }
            Err(_) => inner.store.finish_reconcile(shop, &inner.owner, None).await,
        };
        if let Err(e) = recorded {
            tracing::warn!(shop, error = %e, "could not record the reconcile");
        }
        result
    }

    async fn reconcile_inner(
        &self,
        shop: &str,
        sync: &MirrorSync,
        shutdown: &CancellationToken,
    ) -> Result<u64, BackfillError> {
        let inner = &self.inner;
        let user = inner
            .store
            .user_by_shop(shop)
            .await?
            .ok_or(BackfillError::NoMerchant)?;
        let access = access_token_for(&inner.store, &inner.shopify, &user.id).await?;
        let since = sync
            .last_reconcile_at
            .or(sync.started_at)
            .unwrap_or_else(Utc::now)
            - RECONCILE_OVERLAP;
        let progress = Progress {
            orders: AtomicI64::new(0),
            objects: AtomicI64::new(0),
        };
        for phase in Phase::ALL {
            let query = match phase {
                Phase::Orders => orders_updated_bulk_query(since),
                Phase::Products => products_updated_bulk_query(since),
                Phase::Customers => customers_updated_bulk_query(since),
            };
            let op = self.run_query(&access, &query, Lease::Reconcile).await?;
            let done = self
                .wait_for(&access, &op.id, shutdown, Lease::Reconcile)
                .await?;
            if let Some(url) = done.url.as_deref() {
                self.load(shop, phase, url, &progress, Lease::Reconcile)
                    .await?;
            }
        }
        for kind in [
            MirrorKind::Orders,
            MirrorKind::Products,
            MirrorKind::Customers,
        ] {
            self.sweep(shop, sync, &access, kind, shutdown).await?;
        }
        Ok(progress.orders.load(Ordering::Relaxed).unsigned_abs())
    }

    /// Deletes from the mirror what Shopify no longer lists of `kind`
    /// (deletions whose webhooks were lost): lists every id with an
    /// id-only bulk query and deletes, as of the operation's start, the
    /// mirrored rows last updated before it that are not among them.
    /// Orders are compared within what the token may see (without
    /// `read_all_orders`, Shopify's last 60 days: older mirrored orders
    /// stay). Returns the rows deleted.
    async fn sweep(
        &self,
        shop: &str,
        sync: &MirrorSync,
        access: &ShopAccess,
        kind: MirrorKind,
        shutdown: &CancellationToken,
    ) -> Result<u64, BackfillError> {
        let inner = &self.inner;
        let visible_since = orders_visible_since(Utc::now(), sync.time_zone, &access.scopes);
        let (query, gid_kind) = match kind {
            MirrorKind::Orders => (order_ids_bulk_query(visible_since), "Order"),
            MirrorKind::Products => (PRODUCT_IDS_BULK_QUERY.to_owned(), "Product"),
            MirrorKind::Customers => (CUSTOMER_IDS_BULK_QUERY.to_owned(), "Customer"),
        };
        let op = self.run_query(access, &query, Lease::Reconcile).await?;
        let done = self
            .wait_for(access, &op.id, shutdown, Lease::Reconcile)
            .await?;
        let mut listed = std::collections::HashSet::new();
        if let Some(url) = done.url.as_deref() {
            let listed = &mut listed;
            inner
                .shopify
                .admin
                .download_jsonl(
                    url,
                    &mut IdParser::new(gid_kind),
                    BATCH * 20,
                    DownloadLimits::default(),
                    |ids| {
                        listed.extend(ids);
                        std::future::ready(Ok(()))
                    },
                )
                .await?;
        }
        let created_since = match kind {
            // Shopify's cut rolls from the operation's start.
            MirrorKind::Orders => visible_since.map(|since| {
                let window =
                    chrono::TimeDelta::days(hirecj_shopify::fetcher::VISIBILITY_WINDOW_DAYS as i64);
                since.max(done.created_at - window) + SWEEP_WINDOW_MARGIN
            }),
            MirrorKind::Products | MirrorKind::Customers => None,
        };
        let held = inner
            .store
            .mirror_ids(shop, kind, done.created_at, created_since)
            .await?;
        let gone: Vec<i64> = held
            .iter()
            .copied()
            .filter(|id| !listed.contains(id))
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        if held.len() >= SWEEP_GUARD_FROM && gone.len() * 2 > held.len() {
            tracing::warn!(
                shop,
                ?kind,
                held = held.len(),
                listed = listed.len(),
                missing = gone.len(),
                "a store mirror sweep would delete most of what is mirrored; not applied"
            );
            return Ok(0);
        }
        let at = done.created_at;
        let deleted = match kind {
            MirrorKind::Orders => inner.store.mirror_delete_orders(shop, &gone, at).await?,
            MirrorKind::Products | MirrorKind::Customers => {
                let mut n = 0;
                for id in &gone {
                    let deleted = if kind == MirrorKind::Products {
                        inner.store.mirror_delete_product(shop, *id, at).await?
                    } else {
                        inner.store.mirror_delete_customer(shop, *id, at).await?
                    };
                    n += u64::from(deleted);
                    if !self.renew(shop, Lease::Reconcile).await? {
                        return Err(BackfillError::LeaseLost);
                    }
                }
                n
            }
        };
        tracing::info!(
            shop,
            ?kind,
            deleted,
            "store mirror swept: deletions Shopify no longer lists"
        );
        Ok(deleted)
    }

    /// Renews this replica's lease of `lease` on `shop`.
    async fn renew(&self, shop: &str, lease: Lease) -> Result<bool, hirecj_store::StoreError> {
        let inner = &self.inner;
        match lease {
            Lease::Backfill => {
                inner
                    .store
                    .renew_backfill(shop, &inner.owner, inner.lease)
                    .await
            }
            Lease::Reconcile => {
                inner
                    .store
                    .renew_reconcile(shop, &inner.owner, inner.lease)
                    .await
            }
        }
    }

    /// One shop's backfill, from where `sync` says it stands. Returns the
    /// orders mirrored.
    async fn backfill(
        &self,
        shop: &str,
        sync: MirrorSync,
        shutdown: &CancellationToken,
    ) -> Result<i64, BackfillError> {
        let inner = &self.inner;
        let user = inner
            .store
            .user_by_shop(shop)
            .await?
            .ok_or(BackfillError::NoMerchant)?;
        let access = access_token_for(&inner.store, &inner.shopify, &user.id).await?;
        // Without read_all_orders Shopify shows the last 60 days: the
        // query asks from the shop's midnight 60 days back, and Shopify
        // answers from 60 days before the operation began (a rolling
        // cut): that is what the mirror covers. (Resumed after the orders,
        // the backfill's start stands in for the operation's.)
        let query_since = orders_visible_since(Utc::now(), sync.time_zone, &access.scopes);
        let window =
            chrono::TimeDelta::days(hirecj_shopify::fetcher::VISIBILITY_WINDOW_DAYS as i64);
        let rolling_cut =
            |read_at: chrono::DateTime<Utc>| query_since.map(|q| q.max(read_at - window));
        let mut covers_since = rolling_cut(sync.started_at.unwrap_or_else(Utc::now));
        let start = Phase::ALL
            .iter()
            .position(|p| Some(p.as_str()) == sync.phase.as_deref())
            .unwrap_or(0);
        let progress = Progress {
            orders: AtomicI64::new(sync.orders_mirrored),
            objects: AtomicI64::new(sync.objects_mirrored),
        };
        for (i, phase) in Phase::ALL.iter().copied().enumerate().skip(start) {
            let resumed = (i == start)
                .then(|| sync.bulk_operation_id.clone())
                .flatten();
            let id = match resumed {
                Some(id) => id,
                None => {
                    let op = self.start_operation(&access, phase, query_since).await?;
                    self.step(shop, phase, Some(&op.id), &progress).await?;
                    op.id
                }
            };
            let done = match self.wait_for(&access, &id, shutdown, Lease::Backfill).await {
                Ok(done) => Some(done),
                // A recorded operation that no longer exists (or expired)
                // is read again from the start of this phase.
                Err(BackfillError::Bulk(BulkError::NotFound(_)))
                | Err(BackfillError::Bulk(BulkError::Failed {
                    status: BulkOperationStatus::Expired,
                    ..
                })) if i == start => None,
                Err(e) => return Err(e),
            };
            let done = match done {
                Some(done) => done,
                None => {
                    let op = self.start_operation(&access, phase, query_since).await?;
                    self.step(shop, phase, Some(&op.id), &progress).await?;
                    self.wait_for(&access, &op.id, shutdown, Lease::Backfill)
                        .await?
                }
            };
            if phase == Phase::Orders {
                covers_since = rolling_cut(done.created_at);
            }
            if let Some(url) = done.url.as_deref() {
                self.load(shop, phase, url, &progress, Lease::Backfill)
                    .await?;
            }
            // The next phase starts with no operation.
            let next = Phase::ALL.get(i + 1).copied().unwrap_or(phase);
            self.step(shop, next, None, &progress).await?;
        }
        inner
            .store
            .complete_backfill(shop, &inner.owner, covers_since)
            .await?;
        Ok(progress.orders.load(Ordering::Relaxed))
    }

    /// Starts the backfill's bulk query of `phase`.
    async fn start_operation(
        &self,
        access: &ShopAccess,
        phase: Phase,
        covers_since: Option<chrono::DateTime<Utc>>,
    ) -> Result<BulkOperation, BackfillError> {
        let query = match phase {
            Phase::Orders => orders_bulk_query(covers_since),
            Phase::Products => PRODUCTS_BULK_QUERY.to_owned(),
            Phase::Customers => CUSTOMERS_BULK_QUERY.to_owned(),
        };
        self.run_query(access, &query, Lease::Backfill).await
    }

    /// Starts bulk query `query`. A bulk query already running for the
    /// shop (Shopify runs one at a time per app and shop) is waited for
    /// first.
    async fn run_query(
        &self,
        access: &ShopAccess,
        query: &str,
        lease: Lease,
    ) -> Result<BulkOperation, BackfillError> {
        let admin = &self.inner.shopify.admin;
        match admin
            .run_bulk_query(&access.shop, &access.token, query)
            .await
        {
            Err(e) if e.is_in_progress() => {
                if let Some(running) = admin
                    .current_bulk_operation(&access.shop, &access.token)
                    .await?
                {
                    tracing::info!(shop = %access.shop, operation = %running.id, "waiting for a bulk query already running");
                    let never = CancellationToken::new();
                    let _ = self.wait_for(access, &running.id, &never, lease).await;
                }
                Ok(admin
                    .run_bulk_query(&access.shop, &access.token, query)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    async fn step(
        &self,
        shop: &str,
        phase: Phase,
        operation: Option<&str>,
        progress: &Progress,
    ) -> Result<(), BackfillError> {
        let inner = &self.inner;
        let held = inner
            .store
            .record_backfill_step(
                shop,
                &inner.owner,
                operation,
                phase.as_str(),
                progress.orders.load(Ordering::Relaxed),
                progress.objects.load(Ordering::Relaxed),
            )
            .await?;
        if held {
            Ok(())
        } else {
            Err(BackfillError::LeaseLost)
        }
    }

    /// Polls the operation until it ends, renewing the lease.
    async fn wait_for(
        &self,
        access: &ShopAccess,
        id: &str,
        shutdown: &CancellationToken,
        lease: Lease,
    ) -> Result<BulkOperation, BackfillError> {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + OPERATION_DEADLINE;
        let mut wait = POLL_FIRST;
        loop {
            let op = inner
                .shopify
                .admin
                .bulk_operation(&access.shop, &access.token, id)
                .await?
                .ok_or_else(|| BulkError::NotFound(id.to_owned()))?;
            if op.status == BulkOperationStatus::Completed {
                return Ok(op);
            }
            if op.status.is_finished() {
                return Err(BulkError::Failed {
                    id: op.id,
                    status: op.status,
                    error_code: op.error_code,
                }
                .into());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackfillError::Deadline);
            }
            if !self.renew(access.shop.as_str(), lease).await? {
                return Err(BackfillError::LeaseLost);
            }
            tokio::select! {
                () = shutdown.cancelled() => return Err(BackfillError::Shutdown),
                () = inner.bulk_finished.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(POLL_MAX);
        }
    }

    /// Streams one finished operation's file into the mirror, in batches,
    /// storing progress (and renewing the lease) after each.
    async fn load(
        &self,
        shop: &str,
        phase: Phase,
        url: &str,
        progress: &Progress,
        lease: Lease,
    ) -> Result<(), BackfillError> {
        let inner = &self.inner;
        let admin = &inner.shopify.admin;
        let limits = DownloadLimits::default();
        let store = &inner.store;
        let after_batch = |orders: i64, objects: i64| async move {
            progress.orders.fetch_add(orders, Ordering::Relaxed);
            let before = progress.objects.fetch_add(objects, Ordering::Relaxed);
            if statistics_due(before, before + objects) {
                // The tables doubled: plans made for their old size would
                // slow every later batch.
                store
                    .mirror_refresh_statistics()
                    .await
                    .map_err(|e| BulkError::Sink(e.to_string()))?;
            }
            let held = match lease {
                Lease::Backfill => store
                    .record_backfill_step(
                        shop,
                        &inner.owner,
                        None,
                        phase.as_str(),
                        progress.orders.load(Ordering::Relaxed),
                        progress.objects.load(Ordering::Relaxed),
                    )
                    .await
                    .map_err(|e| BulkError::Sink(e.to_string()))?,
                Lease::Reconcile => true,
            };
            let renewed = self
                .renew(shop, lease)
                .await
                .map_err(|e| BulkError::Sink(e.to_string()))?;
            if held && renewed {
                Ok(())
            } else {
                Err(BulkError::Sink("the backfill lease was lost".to_owned()))
            }
        };
        match phase {
            Phase::Orders => {
                let mut parser = OrderParser::new();
                admin
                    .download_jsonl(url, &mut parser, BATCH, limits, |batch| async move {
                        let items: usize = batch.iter().map(|o| 1 + o.line_items.len()).sum();
                        store
                            .mirror_upsert_orders(shop, &batch)
                            .await
                            .map_err(|e| BulkError::Sink(e.to_string()))?;
                        after_batch(batch.len() as i64, items as i64).await
                    })
                    .await?;
                // Line items that came apart from their order (Shopify's
                // grouped output never does this): added to their order.
                let late = parser.late_line_items();
                if !late.is_empty() {
                    tracing::warn!(
                        shop,
                        items = late.len(),
                        "bulk line items apart from their order"
                    );
                    for (order_id, item) in late {
                        if let Some(mut order) = store.mirror_order(shop, *order_id).await? {
                            order.line_items.push(item.clone());
                            store.mirror_upsert_orders(shop, &[order]).await?;
                        }
                    }
                }
            }
            Phase::Products => {
                admin
                    .download_jsonl(url, &mut ProductParser, BATCH, limits, |batch| async move {
                        store
                            .mirror_upsert_products(shop, &batch)
                            .await
                            .map_err(|e| BulkError::Sink(e.to_string()))?;
                        after_batch(0, batch.len() as i64).await
                    })
                    .await?;
            }
            Phase::Customers => {
                admin
                    .download_jsonl(
                        url,
                        &mut CustomerParser,
                        BATCH,
                        limits,
                        |batch| async move {
                            store
                                .mirror_upsert_customers(shop, &batch)
                                .await
                                .map_err(|e| BulkError::Sink(e.to_string()))?;
                            after_batch(0, batch.len() as i64).await
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// Counts stored with each step.
#[derive(Debug)]
struct Progress {
    orders: AtomicI64,
    objects: AtomicI64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_refreshed_as_the_tables_double() {
        assert!(!statistics_due(0, 500));
        assert!(!statistics_due(7_000, 8_191));
        assert!(statistics_due(7_900, 8_400));
        assert!(!statistics_due(8_400, 16_000));
        assert!(statistics_due(16_000, 16_500));
        assert!(statistics_due(0, 100_000));
        assert!(!statistics_due(300_000, 300_500));
        let crossings = (0..700)
            .filter(|i| statistics_due(i * 1_250, (i + 1) * 1_250))
            .count();
        assert_eq!(crossings, 7, "8k, 16k, 32k, 64k, 128k, 256k, 512k");
    }
}
