//! Memory: durable facts the merchant states about their business.
//!
//! After a merchant turn, [`extract_facts`] finds facts in the merchant's
//! message: with a real model, a small separate call that must answer with a
//! JSON array of short strings (parsed defensively: anything else means no
//! facts); with the offline brain, simple rules over sentences ("we sell…",
//! "our store…", "I run…"). [`new_facts`] drops the ones already known
//! (compared like the store does, on normalized text). The caller stores the
//! rest with their source conversation; [`crate::turn`] injects known facts
//! into the volatile part of the system prompt.

use std::time::Duration;

use serde_json::Value;

use crate::model::{Message, ModelProvider, ModelRequest, SystemBlock, complete};
use crate::offline::OFFLINE_PROVIDER;

/// Most facts taken from one message.
pub const MAX_FACTS_PER_MESSAGE: usize = 5;
/// Longest fact kept (characters).
pub const MAX_FACT_CHARS: usize = 200;
/// Shortest fact kept (characters).
pub const MIN_FACT_CHARS: usize = 8;
/// Time the extraction call may take.
pub const EXTRACTION_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest merchant message sent for extraction (bytes).
const MAX_INPUT_BYTES: usize = 4_000;

/// Which extraction method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The offline brain: rules.
    Offline,
    /// A language model: a JSON-answer call.
    Model,
}

impl ProviderKind {
    /// The kind of `provider` (by its name).
    pub fn of(provider: &dyn ModelProvider) -> Self {
        if provider.name() == OFFLINE_PROVIDER {
            Self::Offline
        } else {
            Self::Model
        }
    }
}

/// Phrases that introduce a durable statement about the merchant's business.
const TRIGGERS: &[&str] = &[
    "we sell",
    "we make",
    "we ship",
    "we offer",
    "we specialize",
    "we specialise",
    "we focus",
    "we launched",
    "we started",
    "we're based in",
    "we are based in",
    "i'm based in",
    "i am based in",
    "i run",
    "i sell",
    "i make",
    "i own",
    "my business",
    "my store",
    "my shop",
    "my brand",
    "our store",
    "our shop",
    "our brand",
    "our business",
    "our customers",
    "our best",
    "our products",
    "our main",
    "our target",
    "our team",
];

/// How requests and questions open: a sentence that opens like this asks
/// CJ for something ("Give me an overview of my store…"), whatever
/// trigger phrase it holds, and states nothing.
const REQUEST_OPENERS: &[&str] = &[
    "give",
    "show",
    "tell",
    "list",
    "what",
    "what's",
    "whats",
    "how",
    "which",
    "who",
    "when",
    "where",
    "why",
    "can",
    "could",
    "would",
    "will",
    "please",
    "compare",
    "find",
    "get",
    "summarize",
    "summarise",
    "help",
    "look",
    "check",
    "do",
    "does",
    "did",
    "is",
    "are",
    "should",
    "let's",
    "lets",
    "send",
    "explain",
    "break",
];

const EXTRACTION_PROMPT: &str = "\
You extract durable facts about a merchant's business from one message they wrote to \
their customer-experience assistant. A durable fact is something that stays true for \
weeks: what they sell, where they are based, who their customers are, how they ship, \
their team, their goals, their best products. Not questions, not requests, not \
one-off events, not numbers you would need to look up.

Answer with only a JSON array of short strings, each a fact in the merchant's words, \
written in the first person plural or as a plain statement (e.g. \"We sell hand-poured \
soy candles\"). At most 5 facts. If there are none, answer [].";

pub use hirecj_domain::normalize_fact;

/// `found` without the facts in `known` and without duplicates, in order.
pub fn new_facts(known: &[String], found: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = known.iter().map(|k| normalize_fact(k)).collect();
    let mut out = Vec::new();
    for f in found {
        let n = normalize_fact(&f);
        if n.is_empty() || seen.contains(&n) {
            continue;
        }
        seen.push(n);
        out.push(f);
    }
    out
}

/// Facts in `text` by rules: sentences (not questions) containing one of
/// the trigger phrases.
pub fn rule_facts(text: &str) -> Vec<String> {
    let facts = stated_sentences(text)
        .filter(|(_, lower)| {
            TRIGGERS
                .iter()
                .any(|t| lower.contains(&format!(" {t} ")) || lower.contains(&format!(" {t},")))
        })
        .filter_map(|(sentence, _)| clean(sentence))
        .take(MAX_FACTS_PER_MESSAGE)
        .collect();
    new_facts(&[], facts)
}

/// Every sentence of `text` that states something (not a question, not a
/// request), cleaned like a fact: what the merchant told CJ, lasting or
/// not (the offline summary keeps them).
pub fn statements(text: &str) -> Vec<String> {
    let found = stated_sentences(text)
        .filter_map(|(sentence, _)| clean(sentence))
        .collect();
    new_facts(&[], found)
}

/// The sentences of `text` that neither ask nor request, each with its
/// lower-case form padded with spaces (for phrase matching).
fn stated_sentences(text: &str) -> impl Iterator<Item = (&str, String)> {
    let mut sentences = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '\n' | ';') {
            sentences.push((&text[start..i], c));
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        sentences.push((&text[start..], '.'));
    }
    sentences.into_iter().filter_map(|(sentence, end)| {
        if end == '?' {
            return None;
        }
        let lower = format!(" {} ", sentence.to_lowercase().replace('’', "'"));
        let opener = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .find(|w| !w.is_empty())
            .unwrap_or("");
        (!REQUEST_OPENERS.contains(&opener)).then_some((sentence, lower))
    })
}

/// A fact trimmed, one line, first letter capitalised; `None` when too
/// short or too long.
fn clean(s: &str) -> Option<String> {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = one
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '-' | '*' | ','))
        .trim_end_matches(['.', '!']);
    let len = t.chars().count();
    if !(MIN_FACT_CHARS..=MAX_FACT_CHARS).contains(&len) {
        return None;
    }
    let mut chars = t.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

/// Facts from a model's answer: the first JSON array of strings in it;
/// anything else gives no facts.
pub fn parse_fact_json(answer: &str) -> Vec<String> {
    let Some(start) = answer.find('[') else {
        return Vec::new();
    };
    let Some(end) = answer.rfind(']') else {
        return Vec::new();
    };
    if end < start {
        return Vec::new();
    }
    let Ok(values) = serde_json::from_str::<Vec<Value>>(&answer[start..=end]) else {
        return Vec::new();
    };
    let found: Vec<String> = values
        .iter()
        .filter_map(Value::as_str)
        .filter_map(clean)
        .take(MAX_FACTS_PER_MESSAGE)
        .collect();
    new_facts(&[], found)
}

/// Whether a message could state something about the merchant's business
/// (first-person words); avoids a model call for "thanks!".
fn worth_asking(text: &str) -> bool {
    let lower = format!(" {} ", text.to_lowercase().replace('’', "'"));
    text.trim().chars().count() >= 12
        && [" we ", " we're ", " our ", " i ", " i'm ", " my ", " us "]
            .iter()
            .any(|w| lower.contains(w))
}

/// Durable facts the merchant stated in `text`.
pub async fn extract_facts(
    kind: ProviderKind,
    provider: &dyn ModelProvider,
    text: &str,
) -> Vec<String> {
    match kind {
        ProviderKind::Offline => rule_facts(text),
        ProviderKind::Model => {
            if !worth_asking(text) {
                return Vec::new();
            }
            match tokio::time::timeout(EXTRACTION_TIMEOUT, ask_model(provider, text)).await {
                Ok(Some(answer)) => parse_fact_json(&answer),
                Ok(None) => Vec::new(),
                Err(_) => {
                    tracing::warn!("fact extraction timed out");
                    Vec::new()
                }
            }
        }
    }
}

/// [`extract_facts`] minus the facts already `known`.
pub async fn extract_new_facts(
    kind: ProviderKind,
    provider: &dyn ModelProvider,
    text: &str,
    known: &[String],
) -> Vec<String> {
    new_facts(known, extract_facts(kind, provider, text).await)
}

async fn ask_model(provider: &dyn ModelProvider, text: &str) -> Option<String> {
    let req = ModelRequest {
        system: vec![SystemBlock::cached(EXTRACTION_PROMPT)],
        messages: vec![Message::user_text(format!(
            "Merchant message:\n<<<\n{}\n>>>",
            crate::tools::shorten(text, MAX_INPUT_BYTES)
        ))],
        tools: Vec::new(),
        max_tokens: 300,
        temperature: Some(0.0),
        metadata_user_id: None,
    };
    match complete(provider, req, 8_000).await {
        Ok(answer) => Some(answer),
        Err(e) => {
            tracing::warn!(error = %e, "fact extraction call failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::model::{ModelError, ModelEvent, ModelStream, ResponseMeta, StopReason};
    use crate::offline::OfflineProvider;

    #[test]
    fn rules_find_business_statements() {
        let text = "Hi! We sell hand-poured soy candles. Our customers are mostly in Canada. \
                    How many orders did we get? We ship from Montreal; thanks";
        assert_eq!(
            rule_facts(text),
            vec![
                "We sell hand-poured soy candles",
                "Our customers are mostly in Canada",
                "We ship from Montreal"
            ]
        );
        assert_eq!(
            rule_facts("I run a small tea shop with my sister."),
            vec!["I run a small tea shop with my sister"]
        );
        assert_eq!(
            rule_facts("We’re based in Lisbon"),
            vec!["We’re based in Lisbon"]
        );
        assert!(rule_facts("What are our best sellers?").is_empty());
        // Requests are not statements, whatever phrase they hold.
        for request in [
            "Give me an overview of my store, with anything that needs my attention.",
            "Show me how my store did last month",
            "Please compare our best sellers with last year",
            "Can you check my shop's refunds",
        ] {
            assert!(rule_facts(request).is_empty(), "{request}");
        }
        assert_eq!(
            rule_facts("Give me a summary. Our store ships only within the EU."),
            vec!["Our store ships only within the EU"]
        );
        assert!(rule_facts("thanks!").is_empty());
        assert!(rule_facts("").is_empty());
    }

    #[test]
    fn json_answers_are_parsed_defensively() {
        assert_eq!(
            parse_fact_json(r#"["We sell candles", "Based in Lisbon"]"#),
            vec!["We sell candles", "Based in Lisbon"]
        );
        assert_eq!(
            parse_fact_json("Sure! Here: [\"We sell tea\"] hope it helps"),
            vec!["We sell tea"]
        );
        assert!(parse_fact_json("[]").is_empty());
        assert!(parse_fact_json("no facts").is_empty());
        assert!(parse_fact_json("[not json").is_empty());
        assert!(parse_fact_json("] backwards [").is_empty());
        assert_eq!(
            parse_fact_json(r#"[1, null, "x", "We sell rugs", {"a":1}]"#),
            vec!["We sell rugs"]
        );
        let many: Vec<String> = (0..20)
            .map(|i| format!("\"Fact number {i} here\""))
            .collect();
        assert_eq!(
            parse_fact_json(&format!("[{}]", many.join(","))).len(),
            MAX_FACTS_PER_MESSAGE
        );
    }

    #[test]
    fn known_facts_are_skipped() {
        let known = vec!["We sell candles.".to_owned()];
        assert_eq!(
            new_facts(
                &known,
                vec![
                    "we  sell CANDLES".into(),
                    "We ship fast".into(),
                    "We ship fast!".into()
                ]
            ),
            vec!["We ship fast"]
        );
    }

    struct Answering {
        answer: &'static str,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl ModelProvider for Answering {
        fn name(&self) -> &str {
            "anthropic"
        }
        fn model(&self) -> &str {
            "m"
        }
        async fn stream(
            &self,
            req: ModelRequest,
            _c: CancellationToken,
        ) -> Result<ModelStream, ModelError> {
            *self.calls.lock().unwrap() += 1;
            assert!(req.tools.is_empty());
            let (a, b) = self.answer.split_at(self.answer.len() / 2);
            let events = vec![
                Ok(ModelEvent::TextDelta(a.to_owned())),
                Ok(ModelEvent::TextDelta(b.to_owned())),
                Ok(ModelEvent::Stop {
                    reason: StopReason::EndTurn,
                }),
            ];
            Ok(ModelStream::new(
                ResponseMeta::default(),
                futures::stream::iter(events),
            ))
        }
    }

    #[tokio::test]
    async fn model_extraction() {
        let p = Answering {
            answer: r#"["We sell candles", "We ship to Canada"]"#,
            calls: Mutex::new(0),
        };
        assert_eq!(ProviderKind::of(&p), ProviderKind::Model);
        let facts = extract_new_facts(
            ProviderKind::Model,
            &p,
            "We sell candles and we ship to Canada.",
            &["we sell candles".into()],
        )
        .await;
        assert_eq!(facts, vec!["We ship to Canada"]);
        // Nothing first-person: no call.
        assert!(
            extract_facts(ProviderKind::Model, &p, "thanks!")
                .await
                .is_empty()
        );
        assert_eq!(*p.calls.lock().unwrap(), 1);
        let garbage = Answering {
            answer: "I cannot help with that",
            calls: Mutex::new(0),
        };
        assert!(
            extract_facts(
                ProviderKind::Model,
                &garbage,
                "We sell candles in our store"
            )
            .await
            .is_empty()
        );
    }

    #[tokio::test]
    async fn offline_extraction_uses_rules() {
        let p = OfflineProvider::new();
        assert_eq!(ProviderKind::of(&p), ProviderKind::Offline);
        assert_eq!(
            extract_facts(
                ProviderKind::Offline,
                &p,
                "Our best seller is the lavender candle."
            )
            .await,
            vec!["Our best seller is the lavender candle"]
        );
    }
}
