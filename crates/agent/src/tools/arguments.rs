//! Reading the model's arguments: lenient where it is safe (numeric
//! strings, whole floats, extra keys), strict about ranges and formats, and
//! every refusal a sentence the model can act on.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::sales_summary::MAX_RANGE_DAYS;
use super::shorten;

/// Why the model's arguments were refused. Shown to the model after
/// "Invalid arguments: ", so it says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidArguments(String);

impl InvalidArguments {
    /// A refusal explained by `message`.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A whole number `key` in `min..=max`, or `default` when absent or null.
pub(crate) fn int_arg(
    args: &Map<String, Value>,
    key: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, InvalidArguments> {
    let not_whole = || InvalidArguments::new(format!("`{key}` must be a whole number"));
    let v = match args.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i,
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e12 => f as i64,
                _ => return Err(not_whole()),
            },
        },
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| not_whole())?,
        Some(_) => return Err(not_whole()),
    };
    if v < i64::from(min) || v > i64::from(max) {
        return Err(InvalidArguments::new(format!(
            "`{key}` must be between {min} and {max}, got {v}"
        )));
    }
    u32::try_from(v).map_err(|_| InvalidArguments::new(format!("`{key}` is out of range")))
}

/// A required date `key`, written `YYYY-MM-DD`.
pub(crate) fn date_arg(
    args: &Map<String, Value>,
    key: &str,
) -> Result<NaiveDate, InvalidArguments> {
    match args.get(key) {
        Some(Value::String(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
            InvalidArguments::new(format!(
                "`{key}` must be a date as YYYY-MM-DD, got `{}`",
                shorten(s, 40)
            ))
        }),
        Some(_) => Err(InvalidArguments::new(format!(
            "`{key}` must be a string YYYY-MM-DD"
        ))),
        None => Err(InvalidArguments::new(format!(
            "`{key}` is required (YYYY-MM-DD)"
        ))),
    }
}

/// A required inclusive range of days `start_key..=end_key` spanning at
/// most `max_days` days.
pub(crate) fn range_args(
    args: &Map<String, Value>,
    start_key: &str,
    end_key: &str,
    max_days: i64,
) -> Result<(NaiveDate, NaiveDate), InvalidArguments> {
    let from = date_arg(args, start_key)?;
    let to = date_arg(args, end_key)?;
    if from > to {
        return Err(InvalidArguments::new(format!(
            "{start_key} {from} is after {end_key} {to}"
        )));
    }
    if (to - from).num_days() >= max_days {
        return Err(InvalidArguments::new(format!(
            "the range may span at most {max_days} days"
        )));
    }
    Ok((from, to))
}

/// The JSON Schema properties of a range of days.
pub(crate) fn range_properties(start_key: &str, end_key: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        start_key.to_owned(),
        serde_json::json!({"type": "string", "format": "date",
                           "description": "First day, YYYY-MM-DD."}),
    );
    m.insert(
        end_key.to_owned(),
        serde_json::json!({"type": "string", "format": "date",
                           "description": "Last day, YYYY-MM-DD (inclusive)."}),
    );
    m
}

/// The keys of a tool's range of days.
const START: &str = "start_date";
const END: &str = "end_date";

/// The input schema of a tool over one range of days (`start_date`,
/// `end_date`, both required) with `extra` optional properties, such as a
/// [`Limit`].
pub(crate) fn range_schema<const N: usize>(extra: [(&str, Value); N]) -> Value {
    let mut properties = range_properties(START, END);
    for (key, schema) in extra {
        properties.insert(key.to_owned(), schema);
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": [START, END],
        "additionalProperties": false
    })
}

/// The `start_date..=end_date` of a tool with a [`range_schema`], at most
/// [`MAX_RANGE_DAYS`] long.
pub(crate) fn date_range(
    args: &Map<String, Value>,
) -> Result<(NaiveDate, NaiveDate), InvalidArguments> {
    range_args(args, START, END, MAX_RANGE_DAYS)
}

/// How many items a tool lists: the model may say (`limit`, `1..=max`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    /// When the model does not say.
    pub default: u32,
    /// The most it may ask for.
    pub max: u32,
    /// For the model, e.g. "How many products (1 to 50)."
    pub description: &'static str,
}

impl Limit {
    /// Its property in a [`range_schema`].
    pub(crate) fn property(&self) -> (&'static str, Value) {
        (
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": self.max,
                   "default": self.default, "description": self.description}),
        )
    }

    /// The model's `limit`, or the default.
    pub(crate) fn parse(&self, args: &Map<String, Value>) -> Result<u32, InvalidArguments> {
        int_arg(args, "limit", self.default, 1, self.max)
    }
}
