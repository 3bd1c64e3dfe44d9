//! The store mirror's records: one merchant's orders, line items, refunds,
//! products and customers as HireCJ keeps them, whatever brought them
//! (a Bulk Operations backfill, a webhook, a reconcile).
//!
//! Ids are Shopify's numeric ids (the number at the end of a GID such as
//! `gid://shopify/Order/450789469`); they fit in an `i64`. Money is
//! [`Money`], exact to the millionth. Times are UTC; days are cut at the
//! shop's own midnight by [`ShopTimeZone`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A money amount in millionths of the currency unit: exact for every
/// currency Shopify supports (0, 2 or 3 decimals) and summable in SQL as
/// an integer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// An amount from millionths.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// The amount in millionths.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// An amount from cents (hundredths).
    pub const fn from_cents(cents: i64) -> Self {
        Self(cents.saturating_mul(10_000))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

/// A shop's time zone (IANA, e.g. `America/New_York`): where its days
/// begin and end, daylight saving included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShopTimeZone(chrono_tz::Tz);

/// A time zone name that is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IANA time zone")]
pub struct UnknownTimeZone(String);

impl ShopTimeZone {
    /// UTC, for shops whose zone is unknown.
    pub const UTC: Self = Self(chrono_tz::UTC);

    /// The IANA name, e.g. `Europe/Paris`.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The shop's calendar day at `at`.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.0).date_naive()
    }

    /// The first instant of `day` in the shop's zone (its midnight, or the
    /// first existing minute when a daylight-saving jump skips midnight).
    pub fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let mut time = day.and_time(NaiveTime::MIN);
        for _ in 0..=24 * 4 {
            match self.0.from_local_datetime(&time) {
                chrono::LocalResult::Single(t) => return t.with_timezone(&Utc),
                chrono::LocalResult::Ambiguous(earliest, _) => return earliest.with_timezone(&Utc),
                chrono::LocalResult::None => time += chrono::Duration::minutes(15),
            }
        }
        Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
    }

    /// `[start, end)` in UTC covering the shop days `from..=to`.
    pub fn span(&self, from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = to.checked_add_days(Days::new(1)).unwrap_or(to);
        (self.start_of(from), self.start_of(end))
    }
}

impl FromStr for ShopTimeZone {
    type Err = UnknownTimeZone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<chrono_tz::Tz>()
            .map(Self)
            .map_err(|_| UnknownTimeZone(s.chars().take(64).collect()))
    }
}

impl fmt::Display for ShopTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One order of the mirror, with its line items and refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorOrder {
    /// Shopify's numeric order id.
    pub id: i64,
    /// The merchant-facing name, e.g. `#1001`.
    pub name: String,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When it was processed, if Shopify says.
    pub processed_at: Option<DateTime<Utc>>,
    /// Its last change: a record never overwrites a newer one.
    pub updated_at: DateTime<Utc>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Shopify's financial status, upper case (`PAID`, `REFUNDED`, …).
    pub financial_status: Option<String>,
    /// Shopify's fulfillment status, upper case (`FULFILLED`, …).
    pub fulfillment_status: Option<String>,
    /// The shop currency of the amounts (ISO 4217).
    pub currency: String,
    /// Subtotal (line items after discounts, before shipping and tax).
    pub subtotal: Money,
    /// The order total.
    pub total: Money,
    /// Discounts on the order.
    pub total_discounts: Money,
    /// Tax on the order.
    pub total_tax: Money,
    /// Refunded so far.
    pub total_refunded: Money,
    /// The customer's id, when the order has one.
    pub customer_id: Option<i64>,
    /// The email on the order (personal data: removed on redact).
    pub email: Option<String>,
    /// The customer's display name on the order (personal data).
    pub customer_name: Option<String>,
    /// The order's tags.
    pub tags: Vec<String>,
    /// Where it was placed (`web`, `pos`, …).
    pub source_name: Option<String>,
    /// What was ordered.
    pub line_items: Vec<MirrorLineItem>,
    /// Refunds against it.
    pub refunds: Vec<MirrorRefund>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorLineItem {
    /// Shopify's numeric line item id.
    pub id: i64,
    /// The product, when it still exists.
    pub product_id: Option<i64>,
    /// The variant, when it still exists.
    pub variant_id: Option<i64>,
    /// Product title at the time of the order.
    pub title: String,
    /// Variant title, when the product has variants.
    pub variant_title: Option<String>,
    /// Stock keeping unit.
    pub sku: Option<String>,
    /// Units ordered.
    pub quantity: i64,
    /// Unit price before discounts.
    pub price: Money,
    /// Discount on the whole line.
    pub discount: Money,
}

/// One refund of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRefund {
    /// Shopify's numeric refund id.
    pub id: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Amount refunded.
    pub amount: Money,
    /// The merchant's note (the reason), when given.
    pub note: Option<String>,
}

/// One product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorProduct {
    /// Shopify's numeric product id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// `ACTIVE`, `ARCHIVED` or `DRAFT`.
    pub status: String,
    /// Vendor.
    pub vendor: Option<String>,
    /// Product type.
    pub product_type: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
}

/// One customer (personal data: removed on redact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorCustomer {
    /// Shopify's numeric customer id.
    pub id: i64,
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// When the customer was created.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// Orders placed, as Shopify counts them.
    pub orders_count: i64,
    /// Amount spent, as Shopify sums it.
    pub amount_spent: Money,
}

/// Where a shop's backfill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// Not started yet.
    Pending,
    /// A replica is reading the store.
    Running,
    /// Every object the granted scopes show is mirrored.
    Complete,
    /// The last attempt failed; it is tried again.
    Failed,
}

impl BackfillState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    /// The state a stored word names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "complete" => Self::Complete,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_cut_at_the_shops_own_midnight() {
        let ny: ShopTimeZone = "America/New_York".parse().unwrap();
        // 03:30 UTC on 2 Nov is still 1 Nov in New York (EDT, UTC-4)...
        let at = Utc.with_ymd_and_hms(2026, 11, 2, 3, 30, 0).unwrap();
        assert_eq!(ny.day_of(at), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        // ...and the day after the switch to EST begins at 05:00 UTC.
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        assert_eq!(
            ny.start_of(day),
            Utc.with_ymd_and_hms(2026, 11, 2, 5, 0, 0).unwrap()
        );
        let (start, end) = ny.span(day, day);
        assert_eq!((end - start).num_hours(), 24);
        assert!("Mars/Olympus".parse::<ShopTimeZone>().is_err());
        assert_eq!(ShopTimeZone::UTC.name(), "UTC");
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(Money::from_cents(1999).micros(), 19_990_000);
        let sum: Money = [Money::from_cents(1), Money::from_cents(2)]
            .into_iter()
            .sum();
        assert_eq!(sum, Money::from_cents(3));
    }

    #[test]
    fn backfill_states_round_trip() {
        for s in [
            BackfillState::Pending,
            BackfillState::Running,
            BackfillState::Complete,
            BackfillState::Failed,
        ] {
            assert_eq!(BackfillState::parse(s.as_str()), Some(s));
        }
    }
}
