//! Recommendations: a pure function of a campaign's plan and its channels' recent results.
//!
//! Every channel's yield (results per unit of spend) has a Gamma posterior; a channel is
//! judged against the campaign's cost limit (CPL, CPA, or the cost per order that the ROAS
//! limit allows at the channel's order value). Kinds, with their guards:
//! - **pause** when P(cost per result > limit) ≥ 95 %; **resume** a paused channel whose
//!   results before the pause were within the limit;
//! - **scale** a channel's daily budget up 20 % when it spends its budget and P(cost < 80 % of
//!   the limit) ≥ 90 % (within its max and the campaign's remaining budget), down 20 % when
//!   P(cost > limit) ≥ 80 % but not enough to pause;
//! - **shift** 20 % of the worst channel's budget to the best when Thompson sampling says the
//!   best yields more with ≥ 95 % probability (never below a minimum, above a maximum, and the
//!   sum unchanged);
//! - **winner** of an A/B test when an always-valid sequential test (mSPRT, α = 5 %) rejects
//!   "no difference" — checked at every poll without inflating false winners — otherwise
//!   "keep testing, ~N more impressions".
//!
//! Channels changed in the last 12 hours (learning) and channels whose source is unhealthy are
//! left alone. Each recommendation's value is its expected net gain per day: results gained
//! times what a result is worth (the limit) minus extra spend; the list is ranked by it.

use super::stats::{Yield, msprt, p_better, p_rate_better};
use crate::domain::ControlAction;
use crate::domain::format::{count, money_whole, percent};
use crate::domain::time::HOUR_MS;
use crate::domain::{Campaign, Counters, Metric, Op, VariantCounters};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
/// A channel changed this recently is still learning: no new advice on it.
pub const LEARNING_MS: i64 = 12 * HOUR_MS;
/// Budget steps are capped at this share of the channel's budget.
pub const STEP: f64 = 0.2;
/// Budgets move in whole steps of this much.
const ROUND: f64 = 50.0;
/// α of the A/B test.
const ALPHA: f64 = 0.05;

/// What the campaign is optimised for, from its KPI limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    Leads { cpl: f64 },
    Conversions { cpa: f64 },
    Revenue { roas: f64 },
}

impl Objective {
    pub fn of(c: &Campaign) -> Option<Objective> {
        c.kpis.iter().find_map(|k| match (k.metric, k.op) {
            (Metric::Cpl, Op::Le | Op::Lt) => Some(Objective::Leads { cpl: k.value }),
            (Metric::Cpa, Op::Le | Op::Lt) if !c.kpis.iter().any(|k| k.metric == Metric::Roas) => {
                Some(Objective::Conversions { cpa: k.value })
            }
            (Metric::Roas, Op::Ge | Op::Gt) => Some(Objective::Revenue { roas: k.value }),
            _ => None,
        })
    }

    fn results(&self, c: &Counters) -> f64 {
        match self {
            Objective::Leads { .. } => c.leads as f64,
            _ => c.conversions as f64,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Objective::Leads { .. } => "leads",
            _ => "orders",
        }
    }

    fn cost_label(&self) -> &'static str {
        match self {
            Objective::Leads { .. } => "CPL",
            _ => "CPA",
        }
    }
}

/// What the engine knows of a channel for recommendations.
#[derive(Debug, Clone)]
pub struct ChannelFacts {
    pub id: String,
    /// Counters over the lookback window.
    pub window: Counters,
    pub window_ms: i64,
    pub budget: f64,
    pub min_budget: f64,
    pub max_budget: f64,
    pub paused: bool,
    /// Cumulative per-variant counters of an A/B test (empty without one).
    pub variants: Vec<VariantCounters>,
    /// The variant that already won, when a winner was applied.
    pub winner: Option<String>,
    /// When it was last changed from here (campaign time).
    pub changed_ms: Option<i64>,
    pub healthy: bool,
    /// It has a control endpoint (advice on it can be applied).
    pub controllable: bool,
    /// Spend so far, campaign-wide (for the remaining budget).
    pub spent_total: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Pause,
    Resume,
    Scale,
    Shift,
    Winner,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pause => "pause",
            Kind::Resume => "resume",
            Kind::Scale => "scale",
            Kind::Shift => "shift budget",
            Kind::Winner => "A/B winner",
        }
    }
}

/// One control action of a recommendation, with the state before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub channel: String,
    pub action: ControlAction,
    /// The new budget (set_budget) or the winning variant (declare_winner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The budget before (set_budget); for pause/resume the budget stays.
    pub before: f64,
    pub after: f64,
}

impl Change {
    /// A pause or resume of `channel`, whose budget stays as it is.
    pub fn control(channel: &str, action: ControlAction, budget: f64) -> Change {
        Change { channel: channel.to_string(), action, value: None, variant: None, before: budget, after: budget }
    }

    /// A new daily budget for `channel`.
    pub fn budget(channel: &str, before: f64, after: f64) -> Change {
        Change {
            channel: channel.to_string(),
            action: ControlAction::SetBudget,
            value: Some(after),
            variant: None,
            before,
            after,
        }
    }

    /// What this change does, in a few words: "douyin 8,000 → 6,400/day", "pause douyin".
    pub fn describe(&self) -> String {
        match self.action {
            ControlAction::Pause => format!("pause {}", self.channel),
            ControlAction::Resume => format!("resume {}", self.channel),
            ControlAction::SetBudget => {
                format!("{} {} → {}/day", self.channel, count(self.before as i64), count(self.after as i64))
            }
            ControlAction::DeclareWinner => match &self.variant {
                Some(v) => format!("{}: all traffic to variant {v}", self.channel),
                None => format!("{}: back to the A/B split", self.channel),
            },
        }
    }

    /// The change that undoes this one.
    pub fn inverse(&self) -> Change {
        let (action, value, variant) = match self.action {
            ControlAction::Pause => (ControlAction::Resume, None, None),
            ControlAction::Resume => (ControlAction::Pause, None, None),
            ControlAction::SetBudget => (ControlAction::SetBudget, Some(self.before), None),
            ControlAction::DeclareWinner => (ControlAction::DeclareWinner, None, None),
        };
        Change { channel: self.channel.clone(), action, value, variant, before: self.after, after: self.before }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Stable while the advice stands (kind and channels), for dismissals.
    pub id: String,
    pub campaign: String,
    pub kind: Kind,
    pub changes: Vec<Change>,
    /// The expected effect in words, e.g. "+38 leads/day, CPL 142 → 118".
    pub effect: String,
    /// The numbers behind it, one line each.
    pub evidence: Vec<String>,
    /// The probability the advice is right.
    pub confidence: f64,
    /// Expected net gain per day (value of results minus extra spend), for ranking.
    pub value_per_day: f64,
    /// Advice that cannot be applied (yet), e.g. "keep testing".
    #[serde(default)]
    pub info_only: bool,
}

/// A channel with what the rules need: its yield posterior and its cost limit.
struct Judged<'a> {
    f: &'a ChannelFacts,
    y: Yield,
    /// Cost per result the campaign accepts on this channel.
    limit: f64,
    results: f64,
}

impl Judged<'_> {
    /// Results per unit of spend as observed (the posterior decides; effects use what was seen).
    fn rate(&self) -> f64 {
        if self.f.window.spend > 0.0 { self.results / self.f.window.spend } else { 0.0 }
    }
}

fn seed(s: &str, hour: i64) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64 ^ hour as u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Rounded to whole steps, then kept within [min, max].
fn round_budget(x: f64, min: f64, max: f64) -> f64 {
    ((x / ROUND).round() * ROUND).clamp(min, max.max(min))
}

/// A count of results per day, signed: whole numbers, one decimal below ten.
fn signed_count(x: f64) -> String {
    let sign = if x < 0.0 { "−" } else { "+" };
    if x.abs() < 10.0 { format!("{sign}{:.1}", x.abs()) } else { format!("{sign}{}", count(x.abs().round() as i64)) }
}

fn cost(x: f64) -> String {
    Metric::Cpa.format(Some(x))
}

/// All recommendations for a campaign, best first: A/B verdicts, then for each channel judged
/// on its cost per result a pause, a resume or a budget step, and one shift of budget from the
/// worst channel to the best.
pub fn recommend(c: &Campaign, channels: &[ChannelFacts], now_ms: i64) -> Vec<Recommendation> {
    let mut out = Vec::new();
    out.extend(ab_tests(c, channels));
    let Some(obj) = Objective::of(c) else { return out };
    let judged: Vec<Judged<'_>> = channels
        .iter()
        .filter(|f| f.healthy && f.controllable && f.changed_ms.is_none_or(|t| now_ms - t >= LEARNING_MS))
        .filter_map(|f| judge(obj, f))
        .collect();
    // The campaign's daily results and spend now, for "CPL 142 → 118".
    let active: Vec<&Judged<'_>> = judged.iter().filter(|j| !j.f.paused).collect();
    let ctx = Context {
        c,
        obj,
        headroom: remaining_daily(c, channels, now_ms),
        day_spend: active.iter().map(|j| j.f.budget).sum(),
        day_results: active.iter().map(|j| j.f.budget * j.rate()).sum(),
    };
    for j in &judged {
        let found = if j.f.paused { ctx.resume(j) } else { ctx.pause(j).or_else(|| ctx.scale(j)) };
        out.extend(found);
    }
    let mut rng = StdRng::seed_from_u64(seed(&c.id, now_ms / HOUR_MS));
    out.extend(ctx.shift(&active, &mut rng));
    out.sort_by(|a, b| {
        (a.info_only, -a.value_per_day)
            .partial_cmp(&(b.info_only, -b.value_per_day))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

/// A channel's yield and the cost per result its campaign accepts there; `None` when it has
/// nothing to judge by (no spend, or for a ROAS limit no order value).
fn judge(obj: Objective, f: &ChannelFacts) -> Option<Judged<'_>> {
    let results = obj.results(&f.window);
    let limit = match obj {
        Objective::Leads { cpl } => cpl,
        Objective::Conversions { cpa } => cpa,
        // The cost per order a ROAS limit allows at this channel's order value.
        Objective::Revenue { roas } => {
            let aov = if f.window.conversions > 0 { f.window.revenue / f.window.conversions as f64 } else { 0.0 };
            if aov <= 0.0 {
                return None;
            }
            aov / roas
        }
    };
    Some(Judged { f, y: Yield::new(results, f.window.spend)?, limit, results })
}

/// What every kind of recommendation of one campaign needs to know.
struct Context<'a> {
    c: &'a Campaign,
    obj: Objective,
    /// What the campaign can still add per day (see `remaining_daily`).
    headroom: f64,
    day_spend: f64,
    day_results: f64,
}

impl Context<'_> {
    fn recommendation(&self, kind: Kind, id: String, changes: Vec<Change>) -> Recommendation {
        Recommendation {
            id: format!("{}/{id}", self.c.id),
            campaign: self.c.id.clone(),
            kind,
            changes,
            effect: String::new(),
            evidence: Vec::new(),
            confidence: 0.0,
            value_per_day: 0.0,
            info_only: false,
        }
    }

    /// "douyin: CPL 142.00 (90 % interval 120–170) over 3h: 21 leads for 2,982; P(…) = 97%".
    fn evidence(&self, j: &Judged<'_>, p_label: &str, p: f64) -> String {
        let (lo, hi) = j.y.cost_interval(0.9);
        let m = j.f.window_ms / 60_000;
        let window = if m % 60 == 0 { format!("{}h", m / 60) } else { format!("{}h{:02}m", m / 60, m % 60) };
        format!(
            "{}: {} {} {} (90 % interval {}–{}) over {window}: {} {} for {}; {p_label} {}",
            j.f.id,
            self.obj.cost_label(),
            if j.results > 0.0 { cost(j.f.window.spend / j.results) } else { "–".into() },
            if j.results == 0.0 { "(none yet)" } else { "" },
            cost(lo),
            cost(hi),
            j.results,
            self.obj.word(),
            money_whole(j.f.window.spend),
            percent(p)
        )
        .replace("  ", " ")
    }

    /// The campaign's cost per result at a daily spend and result count.
    fn campaign_cost(&self, spend: f64, results: f64) -> String {
        if results > 0.0 { cost(spend / results) } else { "–".into() }
    }

    /// Pause a channel that is almost surely too dear, once it has spent a result's worth.
    fn pause(&self, j: &Judged<'_>) -> Option<Recommendation> {
        let obj = self.obj;
        let p_worse = j.y.p_below(1.0 / j.limit);
        if p_worse < 0.95 || j.f.window.spend < j.limit {
            return None;
        }
        let daily_results = j.f.budget * j.rate();
        let mut r = self.recommendation(
            Kind::Pause,
            format!("pause/{}", j.f.id),
            vec![Change::control(&j.f.id, ControlAction::Pause, j.f.budget)],
        );
        r.effect = format!(
            "saves {}/day for {} {}/day; campaign {} {} → {}",
            money_whole(j.f.budget),
            signed_count(-daily_results),
            obj.word(),
            obj.cost_label(),
            self.campaign_cost(self.day_spend, self.day_results),
            self.campaign_cost(self.day_spend - j.f.budget, self.day_results - daily_results)
        );
        r.evidence = vec![self.evidence(j, &format!("P({} > {}) =", obj.cost_label(), cost(j.limit)), p_worse)];
        r.confidence = p_worse;
        r.value_per_day = j.f.budget - daily_results * j.limit;
        Some(r)
    }

    /// Resume a paused channel whose results before the pause were likely within the limit.
    fn resume(&self, j: &Judged<'_>) -> Option<Recommendation> {
        let obj = self.obj;
        if j.y.p_below(1.0 / j.limit) > 0.2 || j.results <= 0.0 {
            return None;
        }
        let p_ok = 1.0 - j.y.p_below(1.0 / j.limit);
        let daily_results = j.f.budget * j.rate();
        let mut r = self.recommendation(
            Kind::Resume,
            format!("resume/{}", j.f.id),
            vec![Change::control(&j.f.id, ControlAction::Resume, j.f.budget)],
        );
        r.effect = format!("{} {}/day for {}/day", signed_count(daily_results), obj.word(), money_whole(j.f.budget));
        let label = format!("before the pause; P({} ≤ {}) =", obj.cost_label(), cost(j.limit));
        r.evidence = vec![self.evidence(j, &label, p_ok)];
        r.confidence = p_ok;
        r.value_per_day = daily_results * j.limit - j.f.budget;
        Some(r)
    }

    /// A budget step: up when cheap and budget-bound, down when (less surely) too dear.
    fn scale(&self, j: &Judged<'_>) -> Option<Recommendation> {
        let obj = self.obj;
        let p_worse = j.y.p_below(1.0 / j.limit);
        let p_cheap = 1.0 - j.y.p_below(1.0 / (0.8 * j.limit));
        let per_day = 24.0 * HOUR_MS as f64 / j.f.window_ms.max(HOUR_MS) as f64;
        let spending = j.f.window.spend * per_day >= 0.8 * j.f.budget;
        let (target, p, why) = if p_cheap >= 0.9 && spending {
            let cap = j.f.max_budget.min(j.f.budget + self.headroom.max(0.0)).max(j.f.budget);
            // Whole steps within the cap.
            let cap = ((cap / ROUND).floor() * ROUND).max(j.f.budget);
            let up = round_budget(j.f.budget * (1.0 + STEP), j.f.min_budget, cap);
            (up, p_cheap, format!("P({} < {}) =", obj.cost_label(), cost(0.8 * j.limit)))
        } else if p_worse >= 0.8 {
            let down = round_budget(j.f.budget * (1.0 - STEP), j.f.min_budget, j.f.budget);
            (down, p_worse, format!("P({} > {}) =", obj.cost_label(), cost(j.limit)))
        } else {
            return None;
        };
        if (target - j.f.budget).abs() < ROUND {
            return None;
        }
        let delta = target - j.f.budget;
        let gained = delta * j.rate();
        let mut r = self.recommendation(
            Kind::Scale,
            format!("scale/{}", j.f.id),
            vec![Change::budget(&j.f.id, j.f.budget, target)],
        );
        r.effect = format!(
            "{} {}/day for {}{}/day (assuming its average cost holds)",
            signed_count(gained),
            obj.word(),
            if delta >= 0.0 { "+" } else { "−" },
            money_whole(delta.abs())
        );
        r.evidence = vec![self.evidence(j, &why, p)];
        r.confidence = p;
        r.value_per_day = gained * j.limit - delta;
        Some(r)
    }

    /// Shift a budget step from the worst active channel to the best, if the best is clearly
    /// better (cheap checks first; the sampling only when they pass).
    fn shift(&self, active: &[&Judged<'_>], rng: &mut StdRng) -> Option<Recommendation> {
        let obj = self.obj;
        let value = |j: &Judged<'_>| j.y.mean() * j.limit;
        let mut ranked: Vec<&Judged<'_>> = active.to_vec();
        ranked.sort_by(|a, b| value(a).total_cmp(&value(b)));
        let (worst, best) = (ranked.first()?, ranked.last()?);
        if worst.f.id == best.f.id {
            return None;
        }
        let room =
            (worst.f.budget * STEP).min(worst.f.budget - worst.f.min_budget).min(best.f.max_budget - best.f.budget);
        // Whole steps only, never more than there is room for.
        let amount = (room / ROUND).floor() * ROUND;
        // B must be good in itself, and the money must be worth more there.
        let best_ok = 1.0 - best.y.p_below(1.0 / best.limit) >= 0.8;
        if amount < ROUND || !best_ok || value(best) <= value(worst) * 1.2 {
            return None;
        }
        let p = p_better(&worst.y, &best.y, 2_000, rng);
        if p < 0.95 {
            return None;
        }
        let gained = amount * (best.rate() - worst.rate());
        let mut r = self.recommendation(
            Kind::Shift,
            format!("shift/{}/{}", worst.f.id, best.f.id),
            vec![
                Change::budget(&worst.f.id, worst.f.budget, worst.f.budget - amount),
                Change::budget(&best.f.id, best.f.budget, best.f.budget + amount),
            ],
        );
        r.effect = format!(
            "{} {}/day at the same spend; campaign {} {} → {}",
            signed_count(gained),
            obj.word(),
            obj.cost_label(),
            self.campaign_cost(self.day_spend, self.day_results),
            self.campaign_cost(self.day_spend, self.day_results + gained)
        );
        r.evidence = vec![
            self.evidence(worst, "P(the other yields more) =", p),
            self.evidence(
                best,
                &format!("P({} ≤ {}) =", obj.cost_label(), cost(best.limit)),
                1.0 - best.y.p_below(1.0 / best.limit),
            ),
        ];
        r.confidence = p;
        r.value_per_day = gained * best.limit;
        Some(r)
    }
}

/// What the campaign can still spend per day on top of its channels' budgets, to stay within
/// its total budget by its end.
pub fn remaining_daily(c: &Campaign, channels: &[ChannelFacts], now_ms: i64) -> f64 {
    let spent = channels.first().map_or(0.0, |f| f.spent_total);
    let days_left = ((c.end_ms() - now_ms) as f64 / (24.0 * HOUR_MS as f64)).max(1.0);
    let affordable = (c.total_budget - spent).max(0.0) / days_left;
    let planned: f64 = channels.iter().filter(|f| !f.paused).map(|f| f.budget).sum();
    affordable - planned
}

/// A/B tests: declare a winner when the always-valid test says so, else say how much more
/// traffic the test needs.
fn ab_tests(c: &Campaign, channels: &[ChannelFacts]) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for f in channels.iter().filter(|f| f.variants.len() >= 2 && f.winner.is_none() && f.healthy && f.controllable) {
        let control = &f.variants[0];
        let total_conv: u64 = f.variants.iter().map(|v| v.conversions).sum();
        // Conversions per impression once there are enough, else CTR.
        let (metric, succ): (&str, fn(&VariantCounters) -> u64) =
            if total_conv >= 200 { ("orders per impression", |v| v.conversions) } else { ("CTR", |v| v.clicks) };
        for v in &f.variants[1..] {
            let (sa, na, sb, nb) =
                (succ(control) as f64, control.impressions as f64, succ(v) as f64, v.impressions as f64);
            if na < 1_000.0 || nb < 1_000.0 {
                continue;
            }
            let base = (sa + sb) / (na + nb);
            let tau = (0.2 * base).max(1e-6);
            let Some(lambda) = msprt(sa, na, sb, nb, tau) else { continue };
            let p_b = p_rate_better(sa, na, sb, nb);
            let (ra, rb) = (sa / na, sb / nb);
            let lift = if ra > 0.0 { rb / ra - 1.0 } else { 0.0 };
            let (winner, loser, p_win, win_rate) = if rb >= ra {
                (v.id.as_str(), control.id.as_str(), p_b, rb)
            } else {
                (control.id.as_str(), v.id.as_str(), 1.0 - p_b, ra)
            };
            let fmt_rate = |r: f64| if metric == "CTR" { percent(r) } else { format!("{:.3} %", r * 100.0) };
            let evidence = vec![format!(
                "{}: {} {} on {} impressions vs {} {} on {}; lift {:+.1} %; P({winner} better) = {}; mSPRT Λ = {:.1} (winner at ≥ {:.0})",
                f.id,
                control.id,
                fmt_rate(ra),
                count(na as i64),
                v.id,
                fmt_rate(rb),
                count(nb as i64),
                lift * 100.0,
                percent(p_win),
                lambda,
                1.0 / ALPHA
            )];
            if lambda >= 1.0 / ALPHA {
                let daily_impr = (na + nb) * 24.0 * HOUR_MS as f64 / f.window_ms.max(HOUR_MS) as f64 / 2.0;
                let gained = daily_impr * (win_rate - ra.min(rb));
                out.push(Recommendation {
                    id: format!("{}/winner/{}/{winner}", c.id, f.id),
                    campaign: c.id.clone(),
                    kind: Kind::Winner,
                    changes: vec![Change {
                        channel: f.id.clone(),
                        action: ControlAction::DeclareWinner,
                        value: None,
                        variant: Some(winner.to_string()),
                        before: f.budget,
                        after: f.budget,
                    }],
                    effect: format!(
                        "variant {winner} beats {loser} on {metric} by {:.1} %: ~{} a day with all traffic on it",
                        (win_rate / ra.min(rb).max(f64::MIN_POSITIVE) - 1.0) * 100.0,
                        signed_count(gained)
                    ),
                    evidence,
                    confidence: p_win,
                    value_per_day: gained,
                    info_only: false,
                });
            } else {
                // How many more impressions per arm until Λ would reach 1/α at this lift.
                let mut extra = 1_000.0;
                let need = loop {
                    let k = (na + extra) / na;
                    if msprt(sa * k, na * k, sb * (nb + extra) / nb, nb + extra, tau).is_some_and(|l| l >= 1.0 / ALPHA)
                    {
                        break Some(extra);
                    }
                    extra *= 2.0;
                    if extra > 1e9 {
                        break None;
                    }
                };
                out.push(Recommendation {
                    id: format!("{}/testing/{}/{}", c.id, f.id, v.id),
                    campaign: c.id.clone(),
                    kind: Kind::Winner,
                    changes: Vec::new(),
                    effect: match need {
                        Some(n) => format!(
                            "keep testing {} vs {}: ~{} more impressions per variant needed at this lift",
                            control.id,
                            v.id,
                            count(n as i64)
                        ),
                        None => format!("keep testing {} vs {}: no difference to speak of yet", control.id, v.id),
                    },
                    evidence,
                    confidence: p_b.max(1.0 - p_b),
                    value_per_day: 0.0,
                    info_only: true,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::Format;
    use proptest::prelude::*;

    fn campaign(kpi: &str) -> Campaign {
        let text = format!(
            r#"
id = "c"
name = "C"
start = "2026-06-01T00:00:00+08:00"
end = "2026-06-30T00:00:00+08:00"
total_budget = 300000.0
kpis = ["{kpi}"]
[[channels]]
id = "a"
name = "A"
source = "http://127.0.0.1:1/stats"
daily_budget = 3000.0
min_budget = 500.0
max_budget = 6000.0
[[channels]]
id = "b"
name = "B"
source = "http://127.0.0.1:1/stats"
daily_budget = 3000.0
min_budget = 500.0
max_budget = 6000.0
"#
        );
        Campaign::parse(&text, Format::Toml, "c.toml").unwrap()
    }

    fn facts(id: &str, leads: u64, spend: f64, budget: f64) -> ChannelFacts {
        ChannelFacts {
            id: id.into(),
            window: Counters { leads, conversions: leads, spend, revenue: 0.0, ..Counters::default() },
            window_ms: 24 * HOUR_MS,
            budget,
            min_budget: 500.0,
            max_budget: 6_000.0,
            paused: false,
            variants: Vec::new(),
            winner: None,
            changed_ms: None,
            healthy: true,
            controllable: true,
            spent_total: 50_000.0,
        }
    }

    fn now(c: &Campaign) -> i64 {
        c.start_ms() + 10 * 24 * HOUR_MS
    }

    #[test]
    fn a_channel_far_over_the_limit_is_paused_and_its_budget_shifted() {
        let c = campaign("cpl <= 100");
        // a: 10 leads for 3,000 (CPL 300); b: 60 leads for 3,000 (CPL 50).
        let recs = recommend(&c, &[facts("a", 10, 3_000.0, 3_000.0), facts("b", 60, 3_000.0, 3_000.0)], now(&c));
        let kinds: Vec<Kind> = recs.iter().map(|r| r.kind).collect();
        assert!(kinds.contains(&Kind::Pause) && kinds.contains(&Kind::Shift), "{recs:#?}");
        let pause = recs.iter().find(|r| r.kind == Kind::Pause).unwrap();
        assert_eq!(pause.changes[0].channel, "a");
        assert!(pause.confidence > 0.99 && pause.evidence[0].contains("CPL 300"), "{}", pause.evidence[0]);
        assert!(pause.effect.contains("campaign CPL 85.71 → 50.00"), "{}", pause.effect);
        let shift = recs.iter().find(|r| r.kind == Kind::Shift).unwrap();
        assert_eq!((shift.changes[0].after, shift.changes[1].after), (2_400.0, 3_600.0));
        // Ranked by value.
        assert!(recs.windows(2).all(|w| w[0].value_per_day >= w[1].value_per_day || w[1].info_only));
    }

    #[test]
    fn too_little_evidence_or_a_learning_channel_gets_no_advice() {
        let c = campaign("cpl <= 100");
        // One lead for 150: could be anything.
        let recs = recommend(&c, &[facts("a", 1, 150.0, 3_000.0), facts("b", 2, 150.0, 3_000.0)], now(&c));
        assert!(recs.is_empty(), "{recs:#?}");
        let mut learning = facts("a", 10, 3_000.0, 3_000.0);
        learning.changed_ms = Some(now(&c) - HOUR_MS);
        let recs = recommend(&c, &[learning, facts("b", 60, 3_000.0, 3_000.0)], now(&c));
        assert!(recs.iter().all(|r| r.changes.iter().all(|ch| ch.channel != "a")), "{recs:#?}");
    }

    #[test]
    fn a_cheap_channel_that_spends_its_budget_is_scaled_up_within_its_max() {
        let c = campaign("cpa <= 100");
        let mut b = facts("b", 120, 3_000.0, 3_000.0);
        b.max_budget = 3_300.0;
        let recs = recommend(&c, &[facts("a", 30, 3_000.0, 3_000.0), b], now(&c));
        let scale = recs.iter().find(|r| r.kind == Kind::Scale && r.changes[0].channel == "b").expect("scale b");
        assert_eq!(scale.changes[0].after, 3_300.0, "capped at max_budget");
    }

    #[test]
    fn an_ab_test_waits_for_evidence_then_declares_the_winner() {
        let c = campaign("cpa <= 100");
        let v = |id: &str, impressions: u64, clicks: u64| VariantCounters {
            id: id.into(),
            impressions,
            clicks,
            conversions: 0,
        };
        let mut f = facts("a", 30, 3_000.0, 3_000.0);
        f.variants = vec![v("A", 5_000, 100), v("B", 5_000, 115)];
        let recs = recommend(&c, std::slice::from_ref(&f), now(&c));
        let test = recs.iter().find(|r| r.kind == Kind::Winner).unwrap();
        assert!(test.info_only && test.effect.contains("more impressions per variant"), "{}", test.effect);
        f.variants = vec![v("A", 200_000, 4_000), v("B", 200_000, 5_000)];
        let recs = recommend(&c, std::slice::from_ref(&f), now(&c));
        let win = recs.iter().find(|r| r.kind == Kind::Winner).unwrap();
        assert!(!win.info_only && win.changes[0].variant.as_deref() == Some("B"), "{win:#?}");
        // Once applied, no more advice on that test.
        f.winner = Some("B".into());
        assert!(recommend(&c, std::slice::from_ref(&f), now(&c)).iter().all(|r| r.kind != Kind::Winner));
    }

    #[test]
    fn roas_campaigns_judge_cost_per_order_at_each_channels_order_value() {
        let c = campaign("roas >= 3");
        let mut a = facts("a", 10, 3_000.0, 3_000.0);
        a.window.revenue = 10.0 * 200.0; // ROAS 0.67
        let mut b = facts("b", 40, 3_000.0, 3_000.0);
        b.window.revenue = 40.0 * 500.0; // ROAS 6.7
        let recs = recommend(&c, &[a, b], now(&c));
        assert!(recs.iter().any(|r| r.kind == Kind::Pause && r.changes[0].channel == "a"), "{recs:#?}");
    }

    #[test]
    fn an_inverse_undoes_a_change() {
        let ch = Change {
            channel: "a".into(),
            action: ControlAction::SetBudget,
            value: Some(2_400.0),
            variant: None,
            before: 3_000.0,
            after: 2_400.0,
        };
        let inv = ch.inverse();
        assert_eq!((inv.value, inv.after), (Some(3_000.0), 3_000.0));
        assert_eq!(inv.inverse().value, Some(2_400.0));
        let pause = Change { action: ControlAction::Pause, value: None, ..ch };
        assert_eq!(pause.inverse().action, ControlAction::Resume);
    }

    proptest! {
        /// Whatever the data: budgets stay within [min, max] and ≥ 0, shifts move money without
        /// creating any, and the campaign's planned daily spend never rises past what its total
        /// budget affords.
        #[test]
        fn budgets_stay_within_bounds_and_shifts_conserve_money(
            chans in proptest::collection::vec((0u64..200, 0.0f64..20_000.0, 500.0f64..6_000.0), 1..6),
            spent in 0.0f64..400_000.0,
        ) {
            let c = campaign("cpl <= 100");
            let facts: Vec<ChannelFacts> = chans
                .iter()
                .enumerate()
                .map(|(i, (leads, spend, budget))| {
                    let mut f = facts(&format!("ch{i}"), *leads, *spend, budget.round());
                    f.spent_total = spent;
                    f
                })
                .collect();
            let before: f64 = facts.iter().map(|f| f.budget).sum();
            let room = remaining_daily(&c, &facts, now(&c));
            for r in recommend(&c, &facts, now(&c)) {
                let mut after_total = before;
                for ch in &r.changes {
                    prop_assert!(ch.after >= 0.0);
                    if ch.action == ControlAction::SetBudget {
                        let f = facts.iter().find(|f| f.id == ch.channel).unwrap();
                        prop_assert!(ch.after >= f.min_budget - 1e-9 && ch.after <= f.max_budget + 1e-9, "{ch:?}");
                        after_total += ch.after - ch.before;
                    }
                }
                match r.kind {
                    Kind::Shift => prop_assert!((after_total - before).abs() < 1e-6, "a shift created money: {r:?}"),
                    Kind::Scale if after_total > before => prop_assert!(after_total - before <= room.max(0.0) + ROUND, "{r:?} room {room}"),
                    _ => {}
                }
            }
        }
    }
}
