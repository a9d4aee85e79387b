//! Simulator of the Hardtofind API: `POST /authenticate` issuing
//! JWT-shaped tokens, `GET /info`, `POST /batch` variant inventory
//! updates (unknown SKUs silently ignored), and the orders of seed `001`
//! ([`orders`]: the book; [`transitions`]: `process` and `ship`; [`routes`]: their endpoints and
//! the test hooks).

mod changes;
mod orders;
mod routes;
mod transitions;

pub use orders::OrderChange;
pub use orders::SimTransition;
pub use orders::{NewOrder, OrdersQuery, PAGE_SIZE};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use crate::harness::server::{Handler, Server, SimRequest, SimResponse, fail, parse_json};

/// The `person.id` / JWT `sub` of the simulated seller.
const PERSON_ID: &str = "111";

/// Configuration of a [`HardtofindSim`].
#[derive(Debug, Clone)]
pub struct HardtofindSimConfig {
    /// User name `POST /authenticate` accepts.
    pub username: String,
    /// Password `POST /authenticate` accepts.
    pub password: String,
    /// How long an issued token stays valid.
    pub token_lifetime: Duration,
    /// SKUs of the variants that exist (inventory 0 at start).
    pub catalogue: Vec<String>,
}

impl Default for HardtofindSimConfig {
    fn default() -> Self {
        HardtofindSimConfig {
            username: "seller@example.com".to_string(),
            password: "correct horse battery staple".to_string(),
            token_lifetime: Duration::from_secs(15 * 60),
            catalogue: Vec::new(),
        }
    }
}

struct Token {
    issued: SystemTime,
    expires: SystemTime,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, Token>,
    variants: HashMap<String, i64>,
    authentications: usize,
    unauthorized: usize,
    batches: Vec<Vec<(String, i64)>>,
    /// SKUs that make a whole batch fail validation, with the message.
    rejected: HashMap<String, String>,
    /// The SKU each refused batch was refused for, in order.
    refusals: Vec<String>,
    orders: orders::OrderBook,
    /// Seconds the service's clock is ahead of the host's (negative: behind): the times it
    /// states in tokens and `/info`, never when it really expires a token.
    clock_offset: i64,
}

struct State {
    username: String,
    password: String,
    token_lifetime: Duration,
    inner: Mutex<Inner>,
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A `POST /batch` body.
#[derive(Deserialize)]
struct Batch {
    action: String,
    entity_type: String,
    entities: Vec<BatchEntity>,
}

#[derive(Deserialize)]
struct BatchEntity {
    sku: String,
    inventory: u64,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// A required JSON body of the expected shape, else a 400 answer.
fn parse_body<T: serde::de::DeserializeOwned>(request: &SimRequest) -> Result<T, SimResponse> {
    parse_json(&request.body)?.map_or_else(|| fail(400, "A JSON body is required"), Ok)
}

/// The validated `(sku, inventory)` pairs of a `POST /batch` body.
fn parse_batch(batch: Batch) -> Result<Vec<(String, i64)>, SimResponse> {
    if batch.action != "update" {
        return fail(400, "Unsupported action; expected \"update\"");
    }
    if batch.entity_type != "variant" {
        return fail(400, "Unsupported entity_type; expected \"variant\"");
    }
    let entities = batch.entities.into_iter().enumerate().map(|(i, entity)| {
        match i64::try_from(entity.inventory) {
            Ok(inventory) => Ok((entity.sku, inventory)),
            Err(_) => fail(400, format!("entities[{i}].inventory is too large")),
        }
    });
    entities.collect()
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn authenticate(&self, request: &SimRequest) -> Result<SimResponse, SimResponse> {
        let credentials: Credentials = parse_body(request)?;
        if credentials.username != self.username || credentials.password != self.password {
            return fail(401, "Invalid credentials");
        }
        let issued = SystemTime::now();
        let expires = issued + self.token_lifetime;
        let offset = self.lock().clock_offset;
        let stated = |at: SystemTime| unix_secs(at).saturating_add_signed(offset);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({"sub": PERSON_ID, "iat": stated(issued), "exp": stated(expires)});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signature = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let token = format!("{header}.{claims}.{signature}");
        let mut inner = self.lock();
        inner
            .tokens
            .insert(token.clone(), Token { issued, expires });
        inner.authentications += 1;
        let answer = json!({"person": {"id": PERSON_ID, "role": "seller"}, "token": token});
        Ok(SimResponse::json(200, &answer))
    }

    /// Issue and expiry times of the request's token, if it is valid now.
    fn token(&self, request: &SimRequest) -> Result<(SystemTime, SystemTime), SimResponse> {
        let inner = self.lock();
        let token = request.header("x-auth-token").map(str::trim);
        match token.and_then(|t| inner.tokens.get(t)) {
            Some(t) if SystemTime::now() < t.expires => Ok((t.issued, t.expires)),
            _ => fail(401, "Token expired or invalid"),
        }
    }

    fn info(&self, request: &SimRequest) -> Result<SimResponse, SimResponse> {
        let (issued, expires) = self.token(request)?;
        let offset = Duration::from_secs(self.lock().clock_offset.unsigned_abs());
        let stated = |at: SystemTime| {
            let at = if self.lock().clock_offset < 0 {
                at - offset
            } else {
                at + offset
            };
            humantime::format_rfc3339_seconds(at).to_string()
        };
        let answer = json!({
            "user_id": 111,
            "seller_account_id": 222,
            "created": stated(issued),
            "expires": stated(expires),
            "roles": ["seller"],
        });
        Ok(SimResponse::json(200, &answer))
    }

    fn batch(&self, request: &SimRequest) -> Result<SimResponse, SimResponse> {
        self.token(request)?;
        let entities = parse_batch(parse_body(request)?)?;
        let mut inner = self.lock();
        if let Some((sku, message)) = entities
            .iter()
            .find_map(|(sku, _)| inner.rejected.get_key_value(sku))
        {
            let answer = fail(422, format!("Variant {sku}: {message}"));
            let sku = sku.clone();
            inner.refusals.push(sku);
            return answer;
        }
        let mut updated = 0;
        for (sku, inventory) in &entities {
            if let Some(current) = inner.variants.get_mut(sku) {
                (*current, updated) = (*inventory, updated + 1);
            }
        }
        let answer = json!({"updated": updated, "ignored": entities.len() - updated});
        inner.batches.push(entities);
        Ok(SimResponse::json(200, &answer))
    }
}

impl Handler for State {
    fn handle(&self, request: &SimRequest) -> SimResponse {
        let result = match (request.method.as_str(), request.path.trim_end_matches('/')) {
            ("POST", "/authenticate") => self.authenticate(request),
            ("GET", "/info") => self.info(request),
            ("POST", "/batch") => self.batch(request),
            (_, "/authenticate" | "/info" | "/batch") => fail(405, "Method not allowed"),
            _ => self
                .orders_route(request)
                .unwrap_or_else(|| fail(404, "Not found")),
        };
        let response = result.unwrap_or_else(|error| error);
        if response.status == 401 {
            self.lock().unauthorized += 1;
        }
        generic_error(request, response)
    }
}

/// A production install's error body says no more than its status (the document gives no
/// error shape at all); a refusal of a batch (422) keeps its reason, which says which variant.
fn generic_error(request: &SimRequest, response: SimResponse) -> SimResponse {
    use crate::harness::dialect::Errors;
    if response.status < 400 || response.status == 422 {
        return response;
    }
    match request.dialect.answer("errors").errors {
        Errors::Debug => response,
        Errors::Production => {
            let reason = hyper::StatusCode::from_u16(response.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            SimResponse::json(
                response.status,
                &json!({"code": response.status, "message": reason}),
            )
        }
    }
}

/// A running Hardtofind simulator; base URL `http://127.0.0.1:PORT`.
#[derive(Clone)]
pub struct HardtofindSim {
    server: Server,
    state: Arc<State>,
}

crate::harness::common_methods!(HardtofindSim);

impl HardtofindSim {
    /// Makes every batch that carries `sku` fail with 422 and `message`, applying nothing, as a
    /// marketplace's validation would.
    pub fn reject_sku(&self, sku: &str, message: &str) {
        self.state
            .lock()
            .rejected
            .insert(sku.to_owned(), message.to_owned());
    }

    /// Sets the service's clock `seconds` ahead of the host's (negative: behind), as when the
    /// host's clock is wrong: the times it states (a token's `iat` and `exp`, `/info`, the
    /// dates of orders placed or changed from now on) move, the lifetime it really grants does
    /// not.
    pub fn set_clock_offset(&self, seconds: i64) {
        let mut inner = self.state.lock();
        inner.clock_offset = seconds;
        inner.orders.clock_offset = seconds;
    }

    /// The SKU each batch was refused for (see [`HardtofindSim::reject_sku`]), oldest first.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().refusals.clone()
    }

    /// Accepts `sku` again after [`HardtofindSim::reject_sku`].
    pub fn accept_sku(&self, sku: &str) {
        self.state.lock().rejected.remove(sku);
    }

    /// Start a simulator on `127.0.0.1:0` on the current tokio runtime.
    pub async fn start(config: HardtofindSimConfig) -> std::io::Result<HardtofindSim> {
        HardtofindSim::start_on(config, 0).await
    }

    /// Start a simulator on `127.0.0.1:port` (`0`: a free port), as `invsync sim` does.
    pub async fn start_on(
        config: HardtofindSimConfig,
        port: u16,
    ) -> std::io::Result<HardtofindSim> {
        let inner = Inner {
            variants: config.catalogue.into_iter().map(|sku| (sku, 0)).collect(),
            ..Inner::default()
        };
        let state = Arc::new(State {
            username: config.username,
            password: config.password,
            token_lifetime: config.token_lifetime,
            inner: Mutex::new(inner),
        });
        let server = Server::start(state.clone(), port).await?;
        state.lock().orders.base_url = server.base_url();
        Ok(HardtofindSim { server, state })
    }

    /// Base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The user name the simulator accepts.
    pub fn username(&self) -> &str {
        &self.state.username
    }

    /// The password the simulator accepts.
    pub fn password(&self) -> &str {
        &self.state.password
    }

    /// Add a variant to the catalogue (inventory 0; no-op if it exists).
    pub fn add_variant(&self, sku: &str) {
        self.state
            .lock()
            .variants
            .entry(sku.to_string())
            .or_insert(0);
    }

    /// Add several variants to the catalogue (see [`HardtofindSim::add_variant`]).
    pub fn add_variants<S: Into<String>>(&self, skus: impl IntoIterator<Item = S>) {
        let skus = skus.into_iter();
        let mut inner = self.state.lock();
        inner.variants.reserve(skus.size_hint().0);
        for sku in skus {
            inner.variants.entry(sku.into()).or_insert(0);
        }
    }

    /// Set a variant's inventory, adding the variant if needed.
    pub fn set_inventory(&self, sku: &str, inventory: i64) {
        self.state
            .lock()
            .variants
            .insert(sku.to_string(), inventory);
    }

    /// A variant's inventory; `None` if the SKU is not in the catalogue.
    pub fn inventory(&self, sku: &str) -> Option<i64> {
        self.state.lock().variants.get(sku).copied()
    }

    /// SKU → inventory of every variant in the catalogue.
    pub fn inventories(&self) -> HashMap<String, i64> {
        self.state.lock().variants.clone()
    }

    /// Make every token issued so far expire now.
    pub fn expire_all_tokens(&self) {
        let now = SystemTime::now();
        let mut inner = self.state.lock();
        inner
            .tokens
            .values_mut()
            .for_each(|t| t.expires = t.expires.min(now));
    }

    /// Successful `POST /authenticate` calls.
    pub fn authentications(&self) -> usize {
        self.state.lock().authentications
    }

    /// The entities (SKU, inventory) of each batch answered 2xx, in order,
    /// including SKUs that were ignored.
    pub fn batches(&self) -> Vec<Vec<(String, i64)>> {
        self.state.lock().batches.clone()
    }

    /// Forget the recorded batches.
    pub fn clear_batches(&self) {
        self.state.lock().batches.clear();
    }

    /// 401 answers given by the simulator itself (not by injected faults).
    pub fn unauthorized_count(&self) -> usize {
        self.state.lock().unauthorized
    }
}

#[cfg(test)]
impl HardtofindSim {
    /// A client session on this simulator, for the connectors' tests.
    /// Its budget is one no test waits on, and it retries once.
    pub(crate) fn session(&self) -> Arc<crate::services::hardtofind::Session> {
        let client =
            crate::http::HttpClient::new(Duration::from_secs(10), 16 << 20).expect("a client");
        let retry = crate::config::RetrySettings {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_elapsed: Duration::from_secs(10),
        };
        let limiter = Arc::new(crate::http::limits::limiter(1_000_000));
        let endpoint = crate::http::Endpoint::new(
            "target hardtofind-sim".into(),
            self.base_url(),
            client,
            limiter,
            retry,
            tokio_util::sync::CancellationToken::new(),
        );
        let (user, password) = (self.username().to_owned(), self.password().into());
        Arc::new(crate::services::hardtofind::Session::logging_in(
            endpoint, user, password,
        ))
    }
}

#[cfg(test)]
mod tests;
