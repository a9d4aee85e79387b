//! The catalogue's requests and answers, named as seed `003` names them. The simulator writes
//! and the target reads these same types, so the two cannot drift apart.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The `grant_type` form field of `POST /api/token` (the body is `application/x-www-form-urlencoded`:
/// `grant_type`, `client_id`, `client_secret`).
pub const GRANT_TYPE: &str = "client_credentials";

/// `POST /api/token`, 200: a bearer token and its lifetime.
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    /// `"Bearer"`.
    pub token_type: String,
    /// Seconds the token is valid from issue; configurable per shop (default 3600). The
    /// document gives an integer; a number with a fraction is accepted too.
    pub expires_in: Option<f64>,
    /// The token itself: a secret, never logged.
    pub access_token: SecretString,
}

/// `POST /api/token`, 401 (or 400): why the token was not issued.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenError {
    /// An OAuth2 error code: `invalid_client`, `invalid_request`, `unsupported_grant_type`.
    pub error: String,
    /// The service's sentence, e.g. `"Client authentication failed"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Text per locale (`name`: `{"en": …, "cs": …}`) or per domain id (descriptions:
/// `{"1": …, "2": …}`); a value is `null` where the shop has none.
pub type Localized = BTreeMap<String, Option<String>>;

/// A product as `GET /api/v1/products` and `GET /api/v1/products/{uuid}` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// The product's id in every other request.
    pub uuid: String,
    /// Name per locale.
    #[serde(default)]
    pub name: Localized,
    /// Hidden from the storefront (the raw flag: `GET` shows what was written).
    pub hidden: bool,
    /// Not for sale. `GET` shows the *calculated* value: the raw flag or the shop's own rules
    /// (stock, selling dates), so it may differ from what a `PATCH` wrote.
    pub selling_denied: bool,
    /// `DateTime::ATOM`, or null.
    #[serde(default)]
    pub selling_from: Option<String>,
    /// `DateTime::ATOM`, or null.
    #[serde(default)]
    pub selling_to: Option<String>,
    /// Catalogue number; may be null.
    #[serde(default)]
    pub catnum: Option<String>,
    /// Barcode, a string (never a number: leading zeros matter); may be null.
    #[serde(default)]
    pub ean: Option<String>,
    /// Manufacturer's part number; may be null.
    #[serde(default)]
    pub partno: Option<String>,
    /// Short description per domain id.
    #[serde(default)]
    pub short_description: Localized,
    /// Long description per domain id.
    #[serde(default)]
    pub long_description: Localized,
}

/// `PATCH /api/v1/products/{uuid}`: only the fields given change. invsync sends one flag.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductPatch {
    /// Set or clear `hidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// Set or clear the raw `sellingDenied` flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selling_denied: Option<bool>,
}

/// Any error but validation's. A debug install writes the seed's texts (`{"code": 410,
/// "message": "Product with UUID … does not exist."}`), a production install only the status's
/// reason (`{"code": 410, "message": "Gone"}`): never decide anything on `message`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// The HTTP status again.
    pub code: u16,
    /// The service's sentence.
    pub message: String,
}

/// A 400 from validation: `{"code": 400, "message": "Provided data did not pass validation",
/// "errors": {"sellingTo": "…", "longDescription.1": "…"}}`. The seed's examples leave out
/// `code`; the shop's source sends it; either is accepted.
#[derive(Debug, Serialize, Deserialize)]
pub struct ValidationError {
    /// 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// `"Provided data did not pass validation"`.
    pub message: String,
    /// Field path (dots between levels) to what is wrong with it.
    pub errors: BTreeMap<String, String>,
}

/// The message of a [`ValidationError`].
pub const VALIDATION_FAILED: &str = "Provided data did not pass validation";
/// The 422 past the last page (a debug install's text). Page 1 of an empty catalogue is not
/// past the last: it answers `200 []`.
pub const NO_PRODUCTS_ON_PAGE: &str = "There are no products on provided page.";
/// The 400 a variant or main variant answers to `PATCH` and `DELETE` (a debug install's text; a
/// production install says only "Bad Request", and neither carries `errors`).
pub const VARIANT_NOT_SUPPORTED: &str =
    "cannot update/delete variant/main variant, this functionality is not supported yet";

/// Whether `text` is a UUID as the shop checks it (8-4-4-4-12 hex digits, any version): the
/// shop answers 400 to anything else, and invsync never puts anything else in a path.
pub fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_documents_product_example_reads_as_a_product() {
        let example = r#"{
          "uuid": "2ad32b16-bfb4-4cfa-8bbe-331e630769c5",
          "name": {"en": "22\" Sencor SLE 22F46DM4 HELLO KITTY", "cs": null},
          "hidden": false, "sellingDenied": true,
          "sellingFrom": "2000-01-16T00:00:00+00:00",
          "catnum": "9177759", "ean": "0845781245930", "partno": null,
          "shortDescription": {"1": "Television LED, 55 cm diagonal ..."},
          "longDescription": {"1": "<p><strong>Sencor SLE 22F46DM4 ..."}
        }"#;
        let product: Product = serde_json::from_str(example).expect("the document's shape");
        assert!(product.selling_denied && !product.hidden);
        assert_eq!(product.ean.as_deref(), Some("0845781245930"));
        assert_eq!((product.partno, product.selling_to), (None, None));
    }

    #[test]
    fn uuids_are_checked_as_the_shop_checks_them() {
        assert!(is_uuid("2ad32b16-bfb4-4cfa-8bbe-331e630769c5"));
        assert!(is_uuid("2AD32B16-BFB4-4CFA-8BBE-331E630769C5"));
        assert!(!is_uuid("123xxx"));
        assert!(!is_uuid("2ad32b16-bfb4-4cfa-8bbe-331e630769c5x"));
        assert!(!is_uuid("2ad32b16-bfb4-4cfa-8bbe-331e630769c/"));
        assert!(!is_uuid("../../../../../../../../../../../../admin"));
    }

    #[test]
    fn a_patch_carries_only_the_flag_it_sets() {
        let patch = ProductPatch {
            selling_denied: Some(true),
            ..ProductPatch::default()
        };
        assert_eq!(
            serde_json::to_string(&patch).expect("serialise"),
            r#"{"sellingDenied":true}"#
        );
    }

    #[test]
    fn the_token_answer_keeps_its_token_out_of_debug() {
        let answer: TokenAnswer = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":3600,"access_token":"eyJ0eXAiOiJKV.s3SKg"}"#,
        )
        .expect("the document's shape");
        assert_eq!(answer.access_token.expose_secret(), "eyJ0eXAiOiJKV.s3SKg");
        assert_eq!(answer.expires_in, Some(3600.0));
        assert!(!format!("{answer:?}").contains("s3SKg"));
    }
}
