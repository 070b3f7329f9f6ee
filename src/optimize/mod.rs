//! Optimize: recommendations computed from the data, applied through the
//! channels' control endpoints, journaled and undoable.
//!
//! The optimize view (`5`) lists, per campaign, what to change, ranked by expected net value per
//! day (results gained × what a result is worth at the campaign's limit − extra spend):
//!
//! | kind | when (over the last 24 h of data) |
//! |---|---|
//! | pause | P(cost per result > limit) ≥ 95 % with at least one limit's worth spent (Gamma posterior of results per spend) |
//! | resume | a paused channel whose results before the pause were within the limit (P ≥ 80 %) |
//! | scale | +20 % when it spends its budget and P(cost < 80 % of the limit) ≥ 90 %, within its `max_budget` and what the total budget affords per remaining day; −20 % (not below `min_budget`) when P(cost > limit) ≥ 80 % |
//! | shift budget | a fifth of the worst channel's budget (at most doubling the best's) to the best, when Thompson sampling gives the best a higher yield with P ≥ 95 %; the sum is unchanged |
//! | A/B winner | when an always-valid sequential test (mSPRT, α = 5 %) rejects "no difference" — safe to check at every poll; otherwise "keep testing, ~N more impressions per variant" |
//!
//! The cost limit is the campaign's CPL or CPA limit, or for a ROAS limit the cost per order it
//! allows at the channel's order value. Channels changed in the last 12 h (learning), with an
//! unhealthy source or without a control endpoint get no advice. Each item shows the change (before
//! → after), the effect ("+29 orders/day at the same spend; campaign CPA 85.89 → 67.21"), the
//! evidence (CPA with its 90 % interval, volume, window, probability) and a confidence.
//!
//! `Enter` shows it in full; `y` applies after a confirmation line that restates the change; `u`
//! undoes the last applied action (or, after `J`, the selected journal entry) by sending its
//! inverse; `d` dismisses it for a typed time. In the campaign view `p` pauses or resumes the
//! selected channel and `b` sets its daily budget, with the same confirmation. Every action is
//! written to the journal in the database before it is sent and again with its outcome (applied
//! with the endpoint's answer, or failed with the reason); an action cut off by a crash shows as
//! "unknown". `cockpit journal [--json]` prints the journal. `--read-only` (or `read_only = true`
//! in `config.toml`) refuses every action where actions are dispatched, whatever the key or view;
//! the header says READ-ONLY.
//!
//! Measured: A/A tests peeked at every one of 200 polls declare a false winner 3.0 % of the time
//! (`cargo test a_a_tests -- --nocapture`). Three simulated days of
//! `fixtures/scenarios/closed-loop.toml` (Douyin's CTR collapses), following every recommendation
//! reviewed every 6 hours against leaving things alone (`cargo test --test optimize following --
//! --nocapture`): 618 festival CPA 82.75 → 62.74 with 14 % more orders on 14 % less spend; app
//! launch CPA 11.41 → 2.92; the webinar unchanged (39.32 → 39.14).

pub mod control;
pub mod journal;
pub mod recommend;
pub mod stats;
