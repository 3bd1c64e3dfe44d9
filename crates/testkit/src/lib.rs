//! HireCJ's test kit: the test doubles and harness every test and tool
//! shares, defined once. A dev-dependency of the product crates (and a
//! dependency of the `bench` tool); the production binary never links it.
//!
//! - [`model`]: the mock model, Anthropic and OpenAI-compatible wire,
//!   scripted (text, tool calls, errors, stalls, a gate the test opens).
//! - [`ws`]: the chat WebSocket client on the server's typed frames.
//! - [`app`]: the app launcher, in this process ([`app::TestApp`]) or as a
//!   child `serve` process ([`app::ServerProcess`]).
//! - [`store`]: a fixed in-memory store for CJ's tools.

pub mod app;
pub mod model;
pub mod postgres;
pub mod store;
pub mod ws;
