//! Endless Aisles in the list of kinds: a source ([`EndlessAislesSource`]).

use secrecy::SecretString;

use super::EndlessAislesSource;
use super::config::{self, RawSource, SourceSettings};
use crate::http::limits::AccountKey;
use crate::http::{Endpoint, Meter};
use crate::services::roles::{Service, SourceService};
use crate::services::session::Logins;
use crate::services::table::{Account, Check, Remote};
use crate::services::{ConnectorError, Fetched, Known};

impl Service for EndlessAislesSource {
    const TYPE: &'static str = "endless_aisles";
    type Table = RawSource;
    type Settings = SourceSettings;

    fn account(settings: &SourceSettings) -> Account {
        settings.account()
    }

    fn credential(settings: &SourceSettings) -> SecretString {
        settings.token.clone()
    }

    fn client(s: &SourceSettings, endpoint: Endpoint, _: &AccountKey, _: &mut Logins) -> Self {
        EndlessAislesSource::new(endpoint, s.token.clone(), s.sku_prefix.clone())
    }

    async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        EndlessAislesSource::check(self, meter).await
    }
}

impl SourceService for EndlessAislesSource {
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: RawSource,
    ) -> Option<(Remote, SourceSettings)> {
        config::source(check, prefix, table)
    }

    fn reading(&self) -> String {
        format!("{:?}", self.sku_prefix())
    }

    async fn fetch(
        &self,
        meter: &Meter,
        context: &[u8],
        known: Known<'_>,
    ) -> Result<Fetched, ConnectorError> {
        EndlessAislesSource::fetch(self, meter, context, known).await
    }
}
