//! A string that must never reach a log.

use std::fmt;

/// Holds a secret (a token, a key, a password). `Debug` and `Display` print
/// `***`; the value is reachable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that has to send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("shpat_very_secret");
        assert!(!format!("{s:?} {s}").contains("very_secret"));
        assert_eq!(s.expose(), "shpat_very_secret");
        assert!(!format!("{:?}", Some(s.clone())).contains("very_secret"));
        assert!(!s.is_empty());
        assert!(Secret::from("").is_empty());
    }
}
