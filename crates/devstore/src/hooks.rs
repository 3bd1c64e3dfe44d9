//! Webhook subscriptions and their deliveries: what keeps an app's copy of
//! the store current.
//!
//! An app subscribes topics per shop (per install) with
//! `webhookSubscriptionCreate` (or [`crate::DevStore::create_webhook_subscription`]);
//! when the shop's data changes, every subscription of the change's topics
//! gets a signed delivery (headers as in `webhooks.rs`, payloads as in
//! `payloads.rs`). Uninstalling the app removes the shop's subscriptions.
//!
//! Deliveries never hold up the change: they are queued per shop and sent
//! in order by a background task, each with a timeout; failures are logged
//! and recorded ([`DeliveryRecord`]), not retried.
//!
//! # Delivery faults, for tests of a receiving app
//!
//! Real deliveries are duplicated (Shopify retries), arrive out of order
//! and, rarely, never arrive. Each shop can be told what to do with its
//! next deliveries ([`Delivery`]): a plan of explicit steps
//! ([`crate::DevStore::plan_deliveries`]), consumed one per delivery, and,
//! once the plan is empty, seeded random faults at given rates
//! ([`crate::DevStore::set_delivery_faults`]):
//!
//! * [`Delivery::Send`]: sent once, in order;
//! * [`Delivery::Duplicate`]: sent twice (same `X-Shopify-Webhook-Id`, as
//!   a retry is);
//! * [`Delivery::Hold`]: held back and sent right after the shop's next
//!   delivery that is sent (so the two arrive swapped);
//!   [`crate::DevStore::release_held_deliveries`] sends what is held;
//! * [`Delivery::Drop`]: never sent (recorded as dropped).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;

use crate::changes::Event;
use crate::webhooks::{Outgoing, WebhookTopic, post};
use crate::{DevStore, lock};

/// How long one delivery may take before it counts as failed.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Records kept for [`crate::DevStore::delivery_log`].
const LOG_CAPACITY: usize = 5_000;

/// A webhook subscription of one shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    /// Numeric id (`gid://shopify/WebhookSubscription/{id}`).
    pub id: u64,
    /// `name.myshopify.com`.
    pub shop: String,
    /// The topic.
    pub topic: WebhookTopic,
    /// Where deliveries go (an `http` or `https` URL).
    pub uri: String,
    /// A name the app gave it.
    pub name: Option<String>,
    /// The fields the app asked to receive (empty: all).
    pub include_fields: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What to do with one delivery (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Send it once.
    Send,
    /// Send it twice, with the same webhook id.
    Duplicate,
    /// Hold it back and send it after the next delivery sent.
    Hold,
    /// Never send it.
    Drop,
}

impl std::str::FromStr for Delivery {
    type Err = String;

    /// `send`, `duplicate`, `hold` (or `reorder`), `drop`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "send" | "deliver" => Ok(Delivery::Send),
            "duplicate" => Ok(Delivery::Duplicate),
            "hold" | "reorder" => Ok(Delivery::Hold),
            "drop" => Ok(Delivery::Drop),
            other => Err(format!(
                "unknown delivery {other:?} (expected send, duplicate, hold or drop)"
            )),
        }
    }
}

/// Random delivery faults of a shop, drawn from a generator seeded with
/// `seed` (the same seed and the same changes give the same faults).
/// Rates are probabilities per delivery, checked in the order drop,
/// duplicate, hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryFaults {
    /// Probability of [`Delivery::Duplicate`].
    pub duplicate: f64,
    /// Probability of [`Delivery::Hold`].
    pub hold: f64,
    /// Probability of [`Delivery::Drop`].
    pub drop: f64,
    /// The generator's seed.
    pub seed: u64,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered with this HTTP status.
    Answered(u16),
    /// It could not be sent (connection refused, timeout, …).
    Failed(String),
    /// A [`Delivery::Drop`]: never sent.
    Dropped,
}

/// One delivery attempt (a duplicate is two records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The topic.
    pub topic: WebhookTopic,
    /// `name.myshopify.com`.
    pub shop: String,
    /// Where it went.
    pub uri: String,
    /// `X-Shopify-Webhook-Id`.
    pub webhook_id: String,
    /// `X-Shopify-Event-Id`.
    pub event_id: String,
    /// The body sent.
    pub body: String,
    /// What the fault controls said.
    pub delivery: Delivery,
    /// How it ended.
    pub outcome: DeliveryOutcome,
}

/// One queued send.
struct Queued {
    out: Outgoing,
    delivery: Delivery,
}

#[derive(Default)]
struct ShopHooks {
    plan: VecDeque<Delivery>,
    faults: Option<(DeliveryFaults, ChaCha8Rng)>,
    held: Vec<Queued>,
    sender: Option<mpsc::UnboundedSender<Queued>>,
    /// Queued or being sent (not held).
    pending: usize,
}

/// Every shop's subscriptions and delivery state.
#[derive(Default)]
pub(crate) struct HookState {
    next_id: u64,
    subscriptions: BTreeMap<u64, WebhookSubscription>,
    shops: HashMap<String, ShopHooks>,
    log: VecDeque<DeliveryRecord>,
}

/// Why a subscription was refused (a `userErrors` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriptionError {
    pub field: Vec<String>,
    pub message: String,
}

/// Whether `uri` is an address the simulator can deliver to.
fn valid_uri(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

impl HookState {
    /// Subscribes `topic` for `shop` at `uri` (Shopify's user errors on
    /// an invalid address or a topic and address already subscribed).
    pub(crate) fn subscribe(
        &mut self,
        shop: &str,
        topic: WebhookTopic,
        uri: &str,
        name: Option<String>,
        include_fields: Vec<String>,
    ) -> Result<WebhookSubscription, SubscriptionError> {
        let uri = uri.trim();
        let field = |f: &str| vec!["webhookSubscription".to_string(), f.to_string()];
        if !topic.subscribable() {
            return Err(SubscriptionError {
                field: vec!["topic".to_string()],
                message: format!("Topic {} is not subscribable", topic.graphql_name()),
            });
        }
        if !valid_uri(uri) {
            return Err(SubscriptionError {
                field: field("uri"),
                message: "Address is invalid".to_string(),
            });
        }
        if self
            .subscriptions
            .values()
            .any(|s| s.shop == shop && s.topic == topic && s.uri == uri)
        {
            return Err(SubscriptionError {
                field: field("uri"),
                message: "Address for this topic has already been taken".to_string(),
            });
        }
        self.next_id += 1;
        let now = Utc::now();
        let sub = WebhookSubscription {
            id: 1_300_000_000 + self.next_id,
            shop: shop.to_string(),
            topic,
            uri: uri.to_string(),
            name,
            include_fields,
            created_at: now,
            updated_at: now,
        };
        self.subscriptions.insert(sub.id, sub.clone());
        Ok(sub)
    }

    /// Removes subscription `id` of `shop`; whether it existed.
    pub(crate) fn unsubscribe(&mut self, shop: &str, id: u64) -> bool {
        if self.subscriptions.get(&id).is_some_and(|s| s.shop == shop) {
            self.subscriptions.remove(&id);
            true
        } else {
            false
        }
    }

    /// The subscriptions of `shop`, oldest first.
    pub(crate) fn of_shop(&self, shop: &str) -> Vec<WebhookSubscription> {
        self.subscriptions
            .values()
            .filter(|s| s.shop == shop)
            .cloned()
            .collect()
    }

    /// Forgets every subscription and the delivery state of `shop` (the
    /// app was uninstalled).
    pub(crate) fn forget_shop(&mut self, shop: &str) {
        self.subscriptions.retain(|_, s| s.shop != shop);
        if let Some(hooks) = self.shops.get_mut(shop) {
            hooks.plan.clear();
            hooks.held.clear();
        }
    }

    fn record(&mut self, record: DeliveryRecord) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(record);
    }

    fn next_delivery(&mut self, shop: &str) -> Delivery {
        let hooks = self.shops.entry(shop.to_string()).or_default();
        if let Some(d) = hooks.plan.pop_front() {
            return d;
        }
        match &mut hooks.faults {
            Some((f, rng)) => {
                let x: f64 = rng.gen_range(0.0..1.0);
                if x < f.drop {
                    Delivery::Drop
                } else if x < f.drop + f.duplicate {
                    Delivery::Duplicate
                } else if x < f.drop + f.duplicate + f.hold {
                    Delivery::Hold
                } else {
                    Delivery::Send
                }
            }
            None => Delivery::Send,
        }
    }
}

fn record_of(q: &Queued, outcome: DeliveryOutcome) -> DeliveryRecord {
    DeliveryRecord {
        topic: q.out.topic,
        shop: q.out.shop.clone(),
        uri: q.out.uri.clone(),
        webhook_id: q.out.webhook_id.clone(),
        event_id: q.out.event_id.clone(),
        body: q.out.body.clone(),
        delivery: q.delivery,
        outcome,
    }
}

impl DevStore {
    /// Sends `events` of `shop` to the shop's subscriptions of their
    /// topics, through the fault controls. Never waits for a receiver.
    pub(crate) fn dispatch(&self, shop: &str, events: Vec<Event>) {
        let mut to_send = Vec::new();
        {
            let mut state = lock(&self.inner.hooks);
            for event in events {
                let subscriptions: Vec<WebhookSubscription> = state
                    .subscriptions
                    .values()
                    .filter(|s| s.shop == shop && s.topic == event.topic)
                    .cloned()
                    .collect();
                for sub in subscriptions {
                    let out = match Outgoing::new(event.topic, shop, &sub.uri, &event.payload) {
                        Ok(out) => out,
                        Err(e) => {
                            tracing::warn!(error = %e, "webhook payload could not be serialised");
                            continue;
                        }
                    };
                    let delivery = state.next_delivery(shop);
                    let queued = Queued { out, delivery };
                    match delivery {
                        Delivery::Drop => {
                            tracing::info!(topic = queued.out.topic.as_str(), %shop, "webhook delivery dropped (fault control)");
                            state.record(record_of(&queued, DeliveryOutcome::Dropped));
                        }
                        Delivery::Hold => {
                            state
                                .shops
                                .entry(shop.to_string())
                                .or_default()
                                .held
                                .push(queued);
                        }
                        Delivery::Send | Delivery::Duplicate => {
                            if delivery == Delivery::Duplicate {
                                to_send.push(Queued {
                                    out: queued.out.clone(),
                                    delivery,
                                });
                            }
                            to_send.push(queued);
                            let hooks = state.shops.entry(shop.to_string()).or_default();
                            to_send.append(&mut hooks.held);
                        }
                    }
                }
            }
        }
        self.enqueue(shop, to_send);
    }

    /// Sends what is held back for `shop` now.
    pub(crate) fn release_held(&self, shop: &str) {
        let held = {
            let mut state = lock(&self.inner.hooks);
            state
                .shops
                .get_mut(shop)
                .map(|h| std::mem::take(&mut h.held))
                .unwrap_or_default()
        };
        self.enqueue(shop, held);
    }

    /// Hands `items` to the shop's sender task (started on first use on
    /// the current Tokio runtime).
    fn enqueue(&self, shop: &str, items: Vec<Queued>) {
        if items.is_empty() {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        let mut state = lock(&self.inner.hooks);
        let Ok(runtime) = runtime else {
            tracing::warn!(%shop, "webhook deliveries need a Tokio runtime; not sent");
            for q in &items {
                state.record(record_of(
                    q,
                    DeliveryOutcome::Failed("no async runtime to send from".to_string()),
                ));
            }
            return;
        };
        let count = items.len();
        let hooks = state.shops.entry(shop.to_string()).or_default();
        hooks.pending += count;
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            let sender = match &hooks.sender {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    runtime.spawn(sender_task(self.clone(), shop.to_string(), rx));
                    hooks.sender = Some(tx.clone());
                    tx
                }
            };
            if let Err(mpsc::error::SendError(item)) = sender.send(item) {
                // The task's runtime is gone: start another and retry once.
                hooks.sender = None;
                let (tx, rx) = mpsc::unbounded_channel();
                runtime.spawn(sender_task(self.clone(), shop.to_string(), rx));
                hooks.sender = Some(tx.clone());
                if tx.send(item).is_err() {
                    hooks.pending = hooks.pending.saturating_sub(1 + items.len());
                    break;
                }
            }
        }
    }

    fn pending_deliveries(&self, shop: &str) -> usize {
        lock(&self.inner.hooks)
            .shops
            .get(shop)
            .map_or(0, |h| h.pending)
    }

    /// Waits until every queued delivery of `shop` has been sent (held
    /// ones excepted) or `timeout` passes; whether they all were.
    pub(crate) async fn settle(&self, shop: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.delivered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending_deliveries(shop) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending_deliveries(shop) == 0;
            }
        }
    }

    pub(crate) fn set_plan(&self, shop: &str, plan: Vec<Delivery>) {
        let mut state = lock(&self.inner.hooks);
        state.shops.entry(shop.to_string()).or_default().plan = plan.into();
    }

    pub(crate) fn set_faults(&self, shop: &str, faults: Option<DeliveryFaults>) {
        let mut state = lock(&self.inner.hooks);
        state.shops.entry(shop.to_string()).or_default().faults =
            faults.map(|f| (f, ChaCha8Rng::seed_from_u64(f.seed)));
    }

    pub(crate) fn log_of(&self, shop: &str) -> Vec<DeliveryRecord> {
        lock(&self.inner.hooks)
            .log
            .iter()
            .filter(|r| r.shop == shop)
            .cloned()
            .collect()
    }
}

/// Sends one shop's deliveries in order, each with a timeout.
async fn sender_task(store: DevStore, shop: String, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(q) = rx.recv().await {
        let outcome = match tokio::time::timeout(
            DELIVERY_TIMEOUT,
            post(&store.inner.http, &store.inner.config, &q.out),
        )
        .await
        {
            Ok(Ok(status)) => {
                tracing::info!(topic = q.out.topic.as_str(), %shop, uri = %q.out.uri, status, "development store delivered a webhook");
                DeliveryOutcome::Answered(status)
            }
            Ok(Err(e)) => {
                tracing::warn!(topic = q.out.topic.as_str(), %shop, uri = %q.out.uri, error = %e, "webhook delivery failed");
                DeliveryOutcome::Failed(e.to_string())
            }
            Err(_) => {
                tracing::warn!(topic = q.out.topic.as_str(), %shop, uri = %q.out.uri, "webhook delivery timed out");
                DeliveryOutcome::Failed("timed out".to_string())
            }
        };
        {
            let mut state = lock(&store.inner.hooks);
            state.record(record_of(&q, outcome));
            if let Some(h) = state.shops.get_mut(&shop) {
                h.pending = h.pending.saturating_sub(1);
            }
        }
        store.inner.delivered.notify_waiters();
    }
}
