//! What a service implements to take a role: every role is a [`Service`] (its `type = "…"`, its
//! table, who it is there, its client, the check of its credentials), and each role adds its
//! own: a [`SourceService`] fetches, a [`QuantityService`] pushes quantities in batches, a
//! [`FlagService`] sets a catalogue's flags, a [`FeedService`] is read for orders (by the
//! daemon, through its own client's methods).
//!
//! A service implements these in its folder's `kind.rs`, usually by handing each call to its
//! client's own method; [`super::kinds`] lists the services by role and dispatches over them.

use std::fmt::Debug;
use std::future::Future;

use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::http::limits::AccountKey;
use crate::http::{Endpoint, Meter};
use crate::services::session::Logins;
use crate::services::shopsys::{catalogue::Catalogue, config::ShopsysRules, target::Patched};
use crate::services::table::{Account, Check, Remote, TargetCommon, TargetTable};
use crate::services::{Confirmed, ConnectorError, Fetched, Known, PushItem};

/// What every role of every service has.
pub trait Service: Sized {
    /// Its `type` in `[sources.NAME]`, `[targets.NAME]` or `[orders.NAME]`.
    const TYPE: &'static str;
    /// Its table as written (`type` taken off); unknown keys are errors.
    type Table: DeserializeOwned;
    /// Its table, checked.
    type Settings: Debug;

    /// Who it is at its service: endpoints of one account share a budget (and a login).
    fn account(settings: &Self::Settings) -> Account;

    /// The secret it logs in with.
    fn credential(settings: &Self::Settings) -> SecretString;

    /// Its client, sending through `endpoint` of `account`; one that logs in shares the login of
    /// the same credentials in `logins`.
    fn client(
        settings: &Self::Settings,
        endpoint: Endpoint,
        account: &AccountKey,
        logins: &mut Logins,
    ) -> Self;

    /// Proves the credentials work without changing anything; says what it saw.
    fn check(&self, meter: &Meter) -> impl Future<Output = Result<String, ConnectorError>> + Send;
}

/// A source of truth: `[sources.NAME]`.
pub trait SourceService: Service {
    /// Checks its table, recording every error in `check`.
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: Self::Table,
    ) -> Option<(Remote, Self::Settings)>;

    /// How it reads an answer, after its type: part of what an answer is (the same bytes read
    /// another way are another answer).
    fn reading(&self) -> String;

    /// Reads the source completely: every page, every record; unless every page is what it was
    /// when `known` was recorded. `context` says how the answer is read.
    fn fetch(
        &self,
        meter: &Meter,
        context: &[u8],
        known: Known<'_>,
    ) -> impl Future<Output = Result<Fetched, ConnectorError>> + Send;
}

/// A target that shows quantities, set in batches: `[targets.NAME]`.
pub trait QuantityService: Service<Table: TargetTable> {
    /// Checks its table, recording every error in `check`.
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: Self::Table,
    ) -> Option<(Remote, TargetCommon, Self::Settings)>;

    /// The part of its service it writes, where one account has several (a Hako warehouse).
    fn place(_settings: &Self::Settings) -> Option<String> {
        None
    }

    /// Sets the quantities of one batch; `Ok` with the SKUs its answer confirms.
    fn push(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> impl Future<Output = Result<Confirmed, ConnectorError>> + Send;
}

/// A catalogue that shows availability by a flag on each product: `[targets.NAME]`.
pub trait FlagService: Service<Table: TargetTable> {
    /// Checks its table, recording every error in `check`.
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: Self::Table,
    ) -> Option<(Remote, TargetCommon, Self::Settings)>;

    /// The rules of its table.
    fn rules(&self) -> ShopsysRules;

    /// Reads every page of the product list and indexes it by SKU.
    fn read_catalogue(
        &self,
        meter: &Meter,
    ) -> impl Future<Output = Result<Catalogue, ConnectorError>> + Send;

    /// Writes the flag of product `uuid`: set (`true`) or cleared.
    fn set_flag(
        &self,
        meter: &Meter,
        uuid: &str,
        value: bool,
    ) -> impl Future<Output = Result<Patched, ConnectorError>> + Send;
}

/// An order feed: `[orders.NAME]`.
pub trait FeedService: Service {
    /// Checks its table, recording every error in `check`.
    fn settings(
        check: &impl Check,
        prefix: &str,
        table: Self::Table,
    ) -> Option<(Remote, Self::Settings)>;
}
