//! Alerts on deviation (DESIGN.md §5). Pure: detectors are functions over windows of samples,
//! and the state machine moves alerts by the clock it is given. Persistence, the UI and the
//! headless `check` sit on top of this module.

pub mod anomaly;
pub mod detect;
pub mod replay;
pub mod rules;
pub mod silence;
pub mod state;

pub use silence::Silence;
pub use state::{Ack, Alert, AlertKey, AlertState, Severity, Timing};
