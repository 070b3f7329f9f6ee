//! Reading a mapped source (a platform's reporting API, or any JSON): the declared request with
//! its dates and secrets filled in, page after page, each page's rows mapped, and the answer
//! turned into the counters the engine takes (see `StatsDoc`). Platform errors are summarised
//! (their message, not the raw body), throttling is recognised, and no secret appears in an
//! error.

use super::json::{self, Json};
use super::mapping::{self, Mappings};
use super::wire::{ChannelStats, PROTOCOL_VERSION, StatsDoc};
use super::{PollError, Secret, SourceSpec, root_cause, send_error};
use crate::domain::Counters;
use crate::domain::source::Mode;
use crate::domain::time::DAY_MS;
use crate::domain::time::Zone;
use std::collections::BTreeMap;
use std::time::Duration;

/// Pages read per poll unless the paging rule says otherwise.
pub const MAX_PAGES: u32 = 50;

/// A source read through a mapping.
pub struct MappedSource {
    pub mappings: Mappings,
    /// The source's time zone (`mapping.time_zone`, else the campaign's offset): dates in
    /// requests and rows are its days.
    pub tz: Zone,
    /// The earliest start of the campaigns the source serves (unix ms).
    pub start_ms: i64,
}

impl std::fmt::Debug for MappedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedSource").field("format", &self.mappings.resolved.format).finish_non_exhaustive()
    }
}

impl PartialEq for MappedSource {
    fn eq(&self, o: &Self) -> bool {
        self.mappings.resolved == o.mappings.resolved && self.tz == o.tz && self.start_ms == o.start_ms
    }
}

/// The dates a request asks for, as `YYYY-MM-DD` in the campaign's zone, and where the asked
/// periods begin (unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Dates {
    pub since: String,
    pub until: String,
    pub since_ms: i64,
}

impl MappedSource {
    /// What to ask for at `now`: from the campaign's first day (the first read, and `window`
    /// and `cumulative` sources), or the last `restate_days` days (`rows` sources).
    pub fn dates(&self, now_ms: i64, from_start: bool) -> Dates {
        let first = self.day_of(self.start_ms);
        let today = self.day_of(now_ms);
        let since_ms = if self.mappings.mode() == Mode::Rows && !from_start {
            let back = i64::from(self.mappings.default().restate_days.saturating_sub(1));
            (today - back * DAY_MS).max(first)
        } else {
            first
        };
        Dates { since: self.date(since_ms), until: self.date(today.max(since_ms)), since_ms }
    }

    fn day_of(&self, t: i64) -> i64 {
        mapping::local_start(t, self.tz, DAY_MS)
    }

    fn date(&self, t: i64) -> String {
        self.tz.date(t)
    }

    /// A template with its placeholders filled; `place` names it in an error. `None`: an
    /// optional secret (`{secret?:NAME}`) is not set, and the value is left out.
    fn render(&self, place: &str, t: &str, v: &Values<'_>) -> Result<Option<String>, PollError> {
        let mut out = t
            .replace("{since}", &v.dates.since)
            .replace("{until}", &v.dates.until)
            .replace("{today}", &v.dates.until)
            .replace("{timestamp}", &v.timestamp)
            .replace("{nonce}", &super::credential::nonce());
        if out.contains("{version}") {
            let version = self
                .mappings
                .resolved
                .request
                .version
                .as_deref()
                .ok_or_else(|| PollError::Config(format!("{place}: {{version}} but no request.version is set")))?;
            out = out.replace("{version}", version);
        }
        let params: Vec<String> = crate::domain::source::placeholders(&out)
            .filter_map(|n| n.strip_prefix("source:").map(str::to_string))
            .collect();
        for p in params {
            let value = url::Url::parse(&v.source)
                .ok()
                .and_then(|u| u.query_pairs().find(|(k, _)| *k == p.as_str()).map(|(_, v)| v.into_owned()))
                .ok_or_else(|| {
                    PollError::Config(format!("{place}: {{source:{p}}} but the source URL has no {p}= parameter"))
                })?;
            out = out.replace(&format!("{{source:{p}}}"), &value);
        }
        if out.contains("{token}") {
            let token = v.token.ok_or_else(|| PollError::Config(format!("{place}: {{token}} has no value")))?;
            out = out.replace("{token}", token.expose());
        }
        let names: Vec<(String, bool)> = crate::domain::source::placeholders(&out)
            .filter_map(|n| {
                n.strip_prefix("secret:")
                    .map(|s| (s.to_string(), false))
                    .or_else(|| n.strip_prefix("secret?:").map(|s| (s.to_string(), true)))
            })
            .collect();
        for (name, optional) in names {
            let Some(value) = secret(&name, v.secrets) else {
                if optional {
                    return Ok(None);
                }
                return Err(PollError::Config(format!(
                    "{place}: {{secret:{name}}} is not set (export {name}, or set it under [secrets] in config.toml)"
                )));
            };
            let mark = if optional { "secret?:" } else { "secret:" };
            out = out.replace(&format!("{{{mark}{name}}}"), value.expose());
        }
        Ok(Some(out))
    }

    /// The source URL with its `{version}` filled.
    fn url(&self, spec: &SourceSpec) -> Result<url::Url, PollError> {
        let mut text = spec.url.clone();
        if text.contains("{version}") {
            let version = self.mappings.resolved.request.version.as_deref().ok_or_else(|| {
                PollError::Config(format!("source {}: {{version}} but no request.version is set", spec.url))
            })?;
            text = text.replace("{version}", version);
        }
        url::Url::parse(&text).map_err(|e| PollError::Config(format!("source {}: {e}", spec.url)))
    }

    /// The API version asked for, if the source URL or the request names one.
    fn version(&self) -> Option<&str> {
        self.mappings.resolved.request.version.as_deref()
    }
}

/// A secret from the environment or `[secrets]` of `config.toml`.
fn secret(name: &str, secrets: &BTreeMap<String, Secret>) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim()))
        .or_else(|| secrets.get(name).cloned())
}

/// What a request's placeholders are filled with.
struct Values<'a> {
    /// The source URL, for `{source:PARAM}`.
    source: String,
    dates: &'a Dates,
    secrets: &'a BTreeMap<String, Secret>,
    token: Option<&'a Secret>,
    timestamp: String,
}

/// Where the source sends `{token}` first (`request.headers.Authorization`), if it does.
fn wants_token(spec: &SourceSpec, m: &MappedSource) -> Option<String> {
    if spec.url.contains("{token}") {
        return Some("source".into());
    }
    m.mappings.resolved.request.templates().into_iter().find(|(_, t)| t.contains("{token}")).map(|(p, _)| p)
}

/// The access token for `{token}`: the source's credentials', else the preset's secret.
async fn access_token(spec: &SourceSpec, m: &MappedSource) -> Result<Option<Secret>, PollError> {
    let Some(place) = wants_token(spec, m) else { return Ok(None) };
    match &spec.credential {
        super::SourceCredential::Found(c) => c.access_token().await.map(Some),
        super::SourceCredential::Missing(n) | super::SourceCredential::Named(n) => Err(PollError::Config(format!(
            "{place}: {{token}}: credentials '{n}' are not in config.toml (add [credentials.{n}] with its kind and fields)"
        ))),
        super::SourceCredential::None => {
            let auth = &m.mappings.resolved.auth;
            let name = auth.secret.as_deref().ok_or_else(|| {
                PollError::Config(format!(
                    "{place}: {{token}}: the channel names no credentials (credentials = NAME, with [credentials.NAME] in config.toml)"
                ))
            })?;
            secret(name, &spec.secrets).map(Some).ok_or_else(|| {
                PollError::Config(format!(
                    "{place}: {{token}}: the channel names no credentials (credentials = NAME, with [credentials.NAME] in config.toml) and {name} is not set (export it, or set it under [secrets])"
                ))
            })
        }
    }
}

/// Reads every page of the source at `now_ms` and maps it.
pub async fn fetch_mapped(
    client: &reqwest::Client,
    spec: &SourceSpec,
    m: &MappedSource,
    now_ms: i64,
    from_start: bool,
) -> Result<StatsDoc, PollError> {
    if m.mappings.resolved.format == "csv" {
        let dir = url::Url::parse(&spec.url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| PollError::Config(format!("source {}: not a directory URL (file:///path)", spec.url)))?;
        let read = super::csvdir::read_dir(&dir, m, std::time::SystemTime::now())?;
        let note = read.settling_note();
        let mode = m.mappings.mode();
        let mut d = doc(mapping::group(read.rows), mode, i64::MIN);
        // A file removed keeps what it contributed: the answer's periods replace, none is dropped.
        d.partial = true;
        d.note = note;
        return Ok(d);
    }
    if !m.mappings.prometheus.is_empty() {
        return fetch_prometheus(client, spec, m, from_start).await;
    }
    let token = access_token(spec, m).await?;
    match fetch_pages(client, spec, m, now_ms, from_start, token.as_ref()).await {
        // The platform refused the token: renewed once (unless another request renewed it
        // meanwhile), and asked again.
        Err(PollError::Unauthorized(why)) => match (&spec.credential, &token) {
            (super::SourceCredential::Found(c), Some(used)) if c.renews() => {
                tracing::info!(url = %spec.url, credential = %c.name, "token refused ({why}): renewing it");
                let fresh = c.renew(used).await?;
                fetch_pages(client, spec, m, now_ms, from_start, Some(&fresh)).await
            }
            (super::SourceCredential::Found(c), _) => Err(PollError::Unauthorized(format!(
                "{why}; credentials '{}' ({}) cannot renew themselves: put a new token in config.toml",
                c.name, c.kind_name
            ))),
            _ => Err(PollError::Unauthorized(format!(
                "{why}; set a new token{}, or name credentials that renew themselves (credentials = NAME)",
                m.mappings.resolved.auth.secret.as_deref().map(|s| format!(" in {s}")).unwrap_or_default()
            ))),
        },
        other => other,
    }
}

/// Reads every page with one access token.
async fn fetch_pages(
    client: &reqwest::Client,
    spec: &SourceSpec,
    m: &MappedSource,
    now_ms: i64,
    from_start: bool,
    token: Option<&Secret>,
) -> Result<StatsDoc, PollError> {
    let r = &m.mappings.resolved;
    let req = &r.request;
    let dates = m.dates(now_ms, from_start);
    let values = Values {
        source: spec.url.clone(),
        dates: &dates,
        secrets: &spec.secrets,
        token,
        timestamp: (chrono::Utc::now().timestamp()).to_string(),
    };
    let mut url = m.url(spec)?;
    for (k, v) in &req.query {
        if let Some(v) = m.render(&format!("request.query.{k}"), v, &values)? {
            url.query_pairs_mut().append_pair(k, &v);
        }
    }
    let mut headers = Vec::new();
    for (k, v) in &req.headers {
        if let Some(v) = m.render(&format!("request.headers.{k}"), v, &values)? {
            headers.push((k.clone(), v));
        }
    }
    let body = match req.body.as_deref() {
        Some(b) => m.render("request.body", b, &values)?,
        None => None,
    };
    let post = req.method.as_deref() == Some("POST");
    let paging = req.paging.clone().unwrap_or_default();
    let max_pages = paging.max_pages.unwrap_or(MAX_PAGES).max(1);
    let mut rows = Vec::new();
    let mut page_no = 1u32;
    let mut usage: Option<u32> = None;
    // A page with rows, kept to say what the rows hold when a counter is found in none.
    let mut sample_page: Option<Vec<u8>> = None;
    loop {
        let mut rb = if post { client.post(url.clone()) } else { client.get(url.clone()) };
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &body {
            rb = rb.body(b.clone());
        }
        let (raw, page_usage) = tokio::time::timeout(spec.timeout, send(rb, spec, m))
            .await
            .map_err(|_| PollError::Timeout(spec.timeout))??;
        usage = usage.max(page_usage);
        let page = m.mappings.parse(&raw).map_err(|e| PollError::BadData(format!("page {page_no}: {e}")))?;
        if let Some(e) = error_in_body(&page, m) {
            // A platform answering errors with HTTP 200 says a retired version so too.
            let code = summarise(&page).and_then(|s| s.code);
            return Err(retired(m, code, &raw, 200, "").unwrap_or(e));
        }
        let found = m.mappings.rows(&page, page_no as usize, m.tz).map_err(PollError::BadData)?;
        let empty = found.is_empty();
        if !empty && sample_page.is_none() {
            sample_page = Some(raw.to_vec());
        }
        rows.extend(found);
        // The next page, if the paging rule finds one.
        let next: Option<url::Url> = if let Some(e) = &paging.next {
            json::lookup(&page, e).and_then(|v| v.scalar_text()).and_then(|u| url::Url::parse(&u).ok())
        } else if let (Some(e), Some(param)) = (&paging.cursor, &paging.param) {
            json::lookup(&page, e).and_then(|v| v.scalar_text()).filter(|c| !c.is_empty()).map(|c| {
                let mut u = url.clone();
                set_param(&mut u, param, &c);
                u
            })
        } else if let Some(param) = &paging.page_param {
            let total = paging
                .total_pages
                .as_deref()
                .and_then(|e| json::lookup(&page, e))
                .and_then(|v| v.as_f64())
                .map_or(u32::MAX, |n| n as u32);
            (!empty && page_no < total).then(|| {
                let mut u = url.clone();
                set_param(&mut u, param, &(page_no + 1).to_string());
                u
            })
        } else {
            None
        };
        let Some(next) = next else { break };
        if page_no >= max_pages {
            return Err(PollError::BadData(format!(
                "more than {max_pages} pages in one poll (raise request.paging.max_pages, or ask for fewer rows)"
            )));
        }
        url = next;
        page_no += 1;
    }
    check_found(m, &rows, sample_page.as_deref())?;
    let mut d = doc(mapping::group(rows), m.mappings.mode(), dates.since_ms);
    d.note = spec.quota_note.clone();
    d.slow_down = usage.and_then(slow_down_at);
    if let (Some(u), Some(f)) = (usage, d.slow_down) {
        d.note = Some(format!(
            "{} says {u} % of its rate limit is used: polled every {} until it falls",
            m.mappings.resolved.platform.as_deref().unwrap_or("the platform"),
            humantime::format_duration(spec.interval * f)
        ));
    }
    if let super::SourceCredential::Found(c) = &spec.credential {
        d.expiring = c.expiring().await;
    }
    Ok(d)
}

/// A counter whose expression finds nothing in any row of an answer is a mapping that reads
/// nothing (`metric.clicks` where the rows have `metrics`), never a measured zero: bad data
/// naming the expression and what the rows hold. A counter the platform leaves out when it is
/// zero (`zero_when_absent`) is 0, unless a name in the rows is a likely slip for its path.
fn check_found(m: &MappedSource, rows: &[mapping::Row], page: Option<&[u8]>) -> Result<(), PollError> {
    let d = m.mappings.default();
    let mapped = d.counter_exprs().fold(0u8, |bits, (name, _)| bits | mapping::counter_bit(name));
    let missing = mapping::absent_everywhere(rows, mapped);
    if missing == 0 {
        return Ok(());
    }
    let may_lack = m.mappings.resolved.mapping.zero_when_absent.clone().unwrap_or_default();
    let full = page.and_then(|p| mapping::parse_page(p).ok());
    let found = full.as_ref().and_then(|p| json::lookup(p, d.rows_expr()));
    let listed: Vec<&Json<'_>> = match found.as_deref() {
        Some(Json::Array(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    for (name, expr) in d.counter_exprs() {
        if missing & mapping::counter_bit(name) == 0 {
            continue;
        }
        let (why, slip) = mapping::why_nothing(&listed, expr);
        if slip || !may_lack.iter().any(|n| n == name) {
            return Err(PollError::BadData(format!(
                "mapping.{name} `{expr}` matches nothing in any of the {} rows: {why}",
                rows.len()
            )));
        }
    }
    Ok(())
}

/// Reads a Prometheus-compatible source: one instant query per counter.
async fn fetch_prometheus(
    client: &reqwest::Client,
    spec: &SourceSpec,
    m: &MappedSource,
    from_start: bool,
) -> Result<StatsDoc, PollError> {
    let base = spec.url.trim_end_matches('/');
    let mut rows = Vec::new();
    let mut known: Option<Vec<String>> = None;
    // Prometheus keeps wall-clock time, whatever clock the campaign runs on. Taken before the
    // instant queries, so that a range ending here holds nothing newer than what they read.
    let read_at = chrono::Utc::now().timestamp_millis();
    for (name, query, mapping) in &m.mappings.prometheus {
        let mut url = url::Url::parse(&format!("{base}/api/v1/query"))
            .map_err(|e| PollError::Config(format!("source {}: {e}", spec.url)))?;
        // At the TSDB's own present: its samples carry wall-clock times, which a simulated
        // campaign clock does not share.
        url.query_pairs_mut().append_pair("query", query);
        let body = prometheus_get(client, spec, url).await.map_err(|e| match e {
            PollError::Platform { status, detail } => {
                PollError::Platform { status, detail: format!("{name} `{query}`: {detail}") }
            }
            other => other,
        })?;
        let page = mapping::parse_page(&body).map_err(PollError::BadData)?;
        if let Some(status) = json::lookup(&page, "status").and_then(|v| v.scalar_text())
            && status != "success"
        {
            let error = json::lookup(&page, "error").and_then(|v| v.scalar_text()).unwrap_or_default();
            return Err(PollError::BadData(format!("{name} `{query}`: {error}")));
        }
        let kind = json::lookup(&page, "data.resultType").and_then(|v| v.scalar_text()).unwrap_or_default();
        if kind != "vector" {
            return Err(PollError::BadData(format!("{name} `{query}`: a {kind} answer, not an instant vector")));
        }
        let found = mapping.rows(&page, 1, m.tz).map_err(|e| PollError::BadData(format!("{name} `{query}`: {e}")))?;
        if found.is_empty() {
            // No series: a counter that has not counted yet, or a metric name that is wrong.
            if known.is_none() {
                known = Some(metric_names(client, spec, base).await?);
            }
            let known = known.as_deref().unwrap_or_default();
            // A Prometheus that holds no metric at all has not scraped yet: nothing to judge by.
            if !known.is_empty()
                && let Some(unknown) = mapping::promql_metrics(query).into_iter().find(|n| !known.contains(n))
            {
                let near = mapping::nearest(&unknown, known.iter().map(String::as_str))
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                return Err(PollError::BadData(format!(
                    "{name} `{query}`: Prometheus has no metric `{unknown}`{near}"
                )));
            }
        }
        rows.extend(found);
    }
    let mut d = doc(mapping::group(rows), Mode::Cumulative, 0);
    if from_start {
        // A first reading: the counters may have run long before the campaign began.
        let now_values: BTreeMap<String, Counters> = d.channels.iter().map(|c| (c.id.to_string(), c.totals)).collect();
        let (gained, oldest) = since_campaign_start(client, spec, m, base, &now_values, read_at).await?;
        for ch in &mut d.channels {
            ch.since_start = Some(gained.get(&*ch.id).copied().unwrap_or_default());
        }
        d.note = oldest.map(|t| {
            format!("counts from {}: Prometheus keeps nothing older, and the campaign began before", m.tz.rfc3339(t))
        });
    }
    Ok(d)
}

/// One series of a range query: the channel's id, the counter, its scale, and its points
/// (unix ms, value).
type Series = (String, &'static str, f64, Vec<(i64, f64)>);

/// What each channel's counters gained from the campaign's start to now, from a range query
/// per counter (`query_range` in 2,000 steps, a second at the finest) ending with the values
/// just read (`now_values`): the sum of the rises between points, a fall being a reset after
/// which the whole new value counts, as `increase()` takes them. A series first seen after the
/// data begins counted from zero. Also, when the oldest point Prometheus has is well after the
/// start (its retention, or its own start), when that is: the counters count from there.
async fn since_campaign_start(
    client: &reqwest::Client,
    spec: &SourceSpec,
    m: &MappedSource,
    base: &str,
    now_values: &BTreeMap<String, Counters>,
    now: i64,
) -> Result<(BTreeMap<String, Counters>, Option<i64>), PollError> {
    let start = m.start_ms.min(now);
    let step_s = ((now - start) / 1000 / 2_000).max(1);
    let label = m.mappings.resolved.mapping.id.clone().unwrap_or_else(|| "channel".into());
    let mut out: BTreeMap<String, Counters> = BTreeMap::new();
    let mut first_seen: Option<i64> = None;
    let mut read: Vec<Series> = Vec::new();
    for (name, f) in m.mappings.resolved.mapping.counters() {
        let Some(f) = f else { continue };
        let query = f.expr();
        let mut url = url::Url::parse(&format!("{base}/api/v1/query_range"))
            .map_err(|e| PollError::Config(format!("source {}: {e}", spec.url)))?;
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("start", &format!("{:.3}", start as f64 / 1000.0))
            .append_pair("end", &format!("{:.3}", now as f64 / 1000.0))
            .append_pair("step", &format!("{step_s}s"));
        let body = prometheus_get(client, spec, url).await?;
        let page = mapping::parse_page(&body).map_err(PollError::BadData)?;
        let Some(Json::Array(series)) = json::lookup(&page, "data.result").as_deref().cloned() else { continue };
        for s in &series {
            let Some(id) = s.get("metric").and_then(|l| l.get(&label)).and_then(Json::scalar_text) else { continue };
            let points: Vec<(i64, f64)> = match s.get("values") {
                Some(Json::Array(vs)) => vs
                    .iter()
                    .filter_map(|p| match p {
                        Json::Array(tv) if tv.len() == 2 => Some((
                            (tv[0].as_f64()? * 1000.0) as i64,
                            tv[1].as_str().and_then(|v| v.parse().ok()).or_else(|| tv[1].as_f64())?,
                        )),
                        _ => None,
                    })
                    .filter(|(_, v): &(i64, f64)| v.is_finite())
                    .collect(),
                _ => Vec::new(),
            };
            let Some(&(t0, _)) = points.first() else { continue };
            first_seen = Some(first_seen.map_or(t0, |f| f.min(t0)));
            // Up to the values just read, past the last step.
            let mut points = points;
            if let Some(v) = now_values.get(&id) {
                points.push((now, v.get(name) / f.scale()));
            }
            read.push((id, name, f.scale(), points));
        }
    }
    let slack = 2 * step_s * 1000;
    // Where Prometheus's data begins, if after the start: its retention (or its own start)
    // cuts the campaign's beginning off, and the counters count from there.
    let oldest = first_seen.filter(|t| *t > start + slack);
    let from = oldest.unwrap_or(start);
    for (id, name, scale, points) in read {
        // A series first seen well after the data begins was born then: it counted from zero.
        let mut gained = if points[0].0 > from + slack { points[0].1 } else { 0.0 };
        for w in points.windows(2) {
            let (prev, next) = (w[0].1, w[1].1);
            gained += if next >= prev { next - prev } else { next };
        }
        let c = out.entry(id).or_default();
        c.set(name, c.get(name) + gained * scale);
    }
    Ok((out, oldest))
}

/// The names of every metric a Prometheus holds (`/api/v1/label/__name__/values`).
async fn metric_names(client: &reqwest::Client, spec: &SourceSpec, base: &str) -> Result<Vec<String>, PollError> {
    let url = url::Url::parse(&format!("{base}/api/v1/label/__name__/values"))
        .map_err(|e| PollError::Config(format!("source {}: {e}", spec.url)))?;
    let body = prometheus_get(client, spec, url).await?;
    let page = mapping::parse_page(&body).map_err(PollError::BadData)?;
    Ok(match page.get("data") {
        Some(Json::Array(names)) => names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    })
}

/// A GET of a Prometheus API URL with the source's token (where it may be sent), within the
/// source's timeout: the JSON answer, an error answer included.
async fn prometheus_get(client: &reqwest::Client, spec: &SourceSpec, url: url::Url) -> Result<Vec<u8>, PollError> {
    let mut rb = client.get(url);
    if let Some(t) = spec.token.as_ref().filter(|_| spec.token_over_http || super::may_carry_token(&spec.url)) {
        rb = rb.bearer_auth(t.expose());
    }
    tokio::time::timeout(spec.timeout, send_prometheus(rb, spec)).await.map_err(|_| PollError::Timeout(spec.timeout))?
}

/// One Prometheus query: its JSON answer, an error answer included (it says what is wrong).
async fn send_prometheus(rb: reqwest::RequestBuilder, spec: &SourceSpec) -> Result<Vec<u8>, PollError> {
    let resp = rb.send().await.map_err(|e| send_error(&e, spec.timeout))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| PollError::Other(root_cause(&e)))?;
    if body.len() > spec.max_bytes {
        return Err(PollError::TooLarge(spec.max_bytes));
    }
    match mapping::parse_page(&body) {
        Ok(_) => Ok(body.to_vec()),
        Err(_) if status >= 400 => Err(PollError::Status(status)),
        Err(e) => Err(PollError::BadData(e)),
    }
}

/// The counters the engine takes: per channel its totals, and in `rows` mode its periods.
fn doc(grouped: BTreeMap<String, BTreeMap<i64, Counters>>, mode: Mode, since_ms: i64) -> StatsDoc {
    let channels = grouped
        .into_iter()
        .map(|(id, periods)| {
            let totals = Counters::sum(periods.values());
            let periods = if mode == Mode::Rows { periods.into_iter().collect() } else { Vec::new() };
            ChannelStats { totals, periods, ..ChannelStats::nothing(&id) }
        })
        .collect();
    StatsDoc {
        version: PROTOCOL_VERSION,
        generated_at: None,
        channels,
        restated_from: (mode == Mode::Rows).then_some(since_ms),
        restating: mode != Mode::Cumulative,
        partial: false,
        note: None,
        expiring: None,
        slow_down: None,
    }
}

/// Why an answer is not the JSON asked for, when it plainly is not (it does not begin as JSON
/// does): its content type, its first line of text, and where a redirect took the request —
/// a sign-in page answers with HTML behind a redirect. Secrets in the URL are not shown.
fn not_json(body: &[u8], content_type: &str, redirected_to: Option<&url::Url>) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with(['{', '[']) || (start.is_empty() && content_type.contains("json")) {
        return None;
    }
    let first: String = start.lines().next().unwrap_or("").chars().take(80).collect();
    let kind = if content_type.is_empty() { "no content type".to_string() } else { content_type.to_string() };
    let html = content_type.contains("html")
        || start.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("<!doc"))
        || start.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("<html"));
    let mut why = if start.is_empty() {
        format!("the answer is empty ({kind}), not JSON")
    } else {
        format!("the answer is {kind}, not JSON; it begins: {first}")
    };
    if let Some(u) = redirected_to {
        let place = format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), u.path());
        why.push_str(&format!(
            " (the request was redirected to {place}{})",
            if html { ": a sign-in page? check the source's credentials" } else { "" }
        ));
    } else if html {
        why.push_str(" (an HTML page: is the source URL the API's, not the web interface's?)");
    }
    Some(why)
}

fn set_param(u: &mut url::Url, param: &str, value: &str) {
    let pairs: Vec<(String, String)> =
        u.query_pairs().filter(|(k, _)| k != param).map(|(k, v)| (k.into(), v.into())).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs).append_pair(param, value);
}

/// Sends one page's request; a non-2xx answer is summarised: a refused token is
/// `Unauthorized`, a retired API version `Retired`.
async fn send(
    rb: reqwest::RequestBuilder,
    spec: &SourceSpec,
    m: &MappedSource,
) -> Result<(Vec<u8>, Option<u32>), PollError> {
    let platform = m.mappings.resolved.platform.as_deref();
    let (client, request) = rb.build_split();
    let request = request.map_err(|e| PollError::Config(format!("source {}: {}", spec.url, root_cause(&e))))?;
    let asked = request.url().clone();
    let mut resp = client.execute(request).await.map_err(|e| send_error(&e, spec.timeout))?;
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let usage = usage_pct(resp.headers());
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let landed = resp.url().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| PollError::Other(root_cause(&e)))? {
        if body.len() + chunk.len() > spec.max_bytes {
            return Err(PollError::TooLarge(spec.max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return match not_json(&body, &content_type, (landed != asked).then_some(&landed)) {
            Some(why) => Err(PollError::BadData(why)),
            None => Ok((body, usage)),
        };
    }
    let summary = mapping::parse_page(&body).ok().and_then(|p| summarise(&p));
    let (detail, code) = match &summary {
        Some(s) => (s.text(platform), s.code),
        None => (String::new(), None),
    };
    if status.as_u16() == 429 || throttling_code(code) {
        return Err(PollError::Throttled { retry_after, detail: with_status(status.as_u16(), &detail) });
    }
    if let Some(e) = retired(m, code, &body, status.as_u16(), &content_type) {
        return Err(e);
    }
    let unauthenticated = summary.as_ref().is_some_and(|s| s.status.as_deref() == Some("UNAUTHENTICATED"));
    if status.as_u16() == 401 || unauthenticated || refused_code(m, code) {
        return Err(PollError::Unauthorized(with_status(status.as_u16(), &detail)));
    }
    if detail.is_empty() {
        return Err(PollError::Status(status.as_u16()));
    }
    Err(PollError::Platform { status: status.as_u16(), detail })
}

/// Whether `code` is one the platform refuses an access token with.
fn refused_code(m: &MappedSource, code: Option<i64>) -> bool {
    code.is_some_and(|c| m.mappings.resolved.auth.refused_codes.contains(&c))
}

/// A retired API version, as the platforms say it: Meta's code 2635 ("…update to the latest
/// version: v24.0"), Google's `UNSUPPORTED_VERSION` (and, once a version is long gone, an
/// HTML 404 at its URL).
fn retired(m: &MappedSource, code: Option<i64>, body: &[u8], status: u16, content_type: &str) -> Option<PollError> {
    let asked = m.version()?;
    let text = String::from_utf8_lossy(body);
    let said = code == Some(2635) || text.contains("UNSUPPORTED_VERSION") || text.contains("is deprecated");
    let gone = status == 404 && content_type.contains("html") && m.mappings.resolved.request.version.is_some();
    if !(said || gone) {
        return None;
    }
    let newest = newest_version_in(&text)
        .or_else(|| crate::domain::source::shipped_preset(&m.mappings.resolved.format)?.request.version)
        .filter(|v| v != asked);
    let format = &m.mappings.resolved.format;
    let hint = match newest {
        Some(v) => format!(
            "the platform's newest is {v}: set version = \"{v}\" under [presets.{format}] in config.toml, or the channel's request.version"
        ),
        None => {
            format!("set a current version under [presets.{format}] in config.toml, or the channel's request.version")
        }
    };
    let how = if said { "the platform says so" } else { "HTTP 404 with a web page at the versioned URL" };
    Some(PollError::Retired(format!("{asked} is no longer served ({how}); {hint}")))
}

/// The highest version (`v24.0`, `v26`) a platform's message names.
fn newest_version_in(text: &str) -> Option<String> {
    let mut best: Option<(Vec<u32>, String)> = None;
    for (i, _) in text.match_indices('v') {
        let rest = &text[i + 1..];
        let n: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let n = n.trim_end_matches('.');
        if n.is_empty() || text[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let parts: Vec<u32> = n.split('.').filter_map(|p| p.parse().ok()).collect();
        if best.as_ref().is_none_or(|(b, _)| parts > *b) {
            best = Some((parts, format!("v{n}")));
        }
    }
    best.map(|(_, v)| v)
}

fn with_status(status: u16, detail: &str) -> String {
    if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") }
}

/// `Retry-After` in seconds, or Meta's usage header's time to regain access (minutes).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(s) = h.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(s));
    }
    let usage = h.get("x-business-use-case-usage").and_then(|v| v.to_str().ok())?;
    let v: serde_json::Value = serde_json::from_str(usage).ok()?;
    let minutes = v
        .as_object()?
        .values()
        .filter_map(|a| a.as_array())
        .flatten()
        .filter_map(|e| e.get("estimated_time_to_regain_access").and_then(|m| m.as_u64()))
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes * 60))
}

/// How much of its rate limit the platform says is used, in percent: the highest figure of
/// Meta's `X-Business-Use-Case-Usage`, `X-Ad-Account-Usage` and `X-App-Usage` headers.
fn usage_pct(h: &reqwest::header::HeaderMap) -> Option<u32> {
    let mut most: Option<f64> = None;
    let mut take = |v: &serde_json::Value| {
        for k in ["call_count", "total_cputime", "total_time", "acc_id_util_pct"] {
            if let Some(n) = v.get(k).and_then(serde_json::Value::as_f64) {
                most = Some(most.map_or(n, |m: f64| m.max(n)));
            }
        }
    };
    for name in ["x-business-use-case-usage", "x-ad-account-usage", "x-app-usage"] {
        let Some(v) =
            h.get(name).and_then(|v| v.to_str().ok()).and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        else {
            continue;
        };
        match &v {
            serde_json::Value::Object(o) if name == "x-business-use-case-usage" => {
                o.values().filter_map(|a| a.as_array()).flatten().for_each(&mut take);
            }
            other => take(other),
        }
    }
    most.map(|m| m.round().clamp(0.0, 100.0) as u32)
}

/// How many times less often to poll at a usage: twice from 75 %, four times from 90 %, so
/// that polling slows down before the platform throttles.
pub fn slow_down_at(usage_pct: u32) -> Option<u32> {
    match usage_pct {
        90.. => Some(4),
        75..=89 => Some(2),
        _ => None,
    }
}

/// Meta's throttling codes (application, user, ads insights, business use case), TikTok's and
/// Tencent's.
fn throttling_code(code: Option<i64>) -> bool {
    code.is_some_and(|c| matches!(c, 4 | 17 | 32 | 613 | 80000..=80014 | 40100 | 11016..=11019))
}

/// An error a platform reported, as read from its answer.
struct Summary {
    /// Which platform's error shape it has.
    shape: &'static str,
    message: String,
    code: Option<i64>,
    /// Google's status name (`UNAUTHENTICATED`).
    status: Option<String>,
}

impl Summary {
    /// Its message, saying so when the shape is another platform's (a preset pointed at the
    /// wrong API).
    fn text(&self, platform: Option<&str>) -> String {
        let code = self.code.map(|c| format!(" (code {c})")).unwrap_or_default();
        if platform.is_some_and(|p| !same_family(p, self.shape)) {
            format!("this looks like a {} error: {}{code}", self.shape, self.message)
        } else {
            format!("{}{code}", self.message)
        }
    }
}

/// Whether an error of this shape may come from `platform`.
fn same_family(platform: &str, shape: &str) -> bool {
    match shape {
        "Google API" => platform.starts_with("Google"),
        "TikTok or Ocean Engine" => ["TikTok", "Ocean", "Tencent", "Kuaishou"].iter().any(|p| platform.starts_with(p)),
        "JSON API" => true,
        s => s == platform,
    }
}

/// Reads an error out of a platform's answer, by the shapes the platforms use.
fn summarise(page: &Json) -> Option<Summary> {
    // Google answers a stream's error as a list of one.
    let page = match page {
        Json::Array(a) => a.first()?,
        _ => page,
    };
    let text = |e: &str| json::lookup(page, e).and_then(|v| v.scalar_text());
    let num = |e: &str| json::lookup(page, e).and_then(|v| v.as_f64()).map(|n| n as i64);
    // Google (Ads, GA4): {"error": {"code", "message", "status"}}.
    if let Some(status) = text("error.status") {
        let status_name = status.clone();
        let message = text("error.message").unwrap_or(status);
        return Some(Summary { shape: "Google API", message, code: num("error.code"), status: Some(status_name) });
    }
    // Meta: {"error": {"message", "type", "code"}}.
    if let Some(message) = text("error.message") {
        let shape = if text("error.type").is_some() { "Meta Marketing API" } else { "JSON API" };
        return Some(Summary { shape, message, code: num("error.code"), status: None });
    }
    // Baidu: {"header": {"status", "failures": [{"code", "message"}]}}.
    if num("header.status").is_some_and(|s| s != 0) {
        let message = text("header.failures[0].message").or_else(|| text("header.desc")).unwrap_or_default();
        return Some(Summary {
            shape: "Baidu Marketing API",
            message,
            code: num("header.failures[0].code"),
            status: None,
        });
    }
    // TikTok, Ocean Engine, Tencent, Kuaishou: {"code", "message"} with code 0 for success.
    if let (Some(code), Some(message)) = (num("code"), text("message"))
        && code != 0
    {
        return Some(Summary { shape: "TikTok or Ocean Engine", message, code: Some(code), status: None });
    }
    None
}

/// A 2xx answer that carries an error (TikTok, Ocean Engine and Baidu answer errors so).
fn error_in_body(page: &Json, m: &MappedSource) -> Option<PollError> {
    let s = summarise(page)?;
    // A successful Google or Meta answer has no `error`; only the body-coded shapes count here.
    if !matches!(s.shape, "TikTok or Ocean Engine" | "Baidu Marketing API") {
        return None;
    }
    let detail = s.text(m.mappings.resolved.platform.as_deref());
    if throttling_code(s.code) {
        return Some(PollError::Throttled { retry_after: None, detail });
    }
    if refused_code(m, s.code) {
        return Some(PollError::Unauthorized(detail));
    }
    Some(PollError::Platform { status: 200, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::{Field, Mapping, resolve};

    fn source(format: &str, mapping: Mapping) -> MappedSource {
        let r = resolve(Some(format), None, Some(&mapping)).unwrap().unwrap();
        MappedSource {
            mappings: Mappings::new(&[("238".to_string(), r)]).unwrap(),
            tz: Zone::Fixed(chrono::FixedOffset::east_opt(8 * 3600).unwrap()),
            start_ms: 0,
        }
    }

    /// Maps a page and checks that every counter was found, as a poll does.
    fn read(m: &MappedSource, body: &str) -> Result<Vec<mapping::Row>, PollError> {
        let page = m.mappings.parse(body.as_bytes()).unwrap();
        let rows = m.mappings.rows(&page, 1, m.tz).map_err(PollError::BadData)?;
        check_found(m, &rows, Some(body.as_bytes())).map(|()| rows)
    }

    #[test]
    fn an_answer_that_is_not_json_says_what_it_is_and_where_it_came_from() {
        let login = url::Url::parse("https://accounts.example.com/signin?token=s3cret").unwrap();
        let why = not_json(b"<!DOCTYPE html>\n<html><title>Sign in</title>", "text/html; charset=utf-8", Some(&login))
            .unwrap();
        assert!(
            why.starts_with("the answer is text/html; charset=utf-8, not JSON; it begins: <!DOCTYPE html>"),
            "{why}"
        );
        assert!(why.contains("redirected to https://accounts.example.com/signin: a sign-in page?"), "{why}");
        assert!(!why.contains("s3cret"), "{why}");
        assert!(not_json(b" {\"data\":[]}", "text/plain", None).is_none(), "JSON under any type is read");
        assert!(not_json(b"", "", None).unwrap().contains("empty"));
    }

    #[test]
    fn a_mapping_that_reads_nothing_is_bad_data_naming_it_and_what_the_rows_hold() {
        let body = r#"{"data":[{"id":"238","metrics":{"clicks":"12","impressions":"400"}},
                               {"id":"238","metrics":{"clicks":"3"}}]}"#;
        let mapping = |clicks: &str| Mapping {
            rows: Some("data".into()),
            id: Some("id".into()),
            clicks: Some(Field::Expr(clicks.into())),
            impressions: Some(Field::Expr("metrics.impressions".into())),
            ..Default::default()
        };
        let e = read(&source("json", mapping("metric.clicks")), body).unwrap_err().to_string();
        assert!(
            e.contains("mapping.clicks `metric.clicks` matches nothing in any of the 2 rows")
                && e.contains("did you mean `metrics`?"),
            "{e}"
        );
        let e = read(&source("json", mapping("metrics.click")), body).unwrap_err().to_string();
        assert!(e.contains("`metrics` has: clicks, impressions; did you mean `metrics.clicks`?"), "{e}");
        // Found in one row of two: the other row's absence is a zero.
        let rows = read(&source("json", mapping("metrics.clicks")), body).unwrap();
        assert_eq!(rows.iter().map(|r| r.counters.impressions).sum::<u64>(), 400);
        // An answer without rows says nothing of the mapping.
        assert!(read(&source("json", mapping("metric.clicks")), r#"{"data":[]}"#).is_ok());
    }

    #[test]
    fn a_counter_the_platform_leaves_out_when_zero_is_zero_unless_its_path_is_a_slip() {
        // Meta leaves `actions` out of a row with none.
        let meta = source("meta-insights", Mapping::default());
        let body = r#"{"data":[{"campaign_id":"238","date_start":"2026-06-01","impressions":"10","clicks":"1","spend":"2.50"}]}"#;
        let rows = read(&meta, body).unwrap();
        assert_eq!((rows[0].counters.leads, rows[0].counters.conversions), (0, 0));
        // Without the preset's word for it, the same absence is bad data.
        let strict = source("meta-insights", Mapping { zero_when_absent: Some(Vec::new()), ..Default::default() });
        let e = read(&strict, body).unwrap_err().to_string();
        assert!(e.contains("mapping.leads") && e.contains("no row has `actions`"), "{e}");
        // A slip stays a slip: `action` where the rows have `actions`.
        let slip = source(
            "meta-insights",
            Mapping {
                leads: Some(Field::Expr("action[?action_type=='lead'].value | [0]".into())),
                ..Default::default()
            },
        );
        let body = r#"{"data":[{"campaign_id":"238","date_start":"2026-06-01","impressions":"10","clicks":"1","spend":"1","actions":[]}]}"#;
        let e = read(&slip, body).unwrap_err().to_string();
        assert!(e.contains("did you mean `actions`?"), "{e}");
    }
}
