//! Campaign Cockpit: a terminal cockpit for marketing campaigns.
pub mod alert;
pub mod analyze;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod optimize;
pub mod poll;
pub mod report;
pub mod serve;
pub mod sim;
pub mod store;
mod tls;
pub mod ui;
