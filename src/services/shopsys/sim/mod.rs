//! Simulator of the catalogue (seed `003`, the Shopsys Framework backend API, with the facts
//! `API_NOTES.md` adds): OAuth2 client-credentials tokens that expire, 100 products a page with
//! a `Link` header (present but empty on a one-page list), 422 past the last page, an empty
//! catalogue as `200 []`, a *calculated* `sellingDenied` on `GET` beside the raw flag `PATCH`
//! writes, variants that refuse `PATCH`, an unknown product as 404 or 410, error bodies as a
//! debug or a production install writes them, and the documented validation errors (see
//! `api` for the dialect points it speaks). Token lifetimes run on tokio's clock, so a test
//! with paused time can let them run out.

mod api;
mod products;

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::wire::Product;
use crate::harness::server::Server;
use api::{Inner, State};

/// Products per page, fixed by the shop.
pub const PAGE_SIZE: usize = 100;

/// Configuration of a [`ShopsysSim`].
#[derive(Debug, Clone)]
pub struct ShopsysSimConfig {
    /// The API client's id.
    pub client_id: String,
    /// The API client's secret.
    pub client_secret: String,
    /// `expires_in` of every token issued, in seconds (the shop's setting; default 3600).
    pub expires_in: u64,
}

impl Default for ShopsysSimConfig {
    fn default() -> Self {
        ShopsysSimConfig {
            client_id: "invsync".to_owned(),
            client_secret: "sim-shopsys-client-secret".to_owned(),
            expires_in: 3600,
        }
    }
}

/// A product as the shop holds it: raw flags, and the shop's own rule beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimProduct {
    /// Its id.
    pub uuid: String,
    /// Name in the `en` locale.
    pub name: String,
    /// Catalogue number.
    pub catnum: Option<String>,
    /// Barcode.
    pub ean: Option<String>,
    /// Part number.
    pub partno: Option<String>,
    /// The raw `hidden` flag.
    pub hidden: bool,
    /// The raw `sellingDenied` flag, as `PATCH` writes it.
    pub selling_denied: bool,
    /// The shop's own rule (its stock, selling dates) denies selling, whatever the raw flag.
    pub shop_denies: bool,
    /// A variant or main variant: `PATCH` answers 400 without `errors` (the seed's text on a
    /// debug install, a bare "Bad Request" on a production one).
    pub variant: bool,
    /// Data the shop's validation rejects whenever the product is saved, as (field path,
    /// message): every `PATCH` answers the validation error, whatever it sends.
    pub invalid: Option<(String, String)>,
}

impl SimProduct {
    /// Product number `n` with `catnum` and no other code (no ean, no partno), all flags
    /// clear: what a catalogue of a million is made of, without the codes it would not use.
    pub fn with_catnum(n: u64, catnum: String) -> SimProduct {
        SimProduct {
            uuid: format!("00000000-0000-4000-8000-{n:012x}"),
            name: format!("Product {n}"),
            catnum: Some(catnum),
            ean: None,
            partno: None,
            hidden: false,
            selling_denied: false,
            shop_denies: false,
            variant: false,
            invalid: None,
        }
    }

    /// Product number `n`: uuid `00000000-0000-4000-8000-<n>`, catnum `CAT-<n>`, ean
    /// `859<n, ten digits>`, partno `PN-<n>`, all flags clear.
    pub fn numbered(n: u64) -> SimProduct {
        SimProduct {
            ean: Some(format!("859{n:010}")),
            partno: Some(format!("PN-{n}")),
            ..SimProduct::with_catnum(n, format!("CAT-{n:05}"))
        }
    }

    /// The product as `GET` shows it: `sellingDenied` calculated.
    pub fn shown(&self) -> Product {
        let localized = |text: &str| [("1".to_owned(), Some(text.to_owned()))].into();
        Product {
            uuid: self.uuid.clone(),
            name: [("en".to_owned(), Some(self.name.clone()))].into(),
            hidden: self.hidden,
            selling_denied: self.selling_denied || self.shop_denies,
            selling_from: Some("2000-01-16T00:00:00+00:00".to_owned()),
            selling_to: None,
            catnum: self.catnum.clone(),
            ean: self.ean.clone(),
            partno: self.partno.clone(),
            short_description: localized("Short description"),
            long_description: localized("<p>Long description</p>"),
        }
    }
}
/// A running catalogue simulator; base URL `http://127.0.0.1:PORT`.
#[derive(Clone)]
pub struct ShopsysSim {
    server: Server,
    state: Arc<State>,
}

crate::harness::common_methods!(ShopsysSim);

impl ShopsysSim {
    /// Starts a simulator with no products on `127.0.0.1:0` on the current tokio runtime.
    pub async fn start(config: ShopsysSimConfig) -> std::io::Result<ShopsysSim> {
        ShopsysSim::start_on(config, 0).await
    }

    /// Starts a simulator with no products on `127.0.0.1:port` (`0`: a free port), as `invsync
    /// sim` does.
    pub async fn start_on(config: ShopsysSimConfig, port: u16) -> std::io::Result<ShopsysSim> {
        let state = Arc::new(State {
            client_id: config.client_id,
            client_secret: config.client_secret,
            inner: Mutex::new(Inner {
                expires_in: config.expires_in,
                ..Inner::default()
            }),
        });
        let server = Server::start(state.clone(), port).await?;
        Ok(ShopsysSim { server, state })
    }

    /// Base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The client id the simulator accepts.
    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    /// The client secret the simulator accepts.
    pub fn client_secret(&self) -> &str {
        &self.state.client_secret
    }

    /// Adds products at the end of the list (a product whose uuid exists replaces it).
    pub fn add_products(&self, products: impl IntoIterator<Item = SimProduct>) {
        let products = products.into_iter();
        let mut inner = self.state.lock();
        inner.products.reserve(products.size_hint().0);
        for product in products {
            inner.products.put(product);
        }
    }

    /// The product with `uuid`, as held (raw flags).
    pub fn product(&self, uuid: &str) -> Option<SimProduct> {
        self.state.lock().products.get(uuid).cloned()
    }

    /// Deletes the product with `uuid`; `false` when there is none.
    pub fn remove_product(&self, uuid: &str) -> bool {
        self.state.lock().products.retain(|p| p.uuid != uuid)
    }

    /// Deletes the product with `uuid` right after the next product list is served: a product
    /// deleted in the shop between invsync's read of the list and its `PATCH`.
    pub fn vanish_after_listing(&self, uuid: &str) {
        self.state.lock().vanishing.push(uuid.to_owned());
    }

    /// Changes the product with `uuid`; `false` when there is none.
    pub fn update(&self, uuid: &str, change: impl FnOnce(&mut SimProduct)) -> bool {
        self.state
            .lock()
            .products
            .get_mut(uuid)
            .map(change)
            .is_some()
    }

    /// Makes the shop's own rule deny (or allow) selling `uuid`, whatever its raw flag: `GET`
    /// then shows a `sellingDenied` that disagrees with what was written.
    pub fn set_shop_denies(&self, uuid: &str, denies: bool) -> bool {
        self.update(uuid, |p| p.shop_denies = denies)
    }

    /// The `expires_in` of tokens issued from now on, in seconds.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.lock().expires_in = seconds;
    }

    /// Makes every token issued so far expire now.
    pub fn expire_all_tokens(&self) {
        let now = Instant::now();
        self.state
            .lock()
            .tokens
            .values_mut()
            .for_each(|e| *e = (*e).min(now));
    }

    /// Tokens issued (successful `POST /api/token`).
    pub fn tokens_issued(&self) -> usize {
        self.state.lock().tokens_issued
    }

    /// 401 answers to API calls for a missing, unknown or expired token.
    pub fn unauthorized_count(&self) -> usize {
        self.state.lock().unauthorized
    }

    /// Each `PATCH` answered 204, in order: the product's uuid and the body applied.
    pub fn patches(&self) -> Vec<(String, serde_json::Value)> {
        self.state.lock().patches.clone()
    }

    /// How many `PATCH`es were answered 204.
    pub fn patch_count(&self) -> usize {
        self.state.lock().patches.len()
    }
}
