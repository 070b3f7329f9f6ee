//! Credentials for sources and control endpoints, and where they may be sent: a token never
//! shows itself in logs or errors, and travels only over TLS or to this machine.

/// A token that never shows itself: `Debug` and `Display` print `[hidden]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(s: &str) -> Secret {
        Secret(std::sync::Arc::from(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

/// Whether a token may travel to `url`: over TLS, or to this machine.
pub fn may_carry_token(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "https"
            || match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_go_only_over_tls_or_to_loopback() {
        use super::may_carry_token;
        assert!(may_carry_token("https://ads.example.com/control"));
        assert!(may_carry_token("http://127.0.0.1:7878/control/x"));
        assert!(may_carry_token("http://localhost/control"));
        assert!(may_carry_token("http://[::1]:80/control"));
        assert!(!may_carry_token("http://ads.example.com/control"));
        assert!(!may_carry_token("not a url"));
    }
}
