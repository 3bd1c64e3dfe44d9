//! Reading the model's arguments: lenient where it is safe (numeric
//! strings, whole floats, extra keys), strict about ranges and formats, and
//! every refusal a sentence the model can act on.

use chrono::NaiveDate;
use serde_json::{Map, Value};

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
