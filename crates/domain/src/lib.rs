//! The words HireCJ speaks: identifiers, entities and the small rules that
//! belong to them. No I/O lives here.

pub mod entities;
pub mod ids;
pub mod mirror;
pub mod secret;

pub use entities::*;
pub use ids::{ConversationId, FactId, InvalidId, UserId};
pub use secret::Secret;
