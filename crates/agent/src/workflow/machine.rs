//! The workflow state machine: which workflow a conversation opens in and
//! where each event takes it, driven by the workflows' `requirements` and
//! `behavior.transitions`. The server (new conversations, switches, the
//! post-OAuth step, the turn after an initial action) and `hirecj eval` call
//! these and nothing else, so the app and the evals cannot disagree.
//!
//! The only workflow names in code are the three the rules start from
//! ([`SHOPIFY_ONBOARDING`], [`SHOPIFY_POST_AUTH`], [`AD_HOC_SUPPORT`], all
//! required to exist at load); every other step comes from the YAML.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AD_HOC_SUPPORT, Catalog, EVENT_ALREADY_CONNECTED, EVENT_INITIAL_ACTION_COMPLETED,
    EVENT_MERCHANT_RETURNED, EVENT_NOT_CONNECTED, EVENT_SHOPIFY_CONNECTED, Initiator, Requirement,
    SHOPIFY_ONBOARDING, SHOPIFY_POST_AUTH, Workflow,
};

/// What the rules need to know about whoever is talking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// A merchant (`usr_…`), not an anonymous visitor.
    pub authenticated: bool,
    /// The merchant's Shopify store is connected.
    pub store_connected: bool,
}

/// Why a workflow cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowRefusal {
    #[error("unknown workflow {0:?}")]
    Unknown(String),
    #[error("{title} needs {needs}; {hint}")]
    RequirementNotMet {
        /// The workflow asked for.
        workflow: String,
        /// Its title, for people.
        title: String,
        needs: &'static str,
        hint: &'static str,
    },
}

/// Where a new conversation (or a switch) lands.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    /// The workflow the conversation is in.
    pub workflow: &'a Workflow,
    /// The start-of-conversation event that led there from the one asked
    /// for (`already_connected`, `not_connected`), if any.
    pub via: Option<&'static str>,
}

impl Catalog {
    fn named(&self, name: &str) -> Result<&Workflow, WorkflowRefusal> {
        self.workflow(name)
            .ok_or_else(|| WorkflowRefusal::Unknown(name.to_owned()))
    }

    /// A workflow the loader guarantees (`REQUIRED_WORKFLOWS`).
    fn required(&self, name: &str) -> &Workflow {
        match self.workflow(name) {
            Some(w) => w,
            // `Catalog::from_sources` refuses content without it.
            None => unreachable!("required workflow {name} was validated at load"),
        }
    }

    /// The workflow a conversation opens in when none is asked for: CJ's
    /// onboarding for a visitor or a merchant without a store; for a
    /// merchant whose store is connected, where open questions'
    /// `merchant_returned` leads (CJ's welcome back), or open questions.
    pub fn default_workflow(&self, standing: Standing) -> &Workflow {
        if !standing.store_connected {
            return self.required(SHOPIFY_ONBOARDING);
        }
        let questions = self.required(AD_HOC_SUPPORT);
        self.follow(questions, EVENT_MERCHANT_RETURNED)
            .filter(|w| w.requirements_met(standing.authenticated, standing.store_connected))
            .unwrap_or(questions)
    }

    /// Where a conversation opened in `requested` (or the default) lands:
    /// a connected merchant follows `already_connected`; a workflow that
    /// needs a store the merchant has not connected follows `not_connected`;
    /// otherwise its requirements must hold. Switching workflows applies the
    /// same rules.
    pub fn open_workflow(
        &self,
        requested: Option<&str>,
        standing: Standing,
    ) -> Result<Opening<'_>, WorkflowRefusal> {
        let asked = match requested {
            Some(name) => self.named(name)?,
            None => self.default_workflow(standing),
        };
        if standing.store_connected
            && let Some(next) = self.follow(asked, EVENT_ALREADY_CONNECTED)
        {
            return Ok(Opening {
                workflow: next,
                via: Some(EVENT_ALREADY_CONNECTED),
            });
        }
        if !standing.store_connected
            && asked.requirements.shopify == Requirement::Required
            && let Some(next) = self.follow(asked, EVENT_NOT_CONNECTED)
            && next.requirements_met(standing.authenticated, standing.store_connected)
        {
            return Ok(Opening {
                workflow: next,
                via: Some(EVENT_NOT_CONNECTED),
            });
        }
        if !asked.requirements_met(standing.authenticated, standing.store_connected) {
            let (needs, hint) = if asked
                .requirements
                .shopify
                .is_satisfied(standing.store_connected)
            {
                ("a signed-in merchant", "connect your store first")
            } else {
                ("a connected Shopify store", "connect it first")
            };
            return Err(WorkflowRefusal::RequirementNotMet {
                workflow: asked.name.clone(),
                title: asked.title.clone(),
                needs,
                hint,
            });
        }
        Ok(Opening {
            workflow: asked,
            via: None,
        })
    }

    /// `shopify_connected`: the workflow a conversation moves to once the
    /// merchant's store is connected (the post-OAuth step). A conversation
    /// whose workflow names no such transition, or a new one (`None`),
    /// goes where the visitor's default workflow says.
    pub fn on_store_connected(&self, current: Option<&str>) -> &Workflow {
        current
            .and_then(|name| self.workflow(name))
            .and_then(|w| self.follow(w, EVENT_SHOPIFY_CONNECTED))
            .or_else(|| self.follow(self.required(SHOPIFY_ONBOARDING), EVENT_SHOPIFY_CONNECTED))
            .unwrap_or_else(|| self.required(SHOPIFY_POST_AUTH))
    }

    /// Whether a conversation in `workflow` still owes CJ's first action
    /// there (CJ or a system event speaks first, and it has not run).
    pub fn initial_action_pending(&self, workflow: &str, state: &ConversationState) -> bool {
        let Some(w) = self.workflow(workflow) else {
            return false;
        };
        let speaks_first = matches!(w.behavior.initiator, Initiator::Cj | Initiator::System);
        speaks_first && w.behavior.initial_action.is_some() && !state.initial_action_done(workflow)
    }

    /// `initial_action_completed`: the workflow the conversation moves to
    /// after CJ's first message in `workflow`, if any. The next workflow
    /// continues the conversation, so its own initial action is marked done
    /// in `state` (CJ does not greet twice).
    pub fn complete_initial_action(
        &self,
        workflow: &str,
        state: &mut ConversationState,
    ) -> Option<&Workflow> {
        let next = self
            .workflow(workflow)
            .and_then(|w| self.follow(w, EVENT_INITIAL_ACTION_COMPLETED))?;
        state.mark_initial_action_done(&next.name);
        Some(next)
    }

    fn follow(&self, from: &Workflow, event: &str) -> Option<&Workflow> {
        from.transition(event).and_then(|name| self.workflow(name))
    }
}

/// What a conversation carries between turns, stored as JSON with the
/// conversation. Keys this build does not know are kept as they were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Workflows whose initial action has run (or must not run) here.
    #[serde(default)]
    pub initial_actions_done: Vec<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

impl ConversationState {
    /// The state stored as `value`; anything unreadable starts afresh.
    pub fn from_json(value: &Value) -> Self {
        match serde_json::from_value(value.clone()) {
            Ok(state) => state,
            Err(e) => {
                if !value.is_null() {
                    tracing::warn!(error = %e, "unreadable conversation state; starting afresh");
                }
                Self::default()
            }
        }
    }

    /// The state as it is stored.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Has the initial action of `workflow` run in this conversation?
    pub fn initial_action_done(&self, workflow: &str) -> bool {
        self.initial_actions_done.iter().any(|w| w == workflow)
    }

    /// Records that the initial action of `workflow` has run (before it
    /// runs, so it can never run twice).
    pub fn mark_initial_action_done(&mut self, workflow: &str) {
        if !self.initial_action_done(workflow) {
            self.initial_actions_done.push(workflow.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::embedded().unwrap_or_else(|e| panic!("{e}"))
    }

    const VISITOR: Standing = Standing {
        authenticated: false,
        store_connected: false,
    };
    const CONNECTED: Standing = Standing {
        authenticated: true,
        store_connected: true,
    };

    #[test]
    fn new_conversations_open_where_the_yaml_says() {
        let c = catalog();
        let open = |requested: Option<&str>, standing| {
            c.open_workflow(requested, standing)
                .map(|o| (o.workflow.name.clone(), o.via))
        };
        assert_eq!(open(None, VISITOR), Ok((SHOPIFY_ONBOARDING.into(), None)));
        // A merchant with a store is welcomed back (ad_hoc_support's
        // `merchant_returned`), then the conversation is open questions.
        assert_eq!(
            open(None, CONNECTED),
            Ok((crate::workflow::WELCOME_BACK.into(), None))
        );
        let mut state = ConversationState::default();
        assert_eq!(
            c.complete_initial_action(crate::workflow::WELCOME_BACK, &mut state)
                .map(|w| w.name.clone())
                .as_deref(),
            Some(AD_HOC_SUPPORT)
        );
        // A connected merchant asking for onboarding moves on.
        assert_eq!(
            open(Some(SHOPIFY_ONBOARDING), CONNECTED),
            Ok((AD_HOC_SUPPORT.into(), Some(EVENT_ALREADY_CONNECTED)))
        );
        // A workflow that needs a store, without one: `not_connected`.
        for name in c.workflows().map(|w| w.name.clone()).collect::<Vec<_>>() {
            let w = c.workflow(&name).unwrap_or_else(|| panic!("{name}"));
            if let Some(next) = w.transition(EVENT_NOT_CONNECTED) {
                assert_eq!(
                    open(Some(&name), VISITOR),
                    Ok((next.to_owned(), Some(EVENT_NOT_CONNECTED))),
                    "{name}"
                );
            }
        }
        assert!(matches!(
            c.open_workflow(Some("no_such"), VISITOR),
            Err(WorkflowRefusal::Unknown(_))
        ));
    }

    #[test]
    fn unmet_requirements_without_a_transition_are_refused() {
        let c = catalog();
        let refused: Vec<_> = c
            .workflows()
            .filter(|w| w.transition(EVENT_NOT_CONNECTED).is_none())
            .filter(|w| !w.requirements_met(false, false))
            .map(|w| w.name.clone())
            .collect();
        assert!(
            !refused.is_empty(),
            "the embedded content has such a workflow"
        );
        for name in refused {
            let e = c.open_workflow(Some(&name), VISITOR).err();
            assert!(
                matches!(e, Some(WorkflowRefusal::RequirementNotMet { .. })),
                "{name}: {e:?}"
            );
        }
    }

    #[test]
    fn connecting_the_store_follows_shopify_connected() {
        let c = catalog();
        assert_eq!(c.on_store_connected(None).name, SHOPIFY_POST_AUTH);
        assert_eq!(
            c.on_store_connected(Some(SHOPIFY_ONBOARDING)).name,
            SHOPIFY_POST_AUTH
        );
        assert_eq!(
            c.on_store_connected(Some(AD_HOC_SUPPORT)).name,
            c.workflow(AD_HOC_SUPPORT)
                .and_then(|w| w.transition(EVENT_SHOPIFY_CONNECTED))
                .unwrap_or(SHOPIFY_POST_AUTH)
        );
    }

    #[test]
    fn an_initial_action_runs_once_and_the_next_workflow_does_not_greet_again() {
        let c = catalog();
        let mut state = ConversationState::default();
        assert!(c.initial_action_pending(SHOPIFY_POST_AUTH, &state));
        state.mark_initial_action_done(SHOPIFY_POST_AUTH);
        assert!(!c.initial_action_pending(SHOPIFY_POST_AUTH, &state));
        let next = c
            .complete_initial_action(SHOPIFY_POST_AUTH, &mut state)
            .map(|w| w.name.clone());
        assert_eq!(next.as_deref(), Some(AD_HOC_SUPPORT));
        assert!(state.initial_action_done(AD_HOC_SUPPORT));
        assert!(!c.initial_action_pending(AD_HOC_SUPPORT, &state));
    }

    #[test]
    fn the_state_round_trips_and_keeps_unknown_keys() {
        let stored = serde_json::json!({"initial_actions_done": ["a"], "later": {"x": 1}});
        let mut state = ConversationState::from_json(&stored);
        assert!(state.initial_action_done("a"));
        state.mark_initial_action_done("b");
        let again = state.to_json();
        assert_eq!(again["later"]["x"], 1);
        assert_eq!(again["initial_actions_done"], serde_json::json!(["a", "b"]));
        assert_eq!(
            ConversationState::from_json(&serde_json::json!("garbage")),
            ConversationState::default()
        );
        assert_eq!(
            ConversationState::from_json(&Value::Null),
            ConversationState::default()
        );
    }
}
