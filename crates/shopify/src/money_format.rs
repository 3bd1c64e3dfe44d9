//! Money as the shop writes it: Shopify's money format (`${{amount}}`,
//! `{{amount_with_comma_separator}} €`, `¥{{amount_no_decimals}}`), read
//! from `shop.currencyFormats.moneyFormat` at install, applied to exact
//! [`Amount`]s.
//!
//! The format is the merchant's own setting and arrives as HTML (some
//! themes wrap it in `<span class=money>`, older shops write `&euro;`): it
//! is reduced to plain text once, when it is read, and a format without an
//! amount placeholder is refused. A shop whose format is unknown gets the
//! one Shopify gives new shops of its currency, or `1,234.56 CODE`.

use std::fmt;

use crate::money::Amount;

/// Longest format kept (characters, after reduction to text).
const MAX_FORMAT_CHARS: usize = 64;

/// How a shop writes money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyFormat {
    before: String,
    style: Style,
    after: String,
}

/// The number inside a format: decimals, thousands and decimal separators
/// (Shopify's placeholders, as its own `formatMoney` reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `{{amount}}`: 1,134.65
    Amount,
    /// `{{amount_no_decimals}}`: 1,135
    NoDecimals,
    /// `{{amount_with_comma_separator}}`: 1.134,65
    CommaSeparator,
    /// `{{amount_no_decimals_with_comma_separator}}`: 1.135
    NoDecimalsCommaSeparator,
    /// `{{amount_with_space_separator}}`: 1 134,65
    SpaceSeparator,
    /// `{{amount_no_decimals_with_space_separator}}`: 1 135
    NoDecimalsSpaceSeparator,
    /// `{{amount_with_apostrophe_separator}}`: 1'134.65
    ApostropheSeparator,
    /// `{{amount_with_period_and_space_separator}}`: 1 134.65
    PeriodAndSpaceSeparator,
}

impl Style {
    fn from_placeholder(name: &str) -> Option<Self> {
        Some(match name {
            "amount" => Self::Amount,
            "amount_no_decimals" => Self::NoDecimals,
            "amount_with_comma_separator" => Self::CommaSeparator,
            "amount_no_decimals_with_comma_separator" => Self::NoDecimalsCommaSeparator,
            "amount_with_space_separator" => Self::SpaceSeparator,
            "amount_no_decimals_with_space_separator" => Self::NoDecimalsSpaceSeparator,
            "amount_with_apostrophe_separator" => Self::ApostropheSeparator,
            "amount_with_period_and_space_separator" => Self::PeriodAndSpaceSeparator,
            _ => return None,
        })
    }

    fn placeholder(self) -> &'static str {
        match self {
            Self::Amount => "amount",
            Self::NoDecimals => "amount_no_decimals",
            Self::CommaSeparator => "amount_with_comma_separator",
            Self::NoDecimalsCommaSeparator => "amount_no_decimals_with_comma_separator",
            Self::SpaceSeparator => "amount_with_space_separator",
            Self::NoDecimalsSpaceSeparator => "amount_no_decimals_with_space_separator",
            Self::ApostropheSeparator => "amount_with_apostrophe_separator",
            Self::PeriodAndSpaceSeparator => "amount_with_period_and_space_separator",
        }
    }

    /// (decimals, thousands separator, decimal separator)
    fn parts(self) -> (u32, &'static str, &'static str) {
        match self {
            Self::Amount => (2, ",", "."),
            Self::NoDecimals => (0, ",", "."),
            Self::CommaSeparator => (2, ".", ","),
            Self::NoDecimalsCommaSeparator => (0, ".", ","),
            Self::SpaceSeparator => (2, " ", ","),
            Self::NoDecimalsSpaceSeparator => (0, " ", ","),
            Self::ApostropheSeparator => (2, "'", "."),
            Self::PeriodAndSpaceSeparator => (2, " ", "."),
        }
    }
}

/// A money format Shopify sent that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyFormatError {
    /// No `{{amount…}}` placeholder that Shopify defines.
    #[error("the money format has no amount placeholder")]
    NoPlaceholder,
    /// Longer than any format a merchant would write.
    #[error("the money format is longer than {MAX_FORMAT_CHARS} characters")]
    TooLong,
}

impl MoneyFormat {
    /// Reads a shop's format as Shopify sends it (HTML allowed: tags are
    /// dropped, entities decoded, spaces collapsed).
    pub fn parse(shopify: &str) -> Result<Self, MoneyFormatError> {
        let text = plain_text(shopify);
        if text.chars().count() > MAX_FORMAT_CHARS {
            return Err(MoneyFormatError::TooLong);
        }
        let mut rest = text.as_str();
        let mut before = String::new();
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open..].find("}}") else {
                break;
            };
            let name = rest[open + 2..open + close].trim();
            if let Some(style) = Style::from_placeholder(name) {
                before.push_str(&rest[..open]);
                let after = rest[open + close + 2..].to_owned();
                return Ok(Self {
                    before,
                    style,
                    after,
                });
            }
            before.push_str(&rest[..open + close + 2]);
            rest = &rest[open + close + 2..];
        }
        Err(MoneyFormatError::NoPlaceholder)
    }

    /// The format Shopify gives a new shop of `currency` (ISO 4217), or
    /// `{{amount}} CODE` for a currency without a common symbol.
    pub fn for_currency(currency: &str) -> Self {
        let code = currency.trim().to_ascii_uppercase();
        let (before, style, after) = match code.as_str() {
            "USD" | "CAD" | "AUD" | "NZD" | "SGD" | "HKD" | "MXN" => ("$", Style::Amount, ""),
            "GBP" => ("£", Style::Amount, ""),
            "EUR" => ("€", Style::CommaSeparator, ""),
            "JPY" => ("¥", Style::NoDecimals, ""),
            "INR" => ("₹", Style::Amount, ""),
            "CHF" => ("CHF ", Style::ApostropheSeparator, ""),
            "" => ("", Style::Amount, ""),
            _ => {
                return Self {
                    before: String::new(),
                    style: Style::Amount,
                    after: format!(" {code}"),
                };
            }
        };
        Self {
            before: before.to_owned(),
            style,
            after: after.to_owned(),
        }
    }

    /// The shop's own format when it is known and usable, else the one for
    /// its currency, else plain `1,234.56`.
    pub fn of_shop(format: Option<&str>, currency: Option<&str>) -> Self {
        format
            .and_then(|f| Self::parse(f).ok())
            .unwrap_or_else(|| Self::for_currency(currency.unwrap_or_default()))
    }

    /// `amount` as the shop writes it: `$7,737.41`, `-€1.204,50`.
    pub fn format(&self, amount: Amount) -> String {
        let (decimals, thousands, decimal) = self.style.parts();
        let cents = amount.to_cents();
        let negative = cents < 0;
        let cents = cents.unsigned_abs();
        let (units, fraction) = if decimals == 0 {
            ((cents + 50) / 100, None)
        } else {
            (cents / 100, Some(cents % 100))
        };
        let digits = units.to_string();
        let mut number = String::with_capacity(digits.len() + 8);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                number.push_str(thousands);
            }
            number.push(c);
        }
        if let Some(fraction) = fraction {
            number.push_str(decimal);
            number.push_str(&format!("{fraction:02}"));
        }
        let sign = if negative && (units > 0 || fraction.is_some_and(|f| f > 0)) {
            "-"
        } else {
            ""
        };
        format!("{sign}{}{number}{}", self.before, self.after)
    }
}

impl Default for MoneyFormat {
    /// `1,234.56`, no symbol.
    fn default() -> Self {
        Self::for_currency("")
    }
}

impl fmt::Display for MoneyFormat {
    /// The format as Shopify writes it, in plain text: `${{amount}}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{{{{{}}}}}{}",
            self.before,
            self.style.placeholder(),
            self.after
        )
    }
}

/// `html` as text: tags dropped, the entities a money format uses decoded
/// (numeric ones and the common named ones), control characters dropped and
/// runs of white space made one space.
fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => rest = "",
            },
            '&' => {
                let entity = rest[1..]
                    .find(';')
                    .filter(|&end| end <= 10)
                    .and_then(|end| decode_entity(&rest[1..=end]).map(|ch| (ch, end)));
                match entity {
                    Some((ch, end)) => {
                        out.push(ch);
                        rest = &rest[end + 2..];
                    }
                    None => {
                        out.push('&');
                        rest = &rest[1..];
                    }
                }
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars().filter(|c| !c.is_control() || c.is_whitespace()) {
        if c.is_whitespace() {
            if !collapsed.is_empty() && !collapsed.ends_with(' ') {
                collapsed.push(' ');
            }
        } else {
            collapsed.push(c);
        }
    }
    collapsed.trim_end().to_owned()
}

/// The character an entity body (`euro`, `#8364`, `#x20AC`) names.
fn decode_entity(body: &str) -> Option<char> {
    if let Some(number) = body.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match body {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "curren" => '¤',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap()
    }

    #[test]
    fn every_placeholder_writes_the_number_as_shopify_does() {
        let cases = [
            ("${{amount}}", "$1,134.65"),
            ("${{amount_no_decimals}}", "$1,135"),
            ("{{amount_with_comma_separator}} €", "1.134,65 €"),
            ("{{amount_no_decimals_with_comma_separator}} kr", "1.135 kr"),
            ("{{amount_with_space_separator}} zł", "1 134,65 zł"),
            ("{{amount_no_decimals_with_space_separator}} Ft", "1 135 Ft"),
            ("CHF {{amount_with_apostrophe_separator}}", "CHF 1'134.65"),
            ("R {{amount_with_period_and_space_separator}}", "R 1 134.65"),
            ("${{ amount }} USD", "$1,134.65 USD"),
        ];
        for (format, want) in cases {
            let f = MoneyFormat::parse(format).unwrap();
            assert_eq!(f.format(a("1134.65")), want, "{format}");
        }
    }

    #[test]
    fn large_small_and_negative_amounts() {
        let usd = MoneyFormat::parse("${{amount}}").unwrap();
        assert_eq!(usd.format(a("7737.41")), "$7,737.41");
        assert_eq!(usd.format(a("1234567.5")), "$1,234,567.50");
        assert_eq!(usd.format(a("0")), "$0.00");
        assert_eq!(usd.format(a("0.005")), "$0.01");
        assert_eq!(usd.format(a("999.995")), "$1,000.00");
        assert_eq!(usd.format(a("-120.5")), "-$120.50");
        assert_eq!(usd.format(a("-0.001")), "$0.00");
        let yen = MoneyFormat::for_currency("JPY");
        assert_eq!(yen.format(a("12345.5")), "¥12,346");
        assert_eq!(yen.format(a("-0.4")), "¥0");
    }

    #[test]
    fn a_format_in_html_is_read_as_text() {
        let f =
            MoneyFormat::parse("<span class=money>&euro;{{amount_with_comma_separator}}</span>")
                .unwrap();
        assert_eq!(f.format(a("6412.8")), "€6.412,80");
        assert_eq!(f.to_string(), "€{{amount_with_comma_separator}}");
        let f = MoneyFormat::parse("&#163;{{amount}} &amp; more\n").unwrap();
        assert_eq!(f.format(a("1")), "£1.00 & more");
        let f = MoneyFormat::parse("&bogus;{{amount}}").unwrap();
        assert_eq!(f.format(a("1")), "&bogus;1.00");
    }

    #[test]
    fn unusable_formats_are_refused_and_the_currency_decides() {
        assert_eq!(
            MoneyFormat::parse("{{price}}"),
            Err(MoneyFormatError::NoPlaceholder)
        );
        assert_eq!(MoneyFormat::parse(""), Err(MoneyFormatError::NoPlaceholder));
        assert_eq!(
            MoneyFormat::parse(&format!("{}{{{{amount}}}}", "x".repeat(80))),
            Err(MoneyFormatError::TooLong)
        );
        // An unknown placeholder before a known one stays text.
        let f = MoneyFormat::parse("{{x}} {{amount}}").unwrap();
        assert_eq!(f.format(a("2")), "{{x}} 2.00");
        assert_eq!(
            MoneyFormat::of_shop(Some("{{nothing}}"), Some("EUR")).format(a("1204.5")),
            "€1.204,50"
        );
        assert_eq!(
            MoneyFormat::of_shop(None, Some("sek")).format(a("1204.5")),
            "1,204.50 SEK"
        );
        assert_eq!(
            MoneyFormat::of_shop(None, None).format(a("1204.5")),
            "1,204.50"
        );
        assert_eq!(MoneyFormat::default().to_string(), "{{amount}}");
    }
}
