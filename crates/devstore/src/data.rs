//! Deterministic synthetic store data (see [`Dataset`]).

use std::collections::{HashMap, HashSet};

#[cfg(test)]
use chrono::Weekday;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::shop::{normalize_shop, shop_handle};

#[path = "changes.rs"]
pub(crate) mod changes;

/// Number of days of orders, ending with (and including) the anchor date.
pub const ORDER_DAYS: i64 = 90;

/// Days of orders of a large shop (see [`is_large_shop`]).
pub const LARGE_ORDER_DAYS: i64 = 365;

/// Average orders per day of a large shop (about 100,000 over a year).
pub const LARGE_ORDERS_PER_DAY: f64 = 275.0;

/// Customers of a large shop.
pub const LARGE_CUSTOMERS: usize = 25_000;

/// Whether `shop` (a `name.myshopify.com` domain or a bare name) is a
/// **large shop**: its handle ends in `-large` (e.g.
/// `bench-large.myshopify.com`). A large shop has [`LARGE_ORDER_DAYS`] days
/// of orders (about 100,000), [`LARGE_CUSTOMERS`] customers, and is granted
/// `read_all_orders` at install, for benchmarks of a busy store.
///
/// ```
/// use hirecj_devstore::is_large_shop;
/// assert!(is_large_shop("bench-large.myshopify.com"));
/// assert!(is_large_shop("bench-large"));
/// assert!(!is_large_shop("large-bench.myshopify.com"));
/// ```
pub fn is_large_shop(shop: &str) -> bool {
    let domain = normalize_shop(shop).unwrap_or_else(|| shop.to_ascii_lowercase());
    shop_handle(&domain).ends_with("-large")
}

/// Money in minor units (cents) of the shop's currency.
pub type Cents = i64;

/// Formats cents as Shopify's decimal strings: `12345` -> `"123.45"`.
pub fn format_cents(cents: Cents) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The shop itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopInfo {
    /// Numeric id (`gid://shopify/Shop/{id}`).
    pub id: u64,
    /// Display name, e.g. "Cool Shirts".
    pub name: String,
    /// `name.myshopify.com`.
    pub myshopify_domain: String,
    /// The shop owner's email.
    pub email: String,
    /// ISO 4217 currency code of the shop (`USD`).
    pub currency_code: String,
    /// How the shop writes money (Shopify's "HTML without currency"
    /// format, `${{amount}}`).
    pub money_format: String,
    /// IANA time zone, e.g. `America/Phoenix` (always a zone without DST).
    pub iana_timezone: String,
    /// Abbreviation of the time zone, e.g. `MST`.
    pub timezone_abbreviation: String,
    /// Fixed offset of the time zone from UTC, in seconds.
    pub utc_offset_seconds: i32,
    /// Plan name as shown to merchants.
    pub plan_display_name: String,
    /// Whether this is a partner development store (always true here).
    pub partner_development: bool,
    /// Whether the shop is on Shopify Plus (always false here).
    pub shopify_plus: bool,
    /// When the shop was created.
    pub created_at: DateTime<Utc>,
}

/// Product status as in the Admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductStatus {
    /// Visible and for sale.
    Active,
    /// Archived.
    Archived,
    /// Not published yet.
    Draft,
}

/// A product with its variants.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Numeric id (`gid://shopify/Product/{id}`).
    pub id: u64,
    /// Title, e.g. "Organic Crew Tee".
    pub title: String,
    /// URL handle, unique in the shop.
    pub handle: String,
    /// Status.
    pub status: ProductStatus,
    /// Product type, e.g. "T-Shirts".
    pub product_type: String,
    /// Vendor.
    pub vendor: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
    /// At least one variant.
    pub variants: Vec<Variant>,
    /// Relative popularity used when generating orders (higher sells more).
    pub popularity: f64,
}

impl Product {
    /// Sum of the variants' inventory.
    pub fn total_inventory(&self) -> i64 {
        self.variants.iter().map(|v| v.inventory_quantity).sum()
    }
    /// Lowest variant price.
    pub fn min_price(&self) -> Cents {
        self.variants.iter().map(|v| v.price).min().unwrap_or(0)
    }
    /// Highest variant price.
    pub fn max_price(&self) -> Cents {
        self.variants.iter().map(|v| v.price).max().unwrap_or(0)
    }
}

/// A product variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Numeric id (`gid://shopify/ProductVariant/{id}`).
    pub id: u64,
    /// Variant title ("Default Title" for single-variant products).
    pub title: String,
    /// SKU.
    pub sku: String,
    /// Price in cents.
    pub price: Cents,
    /// Units in stock.
    pub inventory_quantity: i64,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Numeric id (`gid://shopify/Customer/{id}`).
    pub id: u64,
    /// Email (unique in the shop).
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone in E.164, when known.
    pub phone: Option<String>,
    /// Creation time (never after the customer's first order).
    pub created_at: DateTime<Utc>,
    /// Last change to the customer record itself (its creation until it is
    /// changed). The API's `updatedAt` is the later of this and the
    /// customer's latest order ([`Dataset::customer_updated_at`]).
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    /// "First Last".
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// `displayFinancialStatus` of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinancialStatus {
    /// Payment authorized, not captured.
    Authorized,
    /// Paid.
    Paid,
    /// Part of the payment refunded.
    PartiallyRefunded,
    /// Awaiting payment.
    Pending,
    /// Fully refunded.
    Refunded,
    /// Authorization voided.
    Voided,
}

/// `displayFulfillmentStatus` of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FulfillmentStatus {
    /// Everything shipped.
    Fulfilled,
    /// Nothing shipped yet.
    Unfulfilled,
    /// Some items shipped.
    PartiallyFulfilled,
}

/// An order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    /// Numeric id (`gid://shopify/LineItem/{id}`).
    pub id: u64,
    /// Product id.
    pub product_id: u64,
    /// Variant id.
    pub variant_id: u64,
    /// Product title at the time of the order.
    pub title: String,
    /// Variant title, `None` for "Default Title".
    pub variant_title: Option<String>,
    /// SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
    /// Unit price before discounts, in cents.
    pub unit_price: Cents,
}

/// A refund of an order, derived from the order (see [`Order::refunds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Numeric id (`gid://shopify/Refund/{id}`).
    pub id: u64,
    /// When it was made (after the order, never after its age allows).
    pub created_at: DateTime<Utc>,
    /// The merchant's note (the reason), when given.
    pub note: Option<String>,
    /// Amount refunded, cents.
    pub amount: Cents,
    /// The lines refunded (empty for a refund of an amount only). A
    /// generated whole refund takes back every line, a partial one a unit
    /// of the first line.
    pub line_items: Vec<RefundLineItem>,
}

/// One line of a [`Refund`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundLineItem {
    /// Numeric id of the refund line.
    pub id: u64,
    /// The order line refunded ([`LineItem::id`]).
    pub line_item_id: u64,
    /// Units refunded.
    pub quantity: i64,
    /// The refunded units' price after their share of the discounts, cents.
    pub subtotal: Cents,
}

/// A refund's id is its order's id plus this (plus the refund's index).
pub(crate) const REFUND_ID_OFFSET: u64 = 4_000_000_000_000;

/// Reasons merchants write on refunds.
const REFUND_NOTES: &[Option<&str>] = &[
    Some("Customer changed their mind"),
    Some("Damaged in transit"),
    Some("Wrong size"),
    Some("Item not as described"),
    Some("Arrived late"),
    None,
];

/// Order tags, by a hash of the order id.
const ORDER_TAGS: &[&[&str]] = &[
    &[],
    &[],
    &[],
    &[],
    &["gift"],
    &["wholesale"],
    &["vip"],
    &["vip", "gift"],
    &["subscription"],
    &[],
];

/// An order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Numeric id (`gid://shopify/Order/{id}`); increases with `created_at`.
    pub id: u64,
    /// Order number (`1001`, ...); the name is `#` + number.
    pub number: u64,
    /// Contact email.
    pub email: String,
    /// The customer, `None` for a guest checkout.
    pub customer_id: Option<u64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Processing time (equal to `created_at` here).
    pub processed_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
    /// Set when cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Set when closed (archived).
    pub closed_at: Option<DateTime<Utc>>,
    /// Payment state.
    pub financial_status: FinancialStatus,
    /// Shipping state.
    pub fulfillment_status: FulfillmentStatus,
    /// Lines.
    pub line_items: Vec<LineItem>,
    /// Discounts on the order, cents.
    pub total_discounts: Cents,
    /// Sum of lines after discounts (Shopify's `subtotalPriceSet`).
    pub subtotal: Cents,
    /// Shipping charged.
    pub shipping: Cents,
    /// Taxes.
    pub tax: Cents,
    /// subtotal + shipping + tax (Shopify's `totalPriceSet`).
    pub total: Cents,
    /// Refunded so far (`totalRefundedSet`).
    pub total_refunded: Cents,
    /// Why it was cancelled (`customer`, `fraud`, `inventory`, `declined`,
    /// `other`), when cancelled through the simulator's controls.
    pub cancel_reason: Option<String>,
    /// The merchant's note on the order.
    pub note: Option<String>,
    /// Tags ([`Order::tags`]).
    tags: Vec<String>,
    /// Where it was placed ([`Order::source_name`]).
    source_name: String,
    /// Refunds ([`Order::refunds`]).
    refunds: Vec<Refund>,
}

impl Order {
    /// `#1001`.
    pub fn name(&self) -> String {
        format!("#{}", self.number)
    }
    /// Closed or cancelled orders are not "open" (`status:open`).
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none() && self.cancelled_at.is_none()
    }
    /// Total units over all lines.
    pub fn units(&self) -> i64 {
        self.line_items.iter().map(|l| l.quantity).sum()
    }

    fn hash(&self, salt: u8) -> u64 {
        let mut bytes = self.id.to_le_bytes().to_vec();
        bytes.push(salt);
        fnv1a(&bytes)
    }

    /// The refunds of the order, oldest first. A generated order has one
    /// refund of [`Order::total_refunded`] when that is not zero (at the
    /// cancellation for cancelled orders, else 1 to 48 hours after the
    /// order), none otherwise, derived from the order alone so the
    /// generator's random sequence is untouched; refunds made through the
    /// simulator's controls follow.
    pub fn refunds(&self) -> Vec<Refund> {
        self.refunds.clone()
    }

    /// The refunds, borrowed.
    pub fn refund_list(&self) -> &[Refund] {
        &self.refunds
    }

    /// The order's tags (generated: a few are `gift`, `wholesale`, `vip`,
    /// `subscription`, derived from its id).
    pub fn tags(&self) -> Vec<String> {
        self.tags.clone()
    }

    /// Where the order was placed (Shopify's `sourceName`): generated
    /// orders are mostly `web`, some `pos`, `shopify_draft_order` and
    /// `iphone`, derived from its id.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Fills in what is derived from the id (tags, source, the generated
    /// refund), once the id is known.
    fn derive_from_id(&mut self) {
        self.tags = ORDER_TAGS[(self.hash(2) % ORDER_TAGS.len() as u64) as usize]
            .iter()
            .map(|t| (*t).to_string())
            .collect();
        self.source_name = match self.hash(3) % 100 {
            0..=79 => "web",
            80..=91 => "pos",
            92..=96 => "shopify_draft_order",
            _ => "iphone",
        }
        .to_string();
        self.refunds = if self.total_refunded == 0 {
            Vec::new()
        } else {
            let h = self.hash(1);
            let created_at = self
                .cancelled_at
                .unwrap_or(self.created_at + Duration::hours(1 + (h % 48) as i64));
            let note = REFUND_NOTES[(h / 48) as usize % REFUND_NOTES.len()].map(str::to_string);
            let id = self.id + REFUND_ID_OFFSET;
            // A whole refund takes back every unit; a partial one (the
            // first line's unit price) one unit of the first line.
            let discounts = self.line_discounts();
            let whole = self.total_refunded >= self.total;
            let line_items = self
                .line_items
                .iter()
                .zip(&discounts)
                .take(if whole { usize::MAX } else { 1 })
                .enumerate()
                .filter(|(_, (l, _))| l.quantity > 0)
                .map(|(k, (l, discount))| {
                    let quantity = if whole { l.quantity } else { 1 };
                    RefundLineItem {
                        id: id * 100 + k as u64 + 1,
                        line_item_id: l.id,
                        quantity,
                        subtotal: l.unit_price * quantity - discount * quantity / l.quantity,
                    }
                })
                .collect();
            vec![Refund {
                id,
                created_at,
                note,
                amount: self.total_refunded,
                line_items,
            }]
        };
    }

    /// Units of line `line_id` still on the order (Shopify's
    /// `currentQuantity`): ordered less those its refunds took back.
    pub fn current_quantity(&self, line_id: u64) -> i64 {
        let ordered = self
            .line_items
            .iter()
            .find(|l| l.id == line_id)
            .map_or(0, |l| l.quantity);
        let refunded: i64 = self
            .refunds
            .iter()
            .flat_map(|r| &r.line_items)
            .filter(|r| r.line_item_id == line_id)
            .map(|r| r.quantity)
            .sum();
        (ordered - refunded).max(0)
    }

    /// The order's discount allocated to each line, in line order:
    /// proportional to the line's total, the rounding remainder on the last
    /// line; they add up to [`Order::total_discounts`].
    pub fn line_discounts(&self) -> Vec<Cents> {
        let totals: Vec<Cents> = self
            .line_items
            .iter()
            .map(|l| l.unit_price * l.quantity)
            .collect();
        let all: Cents = totals.iter().sum();
        if all <= 0 || self.total_discounts == 0 {
            return vec![0; totals.len()];
        }
        let mut out: Vec<Cents> = totals
            .iter()
            .map(|t| self.total_discounts * t / all)
            .collect();
        let given: Cents = out.iter().sum();
        if let Some(last) = out.last_mut() {
            *last += self.total_discounts - given;
        }
        out
    }
}

/// A whole synthetic store.
///
/// [`Dataset::generate`] builds a store from its domain and an anchor date
/// ("today"): the same inputs always give the same store. The catalogue,
/// the customer list and the shop's settings depend on the shop only; the
/// orders of each calendar day are drawn from a generator seeded by the shop
/// and that day; payment and fulfilment states depend on the order's age
/// relative to the anchor date (orders of the last two days are mostly
/// unfulfilled, older ones fulfilled and, after five days, closed).
///
/// What it looks like: 20-40 products from a catalogue chosen by words in
/// the store name (apparel, coffee, skincare, home, pets; else by the seed),
/// with a few best sellers (Zipf-like popularity) and some draft or archived
/// products; 100-300 customers, some of them loyal repeat buyers;
/// [`ORDER_DAYS`] days of orders with a weekday rhythm (quieter weekends),
/// a mild growth trend and one promotion day; about 3 % refunded and 3.5 %
/// partially refunded orders, a few cancelled or pending ones; about 3 %
/// guest checkouts (no customer). Currency USD; a time zone without daylight
/// saving time (so a fixed offset).
///
/// Seeds come from a stable FNV-1a hash of the shop domain (never std's
/// randomly keyed hasher) feeding ChaCha8, so the data does not change
/// between runs, machines or Rust versions.
///
/// Times of day are drawn in the shop's local time and stored in UTC. The
/// orders of the anchor day cover the whole local day, so some lie in the
/// future: the API only shows orders whose `created_at` is not after the
/// current time (see [`Dataset::visible_orders`]); new orders "arrive" as
/// the day goes by. Without the `read_all_orders` scope the API also hides
/// orders older than 60 days, as Shopify does.
///
/// Money is in cents ([`Cents`]); `total = subtotal + shipping + tax`, where
/// `subtotal` is after discounts (Shopify's `subtotalPriceSet`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The shop.
    pub shop: ShopInfo,
    /// The anchor date ("today", UTC) the data was generated for.
    pub anchor_date: NaiveDate,
    /// Products, by id.
    pub products: Vec<Product>,
    /// Customers, by id.
    pub customers: Vec<Customer>,
    /// Orders, by `created_at` (and id). Includes the rest of "today", see
    /// the module docs.
    pub orders: Vec<Order>,
    customer_orders: HashMap<u64, Vec<usize>>,
    /// The shop's tax rate (what new orders are taxed at).
    pub(crate) tax_rate: f64,
    /// Ids of deleted orders, products and customers: Shopify never
    /// gives an id (or an order number) again.
    pub(crate) retired_ids: HashSet<u64>,
    /// The highest number of a deleted order.
    pub(crate) retired_number: u64,
}

/// FNV-1a, 64 bits: a stable hash for seeds.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn rng_for(shop: &str, salt: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(fnv1a(shop.as_bytes()) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn pick_weighted<R: Rng>(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    if weights.is_empty() || total <= 0.0 {
        return 0;
    }
    let mut x = rng.gen_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn pick<'a, R: Rng>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

/// Which option set a catalogue item's variants use.
#[derive(Clone, Copy)]
enum Options {
    Single,
    Sizes,
    Weights,
    Volumes,
}

/// A catalogue template: `{}` in the title is replaced by one of the theme's
/// adjectives.
struct Item {
    title: &'static str,
    product_type: &'static str,
    min: u32,
    max: u32,
    options: Options,
}

const fn item(
    title: &'static str,
    product_type: &'static str,
    min: u32,
    max: u32,
    options: Options,
) -> Item {
    Item {
        title,
        product_type,
        min,
        max,
        options,
    }
}

struct Theme {
    adjectives: &'static [&'static str],
    items: &'static [Item],
    suffix_words: &'static [&'static str],
}

const THEMES: &[Theme] = &[
    Theme {
        adjectives: &[
            "Classic",
            "Organic",
            "Vintage",
            "Everyday",
            "Heavyweight",
            "Coastal",
            "Midnight",
            "Sunset",
            "Alpine",
            "Heritage",
            "Washed",
            "Essential",
            "Trail",
            "Harbor",
        ],
        items: &[
            item("{} Crew Tee", "T-Shirts", 24, 38, Options::Sizes),
            item("{} Pocket Tee", "T-Shirts", 26, 40, Options::Sizes),
            item("{} Hoodie", "Hoodies", 49, 79, Options::Sizes),
            item("{} Zip Hoodie", "Hoodies", 59, 89, Options::Sizes),
            item("{} Beanie", "Hats", 22, 32, Options::Single),
            item("{} Dad Cap", "Hats", 24, 34, Options::Single),
            item("{} Crew Socks", "Socks", 12, 18, Options::Single),
            item("{} Chore Jacket", "Jackets", 98, 149, Options::Sizes),
            item("{} Joggers", "Pants", 54, 78, Options::Sizes),
            item("{} Chinos", "Pants", 64, 88, Options::Sizes),
            item("{} Tote Bag", "Accessories", 18, 32, Options::Single),
        ],
        suffix_words: &["Supply", "Apparel", "Goods", "Threads", "Outfitters"],
    },
    Theme {
        adjectives: &[
            "Ethiopia Yirgacheffe",
            "Colombia Huila",
            "Guatemala Antigua",
            "Sumatra Mandheling",
            "Kenya AA",
            "Brazil Cerrado",
            "Costa Rica Tarrazu",
            "Rwanda Nyamasheke",
            "Peru Cajamarca",
            "House",
            "Espresso",
            "Morning",
            "Decaf",
            "Holiday",
        ],
        items: &[
            item("{} Whole Bean", "Coffee", 16, 24, Options::Weights),
            item("{} Ground", "Coffee", 15, 22, Options::Weights),
            item("{} Blend", "Coffee", 14, 20, Options::Weights),
            item("Pour-Over Dripper", "Equipment", 24, 36, Options::Single),
            item("Gooseneck Kettle", "Equipment", 59, 89, Options::Single),
            item(
                "Conical Burr Grinder",
                "Equipment",
                99,
                149,
                Options::Single,
            ),
            item("French Press", "Equipment", 32, 48, Options::Single),
            item("Cold Brew Kit", "Equipment", 34, 52, Options::Single),
            item("Stoneware Mug", "Merch", 18, 26, Options::Single),
            item("Paper Filters (100)", "Equipment", 8, 12, Options::Single),
            item("Insulated Travel Mug", "Merch", 28, 38, Options::Single),
        ],
        suffix_words: &["Coffee Co.", "Roasters", "Coffee", "Roasting Co."],
    },
    Theme {
        adjectives: &[
            "Vitamin C",
            "Hyaluronic",
            "Niacinamide",
            "Rosehip",
            "Green Tea",
            "Ceramide",
            "Retinol",
            "Aloe",
            "Oat",
            "Charcoal",
            "Squalane",
            "Peptide",
        ],
        items: &[
            item("{} Serum", "Serum", 28, 64, Options::Volumes),
            item("{} Cleanser", "Cleanser", 18, 32, Options::Volumes),
            item("{} Moisturizer", "Moisturizer", 24, 48, Options::Volumes),
            item("{} Face Mask", "Mask", 20, 38, Options::Single),
            item("{} Eye Cream", "Eye Care", 30, 52, Options::Single),
            item("{} Body Lotion", "Body", 16, 28, Options::Volumes),
            item("{} Toner", "Toner", 18, 30, Options::Volumes),
            item(
                "Mineral Sunscreen SPF 30",
                "Sunscreen",
                26,
                36,
                Options::Single,
            ),
            item("Jade Facial Roller", "Tools", 22, 34, Options::Single),
            item("Travel Kit", "Sets", 39, 59, Options::Single),
        ],
        suffix_words: &["Skin", "Botanics", "Skincare", "Apothecary", "Beauty"],
    },
    Theme {
        adjectives: &[
            "Cedar & Smoke",
            "Fig Leaf",
            "Sea Salt",
            "Lavender Fields",
            "Amber Noir",
            "Citrus Grove",
            "Oakmoss",
            "Black Tea",
            "Wild Mint",
            "Sandalwood",
        ],
        items: &[
            item("{} Candle", "Candles", 24, 42, Options::Single),
            item(
                "{} Reed Diffuser",
                "Home Fragrance",
                28,
                46,
                Options::Single,
            ),
            item("{} Room Spray", "Home Fragrance", 16, 24, Options::Single),
            item("Linen Throw", "Textiles", 68, 120, Options::Single),
            item("Waffle Towel Set", "Textiles", 38, 64, Options::Single),
            item("Stoneware Bowl", "Kitchen", 18, 32, Options::Single),
            item("Olive Wood Board", "Kitchen", 36, 65, Options::Single),
            item("Ceramic Vase", "Decor", 32, 95, Options::Single),
            item("Wool Blanket", "Textiles", 89, 149, Options::Single),
            item(
                "Cotton Napkins (Set of 4)",
                "Textiles",
                24,
                36,
                Options::Single,
            ),
            item("Glass Carafe", "Kitchen", 22, 34, Options::Single),
        ],
        suffix_words: &["Home", "House", "Living", "Goods", "Studio"],
    },
    Theme {
        adjectives: &[
            "Salmon",
            "Peanut Butter",
            "Pumpkin",
            "Chicken",
            "Duck",
            "Sweet Potato",
            "Blueberry",
            "Lamb",
            "Turkey",
            "Beef",
        ],
        items: &[
            item("{} Bites", "Treats", 8, 18, Options::Single),
            item("{} Biscuits", "Treats", 9, 16, Options::Single),
            item("{} Jerky Sticks", "Treats", 12, 22, Options::Single),
            item("Rope Tug Toy", "Toys", 9, 16, Options::Single),
            item("Squeaky Hedgehog", "Toys", 10, 15, Options::Single),
            item("Orthopedic Dog Bed", "Beds", 79, 129, Options::Sizes),
            item("Cozy Cat Cave", "Beds", 49, 69, Options::Single),
            item("Leather Collar", "Accessories", 24, 45, Options::Sizes),
            item("Reflective Leash", "Accessories", 19, 32, Options::Single),
            item("Catnip Mice (3-pack)", "Toys", 9, 14, Options::Single),
            item("Grooming Brush", "Accessories", 15, 26, Options::Single),
            item("Ceramic Food Bowl", "Accessories", 18, 34, Options::Single),
        ],
        suffix_words: &["Pet Co.", "Paws", "Pet Supply", "Tails"],
    },
];

/// Words in a store name that pick its catalogue (else the seed decides).
const THEME_WORDS: [&[&str]; 5] = [
    &[
        "shirt", "tee", "apparel", "wear", "cloth", "thread", "hood", "sock", "cap", "fashion",
    ],
    &[
        "coffee", "bean", "roast", "brew", "espresso", "cafe", "latte",
    ],
    &[
        "skin", "beauty", "glow", "derm", "serum", "botanic", "cosmetic", "spa",
    ],
    &[
        "home", "candle", "decor", "house", "living", "linen", "kitchen",
    ],
    &["pet", "paw", "dog", "cat", "puppy", "kitty", "tail", "bark"],
];

fn theme_for(handle: &str) -> Option<&'static Theme> {
    THEME_WORDS
        .iter()
        .position(|words| words.iter().any(|w| handle.contains(w)))
        .and_then(|i| THEMES.get(i))
}

const FIRST_NAMES: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Theodore",
    "Emily",
    "Jack",
    "Ella",
    "Levi",
    "Elizabeth",
    "Alexander",
    "Camila",
    "Jackson",
    "Luna",
    "Mateo",
    "Sofia",
    "Daniel",
    "Avery",
    "Michael",
    "Mila",
    "Mason",
    "Aria",
    "Sebastian",
    "Scarlett",
    "Ethan",
    "Penelope",
    "Logan",
    "Layla",
    "Owen",
    "Chloe",
    "Samuel",
    "Victoria",
    "Jacob",
    "Madison",
    "Asher",
    "Eleanor",
    "Aiden",
    "Grace",
    "John",
    "Nora",
    "Joseph",
    "Riley",
    "Priya",
    "Wei",
    "Aisha",
    "Kenji",
    "Fatima",
    "Diego",
    "Ingrid",
    "Tomasz",
    "Yuki",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Chen",
    "Kim",
    "Okafor",
    "Schmidt",
    "Novak",
    "Tanaka",
    "Silva",
    "Kowalski",
    "Murphy",
];

const EMAIL_DOMAINS: &[&str] = &["example.com", "example.net", "example.org"];

/// Time zones without daylight saving time: (IANA name, abbreviation, offset).
const TIMEZONES: &[(&str, &str, i32)] = &[
    ("America/Phoenix", "MST", -7 * 3600),
    ("America/Puerto_Rico", "AST", -4 * 3600),
    ("Pacific/Honolulu", "HST", -10 * 3600),
    ("Etc/UTC", "UTC", 0),
];

/// Relative order volume by weekday, Monday first: busy early in the week,
/// quieter on weekends.
const WEEKDAY_FACTOR: [f64; 7] = [1.10, 1.15, 1.05, 1.0, 0.9, 0.65, 0.75];

/// Relative order volume by local hour of day.
const HOUR_WEIGHTS: [f64; 24] = [
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.2, 1.3, 1.4, 1.5, 1.4, 1.3, 1.3, 1.4, 1.5, 1.7,
    1.9, 2.0, 1.8, 1.2, 0.6,
];

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn title_case(handle: &str) -> String {
    handle
        .split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A price like 24.00, 24.95 or 24.99 within `[min, max]` dollars.
fn price<R: Rng>(rng: &mut R, min: u32, max: u32) -> Cents {
    let dollars = i64::from(rng.gen_range(min..=max.max(min)));
    let cents = *[0, 0, 95, 99].choose(rng).unwrap_or(&0);
    if cents == 0 {
        dollars * 100
    } else {
        (dollars - 1).max(1) * 100 + cents
    }
}

fn at_local(date: NaiveDate, secs: u32, offset: i32) -> DateTime<Utc> {
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or(NaiveTime::MIN);
    Utc.from_utc_datetime(&date.and_time(time)) - Duration::seconds(i64::from(offset))
}

impl Dataset {
    /// Generates the store of `shop` (a `name.myshopify.com` domain or a bare
    /// name) with about 90 days of orders ending on `today`.
    pub fn generate(shop: &str, today: NaiveDate) -> Dataset {
        let domain = normalize_shop(shop).unwrap_or_else(|| shop.to_ascii_lowercase());
        let mut rng = rng_for(&domain, 1);
        let theme = theme_for(shop_handle(&domain))
            .unwrap_or_else(|| THEMES.choose(&mut rng).unwrap_or(&THEMES[0]));
        let (tz, abbr, offset) = *TIMEZONES.choose(&mut rng).unwrap_or(&TIMEZONES[0]);
        let handle = shop_handle(&domain).to_string();
        let base_name = title_case(&handle);
        let name = if rng.gen_bool(0.5) {
            format!("{base_name} {}", pick(&mut rng, theme.suffix_words))
        } else {
            base_name.clone()
        };
        let shop_created = at_local(
            today - Duration::days(rng.gen_range(700..1400)),
            rng.gen_range(0..86_400),
            offset,
        );
        let shop_info = ShopInfo {
            id: 60_000_000_000 + fnv1a(domain.as_bytes()) % 30_000_000_000,
            name: name.clone(),
            myshopify_domain: domain.clone(),
            email: format!("owner@{}.example.com", slugify(&handle)),
            currency_code: "USD".to_string(),
            money_format: "${{amount}}".to_string(),
            iana_timezone: tz.to_string(),
            timezone_abbreviation: abbr.to_string(),
            utc_offset_seconds: offset,
            plan_display_name: "Development".to_string(),
            partner_development: true,
            shopify_plus: false,
            created_at: shop_created,
        };

        // A large shop draws from the same generators with other sizes; a
        // normal shop's random sequence is exactly what it always was.
        let large = is_large_shop(&domain);
        let days = if large { LARGE_ORDER_DAYS } else { ORDER_DAYS };
        let products = gen_products(&mut rng, theme, &name, &handle, today, offset);
        let customer_count = large.then_some(LARGE_CUSTOMERS);
        let mut customers = gen_customers(&mut rng, &handle, today, offset, customer_count);

        // Per-shop order volume: orders per day before weekday and trend.
        let mut base_rate: f64 = rng.gen_range(6.0..22.0);
        if large {
            // Weekdays average about 0.94 and the trend 1.0.
            base_rate = LARGE_ORDERS_PER_DAY / 0.94;
        }
        let tax_rate = *[0.0, 0.0625, 0.07, 0.08875]
            .choose(&mut rng)
            .unwrap_or(&0.0);
        let promo_day = rng.gen_range(5..days - 5);
        let loyal: Vec<f64> = customers
            .iter()
            .map(|_| if rng.gen_bool(0.12) { 8.0 } else { 1.0 })
            .collect();
        // Thousands of customers: pick by binary search over running sums.
        let loyal_cumulative: Option<Vec<f64>> = large.then(|| {
            loyal
                .iter()
                .scan(0.0, |sum, w| {
                    *sum += w;
                    Some(*sum)
                })
                .collect()
        });

        let mut orders = Vec::new();
        let start = today - Duration::days(days - 1);
        for day_index in 0..days {
            let date = start + Duration::days(day_index);
            let age = days - 1 - day_index;
            let mut day_rng = rng_for(
                &domain,
                1_000_000 + u64::from(date.num_days_from_ce().unsigned_abs()),
            );
            let trend = 0.85 + 0.3 * (day_index as f64 / days as f64);
            let weekday = WEEKDAY_FACTOR[date.weekday().num_days_from_monday() as usize];
            let promo = if day_index == promo_day { 2.4 } else { 1.0 };
            let noise: f64 = day_rng.gen_range(0.75..1.25);
            let count = (base_rate * trend * weekday * promo * noise)
                .round()
                .max(0.0) as usize;
            let day_start = at_local(date, 0, offset);
            let sellable: Vec<usize> = products
                .iter()
                .enumerate()
                .filter(|(_, p)| p.status == ProductStatus::Active && p.created_at < day_start)
                .map(|(i, _)| i)
                .collect();
            let weights: Vec<f64> = sellable.iter().map(|&i| products[i].popularity).collect();
            let mut day_orders: Vec<Order> = (0..count)
                .filter_map(|_| {
                    gen_order(
                        &mut day_rng,
                        OrderContext {
                            date,
                            age,
                            offset,
                            tax_rate,
                            products: &products,
                            sellable: &sellable,
                            weights: &weights,
                            customers: &customers,
                            loyal: &loyal,
                            loyal_cumulative: loyal_cumulative.as_deref(),
                        },
                    )
                })
                .collect();
            day_orders.sort_by_key(|o| o.created_at);
            orders.extend(day_orders);
        }

        // Ids and numbers in chronological order.
        let mut id = 5_400_000_000_000 + fnv1a(domain.as_bytes()) % 100_000_000_000;
        let mut line_id = 13_500_000_000_000 + fnv1a(handle.as_bytes()) % 100_000_000_000;
        let first_number = 1001 + rng.gen_range(0..3) * 500;
        for (i, order) in orders.iter_mut().enumerate() {
            id += rng.gen_range(1_000..60_000);
            order.id = id;
            order.number = first_number + i as u64;
            for line in &mut order.line_items {
                line_id += rng.gen_range(1_000..40_000);
                line.id = line_id;
            }
            order.derive_from_id();
        }

        // Customers exist before their first order.
        let mut customer_orders: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, order) in orders.iter().enumerate() {
            if let Some(cid) = order.customer_id {
                customer_orders.entry(cid).or_default().push(i);
            }
        }
        for customer in &mut customers {
            if let Some(first) = customer_orders.get(&customer.id).and_then(|v| v.first()) {
                let before = orders[*first].created_at - Duration::minutes(rng.gen_range(3..240));
                if before < customer.created_at {
                    customer.created_at = before;
                }
            }
            customer.updated_at = customer.created_at;
        }

        Dataset {
            shop: shop_info,
            anchor_date: today,
            products,
            customers,
            orders,
            customer_orders,
            tax_rate,
            retired_ids: HashSet::new(),
            retired_number: 0,
        }
    }

    /// Orders with `from <= created_at < to`, e.g. to compute what the app
    /// should report for the last seven days:
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use hirecj_devstore::{Dataset, format_cents};
    ///
    /// let ds = Dataset::generate("demo.myshopify.com", Utc::now().date_naive());
    /// let now = Utc::now();
    /// let week: Vec<_> = ds.orders_created_between(now - Duration::days(7), now).collect();
    /// let revenue: i64 = week.iter().map(|o| o.total).sum();
    /// assert!(!week.is_empty());
    /// println!("{} orders, {} {}", week.len(), format_cents(revenue), ds.shop.currency_code);
    /// ```
    pub fn orders_created_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl DoubleEndedIterator<Item = &Order> {
        self.orders
            .iter()
            .filter(move |o| o.created_at >= from && o.created_at < to)
    }

    /// Orders the API shows at `now`: those created at or before `now`.
    /// (Without the `read_all_orders` scope the API further hides orders
    /// older than 60 days, as Shopify does.)
    pub fn visible_orders(&self, now: DateTime<Utc>) -> impl DoubleEndedIterator<Item = &Order> {
        self.orders.iter().filter(move |o| o.created_at <= now)
    }

    /// The customer with this numeric id.
    pub fn customer(&self, id: u64) -> Option<&Customer> {
        self.customers
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &self.customers[i])
    }

    /// The customer with this email (case-insensitive).
    pub fn customer_by_email(&self, email: &str) -> Option<&Customer> {
        self.customers
            .iter()
            .find(|c| c.email.eq_ignore_ascii_case(email))
    }

    /// The product with this numeric id.
    pub fn product(&self, id: u64) -> Option<&Product> {
        self.products
            .binary_search_by_key(&id, |p| p.id)
            .ok()
            .map(|i| &self.products[i])
    }

    /// The order with this numeric id.
    pub fn order(&self, id: u64) -> Option<&Order> {
        self.orders
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .map(|i| &self.orders[i])
    }

    /// All orders of a customer, oldest first (including future ones of
    /// today; filter with `created_at <= now` for what the API shows).
    pub fn orders_of_customer(&self, customer_id: u64) -> impl DoubleEndedIterator<Item = &Order> {
        self.customer_orders
            .get(&customer_id)
            .into_iter()
            .flatten()
            .map(|&i| &self.orders[i])
    }
}

fn gen_products<R: Rng>(
    rng: &mut R,
    theme: &Theme,
    shop_name: &str,
    handle: &str,
    today: NaiveDate,
    offset: i32,
) -> Vec<Product> {
    let target = rng.gen_range(20..=40);
    let mut titles: Vec<(String, &Item)> = Vec::new();
    let mut seen = HashSet::new();
    let mut attempts = 0;
    while titles.len() < target && attempts < 2_000 {
        attempts += 1;
        let Some(it) = theme.items.choose(rng) else {
            break;
        };
        let title = if it.title.contains("{}") {
            it.title.replace("{}", pick(rng, theme.adjectives))
        } else {
            it.title.to_string()
        };
        if seen.insert(title.clone()) {
            titles.push((title, it));
        }
    }
    let vendors = [
        shop_name.to_string(),
        shop_name.to_string(),
        title_case(handle),
    ];
    let sku_prefix: String = handle
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    let mut id = 8_100_000_000_000 + fnv1a(handle.as_bytes()) % 100_000_000_000;
    let mut variant_id = 44_000_000_000_000 + fnv1a(shop_name.as_bytes()) % 1_000_000_000_000;
    // A few best sellers dominate: Zipf-like popularity over a shuffled rank.
    let mut ranks: Vec<usize> = (1..=titles.len()).collect();
    ranks.shuffle(rng);
    let mut handles = HashSet::new();
    let mut products = Vec::new();
    for (n, ((title, it), rank)) in titles.into_iter().zip(ranks).enumerate() {
        id += rng.gen_range(10_000..900_000);
        let status = match rng.gen_range(0..100) {
            0..=5 => ProductStatus::Draft,
            6..=9 => ProductStatus::Archived,
            _ => ProductStatus::Active,
        };
        let age_days = if rng.gen_bool(0.1) {
            rng.gen_range(20..75)
        } else {
            rng.gen_range(120..700)
        };
        let created_at = at_local(
            today - Duration::days(age_days),
            rng.gen_range(8 * 3600..18 * 3600),
            offset,
        );
        let updated_at = created_at + Duration::days(rng.gen_range(0..age_days.max(1)));
        let base = price(rng, it.min, it.max);
        let options: &[(&str, f64)] = match it.options {
            Options::Single => &[("Default Title", 1.0)],
            Options::Sizes => &[("S", 1.0), ("M", 1.0), ("L", 1.0), ("XL", 1.0)],
            Options::Weights => &[("12 oz", 1.0), ("2 lb", 2.5)],
            Options::Volumes => &[("30 ml", 1.0), ("50 ml", 1.5)],
        };
        let variants = options
            .iter()
            .map(|(vt, factor)| {
                variant_id += rng.gen_range(1_000..50_000);
                let p = if *factor == 1.0 {
                    base
                } else {
                    ((base as f64 * factor) / 100.0).round() as i64 * 100 - 1
                };
                Variant {
                    id: variant_id,
                    title: (*vt).to_string(),
                    sku: format!(
                        "{sku_prefix}-{:03}{}",
                        n + 1,
                        if *vt == "Default Title" {
                            String::new()
                        } else {
                            format!("-{}", slugify(vt).to_ascii_uppercase())
                        }
                    ),
                    price: p,
                    inventory_quantity: if rng.gen_bool(0.1) {
                        0
                    } else {
                        rng.gen_range(3..250)
                    },
                }
            })
            .collect();
        let mut h = slugify(&title);
        let mut k = 2;
        while !handles.insert(h.clone()) {
            h = format!("{}-{k}", slugify(&title));
            k += 1;
        }
        products.push(Product {
            id,
            title,
            handle: h,
            status,
            product_type: it.product_type.to_string(),
            vendor: vendors.choose(rng).cloned().unwrap_or_default(),
            created_at,
            updated_at,
            variants,
            popularity: 1.0 / (rank as f64).powf(1.3),
        });
    }
    products
}

fn gen_customers<R: Rng>(
    rng: &mut R,
    handle: &str,
    today: NaiveDate,
    offset: i32,
    count: Option<usize>,
) -> Vec<Customer> {
    let count = match count {
        Some(n) => n,
        None => rng.gen_range(100..=300),
    };
    let mut id = 7_200_000_000_000 + fnv1a(handle.as_bytes()) % 100_000_000_000;
    let mut emails = HashSet::new();
    let mut customers = Vec::with_capacity(count);
    for _ in 0..count {
        id += rng.gen_range(10_000..5_000_000);
        let first = pick(rng, FIRST_NAMES);
        let last = pick(rng, LAST_NAMES);
        let domain = pick(rng, EMAIL_DOMAINS);
        let base = format!(
            "{}.{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        );
        let mut email = format!("{base}@{domain}");
        let mut n = 2;
        while !emails.insert(email.clone()) {
            email = format!("{base}{n}@{domain}");
            n += 1;
        }
        let phone = rng.gen_bool(0.6).then(|| {
            format!(
                "+1{}555{:04}",
                rng.gen_range(201..990),
                rng.gen_range(100..2000)
            )
        });
        let created_at = at_local(
            today - Duration::days(rng.gen_range(1..900)),
            rng.gen_range(0..86_400),
            offset,
        );
        customers.push(Customer {
            id,
            email,
            first_name: first.to_string(),
            last_name: last.to_string(),
            phone,
            created_at,
            updated_at: created_at,
        });
    }
    customers
}

struct OrderContext<'a> {
    date: NaiveDate,
    age: i64,
    offset: i32,
    tax_rate: f64,
    products: &'a [Product],
    sellable: &'a [usize],
    weights: &'a [f64],
    customers: &'a [Customer],
    loyal: &'a [f64],
    /// Running sums of `loyal`, for large shops (same distribution).
    loyal_cumulative: Option<&'a [f64]>,
}

/// Like [`pick_weighted`] over the running sums of the weights, in
/// O(log n).
fn pick_cumulative<R: Rng>(rng: &mut R, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    if total <= 0.0 {
        return 0;
    }
    let x = rng.gen_range(0.0..total);
    cumulative
        .partition_point(|c| *c <= x)
        .min(cumulative.len() - 1)
}

fn gen_order<R: Rng>(rng: &mut R, cx: OrderContext<'_>) -> Option<Order> {
    if cx.sellable.is_empty() {
        return None;
    }
    let secs = pick_weighted(rng, &HOUR_WEIGHTS) as u32 * 3600 + rng.gen_range(0..3600);
    let created_at = at_local(cx.date, secs, cx.offset);

    let lines = match rng.gen_range(0..100) {
        0..=59 => 1,
        60..=87 => 2,
        88..=96 => 3,
        _ => 4,
    };
    let mut chosen: Vec<usize> = Vec::new();
    for _ in 0..lines * 3 {
        if chosen.len() == lines {
            break;
        }
        let p = cx.sellable[pick_weighted(rng, cx.weights)];
        if !chosen.contains(&p) {
            chosen.push(p);
        }
    }
    let line_items: Vec<LineItem> = chosen
        .iter()
        .filter_map(|&pi| {
            let product = &cx.products[pi];
            let variant = product.variants.choose(rng)?;
            let quantity = match rng.gen_range(0..100) {
                0..=79 => 1,
                80..=94 => 2,
                _ => 3,
            };
            Some(LineItem {
                id: 0,
                product_id: product.id,
                variant_id: variant.id,
                title: product.title.clone(),
                variant_title: (variant.title != "Default Title").then(|| variant.title.clone()),
                sku: variant.sku.clone(),
                quantity,
                unit_price: variant.price,
            })
        })
        .collect();
    let items_total: Cents = line_items.iter().map(|l| l.unit_price * l.quantity).sum();
    let total_discounts = if rng.gen_bool(0.12) {
        items_total * i64::from(rng.gen_range(1..=2u8)) / 10
    } else {
        0
    };
    let subtotal = items_total - total_discounts;
    let shipping = if subtotal >= 7_500 { 0 } else { 695 };
    let tax = (subtotal as f64 * cx.tax_rate).round() as Cents;
    let total = subtotal + shipping + tax;

    let (customer_id, email) = if rng.gen_bool(0.03) || cx.customers.is_empty() {
        let first = pick(rng, FIRST_NAMES).to_ascii_lowercase();
        (
            None,
            format!("{first}.guest{}@example.com", rng.gen_range(10..999)),
        )
    } else {
        let k = match cx.loyal_cumulative {
            Some(cumulative) => pick_cumulative(rng, cumulative),
            None => pick_weighted(rng, cx.loyal),
        };
        let c = &cx.customers[k];
        (Some(c.id), c.email.clone())
    };

    let mut cancelled_at = None;
    let mut total_refunded = 0;
    let r: f64 = rng.gen_range(0.0..1.0);
    let fulfilled_share = |rng: &mut R, unfulfilled: f64, partial: f64| {
        let x: f64 = rng.gen_range(0.0..1.0);
        if x < unfulfilled {
            FulfillmentStatus::Unfulfilled
        } else if x < unfulfilled + partial {
            FulfillmentStatus::PartiallyFulfilled
        } else {
            FulfillmentStatus::Fulfilled
        }
    };
    let (financial_status, fulfillment_status) = if cx.age >= 3 {
        if r < 0.03 {
            total_refunded = total;
            if rng.gen_bool(0.5) {
                cancelled_at = Some(created_at + Duration::minutes(rng.gen_range(30..1_800)));
                (FinancialStatus::Refunded, FulfillmentStatus::Unfulfilled)
            } else {
                (FinancialStatus::Refunded, FulfillmentStatus::Fulfilled)
            }
        } else if r < 0.065 {
            let line = line_items
                .first()
                .map(|l| l.unit_price)
                .unwrap_or(total / 2);
            total_refunded = line.min(total - 1).max(1);
            (
                FinancialStatus::PartiallyRefunded,
                FulfillmentStatus::Fulfilled,
            )
        } else if r < 0.072 {
            cancelled_at = Some(created_at + Duration::minutes(rng.gen_range(30..1_800)));
            (FinancialStatus::Voided, FulfillmentStatus::Unfulfilled)
        } else if r < 0.08 {
            (FinancialStatus::Pending, FulfillmentStatus::Unfulfilled)
        } else if cx.age >= 5 {
            (FinancialStatus::Paid, FulfillmentStatus::Fulfilled)
        } else {
            (FinancialStatus::Paid, fulfilled_share(rng, 0.1, 0.05))
        }
    } else {
        let financial = if r < 0.88 {
            FinancialStatus::Paid
        } else if r < 0.97 {
            FinancialStatus::Pending
        } else {
            FinancialStatus::Authorized
        };
        let fulfillment = match cx.age {
            0 => fulfilled_share(rng, 0.8, 0.05),
            1 => fulfilled_share(rng, 0.6, 0.05),
            _ => fulfilled_share(rng, 0.35, 0.05),
        };
        (financial, fulfillment)
    };
    let closed_at = if let Some(c) = cancelled_at {
        Some(c)
    } else if cx.age >= 5
        && fulfillment_status == FulfillmentStatus::Fulfilled
        && matches!(
            financial_status,
            FinancialStatus::Paid | FinancialStatus::PartiallyRefunded | FinancialStatus::Refunded
        )
    {
        Some(created_at + Duration::minutes(rng.gen_range(2 * 1_440..4 * 1_440)))
    } else {
        None
    };
    let updated_at = closed_at.unwrap_or(created_at + Duration::minutes(rng.gen_range(1..90)));
    Some(Order {
        id: 0,
        number: 0,
        email,
        customer_id,
        created_at,
        processed_at: created_at,
        updated_at,
        cancelled_at,
        closed_at,
        financial_status,
        fulfillment_status,
        line_items,
        total_discounts,
        subtotal,
        shipping,
        tax,
        total,
        total_refunded,
        cancel_reason: None,
        note: None,
        tags: Vec::new(),
        source_name: String::new(),
        refunds: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_weekend(date: NaiveDate) -> bool {
        matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    #[test]
    fn deterministic_and_distinct() {
        let a = Dataset::generate("alpha.myshopify.com", day());
        let b = Dataset::generate("alpha", day());
        let c = Dataset::generate("beta.myshopify.com", day());
        assert_eq!(a, b);
        assert_ne!(a.products, c.products);
        assert_ne!(a.orders, c.orders);
    }

    #[test]
    fn believable_shape() {
        for shop in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"] {
            let d = Dataset::generate(shop, day());
            assert!(
                (20..=40).contains(&d.products.len()),
                "{shop}: {}",
                d.products.len()
            );
            assert!((100..=300).contains(&d.customers.len()));
            assert!(d.orders.len() > 300, "{shop}: {}", d.orders.len());
            // Sorted by id and by time.
            assert!(
                d.orders
                    .windows(2)
                    .all(|w| w[0].id < w[1].id && w[0].created_at <= w[1].created_at)
            );
            assert!(d.products.windows(2).all(|w| w[0].id < w[1].id));
            assert!(d.customers.windows(2).all(|w| w[0].id < w[1].id));
            // Every day of the window has orders; the last week too.
            let now = at_local(day(), 86_399, d.shop.utc_offset_seconds);
            let week = d
                .orders_created_between(now - Duration::days(7), now)
                .count();
            assert!(week > 20, "{shop}: {week}");
            // Refunds and unfulfilled orders exist.
            assert!(
                d.orders
                    .iter()
                    .any(|o| o.financial_status == FinancialStatus::Refunded)
            );
            assert!(
                d.orders
                    .iter()
                    .any(|o| o.financial_status == FinancialStatus::PartiallyRefunded
                        && o.total_refunded > 0)
            );
            assert!(
                d.orders
                    .iter()
                    .rev()
                    .take(10)
                    .any(|o| o.fulfillment_status == FulfillmentStatus::Unfulfilled)
            );
            // Customers exist before their orders.
            for o in &d.orders {
                if let Some(c) = o.customer_id.and_then(|id| d.customer(id)) {
                    assert!(c.created_at < o.created_at);
                    assert_eq!(c.email, o.email);
                }
                assert_eq!(o.total, o.subtotal + o.shipping + o.tax);
            }
            // A few best sellers dominate.
            let mut units: HashMap<u64, i64> = HashMap::new();
            for o in &d.orders {
                for l in &o.line_items {
                    *units.entry(l.product_id).or_default() += l.quantity;
                }
            }
            let mut v: Vec<i64> = units.values().copied().collect();
            v.sort_unstable_by(|a, b| b.cmp(a));
            let all: i64 = v.iter().sum();
            let top3: i64 = v.iter().take(3).sum();
            assert!(top3 * 100 / all >= 35, "{shop}: top3 {top3} of {all}");
        }
    }

    #[test]
    fn weekends_differ() {
        let d = Dataset::generate("weekly", day());
        let (mut we, mut wd, mut we_days, mut wd_days) = (0usize, 0usize, 0usize, 0usize);
        let start = day() - Duration::days(ORDER_DAYS - 1);
        for i in 0..ORDER_DAYS - 1 {
            let date = start + Duration::days(i);
            let from = at_local(date, 0, d.shop.utc_offset_seconds);
            let n = d
                .orders_created_between(from, from + Duration::days(1))
                .count();
            if is_weekend(date) {
                we += n;
                we_days += 1;
            } else {
                wd += n;
                wd_days += 1;
            }
        }
        assert!((we as f64 / we_days as f64) < (wd as f64 / wd_days as f64));
    }

    #[test]
    fn derived_refunds_tags_and_discounts_agree_with_the_order() {
        let d = Dataset::generate("alpha", day());
        let end = at_local(day() + Duration::days(1), 0, d.shop.utc_offset_seconds);
        let mut refunded = 0;
        for o in &d.orders {
            let refunds = o.refunds();
            assert_eq!(
                refunds.iter().map(|r| r.amount).sum::<Cents>(),
                o.total_refunded
            );
            for r in &refunds {
                assert!(r.created_at >= o.created_at && r.created_at < end);
                refunded += 1;
            }
            assert_eq!(o.line_discounts().iter().sum::<Cents>(), o.total_discounts);
            assert_eq!(o.line_discounts().len(), o.line_items.len());
            assert!(!o.source_name().is_empty());
            assert_eq!(o.tags(), o.tags());
        }
        assert!(refunded > 0);
    }

    #[test]
    fn large_shops_have_a_year_of_busy_days() {
        assert!(is_large_shop("bench-large.myshopify.com"));
        assert!(!is_large_shop("bench.myshopify.com"));
        let started = std::time::Instant::now();
        let d = Dataset::generate("bench-large.myshopify.com", day());
        eprintln!(
            "large shop: {} orders, {} customers in {:?}",
            d.orders.len(),
            d.customers.len(),
            started.elapsed()
        );
        assert!(
            (90_000..=110_000).contains(&d.orders.len()),
            "{}",
            d.orders.len()
        );
        assert_eq!(d.customers.len(), LARGE_CUSTOMERS);
        let first = d.orders.first().map(|o| o.created_at.date_naive());
        assert!(first.is_some_and(|f| f <= day() - Duration::days(LARGE_ORDER_DAYS - 2)));
        assert!(d.orders.windows(2).all(|w| w[0].id < w[1].id));
        // A normal shop is still what it was.
        assert!(Dataset::generate("alpha", day()).orders.len() < 3_000);
    }

    #[test]
    fn money_format() {
        assert_eq!(format_cents(12345), "123.45");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-250), "-2.50");
        assert_eq!(format_cents(0), "0.00");
    }
}
