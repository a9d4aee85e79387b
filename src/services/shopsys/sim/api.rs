//! The simulator's answers to each request, as the shop's controllers give them, in the
//! dialect set (see `crate::harness::dialect`): `gone` (an unknown product is 404 on Shopsys 8.x,
//! 410 on 9), `errors` (a production install answers every error but validation's with the
//! status's bare reason, a debug install with the seed's texts) and `empty_link` (what `Link`
//! an empty catalogue's page 1 carries).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::products::Products;
use super::{PAGE_SIZE, SimProduct};
use crate::harness::dialect::{EmptyLink, Errors, Gone};
use crate::harness::server::{Handler, SimRequest, SimResponse};
use crate::services::shopsys::wire::{
    self, NO_PRODUCTS_ON_PAGE, Product, VALIDATION_FAILED, VARIANT_NOT_SUPPORTED,
};

/// What the shop holds.
#[derive(Default)]
pub(super) struct Inner {
    pub(super) products: Products,
    pub(super) tokens: HashMap<String, Instant>,
    pub(super) expires_in: u64,
    pub(super) tokens_issued: usize,
    pub(super) unauthorized: usize,
    pub(super) patches: Vec<(String, Value)>,
    /// Products deleted right after the next product list is served: gone by the time a
    /// `PATCH` decided from that list arrives.
    pub(super) vanishing: Vec<String>,
}

/// The shop: its API client and what it holds.
pub(super) struct State {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) inner: Mutex<Inner>,
}

/// An error as the shop's exception listener writes it: `message` on a debug install, the
/// status's reason phrase on a production one (validation errors are not written here: they
/// keep their text on both).
fn api_error(request: &SimRequest, status: u16, message: &str) -> SimResponse {
    let message = match request.dialect.answer("errors").errors {
        Errors::Debug => message,
        Errors::Production => reason(status),
    };
    SimResponse::json(status, &json!({"code": status, "message": message}))
}

/// The reason phrase Symfony gives each status the shop answers with.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        _ => "Internal Server Error",
    }
}

fn oauth_error(status: u16, error: &str, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({"error": error, "message": message}))
}

impl State {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn token(&self, request: &SimRequest) -> SimResponse {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let field = |name: &str| form.get(name).map(String::as_str);
        if field("grant_type") != Some(wire::GRANT_TYPE) {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
        let (Some(id), Some(secret)) = (field("client_id"), field("client_secret")) else {
            return oauth_error(
                400,
                "invalid_request",
                "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.",
            );
        };
        if id != self.client_id || secret != self.client_secret {
            return oauth_error(401, "invalid_client", "Client authentication failed");
        }
        let random = || URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let token = format!(
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.{}",
            random(),
            random()
        );
        let mut inner = self.lock();
        let expires_in = inner.expires_in;
        // A lifetime too long to add is one that never ends.
        let expires = Instant::now()
            .checked_add(Duration::from_secs(expires_in))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        inner.tokens.insert(token.clone(), expires);
        inner.tokens_issued += 1;
        let answer =
            json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": token});
        SimResponse::json(200, &answer)
    }

    /// `Ok` when the request carries a bearer token that is valid now.
    fn authorize(&self, request: &SimRequest) -> Result<(), SimResponse> {
        let header = request.header("authorization").unwrap_or_default().trim();
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let mut inner = self.lock();
        match token.and_then(|t| inner.tokens.get(t)) {
            Some(expires) if Instant::now() < *expires => Ok(()),
            _ => {
                inner.unauthorized += 1;
                Err(oauth_error(
                    401,
                    "access_denied",
                    "The resource owner or authorization server denied the request.",
                ))
            }
        }
    }

    fn list(&self, request: &SimRequest) -> SimResponse {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(request.query.as_deref().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        // As the shop's `-?\d+` requirement: anything else is the default, page 1; its paginator
        // takes page 0 as page 1; a negative page has no products.
        let page = query
            .iter()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse::<i64>().ok())
            .map_or(1, |p| if p == 0 { 1 } else { p });
        let uuids: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "uuids[]")
            .map(|(_, v)| v.as_str())
            .collect();
        if let Some(bad) = uuids.iter().find(|u| !wire::is_uuid(u)) {
            return api_error(request, 400, &format!("This UUID is not valid: {bad}"));
        }
        let mut inner = self.lock();
        // Only a filtered list is gathered: a page of the whole list is a slice of it, not a
        // walk over a million products.
        let filtered = (!uuids.is_empty()).then(|| inner.products.in_order(&uuids));
        let total = filtered
            .as_ref()
            .map_or(inner.products.all().len(), Vec::len);
        let pages = total.div_ceil(PAGE_SIZE);
        if pages == 0 && page == 1 {
            return empty_list(request, &query);
        }
        let Some(index) = usize::try_from(page).ok().filter(|&p| p >= 1 && p <= pages) else {
            drop(inner);
            return api_error(request, 422, NO_PRODUCTS_ON_PAGE);
        };
        let start = (index - 1) * PAGE_SIZE;
        let shown: Vec<Product> = match &filtered {
            Some(chosen) => (chosen.iter().skip(start).take(PAGE_SIZE))
                .map(|p| p.shown())
                .collect(),
            None => (inner.products.all().iter().skip(start).take(PAGE_SIZE))
                .map(SimProduct::shown)
                .collect(),
        };
        let vanishing = std::mem::take(&mut inner.vanishing);
        if !vanishing.is_empty() {
            inner.products.retain(|p| !vanishing.contains(&p.uuid));
        }
        let body = serde_json::to_vec(&shown).unwrap_or_default();
        // Present even when empty (a one-page list), as the shop's listener always adds it.
        SimResponse::raw(200, body).with_header("link", links(request, &query, index, pages))
    }

    fn get(&self, request: &SimRequest, uuid: &str) -> SimResponse {
        if !wire::is_uuid(uuid) {
            return api_error(request, 400, &format!("This UUID is not valid: {uuid}"));
        }
        let shown = self.lock().products.get(uuid).map(SimProduct::shown);
        match shown {
            Some(product) => {
                SimResponse::raw(200, serde_json::to_vec(&product).unwrap_or_default())
            }
            None => not_found(request, uuid),
        }
    }

    fn patch(&self, request: &SimRequest, uuid: &str) -> SimResponse {
        let json_body = request
            .header("content-type")
            .is_some_and(|c| c.trim_start().starts_with("application/json"));
        if !json_body {
            return api_error(request, 415, "Unsupported Media Type");
        }
        if !wire::is_uuid(uuid) {
            return api_error(request, 400, &format!("This UUID is not valid: {uuid}"));
        }
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&request.body) else {
            return api_error(request, 400, "Invalid json message received");
        };
        let errors = validate(&fields);
        if !errors.is_empty() {
            let answer = json!({"code": 400, "message": VALIDATION_FAILED, "errors": errors});
            return SimResponse::json(400, &answer);
        }
        let mut inner = self.lock();
        let Some(product) = inner.products.get_mut(uuid) else {
            drop(inner);
            return not_found(request, uuid);
        };
        if product.variant {
            drop(inner);
            return api_error(request, 400, VARIANT_NOT_SUPPORTED);
        }
        if let Some((path, message)) = product.invalid.clone() {
            // The shop validates the whole product it would save, not only the fields sent.
            let answer =
                json!({"code": 400, "message": VALIDATION_FAILED, "errors": {path: message}});
            return SimResponse::json(400, &answer);
        }
        let flag = |name: &str| fields.get(name).and_then(Value::as_bool);
        product.hidden = flag("hidden").unwrap_or(product.hidden);
        product.selling_denied = flag("sellingDenied").unwrap_or(product.selling_denied);
        let text = |name: &str, old: &Option<String>| match fields.get(name) {
            Some(value) => value.as_str().map(str::to_owned),
            None => old.clone(),
        };
        (product.catnum, product.ean, product.partno) = (
            text("catnum", &product.catnum),
            text("ean", &product.ean),
            text("partno", &product.partno),
        );
        inner.patches.push((uuid.to_owned(), Value::Object(fields)));
        SimResponse::raw(204, Vec::new())
    }
}

/// An unknown product: 404 on Shopsys 8.x, 410 on 9 (dialect point `gone`).
fn not_found(request: &SimRequest, uuid: &str) -> SimResponse {
    let status = match request.dialect.answer("gone").gone {
        Gone::NotFound => 404,
        Gone::Gone => 410,
    };
    api_error(
        request,
        status,
        &format!("Product with UUID {uuid} does not exist."),
    )
}

/// Page 1 of an empty list: `200 []`, with the `Link` of dialect point `empty_link`. Shopsys 9
/// computes its links from a page count of 0, so it names a page 2 (which answers 422) as
/// `next` and a page 0 as `last`.
fn empty_list(request: &SimRequest, query: &[(String, String)]) -> SimResponse {
    let empty = SimResponse::raw(200, b"[]".to_vec());
    match request.dialect.answer("empty_link").empty_link {
        EmptyLink::BogusNext => {
            let url = page_url(request, query);
            let link = format!("{}; rel=\"next\", {}; rel=\"last\"", url(2), url(0));
            empty.with_header("link", link)
        }
        EmptyLink::Empty => empty.with_header("link", String::new()),
        EmptyLink::Absent => empty,
    }
}

/// The shop's checks of a `PATCH` body, with its messages; the fields invsync never sends are
/// checked only for their type.
fn validate(fields: &Map<String, Value>) -> Map<String, Value> {
    let mut errors = Map::new();
    for (name, value) in fields {
        let message = match (name.as_str(), value) {
            ("hidden" | "sellingDenied", Value::Null) => {
                Some("This value should not be null.".to_owned())
            }
            ("hidden" | "sellingDenied", Value::Bool(_)) => None,
            ("hidden" | "sellingDenied", other) => {
                Some(format!("The value {other} is not a valid bool."))
            }
            ("catnum" | "ean" | "partno", Value::String(s)) if s.chars().count() > 100 => Some(
                format!("The value {value} cannot be longer then 100 characters"),
            ),
            (
                "catnum" | "ean" | "partno" | "sellingFrom" | "sellingTo" | "uuid",
                Value::String(_) | Value::Null,
            ) => None,
            ("name" | "shortDescription" | "longDescription", Value::Object(_)) => None,
            ("uuid" | "catnum" | "ean" | "partno" | "sellingFrom" | "sellingTo", other) => {
                Some(format!("The value {other} is not a valid string."))
            }
            ("name" | "shortDescription" | "longDescription", _) => {
                Some("This value should be of type array.".to_owned())
            }
            _ => Some("This field was not expected.".to_owned()),
        };
        if let Some(message) = message {
            errors.insert(name.clone(), Value::String(message));
        }
    }
    errors
}

/// `<URL>` of the request's own list with `page` replaced, as the shop builds its links (from the
/// request it saw: behind a proxy, an internal `http://` address).
fn page_url<'a>(
    request: &'a SimRequest,
    query: &'a [(String, String)],
) -> impl Fn(usize) -> String + 'a {
    let host = request.header("host").unwrap_or("127.0.0.1");
    move |to: usize| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        serializer.extend_pairs(query.iter().filter(|(k, _)| k != "page"));
        serializer.append_pair("page", &to.to_string());
        format!("<http://{host}{}?{}>", request.path, serializer.finish())
    }
}

/// The `Link` header of page `page` of `pages`: `first`/`prev` except on page 1, `next`/`last`
/// except on the last page, each the request's own URL with `page` replaced.
fn links(request: &SimRequest, query: &[(String, String)], page: usize, pages: usize) -> String {
    let url = page_url(request, query);
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < pages {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(pages)));
    }
    links.join(", ")
}

impl Handler for State {
    fn handle(&self, request: &SimRequest) -> SimResponse {
        let path = request.path.trim_end_matches('/');
        if path == "/api/token" {
            return match request.method.as_str() {
                "POST" => self.token(request),
                _ => api_error(request, 405, "Method Not Allowed"),
            };
        }
        let Some(rest) = path.strip_prefix("/api/v1/products") else {
            return api_error(request, 404, "No route found");
        };
        if let Err(unauthorized) = self.authorize(request) {
            return unauthorized;
        }
        match (request.method.as_str(), rest.strip_prefix('/')) {
            ("GET", None) if rest.is_empty() => self.list(request),
            ("GET", Some(uuid)) => self.get(request, uuid),
            ("PATCH", Some(uuid)) => self.patch(request, uuid),
            (_, None) if !rest.is_empty() => api_error(request, 404, "No route found"),
            _ => api_error(request, 405, "Method Not Allowed"),
        }
    }
}
