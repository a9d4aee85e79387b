//! [`kinds!`]: from the one list of services by role in [`super::kinds`], the enums of their
//! settings (`SourceKind`, `TargetKind`, `FeedKind`) and of their clients (`Source`,
//! `QuantityTarget`, `FlagTarget`, `Feed`), the functions that type `[sources.NAME]`,
//! `[targets.NAME]` and `[orders.NAME]` by their `type`, and every method that dispatches over
//! the kinds: a `match` with one arm per service, handing the call to the service's role
//! ([`super::roles`]). The dispatch stays static: no boxed future, no trait object.

/// Declares the kinds of service, by role. Each entry is `Variant => client type`, the type
/// implementing the role's trait; its doc comment documents both variants.
macro_rules! kinds {
    (
        sources: [$($(#[$sm:meta])* $S:ident => $sty:ty,)*],
        quantity_targets: [$($(#[$qm:meta])* $Q:ident => $qty:ty,)*],
        flag_targets: [$($(#[$fm:meta])* $F:ident => $fty:ty,)*],
        feeds: [$($(#[$dm:meta])* $D:ident => $dty:ty,)*] $(,)?
    ) => {
        use $crate::services::roles as role;

        /// Per-service settings of a source.
        #[derive(Debug)]
        pub enum SourceKind {
            $($(#[$sm])* $S(<$sty as role::Service>::Settings),)*
        }

        /// Per-service settings of a target.
        #[derive(Debug)]
        pub enum TargetKind {
            $($(#[$qm])* $Q(<$qty as role::Service>::Settings),)*
            $($(#[$fm])* $F(<$fty as role::Service>::Settings),)*
        }

        /// Per-service settings of an order feed.
        #[derive(Debug)]
        pub enum FeedKind {
            $($(#[$dm])* $D(<$dty as role::Service>::Settings),)*
        }

        const SOURCE_TYPES: &[&str] = &[$(<$sty as role::Service>::TYPE,)*];
        const TARGET_TYPES: &[&str] = &[
            $(<$qty as role::Service>::TYPE,)*
            $(<$fty as role::Service>::TYPE,)*
        ];
        const FEED_TYPES: &[&str] = &[$(<$dty as role::Service>::TYPE,)*];

        /// Types and checks `[sources.NAME]` by its `type`.
        pub fn source(
            check: &impl $crate::services::table::Check,
            prefix: &str,
            value: toml::Value,
        ) -> Option<($crate::services::table::Remote, SourceKind)> {
            let (kind, rest) = check.kind_table(prefix, value, SOURCE_TYPES)?;
            $(if kind == <$sty as role::Service>::TYPE {
                let raw = check.table(prefix, rest)?;
                let (remote, s) = <$sty as role::SourceService>::settings(check, prefix, raw)?;
                return Some((remote, SourceKind::$S(s)));
            })*
            None
        }

        /// Types and checks `[targets.NAME]` by its `type`.
        pub fn target(
            check: &impl $crate::services::table::Check,
            prefix: &str,
            value: toml::Value,
        ) -> Option<(
            $crate::services::table::Remote,
            $crate::services::table::TargetCommon,
            TargetKind,
        )> {
            let (kind, rest) = check.kind_table(prefix, value, TARGET_TYPES)?;
            $(if kind == <$qty as role::Service>::TYPE {
                let raw = check.table(prefix, rest)?;
                let (remote, common, t) =
                    <$qty as role::QuantityService>::settings(check, prefix, raw)?;
                return Some((remote, common, TargetKind::$Q(t)));
            })*
            $(if kind == <$fty as role::Service>::TYPE {
                let raw = check.table(prefix, rest)?;
                let (remote, common, t) =
                    <$fty as role::FlagService>::settings(check, prefix, raw)?;
                return Some((remote, common, TargetKind::$F(t)));
            })*
            None
        }

        /// A target's inputs and rules only, typed like [`target`] types them but without
        /// reading a secret (for `status`).
        pub fn target_common(
            check: &impl $crate::services::table::Check,
            prefix: &str,
            value: toml::Value,
        ) -> Option<$crate::services::table::TargetCommon> {
            use $crate::services::table::TargetTable as _;
            let (kind, rest) = check.kind_table(prefix, value, TARGET_TYPES)?;
            $(if kind == <$qty as role::Service>::TYPE {
                let raw = check.table::<<$qty as role::Service>::Table>(prefix, rest)?;
                return Some(raw.common());
            })*
            $(if kind == <$fty as role::Service>::TYPE {
                let raw = check.table::<<$fty as role::Service>::Table>(prefix, rest)?;
                return Some(raw.common());
            })*
            None
        }

        /// Types and checks `[orders.NAME]` by its `type`.
        pub fn feed(
            check: &impl $crate::services::table::Check,
            prefix: &str,
            value: toml::Value,
        ) -> Option<($crate::services::table::Remote, FeedKind)> {
            let (kind, rest) = check.kind_table(prefix, value, FEED_TYPES)?;
            $(if kind == <$dty as role::Service>::TYPE {
                let raw = check.table(prefix, rest)?;
                let (remote, f) = <$dty as role::FeedService>::settings(check, prefix, raw)?;
                return Some((remote, FeedKind::$D(f)));
            })*
            None
        }

        impl SourceKind {
            /// Its `type`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(SourceKind::$S(_) => <$sty as role::Service>::TYPE,)*
                }
            }

            /// Who it is at its service.
            pub fn account(&self) -> $crate::services::table::Account {
                match self {
                    $(SourceKind::$S(s) => <$sty as role::Service>::account(s),)*
                }
            }

            /// The secret it logs in with.
            pub fn credential(&self) -> secrecy::SecretString {
                match self {
                    $(SourceKind::$S(s) => <$sty as role::Service>::credential(s),)*
                }
            }

            /// Its client, as [`TargetKind::client`].
            pub fn client(
                &self,
                endpoint: $crate::http::Endpoint,
                account: &$crate::http::limits::AccountKey,
                logins: &mut $crate::services::session::Logins,
            ) -> Source {
                match self {
                    $(SourceKind::$S(s) => Source::$S(
                        <$sty as role::Service>::client(s, endpoint, account, logins),
                    ),)*
                }
            }
        }

        impl TargetKind {
            /// Its `type`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(TargetKind::$Q(_) => <$qty as role::Service>::TYPE,)*
                    $(TargetKind::$F(_) => <$fty as role::Service>::TYPE,)*
                }
            }

            /// Who it is at its service.
            pub fn account(&self) -> $crate::services::table::Account {
                match self {
                    $(TargetKind::$Q(t) => <$qty as role::Service>::account(t),)*
                    $(TargetKind::$F(t) => <$fty as role::Service>::account(t),)*
                }
            }

            /// The secret it logs in with.
            pub fn credential(&self) -> secrecy::SecretString {
                match self {
                    $(TargetKind::$Q(t) => <$qty as role::Service>::credential(t),)*
                    $(TargetKind::$F(t) => <$fty as role::Service>::credential(t),)*
                }
            }

            /// The part of its service it writes, where one account has several (a Hako
            /// warehouse).
            pub fn place(&self) -> Option<String> {
                match self {
                    $(TargetKind::$Q(t) => <$qty as role::QuantityService>::place(t),)*
                    $(TargetKind::$F(_) => None,)*
                }
            }

            /// Its client, sending through `endpoint` of `account`; one that logs in shares the
            /// login of the same credentials in `logins`.
            pub fn client(
                &self,
                endpoint: $crate::http::Endpoint,
                account: &$crate::http::limits::AccountKey,
                logins: &mut $crate::services::session::Logins,
            ) -> Target {
                match self {
                    $(TargetKind::$Q(t) => Target::Quantities(QuantityTarget::$Q(Box::new(
                        <$qty as role::Service>::client(t, endpoint, account, logins),
                    ))),)*
                    $(TargetKind::$F(t) => Target::Flags(FlagTarget::$F(std::sync::Arc::new(
                        <$fty as role::Service>::client(t, endpoint, account, logins),
                    ))),)*
                }
            }
        }

        impl FeedKind {
            /// Its `type`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(FeedKind::$D(_) => <$dty as role::Service>::TYPE,)*
                }
            }

            /// Who it is at its service: the same account as a target of that login shares its
            /// token and budget.
            pub fn account(&self) -> $crate::services::table::Account {
                match self {
                    $(FeedKind::$D(f) => <$dty as role::Service>::account(f),)*
                }
            }

            /// Its client, as [`TargetKind::client`].
            pub fn client(
                &self,
                endpoint: $crate::http::Endpoint,
                account: &$crate::http::limits::AccountKey,
                logins: &mut $crate::services::session::Logins,
            ) -> Feed {
                match self {
                    $(FeedKind::$D(f) => Feed::$D(
                        <$dty as role::Service>::client(f, endpoint, account, logins),
                    ),)*
                }
            }
        }

        /// A source of truth.
        pub enum Source {
            $($(#[$sm])* $S($sty),)*
        }

        impl Source {
            /// Reads the source completely: every page, every record; unless every page is what
            /// it was when `known` was recorded (see [`crate::services::answer`]). `context` says
            /// how the daemon reads the records (the source adds how it reads the answer itself).
            pub async fn fetch(
                &self,
                meter: &$crate::http::Meter,
                context: &[u8],
                known: $crate::services::Known<'_>,
            ) -> Result<$crate::services::Fetched, $crate::services::ConnectorError> {
                let context = [self.context().as_bytes(), context].concat();
                match self {
                    $(Source::$S(s) => {
                        <$sty as role::SourceService>::fetch(s, meter, &context, known).await
                    })*
                }
            }

            /// How this source reads an answer: the same bytes read another way are another
            /// answer.
            fn context(&self) -> String {
                let how = match self {
                    $(Source::$S(s) => format!(
                        "{} {}",
                        <$sty as role::Service>::TYPE,
                        <$sty as role::SourceService>::reading(s),
                    ),)*
                };
                format!("invsync {} {how}\n", env!("CARGO_PKG_VERSION"))
            }

            /// Proves the credentials work without changing anything; says what it saw.
            pub async fn check(
                &self,
                meter: &$crate::http::Meter,
            ) -> Result<String, $crate::services::ConnectorError> {
                match self {
                    $(Source::$S(s) => <$sty as role::Service>::check(s, meter).await,)*
                }
            }
        }

        /// A target that shows quantities, set in batches.
        pub enum QuantityTarget {
            $($(#[$qm])* $Q(Box<$qty>),)*
        }

        impl QuantityTarget {
            /// Sets the quantities of one batch; `Ok` when the service accepted it, with the SKUs
            /// its answer confirms (see [`crate::services::Confirmed`]): only those may be
            /// acknowledged.
            pub async fn push(
                &self,
                meter: &$crate::http::Meter,
                batch: &[$crate::services::PushItem<'_>],
            ) -> Result<$crate::services::Confirmed, $crate::services::ConnectorError> {
                match self {
                    $(QuantityTarget::$Q(t) => {
                        <$qty as role::QuantityService>::push(t, meter, batch).await
                    })*
                }
            }

            /// Proves the credentials work without changing anything; says what it saw.
            pub async fn check(
                &self,
                meter: &$crate::http::Meter,
            ) -> Result<String, $crate::services::ConnectorError> {
                match self {
                    $(QuantityTarget::$Q(t) => <$qty as role::Service>::check(t, meter).await,)*
                }
            }
        }

        /// A catalogue that shows availability by a flag on each product. A clone shares the
        /// client (one token): the cycle may read its product list early (see
        /// `daemon::catalogues`).
        #[derive(Clone)]
        pub enum FlagTarget {
            $($(#[$fm])* $F(std::sync::Arc<$fty>),)*
        }

        impl FlagTarget {
            /// The rules of its table.
            pub fn rules(&self) -> $crate::services::shopsys::config::ShopsysRules {
                match self {
                    $(FlagTarget::$F(t) => <$fty as role::FlagService>::rules(t),)*
                }
            }

            /// Reads every page of the product list and indexes it by SKU.
            pub async fn read_catalogue(
                &self,
                meter: &$crate::http::Meter,
            ) -> Result<
                $crate::services::shopsys::catalogue::Catalogue,
                $crate::services::ConnectorError,
            > {
                match self {
                    $(FlagTarget::$F(t) => {
                        <$fty as role::FlagService>::read_catalogue(t, meter).await
                    })*
                }
            }

            /// Writes the flag of product `uuid`: set (`true`) or cleared.
            pub async fn set_flag(
                &self,
                meter: &$crate::http::Meter,
                uuid: &str,
                value: bool,
            ) -> Result<
                $crate::services::shopsys::target::Patched,
                $crate::services::ConnectorError,
            > {
                match self {
                    $(FlagTarget::$F(t) => {
                        <$fty as role::FlagService>::set_flag(t, meter, uuid, value).await
                    })*
                }
            }

            /// Proves the credentials work without changing anything; says what it saw.
            pub async fn check(
                &self,
                meter: &$crate::http::Meter,
            ) -> Result<String, $crate::services::ConnectorError> {
                match self {
                    $(FlagTarget::$F(t) => <$fty as role::Service>::check(t, meter).await,)*
                }
            }
        }

        /// An order feed.
        pub enum Feed {
            $($(#[$dm])* $D($dty),)*
        }

        impl Feed {
            /// Proves the credentials work without changing anything; says what it saw.
            pub async fn check(
                &self,
                meter: &$crate::http::Meter,
            ) -> Result<String, $crate::services::ConnectorError> {
                match self {
                    $(Feed::$D(f) => <$dty as role::Service>::check(f, meter).await,)*
                }
            }
        }
    };
}

pub(crate) use kinds;
