//! Campaign Cockpit: a terminal cockpit for marketing campaigns.
pub mod domain;
pub mod store;
pub mod clock;
pub mod poll;
pub mod sim;
pub mod demo;
mod tls;
pub mod engine;
pub mod ui;
pub mod cli;
