//! `cockpit auth`: the credentials of `config.toml` — what each is, who uses it, when its
//! tokens expire, its last refresh and error (never a secret) — and a refresh on demand.

use super::BadInput;
use crate::poll::credential::{Registry, Status};
use serde::Serialize;

use crate::poll::credential::expiry_warning;

#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    status: Status,
    /// `campaign/channel` of every channel naming it.
    used_by: Vec<String>,
    /// What needs doing, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// The channels naming each credential, from the campaigns stored.
pub fn users(campaigns: &[crate::domain::Campaign], name: &str) -> Vec<String> {
    campaigns
        .iter()
        .flat_map(|c| c.channels.iter().map(move |ch| (c, ch)))
        .filter(|(_, ch)| ch.credentials.as_deref() == Some(name))
        .map(|(c, ch)| format!("{}/{}", c.id, ch.id))
        .collect()
}

/// What needs doing about a credential at `now`.
pub fn warning(s: &Status, now_ms: i64) -> Option<String> {
    if s.unauthorized {
        return Some(format!("unauthorized: sign in again with `cockpit auth login {}`", s.name));
    }
    let soon = |what: &str, at: Option<i64>| expiry_warning(&s.name, what, at?, now_ms);
    soon("refresh token", s.refresh_expires_ms).or_else(|| soon("token", s.token_expires_ms))
}

/// `auth list`.
pub fn list(registry: &Registry, campaigns: &[crate::domain::Campaign], json: bool, now_ms: i64) -> String {
    let listed: Vec<Listed> = registry
        .all()
        .map(|c| {
            let status = c.status();
            let warning = warning(&status, now_ms);
            Listed { used_by: users(campaigns, &c.name), warning, status }
        })
        .collect();
    if json {
        return serde_json::to_string_pretty(&listed).unwrap_or_default() + "\n";
    }
    if listed.is_empty() {
        return "No credentials: add [credentials.NAME] to config.toml (`cockpit config init` shows the kinds).\n"
            .into();
    }
    let when = |t: Option<i64>| t.map_or("-".to_string(), local_time);
    let mut out = String::new();
    for l in &listed {
        let s = &l.status;
        out.push_str(&format!("{} ({})\n", s.name, s.kind));
        let used = if l.used_by.is_empty() { "no channel".to_string() } else { l.used_by.join(", ") };
        out.push_str(&format!("  used by        {used}\n"));
        if s.kind == "static" || s.kind == "meta" {
            out.push_str(&format!("  token expires  {}\n", when(s.token_expires_ms)));
        } else {
            out.push_str(&format!("  access token   expires {}\n", when(s.access_expires_ms)));
            out.push_str(&format!("  refresh token  expires {}\n", when(s.refresh_expires_ms)));
            out.push_str(&format!("  last refresh   {} ({} in all)\n", when(s.refreshed_ms), s.refreshes));
        }
        if let Some(e) = &s.last_error {
            out.push_str(&format!("  last error     {e}\n"));
        }
        if let Some(w) = &l.warning {
            out.push_str(&format!("  ⚠ {w}\n"));
        }
    }
    out
}

/// A unix-ms time in this machine's zone, with its offset.
fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_default()
}

/// `auth test NAME`: a refresh now, and what came of it.
pub async fn test(registry: &Registry, name: &str) -> Result<String, BadInput> {
    let c = registry.get(name).ok_or_else(|| {
        let known: Vec<&str> = registry.all().map(|c| c.name.as_str()).collect();
        BadInput(format!(
            "no credentials '{name}' in config.toml (known: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    })?;
    if !c.renews() {
        let s = c.status();
        return Ok(match warning(&s, chrono::Utc::now().timestamp_millis()) {
            Some(w) => format!("{name}: a fixed token, not renewed; {w}\n"),
            None => format!("{name}: a fixed token, not renewed; nothing to test here (`source test` sends it)\n"),
        });
    }
    match c.renew_now().await {
        Ok(()) => {
            let s = c.status();
            Ok(format!(
                "{name}: renewed; the access token expires {}{}\n",
                s.access_expires_ms.map_or("-".into(), local_time),
                s.refresh_expires_ms.map(|t| format!(", the refresh token {}", local_time(t))).unwrap_or_default()
            ))
        }
        Err(e) => Err(BadInput(format!("{name}: {e}"))),
    }
}

/// `auth login NAME`: prints the consent page's address, then waits for the code — from the
/// browser's redirect to a loopback port, or pasted (the address the browser ended on, or
/// the code alone) when the browser runs on another machine — and exchanges it for tokens,
/// which go to the credential store. A running service takes them at its next request.
pub async fn login(registry: &Registry, name: &str, redirect: Option<&str>) -> Result<String, BadInput> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = registry.get(name).ok_or_else(|| BadInput(format!("no credentials '{name}' in config.toml")))?;
    let listener = match redirect {
        Some(_) => None,
        None => Some(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| BadInput(format!("a loopback port for the sign-in's redirect: {e}")))?,
        ),
    };
    let redirect_uri = match (redirect, &listener) {
        (Some(r), _) => r.to_string(),
        (None, Some(l)) => format!("http://127.0.0.1:{}/", l.local_addr().map_err(|e| BadInput(e.to_string()))?.port()),
        (None, None) => unreachable!("a listener without --redirect-uri"),
    };
    let start = c.login_start(&redirect_uri).map_err(BadInput)?;
    let param = c.login_code_param().unwrap_or("code").to_string();
    eprintln!("Open this page, sign in and allow access (the redirect comes back to {redirect_uri}):");
    println!("{}", start.url);
    eprintln!("Over SSH, paste here the address the browser ended on, or the code alone:");
    let from_redirect = async {
        let Some(l) = &listener else { return std::future::pending::<Option<String>>().await };
        loop {
            let Ok((mut sock, _)) = l.accept().await else { continue };
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let found = code_in(&format!("http://127.0.0.1{path}"), &param, &start.state);
            let page = match &found {
                Some(Ok(_)) => "Signed in: the cockpit has the code. You may close this page.",
                Some(Err(_)) => "The sign-in did not come back as expected: see the terminal.",
                None => "Waiting for the sign-in.",
            };
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
            if let Some(f) = found {
                return Some(f.unwrap_or_else(|e| format!("!{e}")));
            }
        }
    };
    // Lines typed or pasted, read on a thread of their own (stdin blocks).
    let (tx, mut pasted) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let from_paste = async {
        while let Some(line) = pasted.recv().await {
            let line = line.trim().to_string();
            if line.is_empty() {
                continue;
            }
            if !line.contains("://") {
                return Some(line);
            }
            match code_in(&line, &param, &start.state) {
                Some(r) => return Some(r.unwrap_or_else(|e| format!("!{e}"))),
                None => eprintln!("no {param}= in that address; paste the address the browser ended on"),
            }
        }
        std::future::pending::<Option<String>>().await
    };
    let code = tokio::select! {
        c = from_redirect => c,
        c = from_paste => c,
    }
    .unwrap_or_default();
    if let Some(why) = code.strip_prefix('!') {
        return Err(BadInput(format!("{name}: {why}")));
    }
    c.login_finish(&start, &code).await.map_err(|e| BadInput(e.to_string()))?;
    let kept = c.store_path().map(|p| p.display().to_string()).unwrap_or_default();
    Ok(format!("{name}: signed in; the tokens are kept in {kept}; a running service takes them at its next request\n"))
}

/// The code in a redirect address, checking its `state`; `None` when it has none.
fn code_in(address: &str, param: &str, state: &str) -> Option<Result<String, String>> {
    let u = url::Url::parse(address).ok()?;
    let get = |k: &str| u.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    if let Some(e) = get("error") {
        return Some(Err(format!("the platform said: {e} {}", get("error_description").unwrap_or_default())));
    }
    let code = get(param)?;
    match get("state") {
        Some(s) if s != state => Some(Err("the redirect's state is not this sign-in's: start again".into())),
        _ => Some(Ok(code)),
    }
}
