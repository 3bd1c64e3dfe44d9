//! The subset of Shopify's search syntax the simulator understands, for the
//! `query` argument of connections and counts.
//!
//! Terms are `field:value` with optional comparators (`field:>=v`,
//! `field:<=v`, `field:>v`, `field:<v`), joined by spaces or `AND`; `OR`
//! separates alternatives; `-term` or `NOT term` negates; values may be
//! quoted with `'` or `"`. Terms without a field match free text. Unknown
//! fields are ignored (they match everything), as Shopify's search does.
//!
//! Dates: a bare date (`2026-11-01`) means that whole day in the shop's time
//! zone, so `created_at:<=2026-11-07` includes the 7th and `created_at:>2026-11-07`
//! starts on the 8th; date-times with `Z` or an offset are exact instants,
//! date-times without one are in the shop's time zone.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negated: bool,
    field: Option<String>,
    op: Op,
    value: String,
}

/// A parsed search query: alternatives (`OR`) of conjunctions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    groups: Vec<Vec<Term>>,
}

/// What a record exposes for one searchable field.
pub enum FieldValue {
    /// Keyword(s): equality, case-insensitive; the term may list
    /// alternatives separated by commas; `any` matches everything.
    Keyword(Vec<String>),
    /// Text: case-insensitive substring (a trailing `*` is a prefix match).
    Text(String),
    /// A number (ids accept GIDs too).
    Number(i64),
    /// A date-time, `None` when unset (comparisons then fail).
    Date(Option<DateTime<Utc>>),
}

fn tokenize(input: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in input.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() || c == '(' || c == ')' => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = t.strip_prefix(q) {
            return inner.strip_suffix(q).unwrap_or(inner).to_string();
        }
    }
    t.to_string()
}

impl SearchQuery {
    /// Parses a query string; never fails (odd input is ignored).
    pub fn parse(input: &str) -> SearchQuery {
        let mut groups = vec![Vec::new()];
        let mut negate_next = false;
        for token in tokenize(input) {
            match token.as_str() {
                "AND" => continue,
                "OR" => {
                    groups.push(Vec::new());
                    continue;
                }
                "NOT" => {
                    negate_next = true;
                    continue;
                }
                _ => {}
            }
            let (mut negated, body) = match token.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => (true, rest),
                _ => (false, token.as_str()),
            };
            negated ^= std::mem::take(&mut negate_next);
            let term = match body.split_once(':') {
                Some((field, rest)) if !field.is_empty() && !field.starts_with(['\'', '"']) => {
                    let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
                        (Op::Ge, v)
                    } else if let Some(v) = rest.strip_prefix("<=") {
                        (Op::Le, v)
                    } else if let Some(v) = rest.strip_prefix('>') {
                        (Op::Gt, v)
                    } else if let Some(v) = rest.strip_prefix('<') {
                        (Op::Lt, v)
                    } else {
                        (Op::Eq, rest)
                    };
                    Term {
                        negated,
                        field: Some(field.to_ascii_lowercase()),
                        op,
                        value: unquote(value),
                    }
                }
                _ => Term {
                    negated,
                    field: None,
                    op: Op::Eq,
                    value: unquote(body),
                },
            };
            if let Some(group) = groups.last_mut() {
                group.push(term);
            }
        }
        groups.retain(|g| !g.is_empty());
        SearchQuery { groups }
    }

    /// Whether a record matches. `resolve(field)` gives the record's value
    /// for a field name, or `None` for a field it does not know (ignored);
    /// free-text terms ask for the field `""`.
    pub fn matches<F>(&self, offset_seconds: i32, resolve: F) -> bool
    where
        F: Fn(&str) -> Option<FieldValue>,
    {
        if self.groups.is_empty() {
            return true;
        }
        self.groups.iter().any(|group| {
            group.iter().all(|term| {
                let field = term.field.as_deref().unwrap_or("");
                match resolve(field) {
                    None => true,
                    Some(value) => term_matches(term, &value, offset_seconds) != term.negated,
                }
            })
        })
    }
}

fn cmp_op<T: PartialOrd>(op: Op, have: &T, want: &T) -> bool {
    match op {
        Op::Eq => have == want,
        Op::Gt => have > want,
        Op::Ge => have >= want,
        Op::Lt => have < want,
        Op::Le => have <= want,
    }
}

fn term_matches(term: &Term, value: &FieldValue, offset: i32) -> bool {
    let want = term.value.as_str();
    match value {
        FieldValue::Keyword(have) => {
            if want.eq_ignore_ascii_case("any") || want == "*" {
                return true;
            }
            want.split(',')
                .any(|w| have.iter().any(|h| h.eq_ignore_ascii_case(w.trim())))
        }
        FieldValue::Text(have) => {
            let have = have.to_lowercase();
            let want = want.to_lowercase();
            match want.strip_suffix('*') {
                Some(prefix) => {
                    have.split(|c: char| !c.is_alphanumeric())
                        .any(|w| w.starts_with(prefix))
                        || have.starts_with(prefix)
                }
                None => have.contains(&want),
            }
        }
        FieldValue::Number(have) => {
            let digits = want.rsplit('/').next().unwrap_or(want);
            match digits.parse::<i64>() {
                Ok(w) => cmp_op(term.op, have, &w),
                Err(_) => true,
            }
        }
        FieldValue::Date(have) => match parse_date_value(want, offset) {
            None => true,
            Some(range) => match have {
                None => false,
                Some(t) => date_matches(term.op, *t, range),
            },
        },
    }
}

/// A search value: a whole day `[start, end)` or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateValue {
    Day(DateTime<Utc>, DateTime<Utc>),
    Instant(DateTime<Utc>),
}

fn date_matches(op: Op, t: DateTime<Utc>, v: DateValue) -> bool {
    match v {
        DateValue::Instant(p) => cmp_op(op, &t, &p),
        DateValue::Day(start, end) => match op {
            Op::Eq => t >= start && t < end,
            Op::Gt => t >= end,
            Op::Ge => t >= start,
            Op::Lt => t < start,
            Op::Le => t < end,
        },
    }
}

fn parse_date_value(s: &str, offset: i32) -> Option<DateValue> {
    let tz = FixedOffset::east_opt(offset)?;
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(DateValue::Instant(d.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            let local = tz.from_local_datetime(&naive).single()?;
            return Some(DateValue::Instant(local.with_timezone(&Utc)));
        }
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let start = tz
        .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .single()?
        .with_timezone(&Utc);
    Some(DateValue::Day(start, start + Duration::days(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn check(q: &str, created: &str, status: &str) -> bool {
        SearchQuery::parse(q).matches(0, |f| match f {
            "created_at" => Some(FieldValue::Date(Some(at(created)))),
            "status" => Some(FieldValue::Keyword(vec![status.to_string()])),
            "" | "title" => Some(FieldValue::Text("Organic Crew Tee".to_string())),
            "id" => Some(FieldValue::Number(42)),
            _ => None,
        })
    }

    #[test]
    fn dates() {
        let t = "2026-11-07T12:00:00Z";
        assert!(check("created_at:>=2026-11-01", t, "open"));
        assert!(check("created_at:<=2026-11-07", t, "open"));
        assert!(!check("created_at:<2026-11-07", t, "open"));
        assert!(!check("created_at:>2026-11-07", t, "open"));
        assert!(check("created_at:2026-11-07", t, "open"));
        assert!(check("created_at:>'2026-11-07T11:59:59Z'", t, "open"));
        assert!(!check("created_at:>\"2026-11-07T12:00:00Z\"", t, "open"));
        assert!(check(
            "created_at:>=2026-11-01 AND created_at:<2026-11-08",
            t,
            "open"
        ));
        assert!(check("created_at:>=2026-11-01T00:00:00+02:00", t, "open"));
        // Unparseable dates are ignored.
        assert!(check("created_at:>=yesterday", t, "open"));
    }

    #[test]
    fn local_days() {
        let q = SearchQuery::parse("created_at:>=2026-11-07");
        let t = at("2026-11-07T03:00:00Z");
        // In UTC-7 that is still the 6th.
        assert!(!q.matches(-7 * 3600, |_| Some(FieldValue::Date(Some(t)))));
        assert!(q.matches(0, |_| Some(FieldValue::Date(Some(t)))));
    }

    #[test]
    fn keywords_text_numbers_logic() {
        let t = "2026-11-07T12:00:00Z";
        assert!(check("status:open", t, "open"));
        assert!(check("status:OPEN", t, "open"));
        assert!(!check("status:closed", t, "open"));
        assert!(check("status:closed,open", t, "open"));
        assert!(check("status:any", t, "open"));
        assert!(check("-status:closed", t, "open"));
        assert!(!check("NOT status:open", t, "open"));
        assert!(check("status:closed OR status:open", t, "open"));
        assert!(check("unknown_field:whatever status:open", t, "open"));
        assert!(check("crew", t, "open"));
        assert!(check("title:org*", t, "open"));
        assert!(!check("title:hoodie", t, "open"));
        assert!(check("id:>41", t, "open"));
        assert!(check("id:gid://shopify/Order/42", t, "open"));
        assert!(check("", t, "open"));
    }
}
