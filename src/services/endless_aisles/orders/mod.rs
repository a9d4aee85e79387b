//! Endless Aisles orders: placing one at most once, reading it back with its tracking,
//! finding it when its id was lost, and cancelling it.
//!
//! Placing an order moves money, so [`Orders::place`] sends `PUT /api/orders` exactly once
//! (never retried by the HTTP layer) and says what is known of the outcome, down to "unknown":
//! the caller never places again blindly but sends the same `custom_order_id` (unique within
//! the account, API_NOTES) or finds the order with [`Orders::find`].

use chrono::NaiveDate;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;

use super::api::Api;
use super::wire::orders::{Data, NewOrder, Order, bare_upc_text};
use super::wire::req_u64;
use crate::http::{Answer, Endpoint, HttpError, Meter, remote_message};
use crate::services::ConnectorError;

/// What is known after `PUT /api/orders`.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaceOutcome {
    /// The service answered 2xx with the new order's id.
    Placed {
        /// Endless Aisles' order id.
        id: u64,
    },
    /// A 4xx naming `custom_order_id`, or any `409 Conflict`: an order with this id exists
    /// already (the error's shape is undocumented: a debug install names the field as Laravel's
    /// validation does, a production one answers a bare `409 {"message":"Conflict"}` when the
    /// database's unique key refuses it). Find it; never place again.
    AlreadyExists {
        /// The service's words.
        message: String,
    },
    /// A 4xx whose body does not say why (`{"message":"Bad Request"}`, no `errors`): a
    /// production Laravel install hides its reasons. On a first send it is a refusal; on a
    /// resend of the same `custom_order_id` it most likely means the id is taken.
    Unexplained {
        /// The status code.
        status: u16,
        /// The service's words.
        message: String,
    },
    /// Another 4xx: the service judged the order and refused it (validation) and said why.
    /// Nothing placed by this request; the same payload will be refused again.
    Refused {
        /// The status code.
        status: u16,
        /// The service's words.
        message: String,
    },
    /// Nothing was placed and the order itself was not judged: shutdown came before sending,
    /// the token was refused (401), or the account was over its rate (429). Try later.
    NotPlaced {
        /// Why.
        reason: String,
    },
    /// The request may have been applied: a timeout, a dropped connection, a 5xx, or a 2xx
    /// without an order id. Resolve by sending the same `custom_order_id` again or finding
    /// the order; if that cannot tell, a person must.
    Unknown {
        /// What happened.
        reason: String,
    },
}

/// One of the two documented ways to cancel (API_NOTES). The headings of seed 004 leave out
/// the `/api` prefix of every path (`PUT /orders` is `PUT /api/orders`), so the `PUT` form is
/// taken to live beside the `GET` form under `/api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMethod {
    /// `PUT /api/orders/{id}/cancel`.
    Put,
    /// `GET /api/orders/{id}/cancel`.
    Get,
}

impl std::str::FromStr for CancelMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<CancelMethod, String> {
        match s {
            "put" => Ok(CancelMethod::Put),
            "get" => Ok(CancelMethod::Get),
            other => Err(format!("unknown cancel method {other:?}: put or get")),
        }
    }
}

impl CancelMethod {
    fn http(self) -> Method {
        match self {
            CancelMethod::Put => Method::PUT,
            CancelMethod::Get => Method::GET,
        }
    }
}

/// What a cancel came to.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// A form answered 2xx with JSON.
    Cancelled {
        /// The form that worked.
        method: CancelMethod,
    },
    /// The order exists and the service will not cancel it (e.g. already packed): a 4xx other
    /// than 404/405. Another form would be refused the same way, so none is tried.
    Refused {
        /// The form that was refused.
        method: CancelMethod,
        /// The status code.
        status: u16,
        /// The service's words.
        message: String,
    },
    /// Every form answered 404 or 405: no such order (the test environment purges daily), or
    /// no such route.
    NotFound,
}

/// The answer's order id, read alone so that an unexpected field elsewhere cannot turn a
/// placed order into an unknown one.
#[derive(Deserialize)]
struct PlacedId {
    #[serde(deserialize_with = "req_u64")]
    id: u64,
}

/// Whether an error body names `custom_order_id`, in any spelling Laravel may use for it
/// ("custom_order_id", "The custom order id has already been taken.").
fn names_custom_order_id(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body)
        .to_lowercase()
        .replace(['_', '-'], " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    words.join(" ").contains("custom order id")
}

/// Whether an error body says why: a validation's `errors`, or a message that is more than the
/// status's own name (`Conflict`, `Bad Request`: what a production Laravel install answers).
fn explains(status: StatusCode, body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let errors = value.get("errors");
    if errors.is_some_and(|e| e.as_object().is_some_and(|o| !o.is_empty()))
        || errors.is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
    {
        return true;
    }
    let message = ["message", "error"]
        .iter()
        .find_map(|k| value.get(k).and_then(serde_json::Value::as_str))
        .unwrap_or_default();
    let plain = |text: &str| {
        let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let generic = [
        status.canonical_reason().unwrap_or_default(),
        "error",
        "server error",
        "the given data was invalid",
    ];
    let message = plain(message);
    !message.is_empty() && !generic.iter().any(|g| plain(g) == message)
}

/// Says what the answer to `PUT /api/orders` means. Pure, so each case is tested alone.
pub fn classify_place(result: Result<Answer, HttpError>) -> PlaceOutcome {
    let answer = match result {
        Ok(answer) => answer,
        Err(HttpError::Cancelled) => {
            return PlaceOutcome::NotPlaced {
                reason: "shutting down before the request was sent".to_owned(),
            };
        }
        // A connection error may come after the request left; a timeout surely does.
        Err(e) => {
            return PlaceOutcome::Unknown {
                reason: e.to_string(),
            };
        }
    };
    let status = answer.status;
    if status.is_success() {
        return match serde_json::from_slice::<Data<PlacedId>>(&answer.body) {
            Ok(placed) => PlaceOutcome::Placed { id: placed.data.id },
            Err(e) => PlaceOutcome::Unknown {
                reason: format!("HTTP {status} without an order id: {e}"),
            },
        };
    }
    let message = remote_message(&answer.body);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => PlaceOutcome::NotPlaced {
            reason: format!("HTTP {status}: {message}"),
        },
        // The server gave up waiting: most likely nothing applied, but not certainly.
        StatusCode::REQUEST_TIMEOUT => PlaceOutcome::Unknown {
            reason: format!("HTTP {status}: {message}"),
        },
        StatusCode::CONFLICT => PlaceOutcome::AlreadyExists { message },
        _ if status.is_client_error() && names_custom_order_id(&answer.body) => {
            PlaceOutcome::AlreadyExists { message }
        }
        _ if status.is_client_error() && !explains(status, &answer.body) => {
            PlaceOutcome::Unexplained {
                status: status.as_u16(),
                message,
            }
        }
        _ if status.is_client_error() => PlaceOutcome::Refused {
            status: status.as_u16(),
            message,
        },
        _ => PlaceOutcome::Unknown {
            reason: format!("HTTP {status}: {message}"),
        },
    }
}

/// Why Endless Aisles would refuse `order` by its documented rules, checked before sending
/// so that a refusal waits with its reason instead of costing a request: required fields,
/// `shipping.state` at most 2 characters, numeric UPCs, at least one line.
pub fn preflight(order: &NewOrder) -> Vec<String> {
    let mut problems = Vec::new();
    let s = &order.shipping;
    let required = [
        ("custom_order_id", &order.custom_order_id),
        ("shipping.first_name", &s.first_name),
        ("shipping.last_name", &s.last_name),
        ("shipping.address_line_1", &s.address_line_1),
        ("shipping.city", &s.city),
        ("shipping.state", &s.state),
        ("shipping.zip", &s.zip),
    ];
    for (field, value) in required {
        if value.trim().is_empty() {
            problems.push(format!("{field} is required"));
        }
    }
    if s.state.trim().chars().count() > 2 {
        problems.push(format!(
            "shipping.state {:?} is longer than 2 characters",
            s.state
        ));
    }
    if order.line_items.is_empty() {
        problems.push("the order has no lines".to_owned());
    }
    for (i, line) in order.line_items.iter().enumerate() {
        let upc = bare_upc_text(&line.upc);
        if upc.is_empty() || !upc.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(format!("line {i}: upc {:?} is not numeric", line.upc));
        }
        if line.quantity == 0 {
            problems.push(format!("line {i}: quantity is 0"));
        }
        if !line.price.is_finite() || line.price < 0.0 {
            problems.push(format!("line {i}: price {} is not a price", line.price));
        }
    }
    problems
}

/// Endless Aisles' order endpoints.
#[derive(Clone)]
pub struct Orders {
    api: Api,
}

impl Orders {
    /// The orders of the account at `endpoint`.
    pub fn new(endpoint: Endpoint, token: SecretString) -> Orders {
        Orders::from_api(Api::new(endpoint, token))
    }

    pub(super) fn from_api(api: Api) -> Orders {
        Orders { api }
    }

    /// `PUT /api/orders`, sent once (see [`PlaceOutcome`] for what each answer means).
    pub async fn place(&self, meter: &Meter, order: &NewOrder) -> PlaceOutcome {
        let outcome = classify_place(self.api.put_once(meter, "/api/orders", order).await);
        tracing::debug!(endpoint = self.api.label(), custom_order_id = %order.custom_order_id, ?outcome, "order placement answered");
        outcome
    }

    /// `GET /api/orders/{id}`: the order with its lines (`quantity_shipped`) and shipments;
    /// `None` on a 404 (the test environment forgets orders after a day: absence is no
    /// evidence of anything).
    pub async fn get(&self, meter: &Meter, id: u64) -> Result<Option<Order>, ConnectorError> {
        let path = format!("/api/orders/{id}");
        match self.api.send(meter, Method::GET, &path, &[]).await {
            Ok(body) => serde_json::from_slice::<Data<Order>>(&body)
                .map(|d| Some(d.data))
                .map_err(|e| ConnectorError::Malformed(format!("GET {path}: {e}"))),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /api/orders?query=…&since=…`, every page: orders whose customer's email, order
    /// number or last name matches `query` (the service decides which by its form), created
    /// on or after `since`. The listing carries no lines; [`Orders::get`] each candidate.
    pub async fn find(
        &self,
        meter: &Meter,
        query: &str,
        since: Option<NaiveDate>,
    ) -> Result<Vec<Order>, ConnectorError> {
        let mut params = vec![("query", query.to_owned())];
        if let Some(date) = since {
            // m-d-Y; the document says a wrong format is silently ignored.
            params.push(("since", date.format("%m-%d-%Y").to_string()));
        }
        self.api
            .get_all(meter, "/api/orders", &params, |o: &Order| o.id)
            .await
    }

    /// Cancels order `id`, trying `methods` in order: the next form only when one answers 404
    /// or 405 or fails for another passing reason; a refusal ends it. Cancelling is
    /// idempotent, so each form is retried as policy allows. `Err` is the last failure when
    /// no form gave an answer.
    pub async fn cancel(
        &self,
        meter: &Meter,
        id: u64,
        methods: &[CancelMethod],
    ) -> Result<CancelOutcome, ConnectorError> {
        let path = format!("/api/orders/{id}/cancel");
        let mut failure = None;
        for &method in methods {
            match self.api.send(meter, method.http(), &path, &[]).await {
                Ok(body) if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() => {
                    return Ok(CancelOutcome::Cancelled { method });
                }
                Ok(_) => {
                    let e = format!("{} {path}: a 2xx that is not JSON", method.http());
                    failure = Some(ConnectorError::Malformed(e));
                }
                Err(e) => match e.status() {
                    Some(StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) => {}
                    // Every form would meet the same refused token.
                    Some(StatusCode::UNAUTHORIZED) => {
                        return Err(ConnectorError::Auth(e.to_string()));
                    }
                    Some(status) if status.is_client_error() && !e.is_retryable() => {
                        let message = match e {
                            HttpError::Status { message, .. } => message,
                            other => other.to_string(),
                        };
                        let status = status.as_u16();
                        return Ok(CancelOutcome::Refused {
                            method,
                            status,
                            message,
                        });
                    }
                    _ => failure = Some(e.into()),
                },
            }
        }
        failure.map_or(Ok(CancelOutcome::NotFound), Err)
    }
}

#[cfg(test)]
mod tests;
