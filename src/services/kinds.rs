//! The one list of the kinds of service: `type = "…"` of `[sources.NAME]`, `[targets.NAME]`
//! and `[orders.NAME]`, which roles each can play, how its table is typed and checked (by its
//! service's own `config.rs`) and how its client is built. A new service is its folder under
//! `services/` and its lines here.

use secrecy::SecretString;

use crate::http::limits::AccountKey;
use crate::http::{Endpoint, Meter};
use crate::services::table::{Account, Check, Remote, TargetCommon, TargetTable};
use crate::services::{
    Confirmed, ConnectorError, Fetched, Known, PushItem, endless_aisles, hako, hardtofind, session,
    shopsys,
};

/// Per-service settings of a source.
#[derive(Debug)]
pub enum SourceKind {
    /// Hako `GET /inventory`.
    Hako(hako::config::SourceSettings),
    /// Endless Aisles `GET /api/stock`.
    EndlessAisles(endless_aisles::config::SourceSettings),
}

/// Per-service settings of a target.
#[derive(Debug)]
pub enum TargetKind {
    /// Hardtofind `POST /batch`.
    Hardtofind(hardtofind::config::TargetSettings),
    /// Hako `PUT`/`POST /inventory` of one warehouse.
    Hako(hako::config::TargetSettings),
    /// The catalogue's availability flag, one `PATCH /api/v1/products/{uuid}` per change.
    Shopsys(shopsys::config::TargetSettings),
}

/// Per-service settings of an order feed.
#[derive(Debug)]
pub enum FeedKind {
    /// Hardtofind `GET /orders`.
    Hardtofind(hardtofind::config::FeedSettings),
}

impl FeedKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            FeedKind::Hardtofind(_) => "hardtofind",
        }
    }

    /// Who it is at its service: the same account as a target of that login shares its token
    /// and budget.
    pub fn account(&self) -> Account {
        match self {
            FeedKind::Hardtofind(f) => Account::Name(f.username.clone()),
        }
    }
}

const FEED_TYPES: &[&str] = &["hardtofind"];

/// Types and checks `[orders.NAME]` by its `type`.
pub fn feed(check: &impl Check, prefix: &str, value: toml::Value) -> Option<(Remote, FeedKind)> {
    let (_, rest) = check.kind_table(prefix, value, FEED_TYPES)?;
    let (remote, f) = hardtofind::config::feed(check, prefix, check.table(prefix, rest)?)?;
    Some((remote, FeedKind::Hardtofind(f)))
}

const SOURCE_TYPES: &[&str] = &["hako", "endless_aisles"];
const TARGET_TYPES: &[&str] = &["hardtofind", "hako", "shopsys"];

impl SourceKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Hako(_) => "hako",
            SourceKind::EndlessAisles(_) => "endless_aisles",
        }
    }

    /// Who it is at its service.
    pub fn account(&self) -> Account {
        match self {
            SourceKind::Hako(s) => s.account(),
            SourceKind::EndlessAisles(s) => s.account(),
        }
    }

    /// The secret it logs in with.
    pub fn credential(&self) -> SecretString {
        match self {
            SourceKind::Hako(s) => s.api_key.clone(),
            SourceKind::EndlessAisles(s) => s.token.clone(),
        }
    }
}

impl TargetKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Hardtofind(_) => "hardtofind",
            TargetKind::Hako(_) => "hako",
            TargetKind::Shopsys(_) => "shopsys",
        }
    }

    /// Who it is at its service.
    pub fn account(&self) -> Account {
        match self {
            TargetKind::Hardtofind(t) => t.account(),
            TargetKind::Hako(t) => t.account(),
            TargetKind::Shopsys(t) => t.account(),
        }
    }

    /// The secret it logs in with.
    pub fn credential(&self) -> SecretString {
        match self {
            TargetKind::Hardtofind(t) => t.password.clone(),
            TargetKind::Hako(t) => t.api_key.clone(),
            TargetKind::Shopsys(t) => t.client_secret.clone(),
        }
    }

    /// The part of its service it writes, where one account has several (a Hako warehouse).
    pub fn place(&self) -> Option<String> {
        match self {
            TargetKind::Hako(t) => Some(t.warehouse.clone()),
            TargetKind::Hardtofind(_) | TargetKind::Shopsys(_) => None,
        }
    }
}

/// Types and checks `[sources.NAME]` by its `type`.
pub fn source(
    check: &impl Check,
    prefix: &str,
    value: toml::Value,
) -> Option<(Remote, SourceKind)> {
    let (kind, rest) = check.kind_table(prefix, value, SOURCE_TYPES)?;
    Some(match kind.as_str() {
        "hako" => {
            let (remote, s) = hako::config::source(check, prefix, check.table(prefix, rest)?)?;
            (remote, SourceKind::Hako(s))
        }
        _ => {
            let raw = check.table(prefix, rest)?;
            let (remote, s) = endless_aisles::config::source(check, prefix, raw)?;
            (remote, SourceKind::EndlessAisles(s))
        }
    })
}

/// Types and checks `[targets.NAME]` by its `type`.
pub fn target(
    check: &impl Check,
    prefix: &str,
    value: toml::Value,
) -> Option<(Remote, TargetCommon, TargetKind)> {
    let (kind, rest) = check.kind_table(prefix, value, TARGET_TYPES)?;
    Some(match kind.as_str() {
        "hardtofind" => {
            let raw = check.table(prefix, rest)?;
            let (remote, common, t) = hardtofind::config::target(check, prefix, raw)?;
            (remote, common, TargetKind::Hardtofind(t))
        }
        "shopsys" => {
            let raw = check.table(prefix, rest)?;
            let (remote, common, t) = shopsys::config::target(check, prefix, raw)?;
            (remote, common, TargetKind::Shopsys(t))
        }
        _ => {
            let raw = check.table(prefix, rest)?;
            let (remote, common, t) = hako::config::target(check, prefix, raw)?;
            (remote, common, TargetKind::Hako(t))
        }
    })
}

/// A target's inputs and rules only, typed like [`target`] types them but without reading a
/// secret (for `status`).
pub fn target_common(check: &impl Check, prefix: &str, value: toml::Value) -> Option<TargetCommon> {
    let (kind, rest) = check.kind_table(prefix, value, TARGET_TYPES)?;
    Some(match kind.as_str() {
        "hardtofind" => check
            .table::<hardtofind::config::RawTarget>(prefix, rest)?
            .common(),
        "shopsys" => check
            .table::<shopsys::config::RawTarget>(prefix, rest)?
            .common(),
        _ => check
            .table::<hako::config::RawTarget>(prefix, rest)?
            .common(),
    })
}

// ---------------------------------------------------------------------------------------------
// The clients, one variant per kind, and how each kind's client is built.

/// A source of truth.
pub enum Source {
    /// Hako warehouses.
    Hako(hako::HakoSource),
    /// Endless Aisles stock.
    EndlessAisles(endless_aisles::EndlessAislesSource),
}

impl Source {
    /// Reads the source completely: every page, every record; unless every page is what it
    /// was when `known` was recorded (see [`answer`]). `context` says how the daemon reads the
    /// records (the source adds how it reads the answer itself).
    pub async fn fetch(
        &self,
        meter: &Meter,
        context: &[u8],
        known: Known<'_>,
    ) -> Result<Fetched, ConnectorError> {
        let context = [self.context().as_bytes(), context].concat();
        match self {
            Source::Hako(s) => s.fetch(meter, &context, known).await,
            Source::EndlessAisles(s) => s.fetch(meter, &context, known).await,
        }
    }

    /// How this source reads an answer: the same bytes read another way are another answer.
    fn context(&self) -> String {
        let how = match self {
            Source::Hako(s) => format!("hako {:?}", s.warehouses()),
            Source::EndlessAisles(s) => format!("endless_aisles {:?}", s.sku_prefix()),
        };
        format!("invsync {} {how}\n", env!("CARGO_PKG_VERSION"))
    }

    /// Proves the credentials work without changing anything; says what it saw.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        match self {
            Source::Hako(s) => s.check(meter).await,
            Source::EndlessAisles(s) => s.check(meter).await,
        }
    }
}

/// A channel to keep in sync, by how it shows availability.
pub enum Target {
    /// Quantities, set in batches.
    Quantities(QuantityTarget),
    /// A catalogue's availability flag, set one product at a time (by `target::flag`).
    Flags(FlagTarget),
}

impl Target {
    /// Proves the credentials work without changing anything; says what it saw.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        match self {
            Target::Quantities(t) => t.check(meter).await,
            Target::Flags(t) => t.check(meter).await,
        }
    }
}

/// A target that shows quantities, set in batches.
pub enum QuantityTarget {
    /// Hardtofind variants.
    Hardtofind(hardtofind::HardtofindTarget),
    /// One Hako warehouse.
    Hako(Box<hako::HakoTarget>),
}

impl QuantityTarget {
    /// Sets the quantities of one batch; `Ok` when the service accepted it, with the SKUs its
    /// answer confirms (see [`Confirmed`]): only those may be acknowledged.
    pub async fn push(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> Result<Confirmed, ConnectorError> {
        match self {
            QuantityTarget::Hardtofind(t) => t.push(meter, batch).await,
            QuantityTarget::Hako(t) => t.push(meter, batch).await,
        }
    }

    /// Proves the credentials work without changing anything; says what it saw.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        match self {
            QuantityTarget::Hardtofind(t) => t.check(meter).await,
            QuantityTarget::Hako(t) => t.check(meter).await,
        }
    }
}

/// A catalogue that shows availability by a flag on each product. A clone shares the client
/// (one token): the cycle may read its product list early (see `daemon::catalogues`).
#[derive(Clone)]
pub enum FlagTarget {
    /// A Shopsys catalogue: one `PATCH /api/v1/products/{uuid}` per change.
    Shopsys(std::sync::Arc<shopsys::target::ShopsysTarget>),
}

impl FlagTarget {
    /// The rules of its table.
    pub fn rules(&self) -> shopsys::config::ShopsysRules {
        match self {
            FlagTarget::Shopsys(t) => t.rules(),
        }
    }

    /// Reads every page of the product list and indexes it by SKU.
    pub async fn read_catalogue(
        &self,
        meter: &Meter,
    ) -> Result<shopsys::catalogue::Catalogue, ConnectorError> {
        match self {
            FlagTarget::Shopsys(t) => t.read_catalogue(meter).await,
        }
    }

    /// Writes the flag of product `uuid`: set (`true`) or cleared.
    pub async fn set_flag(
        &self,
        meter: &Meter,
        uuid: &str,
        value: bool,
    ) -> Result<shopsys::target::Patched, ConnectorError> {
        match self {
            FlagTarget::Shopsys(t) => t.set_flag(meter, uuid, value).await,
        }
    }

    /// Proves the credentials work without changing anything; says what it saw.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        match self {
            FlagTarget::Shopsys(t) => t.check(meter).await,
        }
    }
}

/// Every client of `config`: sources, targets and order feeds.
pub struct Clients {
    /// In the order of `config.sources`.
    pub sources: Vec<Source>,
    /// In the order of `config.targets`.
    pub targets: Vec<Target>,
    /// In the order of `config.feeds`.
    pub feeds: Vec<Feed>,
}

/// An order feed.
pub enum Feed {
    /// Hardtofind orders.
    Hardtofind(hardtofind::OrderFeed),
}

impl Feed {
    /// Proves the credentials work without changing anything; says what it saw.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        match self {
            Feed::Hardtofind(f) => f.check(meter).await,
        }
    }
}

impl SourceKind {
    /// Its client, sending through `endpoint`.
    pub fn client(&self, endpoint: Endpoint) -> Source {
        match self {
            SourceKind::Hako(s) => Source::Hako(hako::HakoSource::new(
                endpoint,
                s.api_key.clone(),
                s.warehouses.clone(),
            )),
            SourceKind::EndlessAisles(s) => {
                Source::EndlessAisles(endless_aisles::EndlessAislesSource::new(
                    endpoint,
                    s.token.clone(),
                    s.sku_prefix.clone(),
                ))
            }
        }
    }
}

impl TargetKind {
    /// Its client, sending through `endpoint` of `account`; one that logs in shares the login of
    /// the same credentials in `logins`.
    pub fn client(&self, endpoint: Endpoint, account: &AccountKey, logins: &mut Logins) -> Target {
        match self {
            TargetKind::Hardtofind(t) => Target::Quantities(QuantityTarget::Hardtofind(
                hardtofind::HardtofindTarget::new(logins.hardtofind(
                    endpoint,
                    account,
                    &t.username,
                    &t.password,
                )),
            )),
            TargetKind::Hako(t) => Target::Quantities(QuantityTarget::Hako(Box::new(
                hako::HakoTarget::new(endpoint, t.api_key.clone(), t.warehouse.clone()),
            ))),
            TargetKind::Shopsys(t) => Target::Flags(FlagTarget::Shopsys(std::sync::Arc::new(
                shopsys::target::ShopsysTarget::new(
                    endpoint,
                    t.client_id.clone(),
                    t.client_secret.clone(),
                    t.rules.match_field,
                    t.rules.flag,
                )
                .with_rules(t.rules),
            ))),
        }
    }
}

impl FeedKind {
    /// Its client, as [`TargetKind::client`].
    pub fn client(&self, endpoint: Endpoint, account: &AccountKey, logins: &mut Logins) -> Feed {
        match self {
            FeedKind::Hardtofind(f) => Feed::Hardtofind(hardtofind::OrderFeed::new(
                logins.hardtofind(endpoint, account, &f.username, &f.password),
            )),
        }
    }
}

/// The logins of one configuration, per kind that logs in: one per account and secret.
#[derive(Default)]
pub struct Logins {
    hardtofind: session::Logins<hardtofind::auth::Credentials>,
}

impl Logins {
    fn hardtofind(
        &mut self,
        endpoint: Endpoint,
        account: &AccountKey,
        username: &str,
        password: &SecretString,
    ) -> std::sync::Arc<hardtofind::Session> {
        self.hardtofind.session(endpoint, account, password, || {
            hardtofind::auth::Credentials::new(username.to_owned(), password.clone())
        })
    }
}
