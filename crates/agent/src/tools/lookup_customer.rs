//! `lookup_shopify_customer`: a customer by email, with their latest
//! orders.

use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::shared::Order;
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition, shorten};

/// The tool: whose email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LookupCustomer {
    /// A plausible address ([`valid_email`]), trimmed.
    pub email: String,
}

impl ToolDefinition for LookupCustomer {
    const NAME: &'static str = "lookup_shopify_customer";
    const DESCRIPTION: &'static str =
        "Find a customer by email address: name, email and their latest orders.";
    const THINKING_STATUS: &'static str = "Looking up the customer…";
    const SUBJECT: &'static str = "that customer";
    const TITLE: &'static str = "Customer lookup";
    type Output = CustomerLookupResult;

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email",
                          "description": "The customer's email address."}
            },
            "required": ["email"],
            "additionalProperties": false
        })
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        let email = match arguments.get("email") {
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(_) => return Err(InvalidArguments::new("`email` must be a string")),
            None => return Err(InvalidArguments::new("`email` is required")),
        };
        if !valid_email(&email) {
            return Err(InvalidArguments::new(format!(
                "`{}` is not an email address",
                shorten(&email, 80)
            )));
        }
        Ok(Self { email })
    }

    async fn run(self, data: &dyn StoreData) -> Result<CustomerLookupResult, ShopifyError> {
        Ok(match data.customer_by_email(&self.email).await? {
            Some(c) => CustomerLookupResult::Found(c.into()),
            None => CustomerLookupResult::NotFound { email: self.email },
        })
    }

    fn text(output: &CustomerLookupResult, format: &ShopFormat) -> String {
        let c = match output {
            CustomerLookupResult::Found(c) => c,
            CustomerLookupResult::NotFound { email } => {
                return format!("I couldn't find a customer with the email {email}.");
            }
        };
        let name = c.name.as_deref().unwrap_or("This customer");
        let email = c.email.as_deref().unwrap_or_default();
        let mut out = format!("**{name}** ({email})");
        if c.recent_orders.is_empty() {
            out.push_str(" has no orders yet.");
            return out;
        }
        out.push_str(&format!(": {} recent orders.", c.recent_orders.len()));
        for o in c.recent_orders.iter().take(5) {
            out.push('\n');
            out.push_str(&o.line(format));
        }
        out
    }
}

/// What the model reads: `{"found":true,"customer":{…}}` or
/// `{"found":false,"email":"…"}` (an enum here, so no code can read a
/// customer that was not found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "CustomerLookupWire", try_from = "CustomerLookupWire")]
pub(crate) enum CustomerLookupResult {
    /// The customer with that email.
    Found(Customer),
    /// No customer has that email.
    NotFound {
        /// The email looked up.
        email: String,
    },
}

/// The JSON shape of [`CustomerLookupResult`].
#[derive(Serialize, Deserialize)]
struct CustomerLookupWire {
    found: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

impl From<CustomerLookupResult> for CustomerLookupWire {
    fn from(r: CustomerLookupResult) -> Self {
        match r {
            CustomerLookupResult::Found(customer) => Self {
                found: true,
                customer: Some(customer),
                email: None,
            },
            CustomerLookupResult::NotFound { email } => Self {
                found: false,
                customer: None,
                email: Some(email),
            },
        }
    }
}

/// A lookup result that says `found` without the customer, or the reverse.
#[derive(Debug, thiserror::Error)]
#[error("a customer lookup result must hold the customer exactly when `found` is true")]
struct InconsistentLookup;

impl TryFrom<CustomerLookupWire> for CustomerLookupResult {
    type Error = InconsistentLookup;

    fn try_from(w: CustomerLookupWire) -> Result<Self, InconsistentLookup> {
        match (w.found, w.customer, w.email) {
            (true, Some(customer), _) => Ok(Self::Found(customer)),
            (false, None, Some(email)) => Ok(Self::NotFound { email }),
            _ => Err(InconsistentLookup),
        }
    }
}

/// A customer and their latest orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Customer {
    /// Shopify's global id.
    pub id: String,
    /// Email, when the customer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Their latest orders, newest first.
    pub recent_orders: Vec<Order>,
}

impl From<hirecj_shopify::CustomerDetails> for Customer {
    fn from(c: hirecj_shopify::CustomerDetails) -> Self {
        Self {
            id: c.id,
            email: c.email,
            name: c.name,
            recent_orders: c.recent_orders.into_iter().map(Order::from).collect(),
        }
    }
}

/// A plausible email address: one `@`, a dot in the domain, no spaces,
/// quotes or control characters, at most 254 bytes. Plausible, not
/// deliverable: it keeps junk and injection out of Shopify's search query.
pub(crate) fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.is_empty() {
        return false;
    }
    if email.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '"' | '\'' | '\\' | '<' | '>' | ',' | ';' | '(' | ')')
    }) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}
