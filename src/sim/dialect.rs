//! The simulated traffic as ad platforms' reporting APIs answer it: rows per channel and day
//! with numbers as strings, paging, days without activity left out, conversions that arrive
//! late (a day's figures are restated on the following days), and, when asked for, throttling.
//! Each simulated channel is one platform campaign (its id is the channel's id); each
//! simulated campaign is one ad account or customer.
//!
//! - `GET /meta/v21.0/act_{campaign}/insights?time_range={"since":…,"until":…}&limit=N&after=K`
//!   answers `{"data":[…], "paging":{"cursors":{"after"},"next"}}` as the Marketing API does;
//! - `POST /google-ads/v18/customers/{campaign}/googleAds:searchStream` with a GAQL query
//!   `… WHERE segments.date BETWEEN 'since' AND 'until'` answers an array of result batches.
//!
//! Both want an `Authorization` header and answer a missing one as the platform would.
//! `GET /metrics` gives every channel's counters in the Prometheus text format.
//!
//! `csv` is a scheduled report export, as Ads Manager writes one: a directory per campaign
//! (`<exports>/<campaign>/`) gets a file per day, `<campaign>-<date>.csv`, holding the last 7
//! days as known at the time; today's is rewritten every few seconds (into a temporary name,
//! then renamed into place), so later files restate the days of earlier ones.

use super::model::{Network, SimChannel};
use crate::domain::Counters;
use crate::domain::time::DAY_MS;
use chrono::{FixedOffset, NaiveDate, TimeZone};
use serde_json::{Value, json};

/// The platforms the simulator speaks besides the cockpit protocol.
pub const DIALECTS: &[&str] =
    &["meta-insights", "google-ads", "tiktok", "oceanengine", "baidu", "ga4", "tencent-ads", "kuaishou", "csv"];

/// The columns of the simulated export, and how a channel reads them.
const EXPORT_COLUMNS: [(&str, &str); 8] = [
    ("id", "Campaign ID"),
    ("period", "Day"),
    ("impressions", "Impressions"),
    ("clicks", "Link clicks"),
    ("leads", "Leads"),
    ("conversions", "Purchases"),
    ("spend", "Amount spent"),
    ("revenue", "Purchases conversion value"),
];

/// The mapping of the simulated export's columns.
pub fn export_mapping() -> crate::domain::source::Mapping {
    use crate::domain::source::{Field, Mapping};
    let mut m = Mapping {
        id: Some(EXPORT_COLUMNS[0].1.into()),
        period: Some(EXPORT_COLUMNS[1].1.into()),
        ..Mapping::default()
    };
    for (field, col) in &EXPORT_COLUMNS[2..] {
        m.set_counter(field, Some(Field::Expr(col.to_string())));
    }
    m
}

/// The export directory of a campaign.
pub fn export_dir(root: &std::path::Path, campaign: &str) -> std::path::PathBuf {
    root.join(campaign)
}

/// Writes each campaign's export of today: its last 7 days as reported now. The first time,
/// a lifetime export too (from the campaign's first day), as a user downloads one to start.
pub fn write_exports(net: &Network, root: &std::path::Path) -> std::io::Result<()> {
    let mut campaigns: Vec<&str> = net.channels.iter().map(|c| c.campaign.as_str()).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    for campaign in campaigns {
        let Some(first) = net.channels.iter().find(|c| c.campaign == campaign) else { continue };
        let today = date_of(first, net.now_ms());
        let dir = export_dir(root, campaign);
        std::fs::create_dir_all(&dir)?;
        let lifetime = format!("{campaign}-lifetime.csv");
        if !dir.join(&lifetime).exists() {
            let start = net.channels.iter().filter_map(|c| c.days.keys().next().map(|d| date_of(c, *d))).min();
            write_export(&dir, &lifetime, &rows(net, campaign, start.as_deref().unwrap_or(&today), &today))?;
        }
        let week_ago = date_of(first, net.now_ms() - 6 * DAY_MS);
        write_export(&dir, &format!("{campaign}-{today}.csv"), &rows(net, campaign, &week_ago, &today))?;
    }
    Ok(())
}

/// One export file: a row per channel and day, then the totals, renamed into place so that a
/// reader never sees half a file.
fn write_export(dir: &std::path::Path, name: &str, rows: &[(&SimChannel, i64, Counters)]) -> std::io::Result<()> {
    let figures = |c: &Counters| {
        [
            c.impressions.to_string(),
            c.clicks.to_string(),
            c.leads.to_string(),
            c.conversions.to_string(),
            format!("{:.2}", c.spend),
            format!("{:.2}", c.revenue),
        ]
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(EXPORT_COLUMNS.iter().map(|(_, c)| *c)).map_err(std::io::Error::other)?;
    let mut sum = Counters::default();
    for (ch, day, c) in rows {
        sum.add(c);
        w.write_record([ch.id.clone(), date_of(ch, *day)].into_iter().chain(figures(c)))
            .map_err(std::io::Error::other)?;
    }
    w.write_record(["Total".to_string(), String::new()].into_iter().chain(figures(&sum)))
        .map_err(std::io::Error::other)?;
    let text = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, dir.join(name))
}

/// For `csv`, `base` is the directory of the exports.
pub fn reformat(campaigns: &mut [crate::domain::Campaign], base: &str, dialect: &str) -> Result<(), String> {
    for c in campaigns {
        let source = match dialect {
            "csv" => url::Url::from_directory_path(export_dir(std::path::Path::new(base), &c.id))
                .map_err(|()| format!("the export directory {base} is not an absolute path"))?
                .to_string(),
            "meta-insights" => format!("{base}/meta/{{version}}/act_{}/insights", c.id),
            "google-ads" => format!("{base}/google-ads/{{version}}/customers/{}/googleAds:searchStream", c.id),
            "tiktok" => format!("{base}/tiktok/open_api/v1.3/report/integrated/get/?advertiser_id={}", c.id),
            "oceanengine" => format!("{base}/oceanengine/open_api/v3.0/report/custom/get/?advertiser_id={}", c.id),
            "baidu" => format!("{base}/baidu/json/sms/service/ReportService/getRealTimeData?account={}", c.id),
            "ga4" => format!("{base}/ga4/v1beta/properties/{}:runReport", c.id),
            "tencent-ads" => format!("{base}/tencent/{{version}}/daily_reports/get?account_id={}", c.id),
            "kuaishou" => {
                format!("{base}/kuaishou/rest/openapi/{{version}}/report/campaign_report?advertiser_id={}", c.id)
            }
            other => return Err(format!("the simulator does not speak '{other}' (it speaks {})", DIALECTS.join(", "))),
        };
        for ch in &mut c.channels {
            ch.format = Some(dialect.to_string());
            ch.source = source.clone();
            if dialect == "csv" {
                ch.mapping = Some(export_mapping());
            }
        }
    }
    Ok(())
}

/// The secrets a preset's requests name, each with a stand-in value: the simulator checks
/// that credentials are sent, not what they are (unless its tokens are checked).
pub fn stand_in_secrets(dialect: &str) -> Vec<String> {
    let Some(p) = crate::domain::source::preset(dialect) else { return Vec::new() };
    let mut names: Vec<String> = p
        .request
        .templates()
        .into_iter()
        .flat_map(|(_, t)| {
            crate::domain::source::placeholders(t)
                .filter_map(|n| n.strip_prefix("secret:"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .chain(p.auth.secret.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The channels' counters as Prometheus counters (`cockpit_sim_<counter>_total`, labelled
/// with campaign and channel).
pub fn prometheus_text(net: &Network) -> String {
    let mut out = String::new();
    for name in crate::domain::source::COUNTERS {
        out.push_str(&format!("# HELP cockpit_sim_{name}_total The simulated channel's {name} since it started.\n"));
        out.push_str(&format!("# TYPE cockpit_sim_{name}_total counter\n"));
        for ch in &net.channels {
            let v = ch.counters.get(name);
            out.push_str(&format!(
                "cockpit_sim_{name}_total{{campaign=\"{}\",channel=\"{}\"}} {v}\n",
                ch.campaign, ch.id
            ));
        }
    }
    out
}

/// Share of a day's conversions (and revenue) reported `age` days after it: late conversions
/// arrive over the next two days, so yesterday's row grows today.
pub fn maturity(age_days: i64) -> f64 {
    match age_days {
        i64::MIN..=0 => 0.85,
        1 => 0.95,
        _ => 1.0,
    }
}

/// A day's row as reported at `now`: conversions and revenue as they have matured.
fn reported(c: &Counters, day: i64, now: i64) -> Counters {
    let m = maturity((now - day).div_euclid(DAY_MS));
    Counters {
        conversions: (c.conversions as f64 * m).floor() as u64,
        revenue: (c.revenue * m * 100.0).round() / 100.0,
        ..*c
    }
}

/// The (channel, day, counters) rows of a campaign's channels between two local dates.
fn rows<'a>(net: &'a Network, campaign: &str, since: &str, until: &str) -> Vec<(&'a SimChannel, i64, Counters)> {
    let mut out = Vec::new();
    for ch in net.channels.iter().filter(|c| c.campaign == campaign) {
        let tz = FixedOffset::east_opt((ch.offset_ms / 1000) as i32).unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
        let (Some(from), Some(to)) = (day_start(since, tz), day_start(until, tz)) else { continue };
        for (day, c) in ch.days.range(from..=to) {
            if !c.is_zero() {
                out.push((ch, *day, reported(c, *day, net.now_ms())));
            }
        }
    }
    out
}

fn day_start(date: &str, tz: FixedOffset) -> Option<i64> {
    let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single().map(|t| t.timestamp_millis())
}

fn date_of(ch: &SimChannel, day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day + ch.offset_ms)
        .map_or(String::new(), |d| d.format("%Y-%m-%d").to_string())
}

/// Meta's answer to an insights request: one page of `limit` rows from `after`; `next` is the
/// URL of the following page (built on `base`, the request's own URL without its cursor).
pub fn meta_insights(net: &Network, campaign: &str, time_range: &str, after: usize, limit: usize, base: &str) -> Value {
    let range: Value = serde_json::from_str(time_range).unwrap_or(Value::Null);
    let since = range["since"].as_str().unwrap_or("");
    let until = range["until"].as_str().unwrap_or("");
    let all = rows(net, campaign, since, until);
    let limit = limit.clamp(1, 5000);
    let page: Vec<Value> = all
        .iter()
        .skip(after)
        .take(limit)
        .map(|(ch, day, c)| {
            let date = date_of(ch, *day);
            json!({
                "campaign_id": ch.id,
                "date_start": date,
                "date_stop": date,
                "impressions": c.impressions.to_string(),
                "clicks": c.clicks.to_string(),
                "spend": format!("{:.2}", c.spend),
                "actions": [
                    { "action_type": "lead", "value": c.leads.to_string() },
                    { "action_type": "onsite_conversion.lead_grouped", "value": c.leads.to_string() },
                    { "action_type": "purchase", "value": c.conversions.to_string() },
                    { "action_type": "omni_purchase", "value": c.conversions.to_string() },
                ],
                "action_values": [
                    { "action_type": "purchase", "value": format!("{:.2}", c.revenue) },
                    { "action_type": "omni_purchase", "value": format!("{:.2}", c.revenue) },
                ],
            })
        })
        .collect();
    let end = after + page.len();
    let mut paging = json!({ "cursors": { "before": after.to_string(), "after": end.to_string() } });
    if end < all.len() {
        paging["next"] = Value::String(format!("{base}&after={end}"));
    }
    json!({ "data": page, "paging": paging })
}

/// Meta's answer when it wants the caller to slow down.
pub fn meta_throttled() -> Value {
    json!({ "error": { "message": "(#17) User request limit reached", "type": "OAuthException", "code": 17,
                       "error_subcode": 2446079, "fbtrace_id": "sim" } })
}

/// Meta's answer to a request without a token.
pub fn meta_unauthorized() -> Value {
    json!({ "error": { "message": "Error validating access token: Session has expired.",
                       "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "sim" } })
}

/// Meta's answer at a retired version.
pub fn meta_retired(version: &str) -> Value {
    json!({ "error": { "message": format!("({version}) You are calling a deprecated version of the Ads API. Please update to the latest version: v27.0."),
                       "type": "OAuthException", "code": 2635, "fbtrace_id": "sim" } })
}

/// Google Ads' answer at a retired version.
pub fn google_retired(version: &str) -> Value {
    json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT",
        "message": format!("Version {version} is deprecated. Requests to this version will be blocked."),
        "details": [{ "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                      "errors": [{ "errorCode": { "requestError": "UNSUPPORTED_VERSION" } }] }] } })
}

/// Google Ads' answer to a searchStream query: the rows in batches of `batch`.
pub fn google_ads(net: &Network, campaign: &str, query: &str, batch: usize) -> Result<Value, Value> {
    let dates: Vec<&str> = query.split('\'').skip(1).step_by(2).collect();
    let (Some(since), Some(until)) = (dates.first(), dates.get(1)) else {
        return Err(google_error(400, "INVALID_ARGUMENT", "The query must filter segments.date BETWEEN two dates."));
    };
    let results: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            json!({
                "campaign": { "resourceName": format!("customers/{campaign}/campaigns/{}", ch.id), "id": ch.id },
                "segments": { "date": date_of(ch, *day) },
                "metrics": {
                    "impressions": c.impressions.to_string(),
                    "clicks": c.clicks.to_string(),
                    "costMicros": ((c.spend * 1e6).round() as i64).to_string(),
                    "conversions": c.conversions as f64,
                    "conversionsValue": c.revenue,
                },
            })
        })
        .collect();
    let batches: Vec<Value> = results
        .chunks(batch.max(1))
        .map(|b| json!({ "results": b, "fieldMask": "campaign.id,segments.date,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions,metrics.conversionsValue", "requestId": "sim" }))
        .collect();
    Ok(Value::Array(batches))
}

/// An error as the Google APIs answer it.
pub fn google_error(code: u16, status: &str, message: &str) -> Value {
    json!([{ "error": { "code": code, "message": message, "status": status } }])
}

/// One numbered page of `size` rows, and how many pages there are.
fn numbered<T: Clone>(all: &[T], page: usize, size: usize) -> (Vec<T>, usize) {
    let size = size.clamp(1, 1000);
    let pages = all.len().div_ceil(size).max(1);
    (all.iter().skip((page.max(1) - 1) * size).take(size).cloned().collect(), pages)
}

/// TikTok's integrated report (and, with other names, Ocean Engine's custom report): numbered
/// pages of dimensions and metrics as strings, errors in the body.
pub fn tiktok(net: &Network, campaign: &str, since: &str, until: &str, page: usize, size: usize) -> Value {
    let list: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            json!({
                "dimensions": { "campaign_id": ch.id, "stat_time_day": format!("{} 00:00:00", date_of(ch, *day)) },
                "metrics": { "spend": format!("{:.2}", c.spend), "impressions": c.impressions.to_string(),
                             "clicks": c.clicks.to_string(), "conversion": c.conversions.to_string() },
            })
        })
        .collect();
    let total = list.len();
    let (list, pages) = numbered(&list, page, size);
    json!({ "code": 0, "message": "OK", "request_id": "sim",
            "data": { "list": list, "page_info": { "page": page, "page_size": size, "total_number": total, "total_page": pages } } })
}

/// Ocean Engine's custom report.
pub fn oceanengine(net: &Network, campaign: &str, since: &str, until: &str, page: usize, size: usize) -> Value {
    let list: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            json!({
                "dimensions": { "stat_time_day": date_of(ch, *day), "cdp_promotion_id": ch.id },
                "metrics": { "stat_cost": format!("{:.2}", c.spend), "show_cnt": c.impressions.to_string(),
                             "click_cnt": c.clicks.to_string(), "convert_cnt": c.conversions.to_string() },
            })
        })
        .collect();
    let total = list.len();
    let (list, pages) = numbered(&list, page, size);
    json!({ "code": 0, "message": "OK", "request_id": "sim",
            "data": { "rows": list, "page_info": { "page": page, "page_size": size, "total_number": total, "total_page": pages } } })
}

/// Tencent Ads' daily report: money in cents, numbers as numbers.
pub fn tencent(net: &Network, campaign: &str, since: &str, until: &str, page: usize, size: usize) -> Value {
    let list: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            json!({ "date": date_of(ch, *day), "campaign_id": ch.id, "view_count": c.impressions,
                    "valid_click_count": c.clicks, "cost": (c.spend * 100.0).round() as i64,
                    "conversions_count": c.conversions, "order_amount": (c.revenue * 100.0).round() as i64 })
        })
        .collect();
    let total = list.len();
    let (list, pages) = numbered(&list, page, size);
    json!({ "code": 0, "message": "", "message_cn": "",
            "data": { "list": list, "page_info": { "page": page, "page_size": size, "total_number": total, "total_page": pages } } })
}

/// Kuaishou's campaign report: money in yuan, zero metrics left out.
pub fn kuaishou(net: &Network, campaign: &str, since: &str, until: &str) -> Value {
    let details: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            let mut row = serde_json::Map::new();
            row.insert("campaign_id".into(), json!(ch.id));
            row.insert("stat_date".into(), json!(date_of(ch, *day)));
            for (k, v) in [
                ("show", json!(c.impressions)),
                ("photo_click", json!(c.clicks)),
                ("form_count", json!(c.leads)),
                ("event_pay", json!(c.conversions)),
                ("charge", json!((c.spend * 100.0).round() / 100.0)),
                ("event_pay_purchase_amount", json!((c.revenue * 100.0).round() / 100.0)),
            ] {
                if v.as_f64().is_some_and(|n| n != 0.0) {
                    row.insert(k.into(), v);
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({ "code": 0, "message": "OK", "data": { "total_count": details.len(), "details": details } })
}

/// An error as TikTok and Ocean Engine answer it: HTTP 200 and a code in the body.
pub fn coded_error(code: i64, message: &str) -> Value {
    json!({ "code": code, "message": message, "request_id": "sim", "data": {} })
}

/// Baidu's real-time report: the figures of each row in the order asked for.
pub fn baidu(net: &Network, campaign: &str, since: &str, until: &str) -> Value {
    let data: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            json!({ "id": ch.id, "date": date_of(ch, *day),
                    "KPIs": [c.impressions.to_string(), c.clicks.to_string(), format!("{:.2}", c.spend), c.conversions.to_string()] })
        })
        .collect();
    json!({ "header": { "desc": "success", "status": 0, "quota": 1 }, "body": { "data": data } })
}

/// Baidu's answer to a request without credentials.
pub fn baidu_error() -> Value {
    json!({ "header": { "desc": "failure", "status": 3, "failures": [{ "code": 8206, "message": "accessToken is invalid" }] }, "body": { "data": [] } })
}

/// GA4's runReport: dimension and metric values positional, dates as YYYYMMDD; sessions are
/// the clicks that landed.
pub fn ga4(net: &Network, campaign: &str, since: &str, until: &str) -> Value {
    let list: Vec<Value> = rows(net, campaign, since, until)
        .iter()
        .map(|(ch, day, c)| {
            json!({ "dimensionValues": [{ "value": date_of(ch, *day).replace('-', "") }, { "value": ch.id }],
                    "metricValues": [{ "value": c.clicks.to_string() }, { "value": c.conversions.to_string() },
                                     { "value": format!("{:.2}", c.revenue) }] })
        })
        .collect();
    let n = list.len();
    json!({ "dimensionHeaders": [{ "name": "date" }, { "name": "sessionCampaignId" }],
            "metricHeaders": [{ "name": "sessions", "type": "TYPE_INTEGER" }, { "name": "conversions", "type": "TYPE_INTEGER" },
                              { "name": "totalRevenue", "type": "TYPE_CURRENCY" }],
            "rows": list, "rowCount": n, "kind": "analyticsData#runReport" })
}

/// Turns on the simulated platform's sign-in (tokens living `ttl`, refresh tokens rotating
/// where the platform rotates them) and gives the credentials a team would configure for it:
/// the platform's own kind, its token endpoint on the simulator, a refresh token granted.
pub fn sign_in(
    server: &super::SimServer,
    dialect: &str,
    ttl: std::time::Duration,
) -> Result<crate::poll::credential::CredentialConf, String> {
    use crate::poll::Secret;
    let preset = crate::domain::source::preset(dialect).ok_or_else(|| format!("no preset '{dialect}'"))?;
    let (kind, path, fields): (&str, &str, &[(&str, &str)]) = match preset.auth.kinds.first().map(String::as_str) {
        Some("oauth2") => {
            ("oauth2", "/oauth2/token", &[("client_id", "sim-client"), ("client_secret", "sim-client-secret")])
        }
        Some("oceanengine") => (
            "oceanengine",
            "/oceanengine/open_api/oauth2/refresh_token/",
            &[("app_id", "1700000000"), ("secret", "sim-app-secret")],
        ),
        Some("tencent-ads") => (
            "tencent-ads",
            "/tencent/oauth/refresh_token",
            &[("client_id", "1112345678"), ("client_secret", "sim-client-secret")],
        ),
        Some("baidu") => (
            "baidu",
            "/baidu/oauth/refreshToken",
            &[("app_id", "b9fe985c39c1bd5a"), ("secret_key", "sim-secret-key"), ("user_id", "49387372")],
        ),
        Some("kuaishou") => (
            "kuaishou",
            "/kuaishou/rest/openapi/oauth2/authorize/refresh_token",
            &[("app_id", "165900000"), ("secret", "sim-app-secret")],
        ),
        _ => {
            return Err(format!(
                "--token-ttl: the simulator renews tokens for google-ads, ga4, oceanengine, tencent-ads, kuaishou and baidu, not {dialect}"
            ));
        }
    };
    let rotating = match crate::domain::source::credential_kind(kind) {
        Some(crate::domain::source::CredentialKind::Refreshed(r)) => r.rotating,
        _ => false,
    };
    let refresh_token = {
        let mut t = server.tokens.lock().unwrap_or_else(|e| e.into_inner());
        t.ttl_ms = Some(ttl.as_millis() as i64);
        t.rotate = rotating;
        t.grant()
    };
    let mut map: std::collections::BTreeMap<String, Secret> =
        fields.iter().map(|(k, v)| (k.to_string(), Secret::new(v))).collect();
    map.insert("refresh_token".into(), Secret::new(&refresh_token));
    map.insert("token_url".into(), Secret::new(&format!("{}{path}", server.base_url())));
    Ok(crate::poll::credential::CredentialConf {
        name: format!("sim-{dialect}"),
        kind: kind.to_string(),
        fields: map,
        place: "the demo".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_conversions_mature_over_two_days() {
        let c = Counters { conversions: 100, revenue: 1000.0, ..Default::default() };
        assert_eq!(reported(&c, 0, 10).conversions, 85);
        assert_eq!(reported(&c, 0, DAY_MS + 10).conversions, 95);
        assert_eq!(reported(&c, 0, 3 * DAY_MS).conversions, 100);
        assert_eq!(reported(&c, 0, 3 * DAY_MS).revenue, 1000.0);
    }
}
