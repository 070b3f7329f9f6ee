//! One file per screen.
pub mod alerts;
pub mod analyze;
pub mod campaign;
pub mod channel;
pub mod help;
pub mod optimize;
pub mod overview;
