//! Workflows and CJ's persona: YAML content embedded in the binary,
//! overridable from a directory, validated at start.
//!
//! A workflow (`workflows/<name>.yaml`) describes one kind of conversation:
//!
//! ```yaml
//! name: shopify_onboarding            # must equal the file name
//! title: Getting started with CJ      # what merchants see (history, picker)
//! description: One line for the front end.
//! requirements:
//!   authentication: none              # none | optional | required
//!   shopify: none                     # none | optional | required (a connected store)
//! behavior:
//!   initiator: cj                     # cj | merchant | system
//!   initial_action: |                 # required unless the merchant initiates
//!     System event: ...               # the first (synthetic) user turn
//!   transitions:                      # event -> workflow name
//!     shopify_connected: shopify_post_auth
//! ui_components: [oauth_button]       # see ui_actions::KNOWN_COMPONENTS
//! available_tools: [get_shopify_store_overview]   # see tools::ToolName
//! workflow: |
//!   Instructions for CJ in this workflow.
//! ```
//!
//! CJ's persona lives in `prompts/cj_persona.yaml` (`name`, `description`,
//! `prompt`).
//!
//! The rules that move a conversation between workflows (which one a new
//! conversation opens in, what `shopify_connected`, `already_connected`,
//! `not_connected` and `initial_action_completed` lead to) live once, in
//! [`machine`], driven by the `transitions` above; the server and
//! `hirecj eval` both call them. No other module names a workflow.
//!
//! [`Catalog::load`] reads the embedded files, applies overrides from
//! `<dir>/workflows/*.yaml` and `<dir>/prompts/cj_persona.yaml`, and validates
//! everything. Every problem is reported with the file and the key, e.g.
//! `workflows/x.yaml: behavior.transitions.shopify_connected: unknown workflow "foo"`,
//! and all problems are reported at once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tools::ToolName;
use crate::ui_actions::KNOWN_COMPONENTS;

mod machine;
pub use machine::{ConversationState, Opening, Standing, WorkflowRefusal};

/// The OAuth flow completed: the merchant's store is now connected.
pub const EVENT_SHOPIFY_CONNECTED: &str = "shopify_connected";
/// The workflow was started for a merchant whose store is already connected.
pub const EVENT_ALREADY_CONNECTED: &str = "already_connected";
/// The workflow needs a connected store and the merchant has none.
pub const EVENT_NOT_CONNECTED: &str = "not_connected";
/// The workflow's initial action has produced its message.
pub const EVENT_INITIAL_ACTION_COMPLETED: &str = "initial_action_completed";
/// A merchant whose store is connected opened a new conversation without
/// asking for a workflow: where the open-questions workflow sends them
/// first (a welcome back), when its YAML names one.
pub const EVENT_MERCHANT_RETURNED: &str = "merchant_returned";

/// Events a workflow may list under `behavior.transitions`.
pub const KNOWN_EVENTS: &[&str] = &[
    EVENT_SHOPIFY_CONNECTED,
    EVENT_ALREADY_CONNECTED,
    EVENT_NOT_CONNECTED,
    EVENT_INITIAL_ACTION_COMPLETED,
    EVENT_MERCHANT_RETURNED,
];

/// Name of the onboarding workflow (where new conversations start).
pub const SHOPIFY_ONBOARDING: &str = "shopify_onboarding";
/// Name of the workflow prepared during the OAuth callback.
pub const SHOPIFY_POST_AUTH: &str = "shopify_post_auth";
/// Name of the open-conversation workflow.
pub const AD_HOC_SUPPORT: &str = "ad_hoc_support";

/// Workflows the offline brain answers in its own way (it plays a model
/// that read their instructions); optional content.
pub const DAILY_BRIEFING: &str = "daily_briefing";
/// See [`DAILY_BRIEFING`].
pub const WEEKLY_REVIEW: &str = "weekly_review";
/// See [`DAILY_BRIEFING`].
pub const CRISIS_RESPONSE: &str = "crisis_response";
/// See [`DAILY_BRIEFING`].
pub const WELCOME_BACK: &str = "welcome_back";

/// Workflows the code relies on by name; loading fails without them.
pub const REQUIRED_WORKFLOWS: &[&str] = &[SHOPIFY_ONBOARDING, SHOPIFY_POST_AUTH, AD_HOC_SUPPORT];

/// Path (relative to the content root) of the persona file.
pub const PERSONA_FILE: &str = "prompts/cj_persona.yaml";

/// The embedded workflow files: (path relative to the repository root, text).
pub const EMBEDDED_WORKFLOWS: &[(&str, &str)] = &[
    (
        "workflows/shopify_onboarding.yaml",
        include_str!("../../../workflows/shopify_onboarding.yaml"),
    ),
    (
        "workflows/shopify_post_auth.yaml",
        include_str!("../../../workflows/shopify_post_auth.yaml"),
    ),
    (
        "workflows/ad_hoc_support.yaml",
        include_str!("../../../workflows/ad_hoc_support.yaml"),
    ),
    (
        "workflows/daily_briefing.yaml",
        include_str!("../../../workflows/daily_briefing.yaml"),
    ),
    (
        "workflows/welcome_back.yaml",
        include_str!("../../../workflows/welcome_back.yaml"),
    ),
    (
        "workflows/weekly_review.yaml",
        include_str!("../../../workflows/weekly_review.yaml"),
    ),
    (
        "workflows/crisis_response.yaml",
        include_str!("../../../workflows/crisis_response.yaml"),
    ),
];

/// The embedded persona file text.
pub const EMBEDDED_PERSONA: &str = include_str!("../../../prompts/cj_persona.yaml");

/// How strongly a workflow needs something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    /// Not used.
    #[default]
    None,
    /// Used when present.
    Optional,
    /// The workflow cannot run without it.
    Required,
}

impl Requirement {
    /// Whether the requirement holds given whether the thing is `present`.
    pub fn is_satisfied(self, present: bool) -> bool {
        self != Self::Required || present
    }
}

/// What a workflow needs before it can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// A signed-in merchant identity (`usr_…`).
    pub authentication: Requirement,
    /// A connected Shopify store.
    #[serde(default)]
    pub shopify: Requirement,
}

/// Who speaks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Initiator {
    /// CJ opens the conversation (runs the initial action).
    Cj,
    /// The merchant opens the conversation.
    Merchant,
    /// A system event opens it (runs the initial action), e.g. after OAuth.
    System,
}

/// How a workflow starts and where it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    /// Who speaks first.
    pub initiator: Initiator,
    /// The synthetic first user turn that makes CJ speak first; runs once per
    /// conversation. Required unless the merchant initiates.
    #[serde(default)]
    pub initial_action: Option<String>,
    /// Event name ([`KNOWN_EVENTS`]) → workflow name.
    #[serde(default)]
    pub transitions: BTreeMap<String, String>,
}

/// One workflow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Unique name; equals the file name without `.yaml`.
    pub name: String,
    /// What merchants see for it (history, titles, suggestions).
    pub title: String,
    /// One line for people (served to the front end).
    pub description: String,
    /// What must hold before it runs.
    pub requirements: Requirements,
    /// Start and transitions.
    pub behavior: Behavior,
    /// UI components CJ may emit markers for ([`KNOWN_COMPONENTS`]).
    #[serde(default)]
    pub ui_components: Vec<String>,
    /// The only tools the model is offered in this workflow (names of
    /// [`ToolName::ALL`], the tool registry).
    #[serde(default)]
    pub available_tools: Vec<String>,
    /// Instructions for CJ, appended to the persona in the system prompt.
    pub workflow: String,
}

impl Workflow {
    /// Whether `tool` may be offered to the model in this workflow.
    pub fn offers_tool(&self, tool: &str) -> bool {
        self.available_tools.iter().any(|t| t == tool)
    }

    /// Whether the workflow enables the UI component `kind`.
    pub fn enables_component(&self, kind: &str) -> bool {
        self.ui_components.iter().any(|c| c == kind)
    }

    /// Whether `{{oauth:shopify}}` markers become buttons: the workflow
    /// enables the component and the store is not connected yet.
    pub fn oauth_markers_enabled(&self, store_connected: bool) -> bool {
        self.enables_component(crate::ui_actions::OAUTH_BUTTON) && !store_connected
    }

    /// The workflow to move to on `event`, if the workflow defines one.
    pub fn transition(&self, event: &str) -> Option<&str> {
        self.behavior.transitions.get(event).map(String::as_str)
    }

    /// Whether the requirements hold for a merchant.
    pub fn requirements_met(&self, authenticated: bool, store_connected: bool) -> bool {
        self.requirements.authentication.is_satisfied(authenticated)
            && self.requirements.shopify.is_satisfied(store_connected)
    }
}

/// What the front end needs about a workflow (`GET /api/v1/workflows`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowSummary {
    /// Name.
    pub name: String,
    /// What merchants see for it.
    pub title: String,
    /// Description.
    pub description: String,
    /// Requirements.
    pub requirements: Requirements,
    /// Who speaks first.
    pub initiator: Initiator,
}

/// CJ's persona (`prompts/cj_persona.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Short name.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// The persona part of the system prompt (the stable, cached prefix).
    pub prompt: String,
}

/// One content problem, naming the file and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentError {
    /// The file, e.g. `workflows/x.yaml` (or a full path for overrides).
    pub file: String,
    /// Dotted key path, e.g. `behavior.transitions.connected`; `None` for
    /// file-level problems.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ContentError {}

/// All problems found while loading content (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentErrors(pub Vec<ContentError>);

impl fmt::Display for ContentErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid workflow content:")?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ContentErrors {}

/// A content file to load: where it came from (for messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path shown in errors; the file stem must equal the workflow name.
    pub path: String,
    /// YAML text.
    pub text: String,
}

impl Source {
    /// A source from a path label and text.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    fn stem(&self) -> &str {
        let file = self.path.rsplit(['/', '\\']).next().unwrap_or(&self.path);
        file.strip_suffix(".yaml")
            .or_else(|| file.strip_suffix(".yml"))
            .unwrap_or(file)
    }
}

/// The validated set of workflows plus the persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    workflows: BTreeMap<String, Workflow>,
    persona: Persona,
}

impl Catalog {
    /// The embedded content, validated.
    pub fn embedded() -> Result<Self, ContentErrors> {
        Self::load(None)
    }

    /// The embedded content with overrides from `dir` (if given):
    /// `<dir>/workflows/*.yaml` replace embedded workflows of the same file
    /// name or add new ones; `<dir>/prompts/cj_persona.yaml` replaces the
    /// persona. Either part may be absent; `dir` itself must exist.
    pub fn load(dir: Option<&Path>) -> Result<Self, ContentErrors> {
        let mut workflows: BTreeMap<String, Source> = EMBEDDED_WORKFLOWS
            .iter()
            .map(|(path, text)| {
                let s = Source::new(*path, *text);
                (s.stem().to_owned(), s)
            })
            .collect();
        let mut persona = Source::new(PERSONA_FILE, EMBEDDED_PERSONA);
        if let Some(dir) = dir {
            let mut errors = Vec::new();
            if !dir.is_dir() {
                return Err(ContentErrors(vec![ContentError {
                    file: dir.display().to_string(),
                    key: None,
                    message: "content override directory does not exist".into(),
                }]));
            }
            for s in read_override_dir(&dir.join("workflows"), &mut errors) {
                workflows.insert(s.stem().to_owned(), s);
            }
            let persona_path = dir.join(PERSONA_FILE);
            if persona_path.is_file() {
                match std::fs::read_to_string(&persona_path) {
                    Ok(text) => persona = Source::new(persona_path.display().to_string(), text),
                    Err(e) => errors.push(ContentError {
                        file: persona_path.display().to_string(),
                        key: None,
                        message: format!("cannot read: {e}"),
                    }),
                }
            }
            if !errors.is_empty() {
                return Err(ContentErrors(errors));
            }
        }
        Self::from_sources(workflows.into_values().collect(), &persona)
    }

    /// Parses and validates the given files (no embedded content involved).
    pub fn from_sources(
        workflows: Vec<Source>,
        persona_source: &Source,
    ) -> Result<Self, ContentErrors> {
        let mut errors = Vec::new();
        let mut parsed: Vec<(Source, Workflow)> = Vec::new();
        for s in workflows {
            if let Some(wf) = parse_yaml::<Workflow>(&s, &mut errors) {
                parsed.push((s, wf));
            }
        }
        let persona = parse_yaml::<Persona>(persona_source, &mut errors);
        if let Some(p) = &persona
            && p.prompt.trim().is_empty()
        {
            errors.push(err(&persona_source.path, "prompt", "must not be empty"));
        }

        let names: Vec<&str> = parsed.iter().map(|(_, w)| w.name.as_str()).collect();
        let mut seen = BTreeMap::new();
        for (s, wf) in &parsed {
            if let Some(first) = seen.insert(wf.name.as_str(), s.path.as_str()) {
                errors.push(err(
                    &s.path,
                    "name",
                    format!("workflow \"{}\" is also defined in {first}", wf.name),
                ));
            }
            validate(s, wf, &names, &mut errors);
        }
        for required in REQUIRED_WORKFLOWS {
            if !names.contains(required) {
                errors.push(ContentError {
                    file: format!("workflows/{required}.yaml"),
                    key: None,
                    message: format!("required workflow \"{required}\" is missing"),
                });
            }
        }

        match persona {
            Some(persona) if errors.is_empty() => Ok(Self {
                workflows: parsed
                    .into_iter()
                    .map(|(_, w)| (w.name.clone(), w))
                    .collect(),
                persona,
            }),
            _ => Err(ContentErrors(errors)),
        }
    }

    /// A workflow by name.
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.get(name)
    }

    /// All workflows, ordered by name.
    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.workflows.values()
    }

    /// CJ's persona.
    pub fn persona(&self) -> &Persona {
        &self.persona
    }

    /// Names, descriptions, requirements and initiators for the front end.
    pub fn summaries(&self) -> Vec<WorkflowSummary> {
        self.workflows
            .values()
            .map(|w| WorkflowSummary {
                name: w.name.clone(),
                title: w.title.clone(),
                description: w.description.clone(),
                requirements: w.requirements.clone(),
                initiator: w.behavior.initiator,
            })
            .collect()
    }
}

fn err(file: &str, key: &str, message: impl Into<String>) -> ContentError {
    ContentError {
        file: file.to_owned(),
        key: Some(key.to_owned()),
        message: message.into(),
    }
}

fn read_override_dir(dir: &Path, errors: &mut Vec<ContentError>) -> Vec<Source> {
    if !dir.is_dir() {
        return Vec::new();
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(ContentError {
                file: dir.display().to_string(),
                key: None,
                message: format!("cannot read directory: {e}"),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| match std::fs::read_to_string(&p) {
            Ok(text) => Some(Source::new(p.display().to_string(), text)),
            Err(e) => {
                errors.push(ContentError {
                    file: p.display().to_string(),
                    key: None,
                    message: format!("cannot read: {e}"),
                });
                None
            }
        })
        .collect()
}

fn parse_yaml<T: serde::de::DeserializeOwned>(
    source: &Source,
    errors: &mut Vec<ContentError>,
) -> Option<T> {
    let de = serde_yaml_ng::Deserializer::from_str(&source.text);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let key = (path != ".").then_some(path);
            // serde_yaml_ng prefixes its own path (the key or its parent);
            // the key is reported separately.
            let message = match (&key, message.split_once(": ")) {
                (Some(k), Some((head, rest))) if !head.contains(' ') && k.starts_with(head) => {
                    rest.to_owned()
                }
                _ => message,
            };
            errors.push(ContentError {
                file: source.path.clone(),
                key,
                message,
            });
            None
        }
    }
}

fn validate(s: &Source, wf: &Workflow, names: &[&str], errors: &mut Vec<ContentError>) {
    let file = s.path.as_str();
    if wf.name != s.stem() {
        errors.push(err(
            file,
            "name",
            format!(
                "\"{}\" does not match the file name \"{}\"",
                wf.name,
                s.stem()
            ),
        ));
    }
    if wf.title.trim().is_empty() {
        errors.push(err(file, "title", "must not be empty"));
    }
    if wf.description.trim().is_empty() {
        errors.push(err(file, "description", "must not be empty"));
    }
    if wf.workflow.trim().is_empty() {
        errors.push(err(file, "workflow", "must not be empty"));
    }
    for (i, tool) in wf.available_tools.iter().enumerate() {
        let key = format!("available_tools[{i}]");
        if ToolName::from_name(tool).is_none() {
            errors.push(err(file, &key, format!("unknown tool \"{tool}\"")));
        } else if wf.available_tools[..i].contains(tool) {
            errors.push(err(file, &key, format!("duplicate tool \"{tool}\"")));
        }
    }
    for (i, c) in wf.ui_components.iter().enumerate() {
        let key = format!("ui_components[{i}]");
        if !KNOWN_COMPONENTS.contains(&c.as_str()) {
            errors.push(err(file, &key, format!("unknown component \"{c}\"")));
        } else if wf.ui_components[..i].contains(c) {
            errors.push(err(file, &key, format!("duplicate component \"{c}\"")));
        }
    }
    match (&wf.behavior.initiator, &wf.behavior.initial_action) {
        (Initiator::Cj | Initiator::System, None) => errors.push(err(
            file,
            "behavior.initial_action",
            "required when the initiator is cj or system",
        )),
        (Initiator::Cj | Initiator::System, Some(a)) if a.trim().is_empty() => {
            errors.push(err(file, "behavior.initial_action", "must not be empty"));
        }
        (Initiator::Merchant, Some(_)) => errors.push(err(
            file,
            "behavior.initial_action",
            "not allowed when the merchant initiates",
        )),
        _ => {}
    }
    for (event, target) in &wf.behavior.transitions {
        let key = format!("behavior.transitions.{event}");
        if !KNOWN_EVENTS.contains(&event.as_str()) {
            errors.push(err(
                file,
                &key,
                format!(
                    "unknown event \"{event}\" (known: {})",
                    KNOWN_EVENTS.join(", ")
                ),
            ));
        }
        if !names.contains(&target.as_str()) {
            errors.push(err(file, &key, format!("unknown workflow \"{target}\"")));
        } else if target == &wf.name {
            errors.push(err(file, &key, "a workflow cannot transition to itself"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
name: good
title: A good one
description: A test workflow.
requirements:
  authentication: optional
  shopify: required
behavior:
  initiator: merchant
  transitions:
    shopify_connected: ad_hoc_support
ui_components: [oauth_button]
available_tools: [get_shopify_store_counts]
workflow: Do things.
";

    fn embedded_sources() -> Vec<Source> {
        EMBEDDED_WORKFLOWS
            .iter()
            .map(|(p, t)| Source::new(*p, *t))
            .collect()
    }

    fn persona() -> Source {
        Source::new(PERSONA_FILE, EMBEDDED_PERSONA)
    }

    /// Loads the embedded set plus `workflows/<file>` with `text`, returning
    /// the error lines.
    fn errors_for(file: &str, text: &str) -> Vec<String> {
        let mut sources = embedded_sources();
        sources.push(Source::new(format!("workflows/{file}"), text));
        match Catalog::from_sources(sources, &persona()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn assert_error(file: &str, text: &str, expected: &str) {
        let errors = errors_for(file, text);
        assert!(
            errors.iter().any(|e| e == expected),
            "expected {expected:?} in {errors:#?}"
        );
    }

    #[test]
    fn embedded_content_is_valid() {
        let c = Catalog::embedded().unwrap();
        let names: Vec<_> = c.workflows().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ad_hoc_support",
                "crisis_response",
                "daily_briefing",
                "shopify_onboarding",
                "shopify_post_auth",
                "weekly_review",
                "welcome_back"
            ]
        );
        assert_eq!(c.persona().name, "cj");
        let onboarding = c.workflow(SHOPIFY_ONBOARDING).unwrap();
        assert_eq!(onboarding.behavior.initiator, Initiator::Cj);
        assert_eq!(
            onboarding.transition(EVENT_SHOPIFY_CONNECTED),
            Some(SHOPIFY_POST_AUTH)
        );
        assert_eq!(
            onboarding.transition(EVENT_ALREADY_CONNECTED),
            Some(AD_HOC_SUPPORT)
        );
        assert!(onboarding.oauth_markers_enabled(false));
        assert!(!onboarding.oauth_markers_enabled(true));
        assert!(onboarding.workflow.contains("{{oauth:shopify}}"));
        let post = c.workflow(SHOPIFY_POST_AUTH).unwrap();
        assert_eq!(post.behavior.initiator, Initiator::System);
        assert_eq!(
            post.transition(EVENT_INITIAL_ACTION_COMPLETED),
            Some(AD_HOC_SUPPORT)
        );
        assert!(post.offers_tool("get_shopify_store_overview"));
        assert!(post.offers_tool("get_shopify_orders_last_week"));
        assert!(!post.oauth_markers_enabled(false));
        assert!(!post.requirements_met(true, false));
        assert!(post.requirements_met(true, true));
        let adhoc = c.workflow(AD_HOC_SUPPORT).unwrap();
        assert_eq!(adhoc.available_tools.len(), ToolName::ALL.len());
        assert_eq!(c.summaries().len(), 7);
        let json = serde_json::to_value(&c.summaries()[0]).unwrap();
        assert_eq!(json["requirements"]["authentication"], "optional");
        assert_eq!(json["initiator"], "merchant");
    }

    #[test]
    fn good_extra_workflow_loads() {
        assert_eq!(errors_for("good.yaml", GOOD), Vec::<String>::new());
    }

    #[test]
    fn unknown_top_level_key() {
        let errors = errors_for("good.yaml", &format!("{GOOD}colour: blue\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("workflows/good.yaml: colour: unknown field `colour`"),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_nested_key() {
        let text = GOOD.replace(
            "  initiator: merchant\n",
            "  initiator: merchant\n  trigger: x\n",
        );
        let errors = errors_for("good.yaml", &text);
        assert!(
            errors[0].starts_with("workflows/good.yaml: behavior.trigger: unknown field `trigger`"),
            "{errors:?}"
        );
        let text = GOOD.replace(
            "  shopify: required\n",
            "  shopify: required\n  plan: pro\n",
        );
        let errors = errors_for("good.yaml", &text);
        assert!(
            errors[0].starts_with("workflows/good.yaml: requirements.plan: unknown field `plan`"),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_enum_value_and_missing_field() {
        let text = GOOD.replace("authentication: optional", "authentication: maybe");
        let errors = errors_for("good.yaml", &text);
        assert!(
            errors[0].starts_with(
                "workflows/good.yaml: requirements.authentication: unknown variant `maybe`"
            ),
            "{errors:?}"
        );
        let text = GOOD.replace("workflow: Do things.\n", "");
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: missing field `workflow`",
        );
    }

    #[test]
    fn unknown_tool() {
        let text = GOOD.replace(
            "[get_shopify_store_counts]",
            "[get_shopify_store_counts, delete_store]",
        );
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: available_tools[1]: unknown tool \"delete_store\"",
        );
        let text = GOOD.replace(
            "[get_shopify_store_counts]",
            "[get_shopify_store_counts, get_shopify_store_counts]",
        );
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: available_tools[1]: duplicate tool \"get_shopify_store_counts\"",
        );
    }

    #[test]
    fn unknown_component() {
        let text = GOOD.replace("[oauth_button]", "[oauth_button, confetti]");
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: ui_components[1]: unknown component \"confetti\"",
        );
    }

    #[test]
    fn unknown_transition_target_and_event() {
        let text = GOOD.replace(
            "shopify_connected: ad_hoc_support",
            "shopify_connected: foo",
        );
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: behavior.transitions.shopify_connected: unknown workflow \"foo\"",
        );
        let text = GOOD.replace(
            "shopify_connected: ad_hoc_support",
            "connected: ad_hoc_support",
        );
        let errors = errors_for("good.yaml", &text);
        assert!(
            errors.iter().any(|e| e.starts_with(
                "workflows/good.yaml: behavior.transitions.connected: unknown event \"connected\""
            )),
            "{errors:?}"
        );
        let text = GOOD.replace(
            "shopify_connected: ad_hoc_support",
            "shopify_connected: good",
        );
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: behavior.transitions.shopify_connected: a workflow cannot transition to itself",
        );
    }

    #[test]
    fn name_must_match_file_name() {
        assert_error(
            "other.yaml",
            GOOD,
            "workflows/other.yaml: name: \"good\" does not match the file name \"other\"",
        );
    }

    #[test]
    fn duplicate_names_are_reported() {
        let mut sources = embedded_sources();
        sources.push(Source::new(
            "elsewhere/ad_hoc_support.yaml",
            EMBEDDED_WORKFLOWS[2].1,
        ));
        let e = Catalog::from_sources(sources, &persona()).unwrap_err();
        assert_eq!(
            e.0[0].to_string(),
            "elsewhere/ad_hoc_support.yaml: name: workflow \"ad_hoc_support\" is also defined in workflows/ad_hoc_support.yaml"
        );
    }

    #[test]
    fn initial_action_rules() {
        let text = GOOD.replace("initiator: merchant", "initiator: cj");
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: behavior.initial_action: required when the initiator is cj or system",
        );
        let text = GOOD.replace(
            "  initiator: merchant\n",
            "  initiator: merchant\n  initial_action: hello\n",
        );
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: behavior.initial_action: not allowed when the merchant initiates",
        );
    }

    #[test]
    fn empty_texts_are_rejected() {
        let text = GOOD.replace("workflow: Do things.", "workflow: \"  \"");
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: workflow: must not be empty",
        );
        let text = GOOD.replace("description: A test workflow.", "description: \"\"");
        assert_error(
            "good.yaml",
            &text,
            "workflows/good.yaml: description: must not be empty",
        );
    }

    #[test]
    fn yaml_syntax_error_names_the_file() {
        let errors = errors_for("good.yaml", "name: [unclosed\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("workflows/good.yaml: "), "{errors:?}");
    }

    #[test]
    fn missing_required_workflow() {
        let sources: Vec<_> = embedded_sources()
            .into_iter()
            .filter(|s| !s.path.contains("shopify_post_auth"))
            .collect();
        let e = Catalog::from_sources(sources, &persona()).unwrap_err();
        let lines: Vec<_> = e.0.iter().map(ToString::to_string).collect();
        // The onboarding transition target disappears too.
        assert!(lines.contains(
            &"workflows/shopify_onboarding.yaml: behavior.transitions.shopify_connected: unknown workflow \"shopify_post_auth\"".to_owned()
        ));
        assert!(lines.contains(
            &"workflows/shopify_post_auth.yaml: required workflow \"shopify_post_auth\" is missing".to_owned()
        ));
    }

    #[test]
    fn persona_errors() {
        let bad = Source::new(
            PERSONA_FILE,
            "name: cj\ndescription: x\nprompt: hi\ntone: warm\n",
        );
        let e = Catalog::from_sources(embedded_sources(), &bad).unwrap_err();
        assert!(
            e.0[0]
                .to_string()
                .starts_with("prompts/cj_persona.yaml: tone: unknown field `tone`"),
            "{e}"
        );
        let empty = Source::new(PERSONA_FILE, "name: cj\ndescription: x\nprompt: \"\"\n");
        let e = Catalog::from_sources(embedded_sources(), &empty).unwrap_err();
        assert_eq!(
            e.0[0].to_string(),
            "prompts/cj_persona.yaml: prompt: must not be empty"
        );
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let text = GOOD
            .replace("[get_shopify_store_counts]", "[nope]")
            .replace("[oauth_button]", "[nah]");
        let errors = errors_for("good.yaml", &text);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn override_directory() {
        let dir = std::env::temp_dir().join(format!(
            "hirecj-agent-wf-{}-{}",
            std::process::id(),
            line!()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("workflows")).unwrap();
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        let replaced = EMBEDDED_WORKFLOWS[2]
            .1
            .replace("Goal: answer what the merchant asks", "Goal: OVERRIDDEN");
        std::fs::write(dir.join("workflows/ad_hoc_support.yaml"), replaced).unwrap();
        std::fs::write(dir.join("workflows/good.yaml"), GOOD).unwrap();
        std::fs::write(dir.join("workflows/notes.txt"), "ignored").unwrap();
        std::fs::write(
            dir.join("prompts/cj_persona.yaml"),
            "name: cj\ndescription: test\nprompt: You are test CJ.\n",
        )
        .unwrap();
        let c = Catalog::load(Some(&dir)).unwrap();
        assert!(
            c.workflow(AD_HOC_SUPPORT)
                .unwrap()
                .workflow
                .contains("OVERRIDDEN")
        );
        assert!(c.workflow("good").is_some());
        assert!(
            c.workflow(SHOPIFY_ONBOARDING).is_some(),
            "embedded ones stay"
        );
        assert_eq!(c.persona().prompt.trim(), "You are test CJ.");

        // A bad override names its full path and key.
        std::fs::write(
            dir.join("workflows/good.yaml"),
            GOOD.replace(
                "shopify_connected: ad_hoc_support",
                "shopify_connected: foo",
            ),
        )
        .unwrap();
        let e = Catalog::load(Some(&dir)).unwrap_err();
        let expected = format!(
            "{}: behavior.transitions.shopify_connected: unknown workflow \"foo\"",
            dir.join("workflows/good.yaml").display()
        );
        assert_eq!(e.0[0].to_string(), expected);
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = Catalog::load(Some(Path::new("/nonexistent/hirecj"))).unwrap_err();
        assert!(missing.to_string().contains("does not exist"));
    }
}
