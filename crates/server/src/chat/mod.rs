//! Live conversations: the WebSocket protocol, the conversation service that
//! stores messages and runs CJ's turns, and rendering of CJ's markdown.

pub mod bus;
pub mod chart;
pub mod engine;
pub mod internal;
pub mod protocol;
pub mod render;
pub mod service;
pub mod ws;

pub use service::{ChatError, ChatLimits, ChatService, Link, Owner, Posted};
