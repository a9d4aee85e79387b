//! Whose state is whose: the *identity* of an endpoint is the place it reads or writes, not the
//! name it has in the file. A target's acknowledged quantities belong to its identity; a changed
//! identity trusts none of them. The same canonical account decides which endpoints share a rate
//! budget, and the Hako feedback-loop check compares identities too.
//!
//! Canonical means: scheme and host in lower case, the default port dropped, a trailing slash
//! dropped, and `localhost`, `127.0.0.1` and `[::1]` one host. A secret (a Hako key, an Endless
//! Aisles token) is never stored: the database keeps a fingerprint keyed with a random key of its
//! own ([`Identity::stored`]), so a stolen database does not even confirm a guessed key elsewhere.

use std::fmt::Write as _;
use std::net::IpAddr;

use aws_lc_rs::hmac;
use secrecy::{ExposeSecret, SecretString};

/// The form every loopback host takes.
const LOOPBACK: &str = "127.0.0.1";

/// The canonical form of a parsed base URL (see the module documentation).
pub fn canonical_url(url: &url::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => LOOPBACK.to_owned(),
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) if IpAddr::V4(ip).is_loopback() => LOOPBACK.to_owned(),
        Some(url::Host::Ipv6(ip)) if IpAddr::V6(ip).is_loopback() => LOOPBACK.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => String::new(),
    };
    // `url` already lower-cases the scheme and drops a port that is the scheme's default.
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    format!("{}://{host}{port}{path}", url.scheme())
}

/// Who an endpoint is at its service: each service's table says.
pub use crate::services::table::Account;

/// The place an endpoint reads or writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The service type (`hako`, `hardtofind`, …).
    pub kind: &'static str,
    /// The canonical base URL.
    pub base_url: String,
    /// The account at that service.
    pub account: Account,
    /// For a Hako target, the warehouse it writes.
    pub warehouse: Option<String>,
}

impl Identity {
    /// The account whose rate budget an endpoint of this identity spends (its warehouse apart:
    /// a Hako key is one budget whichever warehouse it writes).
    pub fn budget_key(&self) -> crate::http::limits::AccountKey {
        let credential = match &self.account {
            Account::Name(name) => name.as_str(),
            Account::Secret(secret) => secret.expose_secret(),
        };
        crate::http::limits::AccountKey::of_credential(&self.base_url, credential)
    }

    /// Whether `other` is the same account at the same service (a warehouse apart).
    pub fn same_account(&self, other: &Identity) -> bool {
        self.base_url == other.base_url && self.account == other.account
    }

    /// The account as text that names no secret: what rate budgets are keyed by in memory.
    pub fn account_key(&self, key: &[u8]) -> String {
        format!("{} {}", self.base_url, self.account_text(key))
    }

    /// The identity as the database keeps it: secrets as fingerprints keyed with `key`.
    pub fn stored(&self, key: &[u8]) -> String {
        let mut text = format!("{} {}", self.kind, self.account_key(key));
        if let Some(warehouse) = &self.warehouse {
            let _ = write!(text, " warehouse={warehouse:?}");
        }
        text
    }

    /// What an operator may read of the identity: no secret, not even its fingerprint.
    pub fn describe(&self) -> String {
        let mut text = format!("{} at {}", self.kind, self.base_url);
        if let Account::Name(name) = &self.account {
            let _ = write!(text, " as {name}");
        }
        if let Some(warehouse) = &self.warehouse {
            let _ = write!(text, ", warehouse {warehouse}");
        }
        text
    }

    fn account_text(&self, key: &[u8]) -> String {
        match &self.account {
            Account::Name(name) => format!("account={name:?}"),
            Account::Secret(secret) => format!("key={}", fingerprint(key, secret)),
        }
    }
}

/// HMAC-SHA-256 of the secret under `key`, the first 16 bytes in hex: what the database may keep
/// of a secret.
pub fn fingerprint(key: &[u8], secret: &SecretString) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        secret.expose_secret().as_bytes(),
    );
    tag.as_ref()[..16].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        canonical_url(&url::Url::parse(text).expect("a URL"))
    }

    #[test]
    fn one_place_written_many_ways_is_one_canonical_url() {
        let want = "http://127.0.0.1:8080/v0";
        for text in [
            "http://127.0.0.1:8080/v0",
            "http://localhost:8080/v0/",
            "HTTP://LocalHost:8080/v0",
            "http://[::1]:8080/v0",
        ] {
            assert_eq!(canonical(text), want, "{text}");
        }
        assert_eq!(
            canonical("https://API.withhako.com:443/v0/"),
            "https://api.withhako.com/v0"
        );
        assert_ne!(
            canonical("https://api.withhako.com/v1"),
            canonical("https://api.withhako.com/v0")
        );
        assert_eq!(canonical("https://example.com/"), "https://example.com");
    }

    #[test]
    fn a_stored_identity_names_no_secret_and_changes_with_the_secret() {
        let identity = |secret: &str| Identity {
            kind: "hako",
            base_url: "https://api.withhako.com/v0".into(),
            account: Account::Secret(SecretString::from(secret.to_owned())),
            warehouse: Some("dropship".into()),
        };
        let key = b"database key";
        let stored = identity("canary-key").stored(key);
        assert!(!stored.contains("canary"), "{stored}");
        assert_eq!(stored, identity("canary-key").stored(key));
        assert_ne!(stored, identity("other-key").stored(key));
        assert_ne!(stored, identity("canary-key").stored(b"another database"));
        assert!(!format!("{:?}", identity("canary-key")).contains("canary"));
        assert!(!identity("canary-key").describe().contains("canary"));
    }
}
