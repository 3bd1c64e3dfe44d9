//! Exact money arithmetic on Shopify's decimal strings: amounts are held as
//! integer millionths, never as floating point.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;

use hirecj_domain::mirror::Money;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SCALE_DIGITS: u32 = 6;
const SCALE: i128 = 1_000_000;

/// A money amount, exact to six decimals. Parses Shopify's decimal strings
/// (`"123.45"`, `"-3"`, `"0.125"`) and serializes as a string with at least
/// two decimals (`"123.45"`, `"1500.00"`, `"0.125"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

/// A string that is not a decimal amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a decimal amount")]
pub struct AmountError(String);

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// An amount from integer cents (hundredths).
    pub fn from_cents(cents: i64) -> Self {
        Self(i128::from(cents) * (SCALE / 100))
    }

    /// The amount in cents, rounded half away from zero.
    pub fn to_cents(self) -> i128 {
        round_div(self.0, SCALE / 100)
    }

    /// The amount divided by `n` (e.g. an average), rounded half away from
    /// zero to the cent. `None` when `n` is zero.
    pub fn div_round_cents(self, n: u64) -> Option<Self> {
        if n == 0 {
            return None;
        }
        let cents = round_div(self.0, i128::from(n) * (SCALE / 100));
        Some(Self(cents * (SCALE / 100)))
    }
}

impl Amount {
    /// The amount as the mirror's [`Money`] (both are millionths): exact,
    /// `None` only beyond `i64` (about 9.2 trillion units).
    pub fn to_money(self) -> Option<Money> {
        i64::try_from(self.0).ok().map(Money::from_micros)
    }
}

impl From<Money> for Amount {
    fn from(m: Money) -> Self {
        Self(i128::from(m.micros()))
    }
}

fn round_div(value: i128, divisor: i128) -> i128 {
    let q = value / divisor;
    let r = value % divisor;
    if r.abs() * 2 >= divisor.abs() {
        q + value.signum() * divisor.signum()
    } else {
        q
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AmountError(s.chars().take(40).collect());
        let t = s.trim();
        let (negative, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty())
            || !all_digits(int_part)
            || !all_digits(frac_part)
            || int_part.len() > 24
        {
            return Err(err());
        }
        let frac_trimmed = frac_part.trim_end_matches('0');
        if frac_trimmed.len() > SCALE_DIGITS as usize {
            return Err(err());
        }
        let int_value: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut frac_value: i128 = if frac_trimmed.is_empty() {
            0
        } else {
            frac_trimmed.parse().map_err(|_| err())?
        };
        for _ in frac_trimmed.len()..SCALE_DIGITS as usize {
            frac_value *= 10;
        }
        let value = int_value
            .checked_mul(SCALE)
            .and_then(|v| v.checked_add(frac_value))
            .ok_or_else(err)?;
        Ok(Self(if negative { -value } else { value }))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / SCALE.unsigned_abs();
        let frac = format!("{:06}", abs % SCALE.unsigned_abs());
        let mut frac = frac.trim_end_matches('0').to_owned();
        while frac.len() < 2 {
            frac.push('0');
        }
        write!(f, "{sign}{int}.{frac}")
    }
}

impl Add for Amount {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sub for Amount {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parse_and_format() {
        for (input, shown) in [
            ("123.45", "123.45"),
            ("1500", "1500.00"),
            ("1500.0", "1500.00"),
            ("0.1", "0.10"),
            ("0.125", "0.125"),
            ("-3.5", "-3.50"),
            (".5", "0.50"),
            ("19.990000", "19.99"),
            ("0", "0.00"),
        ] {
            assert_eq!(a(input).to_string(), shown, "{input}");
        }
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e3",
            "abc",
            "1,00",
            "0.0000001",
            " 1 2",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sums_are_exact() {
        // 0.1 + 0.2 in f64 is 0.30000000000000004.
        assert_eq!((a("0.1") + a("0.2")).to_string(), "0.30");
        let total: Amount = std::iter::repeat_n(a("19.99"), 1000).sum();
        assert_eq!(total.to_string(), "19990.00");
        assert_eq!(total.to_cents(), 1_999_000);
        assert_eq!(Amount::from_cents(12345), a("123.45"));
    }

    #[test]
    fn averages_round_half_up_to_the_cent() {
        assert_eq!(
            a("10.00").div_round_cents(3).map(|x| x.to_string()),
            Some("3.33".into())
        );
        assert_eq!(
            a("20.00").div_round_cents(3).map(|x| x.to_string()),
            Some("6.67".into())
        );
        assert_eq!(
            a("0.05").div_round_cents(2).map(|x| x.to_string()),
            Some("0.03".into())
        );
        assert_eq!(a("1").div_round_cents(0), None);
    }

    #[test]
    fn converts_to_money_exactly() {
        assert_eq!(a("19.99").to_money(), Some(Money::from_cents(1999)));
        assert_eq!(a("0.125").to_money(), Some(Money::from_micros(125_000)));
        assert_eq!(a("-3.5").to_money(), Some(Money::from_micros(-3_500_000)));
        assert_eq!(Amount::from(Money::from_cents(1999)), a("19.99"));
        assert_eq!(a("99999999999999999999").to_money(), None);
    }

    #[test]
    fn serde_as_string() {
        assert_eq!(
            serde_json::to_string(&a("12.5")).ok().as_deref(),
            Some("\"12.50\"")
        );
        let back: Result<Amount, _> = serde_json::from_str("\"12.50\"");
        assert_eq!(back.ok(), Some(a("12.5")));
    }
}
