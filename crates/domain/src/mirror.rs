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

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc};
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

    /// `part / whole` of the amount, to the nearest millionth (halves away
    /// from zero); zero when `whole` is not positive.
    pub fn share(self, part: i64, whole: i64) -> Self {
        if whole <= 0 {
            return Self::ZERO;
        }
        let (n, d) = (i128::from(self.0) * i128::from(part), i128::from(whole));
        let q = if n >= 0 {
            (2 * n + d) / (2 * d)
        } else {
            -((-2 * n + d) / (2 * d))
        };
        Self(i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX }))
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
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

    /// `at` as the shop's clock shows it, e.g. `2026-11-29 07:34 EST`
    /// (`… UTC` for a shop in UTC or of unknown zone).
    pub fn clock(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// `at` as a person says it on the shop's clock, seen at `now`:
    /// "Today, 07:34 EST", "Yesterday, 18:02 EST", "Monday, 09:10 EST"
    /// within the week, "24 Nov, 09:10 EST" this year, "24 Nov 2025, …"
    /// before.
    pub fn relative(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.0);
        let time = local.format("%H:%M %Z");
        let days = (self.day_of(now) - self.day_of(at)).num_days();
        let day = match days {
            0 => "Today".to_owned(),
            1 => "Yesterday".to_owned(),
            2..=6 => local.format("%A").to_string(),
            _ if local.year() == now.with_timezone(&self.0).year() => {
                local.format("%-d %b").to_string()
            }
            _ => local.format("%-d %b %Y").to_string(),
        };
        format!("{day}, {time}")
    }

    /// The zone's name with its offset at `at`, e.g.
    /// `America/New_York (UTC-05:00)`, or `UTC`.
    pub fn label(&self, at: DateTime<Utc>) -> String {
        use chrono::Offset as _;
        if self.0 == chrono_tz::UTC {
            return "UTC".to_owned();
        }
        let seconds = at.with_timezone(&self.0).offset().fix().local_minus_utc();
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.unsigned_abs() / 60;
        format!(
            "{} (UTC{sign}{:02}:{:02})",
            self.name(),
            minutes / 60,
            minutes % 60
        )
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
    /// When Shopify closed it (every line fulfilled or cancelled and every
    /// transaction complete, or closed by the merchant), if it is closed.
    pub closed_at: Option<DateTime<Utc>>,
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
    /// Units still on the order: `quantity` less the units refunded or
    /// removed (Shopify's `currentQuantity`).
    pub current_quantity: i64,
    /// Unit price before discounts.
    pub price: Money,
    /// Discount on the whole line.
    pub discount: Money,
}

impl MirrorLineItem {
    /// What the line sold for: quantity × price − its discount.
    pub fn revenue(&self) -> Money {
        Money::from_micros(self.price.micros().saturating_mul(self.quantity)) - self.discount
    }

    /// Units refunded or removed since the order was placed.
    pub fn refunded_units(&self) -> i64 {
        line_refund(self.revenue(), self.quantity, self.current_quantity).0
    }

    /// What the refunded or removed units were sold for: the line's revenue
    /// per unit times those units.
    pub fn refunded(&self) -> Money {
        line_refund(self.revenue(), self.quantity, self.current_quantity).1
    }
}

/// Of a line that sold `quantity` units for `revenue` and keeps
/// `current_quantity`: the units refunded or removed, and what they were
/// sold for (the line's revenue per unit times those units).
pub fn line_refund(revenue: Money, quantity: i64, current_quantity: i64) -> (i64, Money) {
    let units = (quantity - current_quantity).clamp(0, quantity.max(0));
    (units, revenue.share(units, quantity))
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

/// Where a shop's mirror stands: the backfill's progress and how fresh the
/// mirror is. One per shop, shared by every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSync {
    /// The shop (canonical `name.myshopify.com`).
    pub shop: String,
    /// The shop's time zone: where its days are cut.
    pub time_zone: ShopTimeZone,
    /// The shop's currency (ISO 4217), when known.
    pub currency: Option<String>,
    /// How the shop writes money (Shopify's money format as plain text,
    /// e.g. `${{amount}}`), when known.
    pub money_format: Option<String>,
    /// Where the backfill stands.
    pub state: BackfillState,
    /// The replica running (or last running) the backfill.
    pub owner: Option<String>,
    /// Until when the running replica holds the backfill; after that another
    /// may take it over.
    pub lease_until: Option<DateTime<Utc>>,
    /// The Shopify bulk operation being read, so a restart resumes polling it.
    pub bulk_operation_id: Option<String>,
    /// The resource (or phase) the backfill is on, e.g. `orders`.
    pub phase: Option<String>,
    /// Orders mirrored by the backfill so far.
    pub orders_mirrored: i64,
    /// Objects of every kind (orders, line items, products, …) mirrored so far.
    pub objects_mirrored: i64,
    /// When the current (or last) backfill started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last backfill completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// The earliest order creation time the completed backfill read; `None`
    /// with a completed backfill means the whole history.
    pub covers_since: Option<DateTime<Utc>>,
    /// The newest webhook event applied.
    pub last_event_at: Option<DateTime<Utc>>,
    /// The last reconcile.
    pub last_reconcile_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When this record last changed.
    pub updated_at: DateTime<Utc>,
}

/// One shop day's sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorDaySales {
    /// The shop day.
    pub date: NaiveDate,
    /// Orders placed that day (cancelled included).
    pub orders: u64,
    /// Their total (cancelled included).
    pub revenue: Money,
}

/// Sales over shop days `from..=to`, computed like the live sales summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSales {
    /// Orders placed (cancelled included).
    pub orders: u64,
    /// Of which cancelled.
    pub cancelled_orders: u64,
    /// Sum of order totals, cancelled orders included.
    pub revenue: Money,
    /// Sum of amounts refunded on those orders.
    pub refunded: Money,
    /// The shop currency, when there were orders.
    pub currency: Option<String>,
    /// Per day: every day of the range when it is shorter than 93 days
    /// (zeros included), else only days with orders; oldest first.
    pub per_day: Vec<MirrorDaySales>,
}

/// One product's sales over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorProductSales {
    /// The product, when the line items name one (else it is keyed by title).
    pub product_id: Option<i64>,
    /// The title on its line items (the newest order's).
    pub title: String,
    /// Units sold.
    pub units: i64,
    /// Orders containing it (each order once).
    pub orders: u64,
    /// Line revenue: quantity × price − line discount.
    pub revenue: Money,
    /// Units refunded or removed since (`quantity − current_quantity`).
    pub refunded_units: i64,
    /// What those units were sold for: each line's revenue per unit times
    /// its refunded units.
    pub refunded: Money,
}

/// The best sellers over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorTopProducts {
    /// Orders placed in the range.
    pub orders_considered: u64,
    /// Ranked by units, then orders, then title.
    pub products: Vec<MirrorProductSales>,
}

/// How much a shop holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorCounts {
    /// Products (not deleted).
    pub products: u64,
    /// Orders.
    pub orders: u64,
    /// Orders neither cancelled nor closed (Shopify's `closedAt`).
    pub open_orders: u64,
    /// Customers (not deleted).
    pub customers: u64,
}

/// The width of one point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesBucket {
    /// One shop day.
    Day,
    /// One week, Monday to Sunday.
    Week,
}

/// One point of a sales series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorSeriesPoint {
    /// The bucket's first day (a Monday for weeks; the range's first day
    /// for a week cut by the range).
    pub start: NaiveDate,
    /// Orders placed.
    pub orders: u64,
    /// Sum of their totals.
    pub revenue: Money,
    /// Sum of their refunded amounts.
    pub refunded: Money,
}

/// Orders counted by one status value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorStatusCount {
    /// The status (`None`: Shopify gave none).
    pub status: Option<String>,
    /// Orders with it.
    pub orders: u64,
}

/// Orders over a range counted by financial and by fulfillment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorOrdersByStatus {
    /// Orders placed in the range.
    pub orders: u64,
    /// By financial status, most orders first.
    pub financial: Vec<MirrorStatusCount>,
    /// By fulfillment status, most orders first.
    pub fulfillment: Vec<MirrorStatusCount>,
}

/// Who came back, over a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorRepeatCustomers {
    /// Customers with at least one order in the range.
    pub customers: u64,
    /// Of whom with two or more orders in the range.
    pub repeat_customers: u64,
    /// Of whom had ordered before the range.
    pub returning_customers: u64,
    /// Orders in the range without a customer (not counted above).
    pub orders_without_customer: u64,
}

/// One customer's spend over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorTopCustomer {
    /// Shopify's customer id.
    pub customer_id: i64,
    /// Name, from the mirrored customer (`None` when not mirrored).
    pub name: Option<String>,
    /// Email, from the mirrored customer.
    pub email: Option<String>,
    /// Orders placed in the range.
    pub orders: u64,
    /// Sum of their totals.
    pub revenue: Money,
}

/// One refund with its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRefundEntry {
    /// The order refunded.
    pub order_id: i64,
    /// The order's name, e.g. `#1001`.
    pub order_name: String,
    /// The refund.
    pub refund: MirrorRefund,
}

/// Refunds made over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRefunds {
    /// Refunds made.
    pub count: u64,
    /// Their sum.
    pub amount: Money,
    /// The newest ones first, up to the limit asked.
    pub refunds: Vec<MirrorRefundEntry>,
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_shop_clock_shows_local_time_with_its_abbreviation() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let at = t("2026-11-29T12:34:00Z");
        let ny: ShopTimeZone = "America/New_York".parse().unwrap_or(ShopTimeZone::UTC);
        assert_eq!(ny.clock(at), "2026-11-29 07:34 EST");
        assert_eq!(ShopTimeZone::UTC.clock(at), "2026-11-29 12:34 UTC");
        // Relative to the shop's own days: 02:00 UTC on the 29th is still
        // the 28th in New York.
        assert_eq!(ny.relative(at, at), "Today, 07:34 EST");
        assert_eq!(
            ny.relative(t("2026-11-29T02:00:00Z"), at),
            "Yesterday, 21:00 EST"
        );
        assert_eq!(
            ny.relative(t("2026-11-24T15:00:00Z"), at),
            "Tuesday, 10:00 EST"
        );
        assert_eq!(
            ny.relative(t("2026-10-02T15:00:00Z"), at),
            "2 Oct, 11:00 EDT"
        );
        assert_eq!(
            ny.relative(t("2025-12-30T15:00:00Z"), at),
            "30 Dec 2025, 10:00 EST"
        );
    }

    use super::*;

    #[test]
    fn a_share_of_an_amount_rounds_to_the_nearest_millionth() {
        let m = Money::from_micros(10);
        assert_eq!(m.share(1, 3), Money::from_micros(3));
        assert_eq!(m.share(2, 3), Money::from_micros(7));
        assert_eq!(Money::from_micros(-10).share(2, 3), Money::from_micros(-7));
        assert_eq!(m.share(1, 0), Money::ZERO);
        assert_eq!(
            Money::from_cents(2_999).share(3, 3),
            Money::from_cents(2_999)
        );
    }

    #[test]
    fn a_lines_refunded_units_and_value_follow_its_current_quantity() {
        let line = MirrorLineItem {
            id: 1,
            product_id: Some(2),
            variant_id: None,
            title: "Mug".into(),
            variant_title: None,
            sku: None,
            quantity: 3,
            current_quantity: 1,
            price: Money::from_cents(1_000),
            discount: Money::from_cents(300),
        };
        assert_eq!(line.revenue(), Money::from_cents(2_700));
        assert_eq!(line.refunded_units(), 2);
        assert_eq!(line.refunded(), Money::from_cents(1_800));
        // A current quantity above the ordered one refunds nothing.
        let odd = MirrorLineItem {
            current_quantity: 5,
            ..line
        };
        assert_eq!((odd.refunded_units(), odd.refunded()), (0, Money::ZERO));
    }

    #[test]
    fn days_are_cut_at_the_shops_own_midnight() {
        let ny: ShopTimeZone = "America/New_York".parse().unwrap();
        // 03:30 UTC on 2 Nov is still 1 Nov in New York (EST, UTC-5, since
        // daylight saving time ended on 1 Nov)...
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
        assert_eq!(ny.label(at), "America/New_York (UTC-05:00)");
        assert_eq!(ShopTimeZone::UTC.label(at), "UTC");
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
