//! Hako in the list of kinds: a source ([`HakoSource`]) and a quantity target ([`HakoTarget`]).

use secrecy::SecretString;

use super::config::{self, RawSource, RawTarget, SourceSettings, TargetSettings};
use super::{HakoSource, HakoTarget};
use crate::http::limits::AccountKey;
use crate::http::{Endpoint, Meter};
use crate::services::roles::{QuantityService, Service, SourceService};
use crate::services::session::Logins;
use crate::services::table::{Account, Check, Remote, TargetCommon};
use crate::services::{Confirmed, ConnectorError, Fetched, Known, PushItem};

impl Service for HakoSource {
    const TYPE: &'static str = "hako";
    type Table = RawSource;
    type Settings = SourceSettings;

    fn account(settings: &SourceSettings) -> Account {
        settings.account()
    }

    fn credential(settings: &SourceSettings) -> SecretString {
        settings.api_key.clone()
    }

    fn client(s: &SourceSettings, endpoint: Endpoint, _: &AccountKey, _: &mut Logins) -> Self {
        HakoSource::new(endpoint, s.api_key.clone(), s.warehouses.clone())
    }

    async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        HakoSource::check(self, meter).await
    }
}

impl SourceService for HakoSource {
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: RawSource,
    ) -> Option<(Remote, SourceSettings)> {
        config::source(check, prefix, table)
    }

    fn reading(&self) -> String {
        format!("{:?}", self.warehouses())
    }

    async fn fetch(
        &self,
        meter: &Meter,
        context: &[u8],
        known: Known<'_>,
    ) -> Result<Fetched, ConnectorError> {
        HakoSource::fetch(self, meter, context, known).await
    }
}

impl Service for HakoTarget {
    const TYPE: &'static str = "hako";
    type Table = RawTarget;
    type Settings = TargetSettings;

    fn account(settings: &TargetSettings) -> Account {
        settings.account()
    }

    fn credential(settings: &TargetSettings) -> SecretString {
        settings.api_key.clone()
    }

    fn client(t: &TargetSettings, endpoint: Endpoint, _: &AccountKey, _: &mut Logins) -> Self {
        HakoTarget::new(endpoint, t.api_key.clone(), t.warehouse.clone())
    }

    async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        HakoTarget::check(self, meter).await
    }
}

impl QuantityService for HakoTarget {
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: RawTarget,
    ) -> Option<(Remote, TargetCommon, TargetSettings)> {
        config::target(check, prefix, table)
    }

    fn place(settings: &TargetSettings) -> Option<String> {
        Some(settings.warehouse.clone())
    }

    async fn push(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> Result<Confirmed, ConnectorError> {
        HakoTarget::push(self, meter, batch).await
    }
}
