//! Credentials that renew themselves: `[credentials.NAME]` of `config.toml`, each of a kind
//! (`domain::source::credential_kind`) — a fixed token, a refresh token renewed by a refresh
//! request declared in the platform's preset (or the standard OAuth 2.0 grant), or a Google
//! service account's signed assertion.
//!
//! Every source naming a credential shares one `Credential`: one refresh at a time, whoever
//! asks. An access token is renewed ahead of its expiry (at 75–85 % of its lifetime) and once
//! more when a platform refuses it. A refresh runs under the credential store's lock and
//! reads the store again first (another process may have refreshed); a rotated refresh token
//! is stored durably before the new access token is used (`credstore`). A refresh the
//! platform refuses for good (`invalid_grant`, a revoked or expired refresh token) is
//! `unauthorized`, naming the credential and the way out, and is not tried again until the
//! credential changes (a new refresh token in `config.toml`, or `auth login`).

use super::credstore::{self, Entry, Store};
use super::{PollError, Secret, root_cause};
use crate::domain::source::{CredentialKind, Refresh, credential_kind, credential_kind_names};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Unix ms now: real time, or a test's clock.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The real clock.
pub fn wall_clock() -> Now {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// How long a refresh request may take.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// A `[credentials.NAME]` as written.
#[derive(Debug, Clone)]
pub struct CredentialConf {
    pub name: String,
    pub kind: String,
    /// Every other field (`client_id`, `refresh_token`, `token_url`, `key_file`…).
    pub fields: BTreeMap<String, Secret>,
    /// Where it is written, for errors: `config.toml:12`.
    pub place: String,
}

/// What a credential is doing, for `auth list` (never a secret).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub kind: String,
    pub access_expires_ms: Option<i64>,
    pub refresh_expires_ms: Option<i64>,
    /// For a fixed token: when it expires, as configured (`expires`).
    pub token_expires_ms: Option<i64>,
    pub refreshed_ms: Option<i64>,
    pub refreshes: u64,
    pub last_error: Option<String>,
    pub unauthorized: bool,
}

/// The credentials of `config.toml`, by name.
#[derive(Default, Clone)]
pub struct Registry {
    creds: BTreeMap<String, Arc<Credential>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.creds.keys()).finish()
    }
}

impl PartialEq for Registry {
    fn eq(&self, o: &Self) -> bool {
        self.creds.keys().eq(o.creds.keys())
    }
}

impl Registry {
    /// Checks every credential (its kind known, its fields there); an error names the place
    /// and the field.
    pub fn new(confs: Vec<CredentialConf>, store: Option<Store>, now: Now) -> Result<Registry, String> {
        let client = super::client();
        let mut creds = BTreeMap::new();
        for c in confs {
            let cred = Credential::new(c, store.clone(), now.clone(), client.clone())?;
            creds.insert(cred.name.clone(), Arc::new(cred));
        }
        Ok(Registry { creds })
    }

    /// Adds a credential (checked as `new` does).
    pub fn insert(&mut self, conf: CredentialConf, store: Option<Store>, now: Now) -> Result<(), String> {
        let cred = Credential::new(conf, store, now, super::client())?;
        self.creds.insert(cred.name.clone(), Arc::new(cred));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Credential>> {
        self.creds.get(name).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Credential>> {
        self.creds.values()
    }

    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }
}

/// The current access token and when to renew it.
#[derive(Default)]
struct Live {
    access: Option<Secret>,
    /// Unix ms: renew from then on.
    renew_at_ms: i64,
    /// The refresh token in use, when the store cannot be written (kept so the chain is not
    /// lost while this process runs).
    refresh_token: Option<String>,
    /// When the refresh token in use expires (unix ms), as last heard.
    refresh_expires_ms: Option<i64>,
}

/// One credential, shared by every source that names it.
pub struct Credential {
    pub name: String,
    pub kind_name: String,
    kind: CredentialKind,
    fields: BTreeMap<String, Secret>,
    token_url: Option<String>,
    place: String,
    store: Option<Store>,
    now: Now,
    client: reqwest::Client,
    live: tokio::sync::Mutex<Live>,
}

/// Why a refresh failed.
enum Failed {
    /// For good: sign in again.
    Refused(String),
    /// For now: try again later.
    Transient(String),
}

impl Credential {
    fn new(c: CredentialConf, store: Option<Store>, now: Now, client: reqwest::Client) -> Result<Credential, String> {
        let kind = credential_kind(&c.kind).ok_or_else(|| {
            format!(
                "{}: credentials.{}.kind: unknown kind '{}' (known: {})",
                c.place,
                c.name,
                c.kind,
                credential_kind_names().join(", ")
            )
        })?;
        let need: Vec<&str> = match &kind {
            CredentialKind::Fixed => vec!["token"],
            CredentialKind::ServiceAccount => vec!["key_file", "scope"],
            // A kind one signs in to may get its refresh token from `auth login`.
            CredentialKind::Refreshed(r) => {
                r.fields.iter().map(String::as_str).filter(|f| r.login.is_none() || *f != "refresh_token").collect()
            }
        };
        for f in need {
            if c.fields.get(f).is_none_or(|v| v.expose().trim().is_empty()) {
                return Err(format!(
                    "{}: credentials.{}: `{f}` is missing (kind {} needs it)",
                    c.place, c.name, c.kind
                ));
            }
        }
        if let Some(e) = c.fields.get("expires")
            && parse_expiry(e.expose()).is_none()
        {
            return Err(format!(
                "{}: credentials.{}.expires: expected a date like 2027-02-01 or 2027-02-01T00:00:00+08:00",
                c.place, c.name
            ));
        }
        let token_url = c.fields.get("token_url").map(|s| s.expose().to_string());
        if let Some(u) = &token_url
            && url::Url::parse(u).is_err()
        {
            return Err(format!("{}: credentials.{}.token_url: '{u}' is not a URL", c.place, c.name));
        }
        Ok(Credential {
            name: c.name,
            kind_name: c.kind,
            kind,
            fields: c.fields,
            token_url,
            place: c.place,
            store,
            now,
            client,
            live: tokio::sync::Mutex::new(Live::default()),
        })
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|s| s.expose().trim()).filter(|s| !s.is_empty())
    }

    /// What needs doing before the credentials stop working, when that is within
    /// `WARN_BEFORE_MS` of `now`: the refresh token, or a fixed token's `expires`.
    pub async fn expiring(&self) -> Option<String> {
        let now = (self.now)();
        let (what, at) = match self.kind {
            CredentialKind::Fixed => ("token", self.field("expires").and_then(parse_expiry)?),
            _ => ("refresh token", self.live.lock().await.refresh_expires_ms?),
        };
        expiry_warning(&self.name, what, at, now).map(|w| format!("credentials '{}': {w}", self.name))
    }

    /// Whether a refused access token can be renewed (else it is `unauthorized` at once).
    pub fn renews(&self) -> bool {
        !matches!(self.kind, CredentialKind::Fixed)
    }

    /// The access token to send now, renewed first when it is due.
    pub async fn access_token(&self) -> Result<Secret, PollError> {
        let mut live = self.live.lock().await;
        if let CredentialKind::Fixed = self.kind {
            return Ok(Secret::new(self.field("token").unwrap_or_default()));
        }
        if let Some(a) = &live.access
            && (self.now)() < live.renew_at_ms
        {
            return Ok(a.clone());
        }
        self.renew_locked(&mut live, None, false).await
    }

    /// The platform refused `used`: a new access token, unless another request renewed it
    /// meanwhile (then that one).
    pub async fn renew(&self, used: &Secret) -> Result<Secret, PollError> {
        let mut live = self.live.lock().await;
        if !self.renews() {
            return Err(self.unauthorized("the platform refused the token; set a new one"));
        }
        if let Some(a) = &live.access
            && a != used
        {
            return Ok(a.clone());
        }
        self.renew_locked(&mut live, Some(used), false).await
    }

    /// Renews now, whatever is due (`auth test`).
    pub async fn renew_now(&self) -> Result<(), PollError> {
        let mut live = self.live.lock().await;
        if !self.renews() {
            return Ok(());
        }
        live.access = None;
        self.renew_locked(&mut live, None, true).await.map(|_| ())
    }

    fn unauthorized(&self, why: &str) -> PollError {
        PollError::Unauthorized(format!(
            "credentials '{}' ({}): {why}; sign in again with `cockpit auth login {}`, or put a new one in {}",
            self.name, self.kind_name, self.name, self.place
        ))
    }

    /// Under the credential store's lock: reads it again, takes what another process got if
    /// it is still good (unless `force`), else refreshes and stores the result before using it.
    async fn renew_locked(&self, live: &mut Live, refused: Option<&Secret>, force: bool) -> Result<Secret, PollError> {
        let store = self.store.clone();
        let (held, mut doc) = match &store {
            Some(s) => {
                let (h, d) = hold_and_read(s).await?;
                (Some(h), d)
            }
            None => (None, credstore::Doc::default()),
        };
        credstore::fault_point("credential-locked");
        let now = (self.now)();
        let entry = doc.credentials.entry(self.name.clone()).or_default();
        // A refresh token changed by hand in config.toml wins over the stored one.
        if let Some(given) = self.field("refresh_token") {
            let d = credstore::digest(given);
            if entry.seeded_from.as_deref() != Some(&d) {
                *entry = Entry { refresh_token: Some(given.to_string()), seeded_from: Some(d), ..Entry::default() };
                live.refresh_token = None;
            }
        }
        // Another process may have renewed it meanwhile.
        if let (Some(a), Some(exp), false) = (&entry.access_token, entry.access_expires_ms, force) {
            // Refused: any other token still alive; due: one renewed since it was last due.
            let fresh = match refused {
                Some(r) => r.expose() != a && now < exp,
                None => now < earliest_renewal(entry.refreshed_ms.unwrap_or(now), exp),
            };
            if fresh {
                let token = Secret::new(a);
                live.refresh_expires_ms = entry.refresh_expires_ms;
                live.access = Some(token.clone());
                live.renew_at_ms = renew_at(entry.refreshed_ms.unwrap_or(now), exp);
                return Ok(token);
            }
        }
        if entry.refused {
            return Err(self.unauthorized(entry.last_error.as_deref().unwrap_or("the platform refused the refresh")));
        }
        let refresh_token = live.refresh_token.clone().or_else(|| entry.refresh_token.clone());
        let answer = self.request(refresh_token.as_deref(), now).await;
        credstore::fault_point("credential-refreshed");
        let result = match answer {
            Ok(got) => {
                entry.access_token = Some(got.access.clone());
                entry.access_expires_ms = Some(now + got.expires_in_s.saturating_mul(1000));
                if let Some(rt) = got.refresh_token {
                    entry.refresh_token = Some(rt);
                }
                if let Some(s) = got.refresh_expires_in_s {
                    entry.refresh_expires_ms = Some(now + s.saturating_mul(1000));
                }
                entry.refreshed_ms = Some(now);
                entry.refreshes += 1;
                entry.last_error = None;
                tracing::info!(credential = %self.name, "access token renewed, valid {}s", got.expires_in_s);
                Ok(got.access)
            }
            Err(Failed::Refused(why)) => {
                entry.refused = true;
                entry.last_error = Some(why.clone());
                entry.access_token = None;
                Err(self.unauthorized(&why))
            }
            Err(Failed::Transient(why)) => {
                entry.last_error = Some(why.clone());
                Err(PollError::Other(format!("credentials '{}': {why}", self.name)))
            }
        };
        let (exp, refreshed, rt) = (entry.access_expires_ms, entry.refreshed_ms, entry.refresh_token.clone());
        live.refresh_expires_ms = entry.refresh_expires_ms;
        if let (Some(s), Some(h)) = (&store, &held)
            && let Err(e) = s.write(&doc, h)
        {
            // The new refresh token stays in memory: this process keeps the chain.
            live.refresh_token = rt;
            tracing::error!(credential = %self.name, "cannot store the renewed credential: {e}");
            if result.is_ok() {
                return Err(PollError::Config(format!("credential store: {e}")));
            }
        }
        drop(held);
        let token = Secret::new(&result?);
        live.access = Some(token.clone());
        live.renew_at_ms = renew_at(refreshed.unwrap_or(now), exp.unwrap_or(now));
        Ok(token)
    }

    /// One refresh request.
    async fn request(&self, refresh_token: Option<&str>, now: i64) -> Result<Got, Failed> {
        match &self.kind {
            CredentialKind::Fixed => Err(Failed::Transient("a fixed token is not renewed".into())),
            CredentialKind::Refreshed(r) => {
                let rt = refresh_token.map(str::to_string).or_else(|| self.field("refresh_token").map(str::to_string));
                let Some(rt) = rt else {
                    return Err(Failed::Refused(format!(
                        "no refresh token yet: sign in with `cockpit auth login {}`",
                        self.name
                    )));
                };
                let url = self.token_url.clone().unwrap_or_else(|| r.token_url.clone());
                self.refresh_request(r, &url, &[("refresh_token", rt)], now).await
            }
            CredentialKind::ServiceAccount => self.service_account(now).await,
        }
    }

    /// A value for a refresh or sign-in template: `extra` (the refresh token in use, the
    /// code…), the time, a nonce, or a field of the credential.
    fn value(&self, name: &str, extra: &[(&str, String)], now: i64) -> Option<String> {
        if let Some((_, v)) = extra.iter().find(|(k, _)| *k == name) {
            return Some(v.clone());
        }
        match name {
            "timestamp" => Some((now / 1000).to_string()),
            "nonce" => Some(nonce()),
            _ => self.field(name).map(str::to_string),
        }
    }

    /// Fills a template; `None` when a placeholder has no value. `json`: values escaped for
    /// a JSON string.
    fn fill(&self, t: &str, extra: &[(&str, String)], now: i64, json: bool) -> Option<String> {
        let mut out = t.to_string();
        let names: Vec<String> = crate::domain::source::placeholders(t).map(str::to_string).collect();
        for n in names {
            let v = self.value(&n, extra, now)?;
            let v = if json { serde_json::to_string(&v).ok()?.trim_matches('"').to_string() } else { v };
            out = out.replace(&format!("{{{n}}}"), &v);
        }
        Some(out)
    }

    async fn refresh_request(
        &self,
        r: &Refresh,
        url_text: &str,
        extra: &[(&str, String)],
        now: i64,
    ) -> Result<Got, Failed> {
        let mut url = url::Url::parse(url_text).map_err(|e| Failed::Transient(format!("token_url {url_text}: {e}")))?;
        if !super::may_carry_token(url.as_str()) {
            return Err(Failed::Transient(format!(
                "token_url {url_text}: a refresh token goes only over https or to this machine"
            )));
        }
        for (k, v) in &r.query {
            if let Some(v) = self.fill(v, extra, now, false) {
                url.query_pairs_mut().append_pair(k, &v);
            }
        }
        let get = r.method.as_deref() == Some("GET");
        let mut rb = if get { self.client.get(url) } else { self.client.post(url) };
        for (k, v) in &r.headers {
            if let Some(v) = self.fill(v, extra, now, false) {
                rb = rb.header(k.as_str(), v);
            }
        }
        if !r.form.is_empty() {
            let form: Vec<(String, String)> =
                r.form.iter().filter_map(|(k, v)| self.fill(v, extra, now, false).map(|v| (k.clone(), v))).collect();
            rb = form_body(rb, &form);
        } else if let Some(b) = &r.body {
            let body = self
                .fill(b, extra, now, true)
                .ok_or_else(|| Failed::Transient("the refresh body names a field the credential lacks".into()))?;
            rb = rb.body(body);
        }
        let answer = self.send(rb).await?;
        read_answer(&answer.1, answer.0, r)
    }

    async fn service_account(&self, now: i64) -> Result<Got, Failed> {
        let path = self.field("key_file").unwrap_or_default();
        let text = std::fs::read_to_string(path).map_err(|e| Failed::Transient(format!("key_file {path}: {e}")))?;
        let key: ServiceKey =
            serde_json::from_str(&text).map_err(|e| Failed::Transient(format!("key_file {path}: {e}")))?;
        let token_url = self.token_url.clone().or(key.token_uri.clone()).unwrap_or(GOOGLE_TOKEN_URL.to_string());
        let iat = now / 1000;
        let claims = serde_json::json!({
            "iss": key.client_email,
            "scope": self.field("scope").unwrap_or_default(),
            "aud": token_url,
            "iat": iat,
            "exp": iat + 3600,
        });
        let signing = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
            .map_err(|e| Failed::Refused(format!("key_file {path}: the private key cannot be read: {e}")))?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = key.private_key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &signing)
            .map_err(|e| Failed::Transient(format!("cannot sign the assertion: {e}")))?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
        let rb = form_body(self.client.post(token_url), &form);
        let (status, body) = self.send(rb).await?;
        let r: Refresh = toml::from_str(crate::domain::source::OAUTH2).expect("the built-in oauth2 kind parses");
        read_answer(&body, status, &r)
    }

    /// Sends a refresh request: a transport failure or a server error is transient.
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Failed> {
        let resp = tokio::time::timeout(REFRESH_TIMEOUT, rb.send())
            .await
            .map_err(|_| Failed::Transient(format!("the token endpoint did not answer within {REFRESH_TIMEOUT:?}")))?
            .map_err(|e| Failed::Transient(format!("token endpoint: {}", root_cause(&e))))?;
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(REFRESH_TIMEOUT, resp.bytes())
            .await
            .map_err(|_| Failed::Transient("the token endpoint's answer stalled".into()))?
            .map_err(|e| Failed::Transient(format!("token endpoint: {}", root_cause(&e))))?;
        if status >= 500 {
            return Err(Failed::Transient(format!("token endpoint: HTTP {status}")));
        }
        Ok((status, body.to_vec()))
    }

    /// How a person signs in to this credential, if its kind has a way.
    fn login_spec(&self) -> Option<(&Refresh, &crate::domain::source::Login)> {
        match &self.kind {
            CredentialKind::Refreshed(r) => r.login.as_deref().map(|l| (&**r, l)),
            _ => None,
        }
    }

    /// The consent page to open: its URL with a fresh `state` and PKCE pair. Every template
    /// value is URL-encoded; a credential's `authorize_url` overrides the platform's.
    pub fn login_start(&self, redirect_uri: &str) -> Result<LoginStart, String> {
        let (_, login) = self.login_spec().ok_or_else(|| {
            format!(
                "credentials '{}' ({}) have no sign-in: put a new token in {}",
                self.name, self.kind_name, self.place
            )
        })?;
        let verifier = format!("{}{}", nonce(), nonce());
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        use base64::Engine;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
        let state = nonce();
        let template = self.field("authorize_url").unwrap_or(&login.authorize_url).to_string();
        if template.contains("{scope}") && self.field("scope").is_none() {
            return Err(format!(
                "credentials '{}': `scope` is needed to sign in (Google Ads: https://www.googleapis.com/auth/adwords; GA4: https://www.googleapis.com/auth/analytics.readonly); add it in {}",
                self.name, self.place
            ));
        }
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let extra = [
            ("redirect_uri", enc(redirect_uri)),
            ("state", state.clone()),
            ("code_challenge", challenge),
            ("scope", enc(self.field("scope").unwrap_or(""))),
        ];
        let url = self.fill(&template, &extra, 0, false).ok_or_else(|| {
            format!("credentials '{}': the consent URL names a field they do not give ({template})", self.name)
        })?;
        Ok(LoginStart { url, state, verifier, redirect_uri: redirect_uri.to_string() })
    }

    /// Exchanges the code the consent page handed back for tokens, and stores them: a
    /// running service takes them at its next request.
    pub async fn login_finish(&self, start: &LoginStart, code: &str) -> Result<(), PollError> {
        let (r, login) = self.login_spec().ok_or_else(|| self.unauthorized("no sign-in for this kind"))?;
        let now = (self.now)();
        let url = match (&self.token_url, login.exchange.token_url == r.token_url) {
            (Some(u), true) => u.clone(),
            _ => self.field("exchange_url").map_or_else(|| login.exchange.token_url.clone(), str::to_string),
        };
        let extra = [
            ("code", code.to_string()),
            ("redirect_uri", start.redirect_uri.clone()),
            ("code_verifier", start.verifier.clone()),
        ];
        let got = match self.refresh_request(&login.exchange, &url, &extra, now).await {
            Ok(g) => g,
            Err(Failed::Refused(why) | Failed::Transient(why)) => {
                return Err(PollError::Unauthorized(format!("credentials '{}': signing in failed: {why}", self.name)));
            }
        };
        let rt = got.refresh_token.clone().ok_or_else(|| {
            PollError::Unauthorized(format!(
                "credentials '{}': the platform gave no refresh token (the consent must ask for offline access)",
                self.name
            ))
        })?;
        let mut live = self.live.lock().await;
        let store =
            self.store.clone().ok_or_else(|| PollError::Config("no credential store to keep the sign-in".into()))?;
        let (held, mut doc) = hold_and_read(&store).await?;
        let entry = doc.credentials.entry(self.name.clone()).or_default();
        *entry = Entry {
            refresh_token: Some(rt),
            seeded_from: self.field("refresh_token").map(credstore::digest),
            access_token: Some(got.access.clone()),
            access_expires_ms: Some(now + got.expires_in_s.saturating_mul(1000)),
            refresh_expires_ms: got.refresh_expires_in_s.map(|s| now + s.saturating_mul(1000)),
            refreshed_ms: Some(now),
            refreshes: entry.refreshes + 1,
            last_error: None,
            refused: false,
        };
        let exp = entry.access_expires_ms.unwrap_or(now);
        store.write(&doc, &held).map_err(|e| PollError::Config(format!("credential store: {e}")))?;
        live.access = Some(Secret::new(&got.access));
        live.renew_at_ms = renew_at(now, exp);
        live.refresh_token = None;
        live.refresh_expires_ms = got.refresh_expires_in_s.map(|s| now + s.saturating_mul(1000));
        Ok(())
    }

    /// The redirect's query parameter that carries the code.
    pub fn login_code_param(&self) -> Option<&str> {
        self.login_spec().map(|(_, l)| l.code_param.as_str())
    }

    /// The store this credential keeps its tokens in.
    pub fn store_path(&self) -> Option<&std::path::Path> {
        self.store.as_ref().map(Store::path)
    }

    /// What `auth list` shows (never a secret).
    pub fn status(&self) -> Status {
        let entry = self
            .store
            .as_ref()
            .and_then(|s| s.read().ok())
            .and_then(|d| d.credentials.get(&self.name).cloned())
            .filter(|e| {
                // An entry seeded from another refresh token than config.toml's is stale.
                self.field("refresh_token").is_none_or(|t| e.seeded_from.as_deref() == Some(&credstore::digest(t)))
            })
            .unwrap_or_default();
        Status {
            name: self.name.clone(),
            kind: self.kind_name.clone(),
            access_expires_ms: entry.access_expires_ms,
            refresh_expires_ms: entry.refresh_expires_ms,
            token_expires_ms: self.field("expires").and_then(parse_expiry),
            refreshed_ms: entry.refreshed_ms,
            refreshes: entry.refreshes,
            last_error: entry.last_error,
            unauthorized: entry.refused,
        }
    }
}

/// A form-encoded body (`application/x-www-form-urlencoded`).
fn form_body<K: AsRef<str>, V: AsRef<str>>(rb: reqwest::RequestBuilder, pairs: &[(K, V)]) -> reqwest::RequestBuilder {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k.as_ref(), v.as_ref());
    }
    rb.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(ser.finish())
}

/// How long before a token expires the cockpit warns about it.
pub const WARN_BEFORE_MS: i64 = 7 * 24 * 3_600_000;

/// What to do about a `what` ("refresh token", "token") of the credentials `name` that
/// expires at `at`, when that is within `WARN_BEFORE_MS` of `now`.
pub fn expiry_warning(name: &str, what: &str, at: i64, now: i64) -> Option<String> {
    let left = at - now;
    (left < WARN_BEFORE_MS).then(|| {
        let when = if left <= 0 { "has expired".to_string() } else { format!("expires in {}", days_hours(left)) };
        format!("the {what} {when}: sign in again with `cockpit auth login {name}`")
    })
}

/// "3d4h", "5h".
fn days_hours(ms: i64) -> String {
    let h = ms / 3_600_000;
    if h >= 24 { format!("{}d{}h", h / 24, h % 24) } else { format!("{}h", h.max(1)) }
}

/// The credential store held (its lock taken off the async threads) and read under the lock.
async fn hold_and_read(store: &Store) -> Result<(credstore::Held, credstore::Doc), PollError> {
    let s = store.clone();
    let held = tokio::task::spawn_blocking(move || s.hold())
        .await
        .map_err(|e| PollError::Other(e.to_string()))?
        .map_err(|e| PollError::Config(format!("credential store: {e}")))?;
    let doc = store.read().map_err(|e| PollError::Config(format!("credential store: {e}")))?;
    Ok((held, doc))
}

/// A sign-in under way: the consent URL to open, and what the exchange needs.
#[derive(Debug, Clone)]
pub struct LoginStart {
    pub url: String,
    pub state: String,
    verifier: String,
    redirect_uri: String,
}

/// Google's token endpoint, for a service-account key without `token_uri`.
const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// The fields of a Google service-account key file that signing needs.
#[derive(serde::Deserialize)]
struct ServiceKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// What a refresh brought.
struct Got {
    access: String,
    expires_in_s: i64,
    refresh_token: Option<String>,
    refresh_expires_in_s: Option<i64>,
}

/// Reads a token endpoint's answer as `r` declares it.
fn read_answer(body: &[u8], status: u16, r: &Refresh) -> Result<Got, Failed> {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let first = String::from_utf8_lossy(body).lines().next().unwrap_or("").chars().take(80).collect::<String>();
            return Err(Failed::Transient(format!("token endpoint: HTTP {status}, not JSON: {first:?}")));
        }
    };
    let pick = |e: &str| -> Option<serde_json::Value> {
        let expr = jmespath::compile(e).ok()?;
        let data = jmespath::Variable::from_json(&v.to_string()).ok()?;
        let found = expr.search(data).ok()?;
        let j: serde_json::Value = serde_json::to_value(&*found).ok()?;
        (!j.is_null()).then_some(j)
    };
    let text = |j: &serde_json::Value| match j {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let code = pick(&r.error).map(|j| text(&j)).filter(|c| !c.is_empty() && c != "0");
    if let Some(code) = code {
        let message = r.message.as_deref().and_then(pick).map(|j| text(&j)).unwrap_or_default();
        let why = if message.is_empty() { code.clone() } else { format!("{code}: {message}") };
        return Err(if r.refused.contains(&code) {
            Failed::Refused(format!("the platform refused the refresh ({why})"))
        } else {
            Failed::Transient(format!("token endpoint: HTTP {status}: {why}"))
        });
    }
    if !(200..300).contains(&status) {
        return Err(Failed::Transient(format!("token endpoint: HTTP {status}")));
    }
    let access = pick(&r.access_token)
        .map(|j| text(&j))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failed::Transient(format!("token endpoint: no `{}` in its answer", r.access_token)))?;
    let secs = |e: &Option<String>| {
        e.as_deref().and_then(pick).and_then(|j| j.as_i64().or_else(|| j.as_str().and_then(|s| s.parse().ok())))
    };
    Ok(Got {
        access,
        // Without a lifetime, an hour (the common one) and renew on refusal.
        expires_in_s: secs(&r.expires_in).filter(|s| *s > 0).unwrap_or(3600),
        refresh_token: r.refresh_token.as_deref().and_then(pick).map(|j| text(&j)).filter(|s| !s.is_empty()),
        refresh_expires_in_s: secs(&r.refresh_expires_in).filter(|s| *s > 0),
    })
}

/// When to renew a token obtained at `from` and expiring at `until`: at 75–85 % of its life,
/// so that the sources of many processes do not all renew at once.
fn renew_at(from: i64, until: i64) -> i64 {
    let life = (until - from).max(0) as f64;
    from + (life * (0.75 + 0.1 * rand::random::<f64>())) as i64
}

/// The earliest `renew_at` can be: before it, a stored token needs no renewal.
fn earliest_renewal(from: i64, until: i64) -> i64 {
    from + ((until - from).max(0) as f64 * 0.75) as i64
}

/// A unique request nonce.
pub fn nonce() -> String {
    format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

/// `expires` of a fixed token: a date (the start of that day, UTC) or an RFC 3339 time.
pub fn parse_expiry(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc3339(s).map(|d| d.timestamp_millis()).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth2() -> Refresh {
        toml::from_str(crate::domain::source::OAUTH2).unwrap()
    }

    #[test]
    fn a_refresh_answer_is_read_as_declared_and_its_errors_sorted() {
        let ok = br#"{"access_token":"a1","expires_in":3599,"scope":"x","token_type":"Bearer"}"#;
        let got = read_answer(ok, 200, &oauth2()).ok().unwrap();
        assert_eq!((got.access.as_str(), got.expires_in_s, got.refresh_token), ("a1", 3599, None));
        let gone = br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
        assert!(
            matches!(read_answer(gone, 400, &oauth2()), Err(Failed::Refused(m)) if m.contains("expired or revoked"))
        );
        let busy = br#"{"error":"temporarily_unavailable"}"#;
        assert!(matches!(read_answer(busy, 400, &oauth2()), Err(Failed::Transient(_))));
        assert!(matches!(read_answer(b"<html>", 200, &oauth2()), Err(Failed::Transient(m)) if m.contains("not JSON")));
        let ocean = crate::domain::source::shipped_preset("oceanengine").unwrap().auth.refresh.unwrap();
        let ok = br#"{"code":0,"message":"OK","data":{"access_token":"a","expires_in":86400,"refresh_token":"r2","refresh_token_expires_in":2592000}}"#;
        let got = read_answer(ok, 200, &ocean).ok().unwrap();
        assert_eq!((got.refresh_token.as_deref(), got.refresh_expires_in_s), (Some("r2"), Some(2_592_000)));
        let used = br#"{"code":40104,"message":"refresh_token invalid"}"#;
        assert!(matches!(read_answer(used, 200, &ocean), Err(Failed::Refused(_))));
    }

    #[test]
    fn a_credential_missing_a_field_names_its_place_and_the_field() {
        let conf = CredentialConf {
            name: "g".into(),
            kind: "oauth2".into(),
            fields: [("client_id".to_string(), Secret::new("x"))].into(),
            place: "config.toml:7".into(),
        };
        let e = Registry::new(vec![conf.clone()], None, wall_clock()).unwrap_err();
        assert!(e.contains("config.toml:7") && e.contains("client_secret"), "{e}");
        let e = Registry::new(vec![CredentialConf { kind: "oauth3".into(), ..conf }], None, wall_clock()).unwrap_err();
        assert!(e.contains("unknown kind 'oauth3'") && e.contains("oceanengine"), "{e}");
    }

    #[test]
    fn tokens_are_renewed_at_three_quarters_to_most_of_their_life() {
        for _ in 0..100 {
            let at = renew_at(0, 1000);
            assert!((750..=850).contains(&at), "{at}");
        }
        assert_ne!(nonce(), nonce());
        assert_eq!(parse_expiry("2027-02-01"), Some(1_801_440_000_000));
    }
}
