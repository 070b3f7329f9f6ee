//! Campaign Cockpit: a terminal cockpit for marketing campaigns.
pub mod domain;
