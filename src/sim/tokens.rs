//! The simulated platforms' sign-in, when asked for (`demo --token-ttl`): access tokens that
//! expire, refresh tokens that rotate (each refresh retires the one used), revocation, a
//! service account's signed assertion checked with its public key, and retired API versions.
//! Off, any token is accepted, as before.
//!
//! - `POST /oauth2/token`: the standard refresh-token grant (form-encoded) and the JWT-bearer
//!   grant; errors as OAuth 2.0 says (`{"error":"invalid_grant",…}`, HTTP 400);
//! - `POST /oceanengine/open_api/oauth2/refresh_token/`: Ocean Engine's JSON refresh, errors
//!   as `{"code":40104,…}` with HTTP 200.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Unix ms now, for expiry.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the simulated platforms accept.
pub struct Tokens {
    /// Access tokens live this long; `None`: sign-in is not checked.
    pub ttl_ms: Option<i64>,
    /// Each refresh retires the refresh token used and hands out a new one.
    pub rotate: bool,
    now: Now,
    access: BTreeMap<String, i64>,
    refresh: BTreeSet<String>,
    /// Refresh requests answered with a token.
    pub refreshes: u64,
    /// API versions answered as retired.
    pub retired: BTreeSet<String>,
    /// The public key (PEM) a service account's assertions are checked with.
    pub service_key: Option<String>,
    /// How much of its rate limit Meta says is used, in percent (none: no usage header).
    pub usage_pct: Option<u32>,
    /// Codes the consent page handed out: each with its PKCE challenge and redirect.
    codes: BTreeMap<String, (Option<String>, String)>,
    seq: u64,
}

impl Tokens {
    pub fn new(now: Now) -> Tokens {
        Tokens {
            ttl_ms: None,
            rotate: false,
            now,
            access: BTreeMap::new(),
            refresh: BTreeSet::new(),
            refreshes: 0,
            retired: BTreeSet::new(),
            service_key: None,
            codes: BTreeMap::new(),
            usage_pct: None,
            seq: 0,
        }
    }

    pub fn set_clock(&mut self, now: Now) {
        self.now = now;
    }

    fn fresh(&mut self, what: &str) -> String {
        self.seq += 1;
        format!("sim-{what}-{}-{:08x}", self.seq, rand::random::<u32>())
    }

    /// A new refresh token, as signing in gives one.
    pub fn grant(&mut self) -> String {
        let t = self.fresh("refresh");
        self.refresh.insert(t.clone());
        t
    }

    /// Every token retired: the next refresh is refused for good.
    pub fn revoke_all(&mut self) {
        self.access.clear();
        self.refresh.clear();
    }

    /// Whether a request carrying `token` is let in.
    pub fn admits(&self, token: Option<&str>) -> bool {
        let Some(_) = self.ttl_ms else { return token.is_some_and(|t| !t.is_empty()) };
        token.and_then(|t| self.access.get(t)).is_some_and(|exp| (self.now)() < *exp)
    }

    /// A refresh: the access token and its lifetime (s), and the refresh token to use next.
    pub fn refresh(&mut self, refresh_token: &str) -> Result<(String, i64, String), &'static str> {
        if !self.refresh.contains(refresh_token) {
            return Err("the refresh token is invalid, expired, revoked or already used");
        }
        let next = if self.rotate {
            self.refresh.remove(refresh_token);
            let t = self.fresh("refresh");
            self.refresh.insert(t.clone());
            t
        } else {
            refresh_token.to_string()
        };
        let (access, ttl) = self.issue();
        Ok((access, ttl, next))
    }

    /// A new access token and its lifetime in seconds.
    fn issue(&mut self) -> (String, i64) {
        let ttl = self.ttl_ms.unwrap_or(3_600_000);
        let access = self.fresh("access");
        self.access.insert(access.clone(), (self.now)() + ttl);
        self.refreshes += 1;
        (access, (ttl / 1000).max(1))
    }

    /// The consent page, approved: a code for this redirect (and PKCE challenge).
    pub fn consent(&mut self, challenge: Option<String>, redirect_uri: &str) -> String {
        let code = self.fresh("code");
        self.codes.insert(code.clone(), (challenge, redirect_uri.to_string()));
        code
    }

    /// A code exchanged, once: the access token, its lifetime and a new refresh token.
    pub fn exchange(
        &mut self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<(String, i64, String), String> {
        let (challenge, redirect) = self.codes.remove(code).ok_or("the code is invalid or already used")?;
        if redirect != redirect_uri {
            return Err("redirect_uri does not match the one the code was given for".into());
        }
        if let Some(ch) = challenge {
            let v = verifier.ok_or("code_verifier is required")?;
            use base64::Engine;
            let d = ring::digest::digest(&ring::digest::SHA256, v.as_bytes());
            if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref()) != ch {
                return Err("code_verifier does not match the code_challenge".into());
            }
        }
        let (access, ttl) = self.issue();
        Ok((access, ttl, self.grant()))
    }

    /// A service account's assertion, checked with its public key.
    pub fn assertion(&mut self, jwt: &str, audience: &str) -> Result<(String, i64), String> {
        let key = self.service_key.clone().ok_or("no service account is known")?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(key.as_bytes()).map_err(|e| e.to_string())?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&[audience]);
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &v).map_err(|e| e.to_string())?;
        let c = data.claims;
        let (iat, exp) = (c["iat"].as_i64().unwrap_or(0), c["exp"].as_i64().unwrap_or(0));
        if exp <= iat || exp - iat > 3600 || c["iss"].as_str().is_none_or(str::is_empty) {
            return Err("iss, iat and exp (at most an hour after iat) are required".into());
        }
        Ok(self.issue())
    }
}

/// An OAuth 2.0 error answer.
pub fn oauth_error(error: &str, description: &str) -> serde_json::Value {
    serde_json::json!({ "error": error, "error_description": description })
}
