//! Credentials that renew themselves, against the simulator's sign-in: access tokens that
//! expire (on a clock the test moves), refresh tokens that rotate, revocation, a service
//! account's signed assertion, retired API versions. `fixtures/auth/` holds a key pair made
//! for these tests only.

use campaign_cockpit::clock::{Clock, ManualClock};
use campaign_cockpit::demo;
use campaign_cockpit::domain::Campaign;
use campaign_cockpit::domain::time::HOUR_MS;
use campaign_cockpit::poll::credential::{CredentialConf, Now, Registry};
use campaign_cockpit::poll::credstore::Store;
use campaign_cockpit::poll::{self, PollError, Secret, SourceSpec, wire::Names};
use campaign_cockpit::sim::{self, SimServer, dialect, model::Network};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

struct Rig {
    sim: SimServer,
    clock: Arc<ManualClock>,
    campaigns: Vec<Campaign>,
    dir: tempfile::TempDir,
    /// Values for the preset's other secrets (Baidu's account name), none of them the token.
    secrets: BTreeMap<String, Secret>,
}

/// The demo's 618 campaign read as `dialect` from a simulator whose tokens live `ttl_ms`
/// (rotating when `rotate`), every channel naming the credentials "main".
async fn rig(dialect_name: &str, ttl_ms: i64, rotate: bool) -> Rig {
    let sc = demo::scenario();
    let start = sc.start.unwrap().timestamp_millis();
    let clock = Arc::new(ManualClock::new(start));
    let mut campaigns = demo::campaigns();
    let (chs, inc) = sc.build(&campaigns, start).unwrap();
    campaigns.retain(|c| c.id == "618-promo");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::serve(listener, Network::new(chs, inc, start), clock.clone()).unwrap();
    dialect::reformat(&mut campaigns, &sim.base_url(), dialect_name).unwrap();
    for ch in campaigns.iter_mut().flat_map(|c| c.channels.iter_mut()) {
        ch.credentials = Some("main".into());
    }
    {
        let mut t = sim.tokens.lock().unwrap();
        let c = clock.clone();
        t.set_clock(Arc::new(move || c.now_ms()));
        t.ttl_ms = Some(ttl_ms);
        t.rotate = rotate;
    }
    let token = campaign_cockpit::domain::source::preset(dialect_name).and_then(|p| p.auth.secret);
    let secrets = dialect::stand_in_secrets(dialect_name)
        .into_iter()
        .filter(|n| Some(n) != token.as_ref())
        .map(|n| (n, Secret::new("sim-account")))
        .collect();
    Rig { sim, clock, campaigns, dir: tempfile::tempdir().unwrap(), secrets }
}

impl Rig {
    fn now(&self) -> Now {
        let c = self.clock.clone();
        Arc::new(move || c.now_ms())
    }

    fn grant(&self) -> String {
        self.sim.tokens.lock().unwrap().grant()
    }

    fn refreshes(&self) -> u64 {
        self.sim.tokens.lock().unwrap().refreshes
    }

    fn store(&self) -> Store {
        Store::beside(&self.dir.path().join("config.toml"))
    }

    /// The credentials "main" of `kind`, as config.toml would give them, on their own store:
    /// each call is another process.
    fn registry(&self, kind: &str, fields: &[(&str, &str)]) -> Registry {
        let path = match kind {
            "oceanengine" => "/oceanengine/open_api/oauth2/refresh_token/",
            "tencent-ads" => "/tencent/oauth/refresh_token",
            "kuaishou" => "/kuaishou/rest/openapi/oauth2/authorize/refresh_token",
            "baidu" => "/baidu/oauth/refreshToken",
            _ => "/oauth2/token",
        };
        let mut map: BTreeMap<String, Secret> = fields.iter().map(|(k, v)| (k.to_string(), Secret::new(v))).collect();
        map.insert("token_url".into(), Secret::new(&format!("{}{path}", self.sim.base_url())));
        let conf =
            CredentialConf { name: "main".into(), kind: kind.into(), fields: map, place: "config.toml:3".into() };
        Registry::new(vec![conf], Some(self.store()), self.now()).unwrap()
    }

    /// Fixed `meta` credentials "main" (a system-user token), with more fields, on no store.
    fn meta(&self, more: &[(&str, &str)]) -> Registry {
        let mut fields: BTreeMap<String, Secret> = [("token".to_string(), Secret::new("system-user-token"))].into();
        fields.extend(more.iter().map(|(k, v)| (k.to_string(), Secret::new(v))));
        let conf = CredentialConf { name: "main".into(), kind: "meta".into(), fields, place: "config.toml:3".into() };
        Registry::new(vec![conf], None, self.now()).unwrap()
    }

    /// A service reading through oauth2 credentials whose refresh token the platform then
    /// revoked: its registry, its sources and the fields config.toml gave.
    async fn revoked_service(&self) -> (Registry, Vec<SourceSpec>, Vec<(&'static str, String)>) {
        let fields = oauth2_fields(&self.grant());
        let reg = self.registry("oauth2", &borrowed(&fields));
        let sources = self.sources(&reg);
        assert!(self.poll(&sources).await.iter().all(Result::is_ok));
        self.sim.tokens.lock().unwrap().revoke_all();
        (reg, sources, fields)
    }

    fn sources(&self, registry: &Registry) -> Vec<SourceSpec> {
        poll::with_secrets(poll::sources_for(&self.campaigns, Duration::from_secs(60)), &self.secrets, registry)
    }

    async fn poll(&self, sources: &[SourceSpec]) -> Vec<Result<(), PollError>> {
        let client = poll::client();
        let mut out = Vec::new();
        for s in sources {
            let r = poll::fetch_at(&client, s, &mut Names::default(), self.clock.now_ms(), true).await;
            out.push(r.map(drop));
        }
        out
    }
}

fn oauth2_fields(refresh_token: &str) -> Vec<(&'static str, String)> {
    vec![("client_id", "cid".into()), ("client_secret", "csecret".into()), ("refresh_token", refresh_token.into())]
}

fn borrowed<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Google's tokens live an hour: polled every 10 minutes for 8 hours, each poll gets data,
/// no request is ever refused, and the token is renewed ahead of its expiry (at 45–51
/// minutes, so at the poll at 50 or 60).
#[tokio::test]
async fn an_expiring_token_is_renewed_ahead_and_no_poll_is_lost() {
    let r = rig("google-ads", HOUR_MS, false).await;
    let fields = oauth2_fields(&r.grant());
    let reg = r.registry("oauth2", &borrowed(&fields));
    let sources = r.sources(&reg);
    for round in 0..48 {
        for res in r.poll(&sources).await {
            assert!(res.is_ok(), "round {round}: {res:?}");
        }
        r.clock.advance(10 * 60_000);
    }
    let n = r.refreshes();
    assert!((8..=10).contains(&n), "8 hours of hour-long tokens renewed at 75–85 % of their life: {n} refreshes");
    let status = reg.get("main").unwrap().status();
    assert_eq!(status.refreshes, n, "the store counts every refresh");
    assert!(status.last_error.is_none());
}

/// Ocean Engine, Tencent Ads, Kuaishou and Baidu rotate refresh tokens: the one each refresh returns
/// is stored, and another process (a `check`, a restarted service) continues the chain from
/// the store; the refresh token in config.toml, used once, is spent.
#[tokio::test]
async fn a_rotated_refresh_token_is_stored_and_another_process_continues_the_chain() {
    let kinds = [
        ("oceanengine", &[("app_id", "1700000000"), ("secret", "app-secret")][..]),
        ("tencent-ads", &[("client_id", "1112345678"), ("client_secret", "app-secret")]),
        ("kuaishou", &[("app_id", "165900000"), ("secret", "app-secret")]),
        ("baidu", &[("app_id", "b9fe985c"), ("secret_key", "app-secret"), ("user_id", "49387372")]),
    ];
    for (kind, app) in kinds {
        rotation(kind, app).await;
    }
}

async fn rotation(kind: &str, app: &[(&str, &str)]) {
    let r = rig(kind, 24 * HOUR_MS, true).await;
    let first = r.grant();
    let mut fields = app.to_vec();
    fields.push(("refresh_token", first.as_str()));
    let service = r.registry(kind, &fields);
    let sources = r.sources(&service);
    let polled = r.poll(&sources).await;
    assert!(polled.iter().all(Result::is_ok), "{kind}: {polled:?}");
    let stored = r.store().read().unwrap().credentials["main"].refresh_token.clone().unwrap();
    assert_ne!(stored, first, "{kind}: the rotated refresh token is what the store keeps");
    // Another process, same config.toml: it finds the stored access token still good.
    let check = r.registry(kind, &fields);
    assert!(r.poll(&r.sources(&check)).await.iter().all(Result::is_ok));
    assert_eq!(r.refreshes(), 1, "a good access token in the store is used, not renewed");
    // A day later the other process renews first; the service then takes its result.
    r.clock.advance(23 * HOUR_MS);
    assert!(r.poll(&r.sources(&check)).await.iter().all(Result::is_ok));
    assert!(r.poll(&sources).await.iter().all(Result::is_ok));
    assert_eq!(r.refreshes(), 2, "one renewal a day, whichever process makes it");
    for _ in 0..5 {
        r.clock.advance(22 * HOUR_MS);
        assert!(r.poll(&sources).await.iter().all(Result::is_ok));
    }
    assert_eq!(r.refreshes(), 7, "{kind}");
}

/// Twenty sources polled at once on one credential whose token is due: one refresh.
#[tokio::test]
async fn twenty_sources_on_one_credential_make_one_refresh() {
    let r = rig("google-ads", HOUR_MS, false).await;
    let fields = oauth2_fields(&r.grant());
    let reg = r.registry("oauth2", &borrowed(&fields));
    let one = r.sources(&reg).remove(0);
    let sources: Vec<SourceSpec> =
        (0..20).map(|k| SourceSpec { url: format!("{}#{k}", one.url), ..one.clone() }).collect();
    let client = poll::client();
    let now = r.clock.now_ms();
    let polls = sources.iter().map(|s| {
        let client = client.clone();
        async move { poll::fetch_at(&client, s, &mut Names::default(), now, true).await.map(drop) }
    });
    let results = futures_util::future::join_all(polls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(r.refreshes(), 1);
}

/// A refresh token revoked on the platform: the poll is `unauthorized`, naming the
/// credentials and the way out, and the refresh is not tried again at every poll; a new
/// refresh token put in config.toml wins over the stored one and polling goes on.
#[tokio::test]
async fn a_revoked_refresh_token_is_unauthorized_until_a_new_one_is_given() {
    let r = rig("google-ads", HOUR_MS, false).await;
    let (reg, sources, _) = r.revoked_service().await;
    let res = r.poll(&sources).await.remove(0);
    let Err(PollError::Unauthorized(why)) = res else { panic!("{res:?}") };
    assert!(
        why.contains("'main'") && why.contains("cockpit auth login main") && why.contains("invalid_grant"),
        "{why}"
    );
    let before = r.refreshes();
    assert!(matches!(r.poll(&sources).await.remove(0), Err(PollError::Unauthorized(_))));
    assert_eq!(r.refreshes(), before, "a refused refresh token is not tried again");
    assert!(reg.get("main").unwrap().status().unauthorized);
    // Someone signs in again and puts the new refresh token in config.toml.
    let fields = oauth2_fields(&r.grant());
    let reg = r.registry("oauth2", &borrowed(&fields));
    assert!(r.poll(&r.sources(&reg)).await.iter().all(Result::is_ok));
    assert!(!reg.get("main").unwrap().status().unauthorized);
}

/// GA4 with a service account: an RS256 assertion signed with the key file's private key,
/// which the simulator verifies with the public key, exchanged for an access token.
#[tokio::test]
async fn a_service_account_signs_its_assertion_and_the_platform_verifies_it() {
    let r = rig("ga4", HOUR_MS, false).await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/auth");
    r.sim.tokens.lock().unwrap().service_key =
        Some(std::fs::read_to_string(format!("{fixtures}/service-account.pub.pem")).unwrap());
    let key_file = format!("{fixtures}/service-account.json");
    let scope = "https://www.googleapis.com/auth/analytics.readonly";
    let reg = r.registry("google-service-account", &[("key_file", key_file.as_str()), ("scope", scope)]);
    let sources = r.sources(&reg);
    for _ in 0..4 {
        assert!(r.poll(&sources).await.iter().all(Result::is_ok));
        r.clock.advance(HOUR_MS / 2);
    }
    assert!((2..=3).contains(&r.refreshes()), "{}", r.refreshes());
    // Another key than the one the platform knows is refused.
    let other = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\nkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ\n0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg\ncKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc\nmwIDAQAB\n-----END PUBLIC KEY-----\n";
    r.sim.tokens.lock().unwrap().service_key = Some(other.into());
    r.clock.advance(2 * HOUR_MS);
    let res = r.poll(&sources).await.remove(0);
    assert!(matches!(&res, Err(PollError::Unauthorized(w)) if w.contains("invalid_grant")), "{res:?}");
}

/// A version the platform has retired is said as such, with the newest it names and the fix.
#[tokio::test]
async fn a_retired_api_version_names_the_newest_and_the_fix() {
    let r = rig("meta-insights", HOUR_MS, false).await;
    let reg = r.meta(&[]);
    // The simulator lets a fixed token in only when it issued it: ask as the platform would.
    r.sim.tokens.lock().unwrap().ttl_ms = None;
    let mut campaigns = r.campaigns.clone();
    for ch in campaigns.iter_mut().flat_map(|c| c.channels.iter_mut()) {
        ch.request =
            Some(campaign_cockpit::domain::source::Request { version: Some("v24.0".into()), ..Default::default() });
    }
    r.sim.tokens.lock().unwrap().retired.insert("v24.0".into());
    let sources = poll::with_secrets(poll::sources_for(&campaigns, Duration::from_secs(60)), &BTreeMap::new(), &reg);
    let res = r.poll(&sources).await.remove(0);
    let Err(PollError::Retired(why)) = res else { panic!("{res:?}") };
    assert!(why.contains("v24.0 is no longer served") && why.contains("v27.0"), "{why}");
    assert!(why.contains("[presets.meta-insights]"), "{why}");
    // The preset's own version is served.
    assert!(r.poll(&r.sources(&reg)).await.iter().all(Result::is_ok));
}

/// A channel naming credentials config.toml does not have: each poll says which.
#[tokio::test]
async fn credentials_not_in_the_config_are_named() {
    let r = rig("google-ads", HOUR_MS, false).await;
    let res = r.poll(&r.sources(&Registry::default())).await.remove(0);
    assert!(
        matches!(&res, Err(PollError::Config(w)) if w.contains("credentials 'main'") && w.contains("[credentials.main]")),
        "{res:?}"
    );
}

/// `kill -9` around refreshes, 100 times, at random among: killed holding the credential
/// store's lock before asking, killed right after the rotated token is stored, not killed.
/// The chain holds: every run after a kill renews with the token the store has, and the
/// store ends with the one the platform accepts. Killed in the one window no client can
/// close (the platform rotated, the answer never stored), the next run is `unauthorized`
/// and says the way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_around_its_refreshes_the_rotating_chain_holds() {
    use rand::{Rng, SeedableRng};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;
    let r = rig("oceanengine", 24 * HOUR_MS, true).await;
    let config = r.dir.path().join("config.toml");
    let text = format!(
        "[credentials.main]\nkind = \"oceanengine\"\napp_id = \"1700000000\"\nsecret = \"app-secret\"\nrefresh_token = \"{}\"\ntoken_url = \"{}/oceanengine/open_api/oauth2/refresh_token/\"\n",
        r.grant(),
        r.sim.base_url()
    );
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |fault: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
                .args(["auth", "test", "main"])
                .env("COCKPIT_CONFIG", &config)
                .env("COCKPIT_FAULT", fault)
                .output()
                .unwrap()
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut renewed = 0;
    for i in 0..100 {
        let fault = ["", "credential-locked", "credential-stored"][rng.random_range(0..3)];
        let out = run(fault).await.unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if fault.is_empty() {
            assert!(out.status.success() && said.contains("main: renewed"), "run {i}: {said}");
        } else {
            assert_eq!(out.status.signal(), Some(9), "run {i} ({fault}): {said}");
        }
        if fault != "credential-locked" {
            renewed += 1;
        }
        assert_eq!(r.refreshes(), renewed, "run {i} ({fault})");
    }
    let out = run("").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The window no client can close.
    let out = run("credential-refreshed").await.unwrap();
    assert_eq!(out.status.signal(), Some(9));
    let out = run("").await.unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("unauthorized") && said.contains("cockpit auth login main"),
        "{said}"
    );
    assert!(!said.contains("app-secret"), "no secret in what it says: {said}");
}

/// A refresh token revoked: the service's polls are `unauthorized`; someone runs `cockpit
/// auth login` (the test plays the consent page: it opens the printed address, which
/// redirects back to the loopback port with a code), the code is exchanged with PKCE, and
/// the same running registry polls again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_brings_an_unauthorized_service_back_without_a_restart() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let r = rig("google-ads", HOUR_MS, false).await;
    let (service, sources, fields) = r.revoked_service().await;
    assert!(matches!(r.poll(&sources).await.remove(0), Err(PollError::Unauthorized(_))));
    let config = r.dir.path().join("config.toml");
    let base = r.sim.base_url();
    let text = format!(
        "[credentials.main]\nkind = \"oauth2\"\nclient_id = \"cid\"\nclient_secret = \"csecret\"\nrefresh_token = \"{}\"\nscope = \"https://www.googleapis.com/auth/adwords\"\ntoken_url = \"{base}/oauth2/token\"\nauthorize_url = \"{base}/oauth2/auth?client_id={{client_id}}&redirect_uri={{redirect_uri}}&response_type=code&scope={{scope}}&state={{state}}&code_challenge={{code_challenge}}&code_challenge_method=S256\"\n",
        fields[2].1
    );
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["auth", "login", "main"])
        .env("COCKPIT_CONFIG", &config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let consent = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        (line.trim().to_string(), out)
    });
    let (url, mut out) = consent.await.unwrap();
    assert!(url.starts_with(&format!("{base}/oauth2/auth?")) && url.contains("code_challenge="), "{url}");
    // The person allows access: the page redirects to the loopback port with the code.
    let page = reqwest::get(&url).await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    assert!(page.text().await.unwrap().contains("Signed in"));
    let done = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        (child.wait().unwrap(), rest)
    });
    let (status, said) = done.await.unwrap();
    assert!(status.success() && said.contains("main: signed in"), "{said}");
    // The service, still running, polls again.
    for _ in 0..3 {
        assert!(r.poll(&sources).await.iter().all(Result::is_ok));
        r.clock.advance(HOUR_MS);
    }
    assert!(!service.get("main").unwrap().status().unauthorized);
}

/// Google Ads' Basic access allows 15,000 operations a day: twenty customers polled every
/// minute on one credential would need 28,800, so each is polled every 2m 8s (with 10 %
/// headroom) and says why; one customer alone keeps its minute.
#[tokio::test]
async fn sources_sharing_a_quota_are_spread_to_fit_it() {
    let r = rig("google-ads", HOUR_MS, false).await;
    let one = r.campaigns[0].clone();
    let many: Vec<Campaign> = (0..20)
        .map(|k| {
            let mut c = one.clone();
            c.id = format!("customer-{k}");
            dialect::reformat(std::slice::from_mut(&mut c), &r.sim.base_url(), "google-ads").unwrap();
            for ch in &mut c.channels {
                ch.credentials = Some("main".into());
            }
            c
        })
        .collect();
    let sources = poll::sources_for(&many, Duration::from_secs(60));
    assert_eq!(sources.len(), 20);
    for s in &sources {
        assert_eq!(s.interval.as_secs(), 128, "{}", s.url);
        let note = s.quota_note.as_deref().unwrap();
        assert!(note.contains("2m 8s") && note.contains("15,000") && note.contains("20 sources share it"), "{note}");
    }
    let alone = poll::sources_for(&many[..1], Duration::from_secs(60));
    assert_eq!((alone[0].interval.as_secs(), alone[0].quota_note.is_none()), (60, true));
    // The note reaches the source's health line through its answers.
    let reg = r.registry("oauth2", &borrowed(&oauth2_fields(&r.grant())));
    let sources = poll::with_secrets(sources, &BTreeMap::new(), &reg);
    let doc = poll::fetch_at(&poll::client(), &sources[0], &mut Names::default(), r.clock.now_ms(), true).await;
    assert!(doc.unwrap().note.is_some_and(|n| n.contains("15,000")));
}

/// No secret in anything the program writes: the client secret, every refresh token and
/// every access token (the ones in the credential store, which holds them) are in no output
/// of `source test`, `campaign import`, `check`, `auth list`, `auth test`, `journal`,
/// `campaign export`, in no error (a retired version, a revoked token) and in no log line
/// (at debug level). Tencent's token travels in the query string, the likeliest to leak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_shows_in_anything_the_program_writes() {
    use std::os::unix::fs::PermissionsExt;
    let r = rig("tencent-ads", 24 * HOUR_MS, true).await;
    let dir = r.dir.path();
    let config = dir.join("config.toml");
    let first = r.grant();
    let text = format!(
        "[credentials.main]\nkind = \"tencent-ads\"\nclient_id = \"1112345678\"\nclient_secret = \"tencent-cl1ent-s3cret\"\nrefresh_token = \"{first}\"\ntoken_url = \"{}/tencent/oauth/refresh_token\"\n",
        r.sim.base_url()
    );
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.join("promo.toml");
    std::fs::write(&file, r.campaigns[0].to_toml()).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"));
        cmd.arg("--db").arg(dir.join("db")).args(args);
        cmd.env("COCKPIT_CONFIG", &config).env("XDG_STATE_HOME", dir.join("state")).env("COCKPIT_LOG", "debug");
        cmd.env("CI", "true").stdin(std::process::Stdio::null());
        tokio::task::spawn_blocking(move || {
            let out = cmd.output().unwrap();
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
        })
    };
    let file_arg = file.to_str().unwrap().to_string();
    let mut said = String::new();
    for args in [
        &["source", "test", &file_arg][..],
        &["campaign", "import", &file_arg],
        &["check", "--json"],
        &["auth", "list"],
        &["auth", "list", "--json"],
        &["auth", "test", "main"],
        &["journal", "--json"],
        &["campaign", "export", "618-promo"],
    ] {
        said += &run(args).await.unwrap();
    }
    // Errors: a retired version, then a revoked refresh token.
    r.sim.tokens.lock().unwrap().retired.insert("v3.0".into());
    said += &run(&["check", "--json"]).await.unwrap();
    r.sim.tokens.lock().unwrap().retired.clear();
    r.sim.tokens.lock().unwrap().revoke_all();
    said += &run(&["auth", "test", "main"]).await.unwrap();
    said += &run(&["source", "test", &file_arg]).await.unwrap();
    assert!(said.contains("api version retired") && said.contains("unauthorized"), "{said}");
    for e in std::fs::read_dir(dir.join("state").join("campaign-cockpit")).into_iter().flatten().flatten() {
        said += &std::fs::read_to_string(e.path()).unwrap_or_default();
    }
    let store = std::fs::read_to_string(dir.join("credentials.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&store).unwrap();
    let entry = &doc["credentials"]["main"];
    let mut secrets = vec!["tencent-cl1ent-s3cret".to_string(), first];
    for k in ["refresh_token", "access_token"] {
        if let Some(t) = entry[k].as_str() {
            secrets.push(t.to_string());
        }
    }
    assert!(secrets.len() >= 3, "the store kept the tokens: {store}");
    for s in &secrets {
        assert!(!said.contains(s.as_str()), "a secret shows: {s}");
    }
    assert!(said.len() > 1000, "the commands said something: {said}");
}

/// A token that expires within the week: the source still reads, and its answers say who
/// must sign in again (the health line, `credentials expiring`, a warning alert).
#[tokio::test]
async fn credentials_expiring_within_the_week_are_said_while_they_still_work() {
    use campaign_cockpit::domain::Health;
    use campaign_cockpit::engine::health::SourceState;
    let r = rig("meta-insights", HOUR_MS, false).await;
    r.sim.tokens.lock().unwrap().ttl_ms = None;
    let fetch = |reg: Registry| {
        let sources = r.sources(&reg);
        let now = r.clock.now_ms();
        async move { poll::fetch_at(&poll::client(), &sources[0], &mut Names::default(), now, true).await.unwrap().expiring }
    };
    // The demo's clock stands at 2026-06-08 09:00 +08:00.
    let soon = r.meta(&[("expires", "2026-06-11")]);
    let said = fetch(soon).await.expect("a warning");
    assert!(said.contains("'main'") && said.contains("expires in 2d") && said.contains("auth login main"), "{said}");
    let later = r.meta(&[("expires", "2026-08-01")]);
    assert!(fetch(later).await.is_none());
    let t0 = std::time::Instant::now();
    let mut src = SourceState::new("x", Duration::from_secs(60), Duration::from_secs(5), t0);
    src.record_ok(t0, Duration::from_millis(5), None);
    src.expiring = Some(said);
    src.refresh(t0);
    assert_eq!(src.health, Health::Expiring);
    assert!(src.health.severity() >= Health::Stale.severity(), "it raises the health alert");
}

/// A token endpoint that accepts and never answers, one that answers HTML, one that fails
/// with a 5xx: each is a poll error saying what happened (retried by the poll loop's
/// backoff), and a source on other credentials is read meanwhile, not held up.
#[tokio::test]
async fn a_token_endpoint_that_fails_or_hangs_holds_up_no_other_source() {
    let r = rig("google-ads", HOUR_MS, false).await;
    let good = r.registry("oauth2", &borrowed(&oauth2_fields(&r.grant())));
    let good_source = r.sources(&good).remove(0);
    // An endpoint that takes the connection and says nothing, one with a web page, one down.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_addr = web.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = web.accept().await else { return };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let down = String::from_utf8_lossy(&buf[..n]).contains("/down");
            let reply = if down {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
            } else {
                let page = "<html><body>Sign in</body></html>";
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                )
            };
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    let bad = |url: String| {
        let mut fields: BTreeMap<String, Secret> =
            oauth2_fields("r").into_iter().map(|(k, v)| (k.to_string(), Secret::new(&v))).collect();
        fields.insert("token_url".into(), Secret::new(&url));
        let conf = CredentialConf { name: "bad".into(), kind: "oauth2".into(), fields, place: "config.toml:9".into() };
        let reg = Registry::new(vec![conf], None, r.now()).unwrap();
        let mut s = good_source.clone();
        s.credential = poll::SourceCredential::Found(reg.get("bad").unwrap());
        s
    };
    let client = poll::client();
    let now = r.clock.now_ms();
    for (url, says) in
        [(format!("http://{web_addr}/token"), "not JSON"), (format!("http://{web_addr}/down"), "HTTP 503")]
    {
        let res = poll::fetch_at(&client, &bad(url), &mut Names::default(), now, true).await;
        assert!(matches!(&res, Err(PollError::Other(w)) if w.contains(says) && w.contains("'bad'")), "{res:?}");
    }
    let hanging = bad(format!("http://{}/token", silent.local_addr().unwrap()));
    let (mut n1, mut n2) = (Names::default(), Names::default());
    let mut stuck = Box::pin(poll::fetch_at(&client, &hanging, &mut n1, now, true));
    let read = poll::fetch_at(&client, &good_source, &mut n2, now, true);
    tokio::select! {
        res = read => assert!(res.is_ok(), "{res:?}"),
        res = &mut stuck => panic!("the hanging endpoint answered first: {res:?}"),
    }
}

/// Meta says in a header how much of its rate limit is used: from 75 % the source is polled
/// half as often, from 90 % a quarter, and its health line says why.
#[tokio::test]
async fn polling_slows_down_before_meta_throttles() {
    let r = rig("meta-insights", HOUR_MS, false).await;
    r.sim.tokens.lock().unwrap().ttl_ms = None;
    let reg = r.meta(&[]);
    let source = r.sources(&reg).remove(0);
    for (pct, want) in [(None, None), (Some(50), None), (Some(85), Some(2)), (Some(95), Some(4))] {
        r.sim.tokens.lock().unwrap().usage_pct = pct;
        let doc =
            poll::fetch_at(&poll::client(), &source, &mut Names::default(), r.clock.now_ms(), true).await.unwrap();
        assert_eq!(doc.slow_down, want, "at {pct:?} %");
        if let Some(f) = want {
            let note = doc.note.unwrap();
            assert!(note.contains(&format!("{} %", pct.unwrap())) && note.contains(&format!("every {}m", f)), "{note}");
        }
    }
}
