//! Alerts on deviation. Pure: detectors are functions over windows of samples,
//! and the state machine moves alerts by the clock it is given. Persistence, the UI and the
//! headless `check` sit on top of this module.
//!
//! Every campaign gets these rules from its plan, evaluated by the engine as data arrives:
//!
//! - **kpi** — each KPI limit (campaign-wide and per channel) judged per channel over the last 3 h
//!   of campaign time (the two hours of minute samples in memory, and the channel's whole hours
//!   before them). No verdict without volume: 1,000 impressions for CTR/CPM, 100 clicks for
//!   CVR/CPC, 10 results or 500 spent for CPL/CPA/ROAS. A quiet channel's cost per result is
//!   judged over a window doubled (up to a day) until it holds 10 results or what 10 cost at the
//!   limit. A breach fires when the counts make it at least 95 % likely (Gamma–Poisson for a cost
//!   per result, Beta for a rate: see `evidence`) and has held 15 min; once firing it clears when
//!   no longer even odds and stays so for 30 min; it is critical when 99.9 % likely and more than
//!   25 % beyond the limit. Spend with no results at all is judged on the chance of none at the
//!   limit's price.
//! - **pacing** — spend against the total budget and the time gone (±15 points; the alert says
//!   when the budget runs out at this pace), each counted goal (leads, conversions, revenue…)
//!   against its time, and a channel whose daily budget is gone with more than 15 % of the day
//!   ahead.
//! - **anomaly** — a channel against its own behaviour, with the detector `cockpit replay --csv`
//!   runs (`replay::SeriesDetector`): each of CTR, CVR, clicks, conversions, leads, CPC and CPM is
//!   a series of complete hours (an hour without a reading is no point, not a zero; counts after
//!   the day's budget ran out are left out), each hour's 1-h and 4-h means judged against their
//!   own history and the same time the day before. An alert needs p < 10⁻⁵ *and* a change of
//!   30 % or more; none before three days of hours. A change in the good direction (more
//!   conversions or leads, a higher CVR) is info and never pages (see `anomaly`).
//! - **traffic** — invalid traffic (流量造假) against the same baselines: clicks at least twice
//!   the hour's usual while the conversion rate falls by half, three times the usual clicks in an
//!   hour the channel is normally quiet in, a CTR three times the channel's own; each at the
//!   anomaly rule's significance, warning for one pattern and critical for two (see `traffic`).
//!   `[alerts.traffic] severity` sets its own; a `[[contingency]]` with `rule = "traffic"` is its
//!   plan, shown with the alert and sent as the Alertmanager runbook.
//! - **health** — a channel whose source is stale, failing or returns bad data, with the source's
//!   last error: a failing source fires after 3 failed polls in a row and 2 minutes, and resolves
//!   once it has worked for 5 minutes (a flap back is the same incident); counter resets (info,
//!   30 min).
//!
//! Health is judged at every reading; the rules over windows of samples (kpi, a channel's daily
//! budget, anomaly) once per minute of campaign time per channel, since their samples are a minute
//! long and their alerts wait 10 minutes or more: a source polled every second does not pay for
//! them 60 times a minute.
//!
//! Every setting can be changed in the campaign file, campaign-wide under `[alerts.<kind>]` or
//! for one channel under `[channels.alerts.<kind>]` (the channel's value wins, field by field).
//! The defaults:
//!
//! | setting | kpi | pacing | anomaly, traffic | health |
//! |---|---|---|---|---|
//! | `enabled` | true | true | true | true |
//! | `severity` | by how far off | by how far off | by the change; good news info | crit failing or bad data, warn stale |
//! | `window` | 3h | 24h | 30m (traffic) | – |
//! | `for` | 15m | 30m | 10m | 2m |
//! | `keep_firing_for` | 30m | 1h | 30m | 5m |
//! | `threshold` | 0.05 (hysteresis) | 0.15 (tolerance) | 0.99999 (1 − p; or a score, 5) | 3 failed polls |
//! | `min_change` | – | – | 0.3 | – |
//! | `min_impressions`, `min_clicks`, `min_results`, `min_spend` | 1000, 100, 10, 500 | – | 1000, 100, 10 | – |
//!
//!
//! ```toml
//! [alerts.kpi]
//! for = "5m"              # hold this long before firing
//! keep_firing_for = "1h"  # stay clear this long before resolving
//! window = "6h"           # lookback
//! threshold = 0.1         # kpi: hysteresis; pacing: tolerance; anomaly: score (1 − p); health: failed polls
//! severity = "crit"       # fixed severity instead of "how far off"
//! min_results = 5         # also min_impressions, min_clicks, min_spend; anomaly: min_change = 0.3
//! [alerts.anomaly]
//! enabled = false
//!
//! [[contingency]]          # shown under the alert in the alerts view: the first step
//! rule = "kpi: ctr >= 0.01"  # a rule kind ("anomaly") or a full rule name; any when left out
//! channel = "douyin"         # any when left out
//! plan = "creative fatigue: switch to the backup video set, tell the video team"
//! owner = "@li.na"
//! ```
//!
//! States are pending → firing → resolved (Prometheus-style `for` / `keep_firing_for`); alerts,
//! acknowledgements and silences are stored in the database and survive restarts. A silence
//! covers one alert (campaign, channel, rule) until its expiry, always required; an expired silence
//! lets the alert through again. The header counts firing, unsilenced alerts by severity (`✖`
//! critical, `▲` warning) from every view; the alerts view shows the selected alert's explanation
//! and its contingency plan.
//!
//! `cockpit check [--campaign ID] [--json]` polls every source once, evaluates every rule against
//! the stored data and prints the firing alerts (pending ones after them); it exits 0 when nothing
//! fires, 1 for warnings, 2 for critical alerts, 3 when the check itself could not run (e.g. the
//! database is open in a running cockpit). Alert states are stored, so a check from cron every few
//! minutes moves alerts from pending to firing as the cockpit would.
//!
//! Detection on `fixtures/scenarios/incidents.toml` (four quiet days, then ten incidents: CTR
//! −60 %, CVR −70 %, CPM ×2, traffic −75 %, lead tracking lost, HTTP 503, a counter reset, a hung
//! API, bots clicking by day and a click farm at 3 a.m.), polled every 5 min (`cargo test --test
//! detection -- --nocapture`): recall 10/10, precision 0.96 (24 of 25 anomaly, traffic and health
//! alerts), median delay 4 polls, worst 38 polls (a traffic drop on a channel with ~30 clicks an
//! hour); both bot incidents raise a `traffic` alert (after 8 and 3 polls); the same week without
//! incidents raises no anomaly or traffic alert.

pub mod anomaly;
pub mod backtest;
pub mod detect;
pub mod evidence;
pub mod labels;
pub mod replay;
pub mod rules;
pub mod silence;
pub mod state;
pub mod traffic;

pub use silence::Silence;
pub use state::{Ack, Alert, AlertKey, AlertState, Severity, Timing};
