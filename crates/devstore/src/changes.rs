//! Changes to a shop's data at run time: what a merchant (or the
//! simulator's controls) does to the store between the app's reads.
//!
//! Every change bumps the changed object's `updated_at` to the current
//! second, and always past its previous value (`max(now, previous + 1 s)`,
//! so two changes within one second still order), and yields the webhooks
//! Shopify would send for it, in the order Shopify sends them:
//!
//! | change | topics |
//! |---|---|
//! | create an order | `orders/create`, then `orders/paid` when it is paid and `orders/fulfilled` when created fulfilled |
//! | update an order | `orders/updated`, then `orders/paid` / `orders/fulfilled` when it became paid / fulfilled |
//! | cancel an order | `refunds/create` (when the cancellation refunds), `orders/cancelled`, `orders/updated` |
//! | refund an order | `refunds/create`, `orders/updated` |
//! | delete an order (cancelled or archived) | `orders/delete` |
//! | create / update / delete a product | `products/create` / `products/update` / `products/delete` |
//! | create / update / delete a customer | `customers/create` / `customers/update` / `customers/delete` |
//!
//! The payloads are in `payloads.rs`. Orders the API does not show yet
//! (the rest of today's generated orders, in the future) cannot be changed.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value as Json;

use super::{
    Cents, Customer, Dataset, FinancialStatus, FulfillmentStatus, LineItem, Order, Product,
    ProductStatus, REFUND_ID_OFFSET, Refund, RefundLineItem, Variant, slugify,
};
use crate::payloads;
use crate::webhooks::WebhookTopic;

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No such object (or an order the API does not show yet).
    #[error("{kind} {id} not found")]
    NotFound {
        /// `order`, `product`, `customer`, `variant` or `line item`.
        kind: &'static str,
        /// The numeric id asked for.
        id: u64,
    },
    /// The change is not allowed, with Shopify's reason.
    #[error("{0}")]
    Invalid(String),
}

/// One line of a new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLineItem {
    /// The variant sold (`gid://shopify/ProductVariant/{id}`).
    pub variant_id: u64,
    /// Units (at least 1).
    pub quantity: i64,
}

/// A new order. `NewOrder::default()` is a random plausible order: one to
/// three active products, mostly best sellers, one or two units each, for
/// a random customer, paid and unfulfilled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOrder {
    /// The lines; empty for random ones.
    pub line_items: Vec<NewLineItem>,
    /// The customer; `None` picks one at random unless `email` is given
    /// (then the customer with that email, or a guest checkout).
    pub customer_id: Option<u64>,
    /// Contact email of a guest checkout.
    pub email: Option<String>,
    /// Payment state (default paid).
    pub financial_status: Option<FinancialStatus>,
    /// Shipping state (default unfulfilled).
    pub fulfillment_status: Option<FulfillmentStatus>,
    /// Tags.
    pub tags: Vec<String>,
    /// The merchant's note.
    pub note: Option<String>,
    /// `sourceName` (default `web`).
    pub source_name: Option<String>,
    /// Seeds the random choices (lines, customer), for reproducible tests;
    /// `None` draws from the thread's generator.
    pub seed: Option<u64>,
}

/// Changes to an order; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderUpdate {
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// Replaces the note (`Some(None)` clears it).
    pub note: Option<Option<String>>,
    /// Replaces the contact email.
    pub email: Option<String>,
    /// Marks it paid, etc.
    pub financial_status: Option<FinancialStatus>,
    /// Marks it fulfilled, partially fulfilled or unfulfilled.
    pub fulfillment_status: Option<FulfillmentStatus>,
}

/// How to cancel an order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelOrder {
    /// `customer`, `fraud`, `inventory`, `declined` or `other` (default).
    pub reason: Option<String>,
    /// Refund what is left to refund, every unit still on the order
    /// included (a paid order becomes `REFUNDED`).
    pub refund: bool,
}

/// One line of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundLine {
    /// The order line ([`LineItem::id`]).
    pub line_item_id: u64,
    /// Units refunded.
    pub quantity: i64,
}

/// A refund to make. `NewRefund::default()` refunds everything left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRefund {
    /// Amount in cents; default: the refunded lines' subtotals when lines
    /// are given, else everything left to refund.
    pub amount: Option<Cents>,
    /// The reason the merchant writes.
    pub note: Option<String>,
    /// The lines refunded (may be empty).
    pub line_items: Vec<RefundLine>,
}

/// A new product with one variant ("Default Title").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewProduct {
    /// Title (required).
    pub title: String,
    /// Vendor (default: the shop's name).
    pub vendor: Option<String>,
    /// Product type.
    pub product_type: Option<String>,
    /// Status (default active).
    pub status: Option<ProductStatus>,
    /// The variant's price, cents.
    pub price: Cents,
    /// The variant's SKU (default derived from the id).
    pub sku: Option<String>,
    /// Units in stock.
    pub inventory_quantity: i64,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductUpdate {
    /// Title.
    pub title: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Product type.
    pub product_type: Option<String>,
    /// Status.
    pub status: Option<ProductStatus>,
    /// A new price for every variant, cents.
    pub price: Option<Cents>,
}

/// A new customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomer {
    /// Email (required, unique in the shop).
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone in E.164.
    pub phone: Option<String>,
}

/// Changes to a customer; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    /// Email (unique in the shop).
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Phone (`Some(None)` clears it).
    pub phone: Option<Option<String>>,
}

/// A webhook a change causes: its topic and REST payload.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub topic: WebhookTopic,
    pub payload: Json,
}

fn event(topic: WebhookTopic, payload: Json) -> Event {
    Event { topic, payload }
}

/// The new `updated_at`: now, and always after the previous one.
fn bump(previous: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    now.max(previous.trunc_subsecs(0) + Duration::seconds(1))
}

fn invalid(message: impl Into<String>) -> ChangeError {
    ChangeError::Invalid(message.into())
}

impl Dataset {
    /// Rebuilds the customer → orders index after orders moved.
    fn reindex(&mut self) {
        self.customer_orders.clear();
        for (i, order) in self.orders.iter().enumerate() {
            if let Some(cid) = order.customer_id {
                self.customer_orders.entry(cid).or_default().push(i);
            }
        }
    }

    /// The index of a visible order.
    fn visible_order(&self, id: u64, now: DateTime<Utc>) -> Result<usize, ChangeError> {
        self.orders
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .filter(|&i| self.orders[i].created_at <= now)
            .ok_or(ChangeError::NotFound { kind: "order", id })
    }

    fn order_events(&self, i: usize, topics: &[WebhookTopic]) -> Vec<Event> {
        let payload = payloads::order(self, &self.orders[i]);
        topics.iter().map(|t| event(*t, payload.clone())).collect()
    }

    /// Creates an order at `now` (see [`NewOrder`]).
    pub(crate) fn create_order(
        &mut self,
        input: NewOrder,
        now: DateTime<Utc>,
    ) -> Result<(Order, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let mut rng = match input.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_rng(rand::thread_rng()).map_err(|e| invalid(e.to_string()))?,
        };
        let mut lines = input.line_items.clone();
        if lines.is_empty() {
            let active: Vec<&Product> = self
                .products
                .iter()
                .filter(|p| p.status == ProductStatus::Active && !p.variants.is_empty())
                .collect();
            if active.is_empty() {
                return Err(invalid("the shop has no active product to sell"));
            }
            let count = rng.gen_range(1..=3usize).min(active.len());
            let weights: Vec<f64> = active.iter().map(|p| p.popularity.max(0.01)).collect();
            let mut chosen: Vec<usize> = Vec::new();
            for _ in 0..count * 4 {
                if chosen.len() == count {
                    break;
                }
                let k = super::pick_weighted(&mut rng, &weights);
                if !chosen.contains(&k) {
                    chosen.push(k);
                }
            }
            for k in chosen {
                if let Some(v) = active[k].variants.choose(&mut rng) {
                    lines.push(NewLineItem {
                        variant_id: v.id,
                        quantity: if rng.gen_bool(0.8) { 1 } else { 2 },
                    });
                }
            }
        }
        let line_id = self
            .orders
            .iter()
            .flat_map(|o| o.line_items.iter().map(|l| l.id))
            .max()
            .unwrap_or(13_500_000_000_000);
        let mut line_items = Vec::with_capacity(lines.len());
        for (line, line_id) in lines.iter().zip(line_id + 1..) {
            if line.quantity < 1 {
                return Err(invalid("Quantity must be greater than or equal to 1"));
            }
            let (product, variant) = self
                .products
                .iter()
                .find_map(|p| {
                    p.variants
                        .iter()
                        .find(|v| v.id == line.variant_id)
                        .map(|v| (p, v))
                })
                .ok_or(ChangeError::NotFound {
                    kind: "variant",
                    id: line.variant_id,
                })?;
            line_items.push(LineItem {
                id: line_id,
                product_id: product.id,
                variant_id: variant.id,
                title: product.title.clone(),
                variant_title: (variant.title != "Default Title").then(|| variant.title.clone()),
                sku: variant.sku.clone(),
                quantity: line.quantity,
                unit_price: variant.price,
            });
        }
        let (customer_id, email) = match (input.customer_id, &input.email) {
            (Some(id), _) => {
                let c = self.customer(id).ok_or(ChangeError::NotFound {
                    kind: "customer",
                    id,
                })?;
                (
                    Some(c.id),
                    input.email.clone().unwrap_or_else(|| c.email.clone()),
                )
            }
            (None, Some(email)) => match self.customer_by_email(email) {
                Some(c) => (Some(c.id), c.email.clone()),
                None => (None, email.clone()),
            },
            (None, None) => match self.customers.choose(&mut rng) {
                Some(c) => (Some(c.id), c.email.clone()),
                None => (None, format!("guest{}@example.com", rng.gen_range(10..999))),
            },
        };
        let subtotal: Cents = line_items.iter().map(|l| l.unit_price * l.quantity).sum();
        let shipping = if subtotal >= 7_500 || subtotal == 0 {
            0
        } else {
            695
        };
        let tax = (subtotal as f64 * self.tax_rate).round() as Cents;
        let financial_status = input.financial_status.unwrap_or(FinancialStatus::Paid);
        let fulfillment_status = input
            .fulfillment_status
            .unwrap_or(FulfillmentStatus::Unfulfilled);
        // Ids grow with creation time: the new order goes after every order
        // created until now, with an id between its neighbours'.
        let position = self.orders.partition_point(|o| o.created_at <= now);
        let mut id = match position.checked_sub(1).map(|p| self.orders[p].id) {
            Some(previous) => previous + 1,
            None => self
                .orders
                .first()
                .map_or(5_400_000_000_000, |o| o.id.saturating_sub(1_000)),
        };
        while self.retired_ids.contains(&id) {
            id += 1;
        }
        if self.orders.get(position).is_some_and(|next| next.id <= id) {
            return Err(invalid("no order id left at this time; try again"));
        }
        let number = self
            .orders
            .iter()
            .map(|o| o.number)
            .max()
            .unwrap_or(1000)
            .max(self.retired_number)
            + 1;
        let order = Order {
            id,
            number,
            email,
            customer_id,
            created_at: now,
            processed_at: now,
            updated_at: now,
            cancelled_at: None,
            closed_at: None,
            financial_status,
            fulfillment_status,
            line_items,
            total_discounts: 0,
            subtotal,
            shipping,
            tax,
            total: subtotal + shipping + tax,
            total_refunded: 0,
            cancel_reason: None,
            note: input.note.clone(),
            tags: input.tags.clone(),
            source_name: input.source_name.clone().unwrap_or_else(|| "web".into()),
            refunds: Vec::new(),
        };
        self.orders.insert(position, order.clone());
        self.reindex();
        let mut topics = vec![WebhookTopic::OrdersCreate];
        if financial_status == FinancialStatus::Paid {
            topics.push(WebhookTopic::OrdersPaid);
        }
        if fulfillment_status == FulfillmentStatus::Fulfilled {
            topics.push(WebhookTopic::OrdersFulfilled);
        }
        Ok((order, self.order_events(position, &topics)))
    }

    /// Changes an order (see [`OrderUpdate`]).
    pub(crate) fn update_order(
        &mut self,
        id: u64,
        update: OrderUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Order, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let i = self.visible_order(id, now)?;
        let o = &mut self.orders[i];
        let mut topics = vec![WebhookTopic::OrdersUpdated];
        if let Some(tags) = update.tags {
            o.tags = tags;
        }
        if let Some(note) = update.note {
            o.note = note;
        }
        if let Some(email) = update.email {
            o.email = email;
        }
        if let Some(status) = update.financial_status {
            if status == FinancialStatus::Paid && o.financial_status != FinancialStatus::Paid {
                topics.push(WebhookTopic::OrdersPaid);
            }
            o.financial_status = status;
        }
        if let Some(status) = update.fulfillment_status {
            if status == FulfillmentStatus::Fulfilled
                && o.fulfillment_status != FulfillmentStatus::Fulfilled
            {
                topics.push(WebhookTopic::OrdersFulfilled);
            }
            o.fulfillment_status = status;
        }
        o.updated_at = bump(o.updated_at, now);
        let order = o.clone();
        Ok((order, self.order_events(i, &topics)))
    }

    /// Cancels an order (see [`CancelOrder`]).
    pub(crate) fn cancel_order(
        &mut self,
        id: u64,
        cancel: CancelOrder,
        now: DateTime<Utc>,
    ) -> Result<(Order, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let i = self.visible_order(id, now)?;
        if self.orders[i].cancelled_at.is_some() {
            return Err(invalid("Order has already been cancelled"));
        }
        let mut events = Vec::new();
        // One change: the refund it makes does not bump `updated_at` twice.
        let before = self.orders[i].updated_at;
        let refundable = self.orders[i].total - self.orders[i].total_refunded;
        let paid = matches!(
            self.orders[i].financial_status,
            FinancialStatus::Paid | FinancialStatus::PartiallyRefunded
        );
        if cancel.refund && paid && refundable > 0 {
            // The refund takes back every unit still on the order.
            let o = &self.orders[i];
            let line_items = o
                .line_items
                .iter()
                .map(|l| RefundLine {
                    line_item_id: l.id,
                    quantity: o.current_quantity(l.id),
                })
                .filter(|l| l.quantity > 0)
                .collect();
            let (_, _, refund_events) = self.refund_at(
                i,
                NewRefund {
                    amount: Some(refundable),
                    note: Some("Order canceled".to_string()),
                    line_items,
                },
                now,
            )?;
            events.extend(
                refund_events
                    .into_iter()
                    .filter(|e| e.topic == WebhookTopic::RefundsCreate),
            );
        }
        let o = &mut self.orders[i];
        o.cancelled_at = Some(now);
        o.closed_at = Some(now);
        o.cancel_reason = Some(cancel.reason.unwrap_or_else(|| "other".to_string()));
        if matches!(
            o.financial_status,
            FinancialStatus::Pending | FinancialStatus::Authorized
        ) {
            o.financial_status = FinancialStatus::Voided;
        }
        o.updated_at = bump(before, now);
        let order = o.clone();
        events.extend(self.order_events(
            i,
            &[WebhookTopic::OrdersCancelled, WebhookTopic::OrdersUpdated],
        ));
        Ok((order, events))
    }

    /// Refunds an order (see [`NewRefund`]).
    pub(crate) fn refund_order(
        &mut self,
        id: u64,
        refund: NewRefund,
        now: DateTime<Utc>,
    ) -> Result<(Order, Refund, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let i = self.visible_order(id, now)?;
        self.refund_at(i, refund, now)
    }

    fn refund_at(
        &mut self,
        i: usize,
        input: NewRefund,
        now: DateTime<Utc>,
    ) -> Result<(Order, Refund, Vec<Event>), ChangeError> {
        let o = &self.orders[i];
        if !matches!(
            o.financial_status,
            FinancialStatus::Paid | FinancialStatus::PartiallyRefunded
        ) {
            return Err(invalid(format!(
                "Order {} cannot be refunded: it is {}",
                o.name(),
                payloads::financial_status(o.financial_status)
            )));
        }
        let refundable = o.total - o.total_refunded;
        let discounts = o.line_discounts();
        let id = o.id + REFUND_ID_OFFSET + o.refunds.len() as u64;
        let mut line_items = Vec::new();
        for (k, line) in input.line_items.iter().enumerate() {
            let (index, item) = o
                .line_items
                .iter()
                .enumerate()
                .find(|(_, l)| l.id == line.line_item_id)
                .ok_or(ChangeError::NotFound {
                    kind: "line item",
                    id: line.line_item_id,
                })?;
            let already: i64 = o
                .refunds
                .iter()
                .flat_map(|r| &r.line_items)
                .filter(|r| r.line_item_id == item.id)
                .map(|r| r.quantity)
                .sum();
            if line.quantity < 1 || line.quantity > item.quantity - already {
                return Err(invalid(format!(
                    "Quantity cannot refund more items than were purchased (line {})",
                    item.id
                )));
            }
            let discount = discounts.get(index).copied().unwrap_or(0);
            let subtotal =
                item.unit_price * line.quantity - discount * line.quantity / item.quantity;
            line_items.push(RefundLineItem {
                id: id * 100 + k as u64 + 1,
                line_item_id: item.id,
                quantity: line.quantity,
                subtotal,
            });
        }
        let amount = input.amount.unwrap_or_else(|| {
            if line_items.is_empty() {
                refundable
            } else {
                line_items
                    .iter()
                    .map(|l| l.subtotal)
                    .sum::<Cents>()
                    .min(refundable)
            }
        });
        if amount <= 0 {
            return Err(invalid("Amount must be greater than 0"));
        }
        if amount > refundable {
            return Err(invalid(format!(
                "Refund amount {} is greater than the refundable amount {}",
                super::format_cents(amount),
                super::format_cents(refundable)
            )));
        }
        let refund = Refund {
            id,
            created_at: now,
            note: input.note,
            amount,
            line_items,
        };
        let o = &mut self.orders[i];
        o.refunds.push(refund.clone());
        o.total_refunded += amount;
        o.financial_status = if o.total_refunded >= o.total {
            FinancialStatus::Refunded
        } else {
            FinancialStatus::PartiallyRefunded
        };
        o.updated_at = bump(o.updated_at, now);
        let order = o.clone();
        let mut events = vec![event(
            WebhookTopic::RefundsCreate,
            payloads::refund(self, &order, &refund),
        )];
        events.extend(self.order_events(i, &[WebhookTopic::OrdersUpdated]));
        Ok((order, refund, events))
    }

    /// Creates a product (see [`NewProduct`]).
    pub(crate) fn create_product(
        &mut self,
        input: NewProduct,
        now: DateTime<Utc>,
    ) -> Result<(Product, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let title = input.title.trim().to_string();
        if title.is_empty() {
            return Err(invalid("Title can't be blank"));
        }
        if input.price < 0 {
            return Err(invalid("Price must be greater than or equal to 0"));
        }
        let mut id = self.products.last().map_or(8_100_000_000_000, |p| p.id) + 1_000;
        while self.retired_ids.contains(&id) {
            id += 1_000;
        }
        let variant_id = self
            .products
            .iter()
            .flat_map(|p| p.variants.iter().map(|v| v.id))
            .max()
            .unwrap_or(44_000_000_000_000)
            + 1;
        let base = slugify(&title);
        let mut handle = base.clone();
        let mut k = 2;
        while self.products.iter().any(|p| p.handle == handle) {
            handle = format!("{base}-{k}");
            k += 1;
        }
        let product = Product {
            id,
            title,
            handle,
            status: input.status.unwrap_or(ProductStatus::Active),
            product_type: input.product_type.unwrap_or_default(),
            vendor: input.vendor.unwrap_or_else(|| self.shop.name.clone()),
            created_at: now,
            updated_at: now,
            variants: vec![Variant {
                id: variant_id,
                title: "Default Title".to_string(),
                sku: input.sku.unwrap_or_else(|| format!("NEW-{}", id % 100_000)),
                price: input.price,
                inventory_quantity: input.inventory_quantity,
            }],
            popularity: 0.05,
        };
        self.products.push(product.clone());
        let payload = payloads::product(self, &product);
        Ok((product, vec![event(WebhookTopic::ProductsCreate, payload)]))
    }

    /// Changes a product (see [`ProductUpdate`]).
    pub(crate) fn update_product(
        &mut self,
        id: u64,
        update: ProductUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Product, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let i = self
            .products
            .binary_search_by_key(&id, |p| p.id)
            .map_err(|_| ChangeError::NotFound {
                kind: "product",
                id,
            })?;
        let p = &mut self.products[i];
        if let Some(title) = update.title {
            if title.trim().is_empty() {
                return Err(invalid("Title can't be blank"));
            }
            p.title = title.trim().to_string();
        }
        if let Some(vendor) = update.vendor {
            p.vendor = vendor;
        }
        if let Some(product_type) = update.product_type {
            p.product_type = product_type;
        }
        if let Some(status) = update.status {
            p.status = status;
        }
        if let Some(price) = update.price {
            if price < 0 {
                return Err(invalid("Price must be greater than or equal to 0"));
            }
            for v in &mut p.variants {
                v.price = price;
            }
        }
        p.updated_at = bump(p.updated_at, now);
        let product = p.clone();
        let payload = payloads::product(self, &product);
        Ok((product, vec![event(WebhookTopic::ProductsUpdate, payload)]))
    }

    /// Deletes order `id`, which Shopify allows only for a cancelled or
    /// archived (closed) order.
    pub(crate) fn delete_order(
        &mut self,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<(Order, Vec<Event>), ChangeError> {
        let i = self.visible_order(id, now)?;
        let o = &self.orders[i];
        if o.cancelled_at.is_none() && o.closed_at.is_none() {
            return Err(invalid(
                "Order can't be deleted unless it is canceled or archived",
            ));
        }
        let order = self.orders.remove(i);
        self.retired_ids.insert(order.id);
        self.retired_number = self.retired_number.max(order.number);
        self.reindex();
        Ok((
            order,
            vec![event(WebhookTopic::OrdersDelete, payloads::deleted(id))],
        ))
    }

    /// Deletes a product (its order lines stay, without a product).
    pub(crate) fn delete_product(&mut self, id: u64) -> Result<(Product, Vec<Event>), ChangeError> {
        let i = self
            .products
            .binary_search_by_key(&id, |p| p.id)
            .map_err(|_| ChangeError::NotFound {
                kind: "product",
                id,
            })?;
        let product = self.products.remove(i);
        self.retired_ids.insert(product.id);
        Ok((
            product,
            vec![event(WebhookTopic::ProductsDelete, payloads::deleted(id))],
        ))
    }

    fn email_taken(&self, email: &str, except: Option<u64>) -> bool {
        self.customers
            .iter()
            .any(|c| Some(c.id) != except && c.email.eq_ignore_ascii_case(email))
    }

    /// Creates a customer (see [`NewCustomer`]).
    pub(crate) fn create_customer(
        &mut self,
        input: NewCustomer,
        now: DateTime<Utc>,
    ) -> Result<(Customer, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let email = input.email.trim().to_string();
        if email.is_empty() || !email.contains('@') {
            return Err(invalid("Email is invalid"));
        }
        if self.email_taken(&email, None) {
            return Err(invalid("Email has already been taken"));
        }
        let mut id = self.customers.last().map_or(7_200_000_000_000, |c| c.id) + 1_000;
        while self.retired_ids.contains(&id) {
            id += 1_000;
        }
        let customer = Customer {
            id,
            email,
            first_name: input.first_name,
            last_name: input.last_name,
            phone: input.phone,
            created_at: now,
            updated_at: now,
        };
        self.customers.push(customer.clone());
        let payload = payloads::customer(self, &customer);
        Ok((
            customer,
            vec![event(WebhookTopic::CustomersCreate, payload)],
        ))
    }

    /// Changes a customer (see [`CustomerUpdate`]).
    pub(crate) fn update_customer(
        &mut self,
        id: u64,
        update: CustomerUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Customer, Vec<Event>), ChangeError> {
        let now = now.trunc_subsecs(0);
        let i = self
            .customers
            .binary_search_by_key(&id, |c| c.id)
            .map_err(|_| ChangeError::NotFound {
                kind: "customer",
                id,
            })?;
        if let Some(email) = &update.email
            && (!email.contains('@') || self.email_taken(email, Some(id)))
        {
            return Err(invalid(if email.contains('@') {
                "Email has already been taken"
            } else {
                "Email is invalid"
            }));
        }
        let c = &mut self.customers[i];
        if let Some(email) = update.email {
            c.email = email.trim().to_string();
        }
        if let Some(first) = update.first_name {
            c.first_name = first;
        }
        if let Some(last) = update.last_name {
            c.last_name = last;
        }
        if let Some(phone) = update.phone {
            c.phone = phone;
        }
        let latest = self.customer_updated_at(&self.customers[i], now);
        let c = &mut self.customers[i];
        c.updated_at = bump(latest, now);
        let customer = c.clone();
        let payload = payloads::customer(self, &customer);
        Ok((
            customer,
            vec![event(WebhookTopic::CustomersUpdate, payload)],
        ))
    }

    /// Deletes a customer without orders (Shopify refuses to delete one
    /// with orders).
    pub(crate) fn delete_customer(
        &mut self,
        id: u64,
    ) -> Result<(Customer, Vec<Event>), ChangeError> {
        let i = self
            .customers
            .binary_search_by_key(&id, |c| c.id)
            .map_err(|_| ChangeError::NotFound {
                kind: "customer",
                id,
            })?;
        if self.orders_of_customer(id).next().is_some() {
            return Err(invalid(
                "Customer can't be deleted because they have associated orders",
            ));
        }
        let customer = self.customers.remove(i);
        self.retired_ids.insert(customer.id);
        self.customer_orders.remove(&id);
        Ok((
            customer,
            vec![event(WebhookTopic::CustomersDelete, payloads::deleted(id))],
        ))
    }

    /// The customer's `updatedAt` as the API shows it at `now`: the later
    /// of the record's own last change and the customer's latest order
    /// shown.
    pub fn customer_updated_at(&self, c: &Customer, now: DateTime<Utc>) -> DateTime<Utc> {
        let latest = self
            .orders_of_customer(c.id)
            .filter(|o| o.created_at <= now)
            .map(|o| o.created_at)
            .next_back();
        latest.map_or(c.updated_at, |t| t.max(c.updated_at))
    }
}
