//! The catalogue in the list of kinds: a flag target ([`ShopsysTarget`]).

use secrecy::SecretString;

use super::catalogue::Catalogue;
use super::config::{self, RawTarget, ShopsysRules, TargetSettings};
use super::target::{Patched, ShopsysTarget};
use crate::http::limits::AccountKey;
use crate::http::{Endpoint, Meter};
use crate::services::ConnectorError;
use crate::services::roles::{FlagService, Service};
use crate::services::session::Logins;
use crate::services::table::{Account, Check, Remote, TargetCommon};

impl Service for ShopsysTarget {
    const TYPE: &'static str = "shopsys";
    type Table = RawTarget;
    type Settings = TargetSettings;

    fn account(settings: &TargetSettings) -> Account {
        settings.account()
    }

    fn credential(settings: &TargetSettings) -> SecretString {
        settings.client_secret.clone()
    }

    fn client(t: &TargetSettings, endpoint: Endpoint, _: &AccountKey, _: &mut Logins) -> Self {
        let (id, secret) = (t.client_id.clone(), t.client_secret.clone());
        ShopsysTarget::new(endpoint, id, secret, t.rules.match_field, t.rules.flag)
            .with_rules(t.rules)
    }

    async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        ShopsysTarget::check(self, meter).await
    }
}

impl FlagService for ShopsysTarget {
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: RawTarget,
    ) -> Option<(Remote, TargetCommon, TargetSettings)> {
        config::target(check, prefix, table)
    }

    fn rules(&self) -> ShopsysRules {
        ShopsysTarget::rules(self)
    }

    async fn read_catalogue(&self, meter: &Meter) -> Result<Catalogue, ConnectorError> {
        ShopsysTarget::read_catalogue(self, meter).await
    }

    async fn set_flag(
        &self,
        meter: &Meter,
        uuid: &str,
        value: bool,
    ) -> Result<Patched, ConnectorError> {
        ShopsysTarget::set_flag(self, meter, uuid, value).await
    }
}
