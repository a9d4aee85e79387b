//! Hardtofind in the list of kinds: a quantity target ([`HardtofindTarget`]) and an order feed
//! ([`OrderFeed`]), one login (one token) for a target and a feed of one account and password.

use std::sync::Arc;

use secrecy::SecretString;

use super::auth::{Credentials, Session};
use super::config::{self, FeedSettings, RawFeed, RawTarget, TargetSettings};
use super::{HardtofindTarget, OrderFeed};
use crate::http::limits::AccountKey;
use crate::http::{Endpoint, Meter};
use crate::services::roles::{FeedService, QuantityService, Service};
use crate::services::session::Logins;
use crate::services::table::{Account, Check, Remote, TargetCommon};
use crate::services::{Confirmed, ConnectorError, PushItem};

/// The session of `username` with `password`, shared with every endpoint of the same login.
fn session(
    logins: &mut Logins,
    endpoint: Endpoint,
    account: &AccountKey,
    (username, password): (&str, &SecretString),
) -> Arc<Session> {
    logins.session(endpoint, account, password, || {
        Credentials::new(username.to_owned(), password.clone())
    })
}

impl Service for HardtofindTarget {
    const TYPE: &'static str = "hardtofind";
    type Table = RawTarget;
    type Settings = TargetSettings;

    fn account(settings: &TargetSettings) -> Account {
        settings.account()
    }

    fn credential(settings: &TargetSettings) -> SecretString {
        settings.password.clone()
    }

    fn client(t: &TargetSettings, ep: Endpoint, account: &AccountKey, logins: &mut Logins) -> Self {
        let login = (t.username.as_str(), &t.password);
        HardtofindTarget::new(session(logins, ep, account, login))
    }

    async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        HardtofindTarget::check(self, meter).await
    }
}

impl QuantityService for HardtofindTarget {
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: RawTarget,
    ) -> Option<(Remote, TargetCommon, TargetSettings)> {
        config::target(check, prefix, table)
    }

    async fn push(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> Result<Confirmed, ConnectorError> {
        HardtofindTarget::push(self, meter, batch).await
    }
}

impl Service for OrderFeed {
    const TYPE: &'static str = "hardtofind";
    type Table = RawFeed;
    type Settings = FeedSettings;

    fn account(settings: &FeedSettings) -> Account {
        Account::Name(settings.username.clone())
    }

    fn credential(settings: &FeedSettings) -> SecretString {
        settings.password.clone()
    }

    fn client(f: &FeedSettings, ep: Endpoint, account: &AccountKey, logins: &mut Logins) -> Self {
        let login = (f.username.as_str(), &f.password);
        OrderFeed::new(session(logins, ep, account, login))
    }

    async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        OrderFeed::check(self, meter).await
    }
}

impl FeedService for OrderFeed {
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: RawFeed,
    ) -> Option<(Remote, FeedSettings)> {
        config::feed(check, prefix, table)
    }
}
