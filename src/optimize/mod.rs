//! Optimize (DESIGN.md §6): recommendations computed from the data, applied through the
//! channels' control endpoints, journaled and undoable.

pub mod control;
pub mod journal;
pub mod recommend;
pub mod stats;
