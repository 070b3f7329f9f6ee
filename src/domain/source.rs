//! How a channel's numbers are read: the source's `format` and, for anything but the cockpit's
//! own protocol, a declarative request and mapping. A preset is only a mapping shipped with
//! the program (`src/domain/presets/*.toml`); a channel names one and overrides what it
//! needs, field by field. Nothing here fetches: `poll` compiles and applies what is declared.
//!
//! A mapping selects the rows of an answer with one JMESPath expression, and gives per row its
//! id (matched against the channel's `source_id`), its period (for `rows` sources) and each
//! counter. Numbers may come as strings; `scale` turns micros into units. Modes:
//! - `cumulative`: counters since the channel started (as the cockpit protocol);
//! - `window`: totals since the campaign started, asked for with `{since}` = its first day;
//! - `rows`: one row per day (or hour); each (channel, period) is kept, the counter is their
//!   sum, and every poll asks for the last `restate_days` periods again and replaces them, so a
//!   restated day changes the total by the difference, never by the sum. Each period's figures
//!   are kept on the period itself, in the source's `time_zone`; a period is provisional for
//!   `settle_hours` after its end (counted, not judged by the alert rules).
//!
//! A counter's expression that finds nothing in any row of an answer is bad data naming it and
//! what the rows hold, unless the counter is one the platform leaves out when it is zero
//! (`zero_when_absent`) and no name in the rows is a likely slip for it. A counter with no
//! expression is not read: unknown, never zero.
//!
//! `csv` reads a directory of exported reports (`source = "file:///path/to/exports"`): the
//! mapping's fields are column names, one row per channel and day; `encoding` and
//! `date_format` say how the files are written (see `poll::csvdir`). Files are read once their
//! size and time have stood still for a moment (a file still being written is never read
//! half); a later file's row for a (channel, day) replaces an earlier one's, and a file removed
//! keeps what it contributed until another gives those days again.
//!
//! `prometheus` reads a Prometheus-compatible `/api/v1/query` (Prometheus, VictoriaMetrics,
//! Mimir, Thanos; `source` is its base URL): each counter of the mapping is a PromQL instant
//! query, e.g. `sum by (channel) (ad_spend_total{campaign="618"})`, and `id` names the label
//! whose value is the channel's `source_id` (`channel` by default). Counters are cumulative,
//! counted from the campaign's start (the first reading asks a range query what they gained
//! since); a query naming a metric Prometheus has never seen is bad data.
//!
//! Request values may use `{since}`, `{until}`, `{today}` (dates in the campaign's time zone,
//! `YYYY-MM-DD`) and `{secret:NAME}` (from the environment or `[secrets]` in `config.toml`;
//! never from the campaign file).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The counters a mapping fills, in the order of `Counters`.
pub const COUNTERS: [&str; 6] = ["impressions", "clicks", "leads", "conversions", "spend", "revenue"];

/// How a source's counters relate to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Cumulative,
    Window,
    Rows,
}

/// The length of a `rows` source's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PeriodLength {
    #[default]
    Day,
    Hour,
}

/// A counter's expression, with a factor for units such as micros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Field {
    Expr(String),
    Scaled { expr: String, scale: f64 },
}

impl Field {
    pub fn expr(&self) -> &str {
        match self {
            Field::Expr(e) | Field::Scaled { expr: e, .. } => e,
        }
    }

    pub fn scale(&self) -> f64 {
        match self {
            Field::Expr(_) => 1.0,
            Field::Scaled { scale, .. } => *scale,
        }
    }
}

/// Where the rows are and what each field of a row is. Every field is optional so that a
/// channel can override a preset's fields one by one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_length: Option<PeriodLength>,
    /// `rows` sources: how many of the latest periods every poll asks for again (7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restate_days: Option<u32>,
    /// `rows` sources: how many hours after its end a period's figures stop moving (the
    /// platform's reporting delay; 0 for exports of closed days). Until then a period counts
    /// in the totals as provisional, and the alert rules do not judge it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_hours: Option<u32>,
    /// Selects the rows of one page of the answer (an array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<String>,
    /// Per row: the platform's id of what the row is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Per row (`rows` mode): the period's start, `YYYY-MM-DD`, `YYYYMMDD`, `YYYY-MM-DD HH:MM:SS`
    /// or RFC 3339; dates are in the campaign's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The time zone the platform's days and hours are in: an IANA name (`America/Los_Angeles`,
    /// `Asia/Shanghai`; its offset follows daylight saving time) or an offset (`+08:00`). The
    /// campaign's offset by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// How the period is written, as strftime (`%Y/%m/%d`, `%Y%m%d`, `%d/%m/%Y`,
    /// `%Y-%m-%d %H:%M`), where it is none of the forms read without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
    /// `csv` sources: the files' text encoding (`utf-8`, `gbk`, `gb18030`, `utf-16`); without
    /// it a byte-order mark decides, then UTF-8, then GB18030 where the mapping's column
    /// names are found with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Counters the platform leaves out of a row when they are zero (Meta omits `actions`
    /// with nothing in them; Google Ads omits zero metrics): found in no row, they are 0. Any
    /// other counter found in no row of an answer is a mapping that reads nothing, and bad data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_when_absent: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impressions: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicks: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Field>,
}

impl Mapping {
    /// `self` with the fields `over` sets replacing its own.
    pub fn merged(&self, over: &Mapping) -> Mapping {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        let field = |a: &Option<Field>, b: &Option<Field>| b.clone().or_else(|| a.clone());
        Mapping {
            mode: over.mode.or(self.mode),
            period_length: over.period_length.or(self.period_length),
            restate_days: over.restate_days.or(self.restate_days),
            settle_hours: over.settle_hours.or(self.settle_hours),
            rows: pick(&self.rows, &over.rows),
            id: pick(&self.id, &over.id),
            period: pick(&self.period, &over.period),
            date_format: pick(&self.date_format, &over.date_format),
            time_zone: pick(&self.time_zone, &over.time_zone),
            encoding: pick(&self.encoding, &over.encoding),
            zero_when_absent: over.zero_when_absent.clone().or_else(|| self.zero_when_absent.clone()),
            impressions: field(&self.impressions, &over.impressions),
            clicks: field(&self.clicks, &over.clicks),
            leads: field(&self.leads, &over.leads),
            conversions: field(&self.conversions, &over.conversions),
            spend: field(&self.spend, &over.spend),
            revenue: field(&self.revenue, &over.revenue),
        }
    }

    /// Sets the field of the counter called `name`.
    pub fn set_counter(&mut self, name: &str, f: Option<Field>) {
        match name {
            "impressions" => self.impressions = f,
            "clicks" => self.clicks = f,
            "leads" => self.leads = f,
            "conversions" => self.conversions = f,
            "spend" => self.spend = f,
            _ => self.revenue = f,
        }
    }

    /// The counters' fields by name, in the order of `COUNTERS`.
    pub fn counters(&self) -> [(&'static str, Option<&Field>); 6] {
        [
            ("impressions", self.impressions.as_ref()),
            ("clicks", self.clicks.as_ref()),
            ("leads", self.leads.as_ref()),
            ("conversions", self.conversions.as_ref()),
            ("spend", self.spend.as_ref()),
            ("revenue", self.revenue.as_ref()),
        ]
    }

    /// Every expression with the name of its field.
    pub fn expressions(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (name, e) in [("rows", &self.rows), ("id", &self.id), ("period", &self.period)] {
            if let Some(e) = e {
                out.push((name, e.as_str()));
            }
        }
        out.extend(self.counters().into_iter().filter_map(|(n, f)| f.map(|f| (n, f.expr()))));
        out
    }
}

/// How further pages are asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    /// An expression giving the next page's full URL (`paging.next`); none ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// An expression giving a cursor, sent as the query parameter `param` (`after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Numbered pages: the page number's parameter, counted from 1, until `total_pages`
    /// (an expression) or a page with no rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<String>,
    /// Pages read per poll at most (50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
}

/// The request a source is read with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `GET` (the default) or `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A body template (JSON, for POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
    /// The platform's API version, `{version}` in the source URL and the request: the
    /// preset's (the newest its platform documents), else `[presets.NAME] version` of
    /// `config.toml`, else this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Request {
    /// `self` with what `over` sets replacing its own (query and headers key by key).
    pub fn merged(&self, over: &Request) -> Request {
        let mut query = self.query.clone();
        query.extend(over.query.clone());
        let mut headers = self.headers.clone();
        headers.extend(over.headers.clone());
        Request {
            method: over.method.clone().or_else(|| self.method.clone()),
            query,
            headers,
            body: over.body.clone().or_else(|| self.body.clone()),
            paging: over.paging.clone().or_else(|| self.paging.clone()),
            version: over.version.clone().or_else(|| self.version.clone()),
        }
    }

    /// Every value that may hold a placeholder, with where it sits.
    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        out.extend(self.query.iter().map(|(k, v)| (format!("request.query.{k}"), v.as_str())));
        out.extend(self.headers.iter().map(|(k, v)| (format!("request.headers.{k}"), v.as_str())));
        if let Some(b) = &self.body {
            out.push(("request.body".into(), b.as_str()));
        }
        out
    }
}

/// A preset: the request and mapping of one platform's reporting API, and how it signs in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// What the channel's `source` URL must be, in words (shown when it looks wrong).
    pub source: String,
    /// A line that the platform's error answers carry, to name them ("Google Ads").
    pub platform: String,
    #[serde(default)]
    pub request: Request,
    pub mapping: Mapping,
    #[serde(default)]
    pub auth: Auth,
    /// How many requests the platform allows.
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// A platform's request quota, shared by every source that signs in the same way (one
/// credential, or one secret): polling is spread so that a day's polls fit in it.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    #[serde(default)]
    pub per_day: Option<u64>,
    #[serde(default)]
    pub per_minute: Option<u64>,
    /// What the quota is, in the platform's words ("Basic access: 15,000 operations a day").
    pub about: String,
}

/// How a platform's requests carry their access token, and how its tokens are renewed.
///
/// `{token}` in a request is the access token of the channel's `credentials` (a
/// `[credentials.NAME]` of `config.toml`, renewed as its kind says), or, for a channel that
/// names none, the value of the secret `secret` (`{secret:NAME}` as before).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// The secret `{token}` stands for when the channel names no credentials.
    #[serde(default)]
    pub secret: Option<String>,
    /// The credential kinds that sign in to this platform (`oauth2`, this preset's own name…),
    /// the first being the one `auth login` and the docs suggest.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Error codes in an answer that mean the access token was refused (expired, revoked),
    /// besides HTTP 401: the token is renewed and the request sent once more.
    #[serde(default)]
    pub refused_codes: Vec<i64>,
    /// How a refresh token becomes an access token on this platform: the credential kind
    /// named after the preset.
    #[serde(default)]
    pub refresh: Option<Refresh>,
}

/// A refresh request and how its answer is read, declared like a report mapping. Values may
/// use `{FIELD}` (a field of the credential: `client_id`, `refresh_token`…), `{timestamp}`
/// (unix seconds) and `{nonce}` (unique per request); in `body`, a JSON template, the values
/// are filled in JSON-escaped.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// The token endpoint; a credential's `token_url` overrides it.
    pub token_url: String,
    /// The fields a credential of this kind must give.
    pub fields: Vec<String>,
    /// The fields it may give (sent when given).
    #[serde(default)]
    pub optional: Vec<String>,
    /// `POST` (the default) or `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// A form-encoded body (`application/x-www-form-urlencoded`), parameter by parameter; a
    /// parameter whose only placeholder is an optional field not given is left out.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// A JSON body template.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Expressions into the answer: the access token, its lifetime in seconds, the new refresh
    /// token and its lifetime.
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_expires_in: Option<String>,
    /// Each refresh returns a new refresh token and invalidates the old one.
    #[serde(default)]
    pub rotating: bool,
    /// Expressions giving the error's code (absent, 0 or empty on success) and its message.
    pub error: String,
    #[serde(default)]
    pub message: Option<String>,
    /// Error codes that mean the refresh token itself is refused for good (expired, revoked,
    /// already used): signing in again is the way out.
    #[serde(default)]
    pub refused: Vec<String>,
    /// How a person signs in to get the first refresh token (`cockpit auth login`).
    #[serde(default)]
    pub login: Option<Box<Login>>,
}

/// Signing in: the consent page a person opens, and the exchange of the code it hands back
/// for tokens. `authorize_url` may use the credential's fields, `{redirect_uri}`, `{state}`
/// and `{code_challenge}` (PKCE, S256); the exchange, declared like a refresh, `{code}`,
/// `{redirect_uri}` and `{code_verifier}` besides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub authorize_url: String,
    /// The redirect's query parameter holding the code (`code`; Ocean Engine `auth_code`).
    #[serde(default = "default_code_param")]
    pub code_param: String,
    pub exchange: Refresh,
}

fn default_code_param() -> String {
    "code".into()
}

impl Refresh {
    /// Every expression with the name of its field, to compile.
    pub fn expressions(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("access_token", self.access_token.as_str()), ("error", self.error.as_str())];
        for (n, e) in [
            ("expires_in", &self.expires_in),
            ("refresh_token", &self.refresh_token),
            ("refresh_expires_in", &self.refresh_expires_in),
            ("message", &self.message),
        ] {
            if let Some(e) = e {
                out.push((n, e.as_str()));
            }
        }
        out
    }
}

/// The standard OAuth 2.0 refresh-token grant (RFC 6749 §6), as Google, and most platforms
/// that follow the standard, answer it: the credential kind `oauth2`.
pub const OAUTH2: &str = r#"
token_url = "https://oauth2.googleapis.com/token"
fields = ["client_id", "client_secret", "refresh_token"]
optional = ["scope"]
form.grant_type = "refresh_token"
form.client_id = "{client_id}"
form.client_secret = "{client_secret}"
form.refresh_token = "{refresh_token}"
form.scope = "{scope}"
access_token = "access_token"
expires_in = "expires_in"
refresh_token = "refresh_token"
refresh_expires_in = "refresh_token_expires_in"
error = "error"
message = "error_description"
refused = ["invalid_grant", "invalid_client", "unauthorized_client"]

[login]
authorize_url = "https://accounts.google.com/o/oauth2/v2/auth?client_id={client_id}&redirect_uri={redirect_uri}&response_type=code&scope={scope}&access_type=offline&prompt=consent&state={state}&code_challenge={code_challenge}&code_challenge_method=S256"

[login.exchange]
token_url = "https://oauth2.googleapis.com/token"
fields = ["client_id", "client_secret"]
form.grant_type = "authorization_code"
form.client_id = "{client_id}"
form.client_secret = "{client_secret}"
form.code = "{code}"
form.redirect_uri = "{redirect_uri}"
form.code_verifier = "{code_verifier}"
access_token = "access_token"
expires_in = "expires_in"
refresh_token = "refresh_token"
refresh_expires_in = "refresh_token_expires_in"
error = "error"
message = "error_description"
refused = ["invalid_grant", "invalid_client", "unauthorized_client"]
"#;

/// What a credential kind is: a fixed token, or a refresh as declared.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialKind {
    /// `static` (`token`), `meta` (a system-user or long-lived user token, `token` and
    /// optionally `expires`): sent as given; warned about before `expires`.
    Fixed,
    /// A refresh token renewed as declared (`oauth2`, or a platform preset's own).
    Refreshed(Box<Refresh>),
    /// `google-service-account`: a JWT assertion signed with the key of `key_file`, exchanged
    /// for an access token (no refresh token to keep).
    ServiceAccount,
}

/// The credential kinds, by name: `static`, `meta`, `oauth2`, `google-service-account`, and
/// each preset with a `refresh` of its own.
pub fn credential_kind(name: &str) -> Option<CredentialKind> {
    match name {
        "static" | "meta" => Some(CredentialKind::Fixed),
        "google-service-account" => Some(CredentialKind::ServiceAccount),
        "oauth2" => {
            let r: Refresh = toml::from_str(OAUTH2).expect("the built-in oauth2 kind parses");
            Some(CredentialKind::Refreshed(Box::new(r)))
        }
        other => preset(other).and_then(|p| p.auth.refresh).map(|r| CredentialKind::Refreshed(Box::new(r))),
    }
}

/// The names `credential_kind` knows.
pub fn credential_kind_names() -> Vec<&'static str> {
    let mut names = vec!["static", "meta", "oauth2", "google-service-account"];
    names.extend(PRESETS.iter().filter(|(n, _)| preset(n).is_some_and(|p| p.auth.refresh.is_some())).map(|(n, _)| *n));
    names
}

/// The presets shipped with the program, by name, as TOML.
pub const PRESETS: &[(&str, &str)] = &[
    ("meta-insights", include_str!("presets/meta-insights.toml")),
    ("google-ads", include_str!("presets/google-ads.toml")),
    ("tiktok", include_str!("presets/tiktok.toml")),
    ("oceanengine", include_str!("presets/oceanengine.toml")),
    ("baidu", include_str!("presets/baidu.toml")),
    ("ga4", include_str!("presets/ga4.toml")),
    ("tencent-ads", include_str!("presets/tencent-ads.toml")),
    ("kuaishou", include_str!("presets/kuaishou.toml")),
];

/// API versions pinned for every channel of a preset (`[presets.NAME] version` in
/// `config.toml`), set once at start.
static PINNED_VERSIONS: std::sync::RwLock<BTreeMap<String, String>> = std::sync::RwLock::new(BTreeMap::new());

/// Pins presets' API versions (preset name → version) for every channel that sets none.
pub fn pin_versions(pins: BTreeMap<String, String>) {
    *PINNED_VERSIONS.write().unwrap_or_else(|e| e.into_inner()) = pins;
}

/// The preset called `name` (each parsed once, on first use), with its pinned version.
pub fn preset(name: &str) -> Option<Preset> {
    let mut p = shipped_preset(name)?;
    if let Some(v) = PINNED_VERSIONS.read().unwrap_or_else(|e| e.into_inner()).get(name) {
        p.request.version = Some(v.clone());
    }
    Some(p)
}

/// The preset called `name` as shipped.
pub fn shipped_preset(name: &str) -> Option<Preset> {
    static PARSED: std::sync::OnceLock<Vec<(&'static str, Preset)>> = std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        PRESETS
            .iter()
            .map(|(n, text)| (*n, toml::from_str(text).unwrap_or_else(|e| panic!("preset {n} is malformed: {e}"))))
            .collect()
    });
    parsed.iter().find(|(n, _)| *n == name).map(|(_, p)| p.clone())
}

/// The format names a channel may give.
pub fn format_names() -> Vec<&'static str> {
    let mut names = vec!["cockpit", "json", "csv", "prometheus"];
    names.extend(PRESETS.iter().map(|(n, _)| *n));
    names
}

/// A channel's source as it will be read: the format's preset (if any) with the channel's
/// overrides on top. `None` for the cockpit's own protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub format: String,
    pub platform: Option<String>,
    pub request: Request,
    pub mapping: Mapping,
    /// The preset's sign-in (empty for `json`, `csv`, `prometheus`).
    pub auth: Auth,
    pub quota: Option<Quota>,
}

/// Resolves a channel's `format`, `request` and `mapping`; an error names the field.
pub fn resolve(
    format: Option<&str>,
    request: Option<&Request>,
    mapping: Option<&Mapping>,
) -> Result<Option<Resolved>, (String, String)> {
    let name = format.unwrap_or("cockpit");
    let mut auth = Auth::default();
    let mut quota = None;
    let (base_request, base_mapping, platform) = match name {
        "cockpit" => {
            if request.is_some() || mapping.is_some() {
                return Err(("format".into(), "request and mapping need a format such as \"json\" or a preset".into()));
            }
            return Ok(None);
        }
        "json" => (Request::default(), Mapping::default(), None),
        "csv" => (
            Request::default(),
            Mapping { mode: Some(Mode::Rows), period_length: Some(PeriodLength::Day), ..Mapping::default() },
            Some("CSV export".to_string()),
        ),
        "prometheus" => (
            Request::default(),
            Mapping { id: Some("channel".into()), mode: Some(Mode::Cumulative), ..Mapping::default() },
            Some("Prometheus".to_string()),
        ),
        other => match preset(other) {
            Some(p) => {
                auth = p.auth;
                quota = p.quota;
                (p.request, p.mapping, Some(p.platform))
            }
            None => {
                return Err((
                    "format".into(),
                    format!("unknown format '{other}' (known: {})", format_names().join(", ")),
                ));
            }
        },
    };
    let request = request.map_or(base_request.clone(), |r| base_request.merged(r));
    let mapping = mapping.map_or(base_mapping.clone(), |m| base_mapping.merged(m));
    let resolved = Resolved { format: name.to_string(), platform, request, mapping, auth, quota };
    resolved.check()?;
    Ok(Some(resolved))
}

impl Resolved {
    pub fn mode(&self) -> Mode {
        self.mapping.mode.unwrap_or_default()
    }

    /// Every expression compiles, the fields a mode needs are there, placeholders are known.
    fn check(&self) -> Result<(), (String, String)> {
        let m = &self.mapping;
        if let Some(f) = &m.date_format
            && (f.trim().is_empty()
                || chrono::format::StrftimeItems::new(f).any(|i| matches!(i, chrono::format::Item::Error)))
        {
            return Err(("mapping.date_format".into(), format!("'{f}' is not a strftime format (like %Y/%m/%d)")));
        }
        if let Some(z) = &m.time_zone
            && crate::domain::time::Zone::parse(z).is_none()
        {
            return Err((
                "mapping.time_zone".into(),
                format!("'{z}' is neither an IANA time zone (like America/Los_Angeles) nor an offset (like +08:00)"),
            ));
        }
        for name in m.zero_when_absent.iter().flatten() {
            if !COUNTERS.contains(&name.as_str()) {
                return Err((
                    "mapping.zero_when_absent".into(),
                    format!("'{name}' is not a counter (counters: {})", COUNTERS.join(", ")),
                ));
            }
        }
        if let Some(e) = &m.encoding {
            if self.format != "csv" {
                return Err(("mapping.encoding".into(), "is for csv sources (answers over HTTP say theirs)".into()));
            }
            if encoding_rs::Encoding::for_label(e.trim().as_bytes()).is_none() {
                return Err((
                    "mapping.encoding".into(),
                    format!(
                        "unknown encoding '{e}' (known: utf-8, gbk, gb18030, utf-16, utf-16be, big5, shift_jis, windows-1252, …)"
                    ),
                ));
            }
        }
        if self.format == "csv" {
            if m.id.is_none() || (self.mode() == Mode::Rows && m.period.is_none()) {
                return Err((
                    "mapping".into(),
                    "a csv source needs the columns of id and (in rows mode) period".into(),
                ));
            }
            if m.counters().iter().all(|(_, f)| f.is_none()) {
                return Err(("mapping".into(), format!("names no column for any of {}", COUNTERS.join(", "))));
            }
            return Ok(());
        }
        if self.format == "prometheus" {
            if m.counters().iter().all(|(_, f)| f.is_none()) {
                return Err(("mapping".into(), format!("gives no PromQL query for any of {}", COUNTERS.join(", "))));
            }
            if self.mode() != Mode::Cumulative {
                return Err(("mapping.mode".into(), "Prometheus counters are cumulative".into()));
            }
            return Ok(());
        }
        for (name, present) in [("rows", m.rows.is_some()), ("id", m.id.is_some())] {
            if !present {
                return Err((format!("mapping.{name}"), "is needed: an expression".into()));
            }
        }
        if self.mode() == Mode::Rows && m.period.is_none() {
            return Err(("mapping.period".into(), "is needed in rows mode: the row's day or hour".into()));
        }
        if m.counters().iter().all(|(_, f)| f.is_none()) {
            return Err(("mapping".into(), format!("maps no counter (any of {})", COUNTERS.join(", "))));
        }
        for (name, expr) in m.expressions() {
            if let Err(e) = jmespath::compile(expr) {
                return Err((format!("mapping.{name}"), format!("`{expr}`: {}", first_line(&e.to_string()))));
            }
        }
        for (name, f) in m.counters() {
            if let Some(f) = f
                && !(f.scale().is_finite() && f.scale() > 0.0)
            {
                return Err((format!("mapping.{name}"), "scale must be a positive number".into()));
            }
        }
        if let Some(p) = &self.request.paging {
            for (name, e) in [("next", &p.next), ("cursor", &p.cursor), ("total_pages", &p.total_pages)] {
                if let Some(e) = e
                    && let Err(err) = jmespath::compile(e)
                {
                    return Err((format!("request.paging.{name}"), format!("`{e}`: {}", first_line(&err.to_string()))));
                }
            }
            if p.cursor.is_some() != p.param.is_some() {
                return Err((
                    "request.paging".into(),
                    "a cursor needs its query parameter (param) and the other way round".into(),
                ));
            }
        }
        if let Some(m) = &self.request.method
            && !matches!(m.as_str(), "GET" | "POST")
        {
            return Err(("request.method".into(), format!("'{m}': GET or POST")));
        }
        for (place, t) in self.request.templates() {
            if let Err(bad) = check_template(t) {
                return Err((
                    place,
                    format!(
                        "unknown placeholder {{{bad}}} (use since, until, today, token, timestamp, nonce, version, secret:NAME, secret?:NAME or source:PARAM)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The placeholders a request fills: its dates, the access token, the time and a nonce.
pub const REQUEST_PLACEHOLDERS: [&str; 7] = ["since", "until", "today", "token", "timestamp", "nonce", "version"];

/// The placeholders of a template: `Ok` when each is one we fill.
fn check_template(t: &str) -> Result<(), String> {
    for name in placeholders(t) {
        let prefixed = ["secret:", "secret?:", "source:"].iter().any(|p| name.starts_with(p));
        if !REQUEST_PLACEHOLDERS.contains(&name) && !prefixed {
            return Err(name.to_string());
        }
    }
    Ok(())
}

/// The `{name}` placeholders of a template (JSON braces around them are not placeholders).
pub fn placeholders(t: &str) -> impl Iterator<Item = &str> {
    t.match_indices('{').filter_map(move |(i, _)| {
        let after = &t[i + 1..];
        let name = &after[..after.find('}')?];
        let plain =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '?'));
        plain.then_some(name)
    })
}

fn first_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_checks() {
        for (name, _) in PRESETS {
            let r = resolve(Some(name), None, None).unwrap_or_else(|e| panic!("{name}: {e:?}")).unwrap();
            assert_eq!(r.format, *name);
            assert!(r.platform.is_some());
        }
    }

    #[test]
    fn every_credential_kind_parses_and_its_expressions_compile() {
        for name in credential_kind_names() {
            let kind = credential_kind(name).unwrap_or_else(|| panic!("{name}"));
            if let CredentialKind::Refreshed(r) = kind {
                for (field, e) in r.expressions() {
                    jmespath::compile(e).unwrap_or_else(|err| panic!("{name}: {field} `{e}`: {err}"));
                }
                assert!(!r.fields.is_empty() && r.fields.iter().any(|f| f == "refresh_token"), "{name}");
            }
        }
        assert!(credential_kind("nope").is_none());
    }

    #[test]
    fn a_channel_overrides_a_preset_field_by_field() {
        let over = Mapping {
            leads: Some(Field::Expr("actions[?action_type=='offsite_lead'].value | [0]".into())),
            ..Default::default()
        };
        let r = resolve(Some("meta-insights"), None, Some(&over)).unwrap().unwrap();
        assert_eq!(r.mapping.leads.as_ref().unwrap().expr(), "actions[?action_type=='offsite_lead'].value | [0]");
        assert!(r.mapping.spend.is_some(), "the preset's other fields stay");
    }

    #[test]
    fn bad_mappings_name_the_field() {
        let bad = Mapping { clicks: Some(Field::Expr("clicks[".into())), ..Default::default() };
        let (field, msg) = resolve(Some("meta-insights"), None, Some(&bad)).unwrap_err();
        assert_eq!(field, "mapping.clicks");
        assert!(msg.contains("`clicks[`"), "{msg}");
        let (field, msg) = resolve(Some("nope"), None, None).unwrap_err();
        assert_eq!(field, "format");
        assert!(msg.contains("meta-insights"), "{msg}");
        let (field, _) =
            resolve(Some("json"), None, Some(&Mapping { rows: Some("data".into()), ..Default::default() }))
                .unwrap_err();
        assert_eq!(field, "mapping.id");
        let req = Request { query: [("x".to_string(), "{yesterday}".to_string())].into(), ..Default::default() };
        let (field, msg) = resolve(Some("meta-insights"), Some(&req), None).unwrap_err();
        assert_eq!((field.as_str(), msg.contains("{yesterday}")), ("request.query.x", true));
    }
}
