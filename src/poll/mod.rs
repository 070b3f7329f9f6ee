//! Fetches stats sources over HTTP and hands what they say to the engine.
pub mod wire;
