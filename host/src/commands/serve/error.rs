//! Every way a request of `provgate serve` fails, each with its status and
//! its `{"error": "…"}` body, so that a handler only says which it is.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::MAX_BODY_BYTES;
use crate::input::registry::{Fault, FetchError};
use crate::policy::PolicyError;

#[derive(Debug)]
pub(super) enum ApiError {
    /// The body could not be read whole (413 when it is too large).
    Body(BytesRejection),
    /// The body is not a request this server understands; the message
    /// names the field at fault.
    BadRequest(String),
    /// `--auth-token-env` is set and the request does not carry the token.
    Unauthorized,
    NotFound,
    /// A known route asked with a method it does not take; `Allow` lists
    /// those it does.
    MethodNotAllowed(String),
    /// An error status some layer answered with no body of its own.
    Status(StatusCode),
    /// The image's registry is not in `--allow-registry` (lower-cased).
    RegistryNotAllowed(String),
    /// The image could not be fetched from an allowed registry.
    Fetch(FetchError),
    /// The policy trapped, hit a limit or broke the protocol.
    Policy(PolicyError),
    Metrics(std::fmt::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Body(rejection) => rejection.status(),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Status(status) => *status,
            ApiError::RegistryNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::Fetch(e) => fetch_status(e),
            ApiError::Policy(_) | ApiError::Metrics(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Body(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024)
            }
            ApiError::Body(rejection) => rejection.body_text(),
            ApiError::BadRequest(message) => message.clone(),
            ApiError::Unauthorized => {
                "this server requires an `Authorization: Bearer <token>` header with its token".into()
            }
            ApiError::NotFound => {
                let routes: Vec<String> = super::api::ROUTES
                    .iter()
                    .map(|(path, allow)| format!("{} {path}", allow.split(',').next().unwrap_or(allow)))
                    .collect();
                format!("no such route; provgate serves {}", routes.join(", "))
            }
            ApiError::MethodNotAllowed(allow) => format!("this route takes only {allow}"),
            ApiError::Status(status) => status.canonical_reason().unwrap_or("error").to_lowercase(),
            ApiError::RegistryNotAllowed(registry) => {
                format!("this server does not fetch images from {registry}; it is not in its --allow-registry list")
            }
            // The caller's own reference needs no preamble.
            ApiError::Fetch(e) if fetch_status(e).is_client_error() => e.to_string(),
            ApiError::Fetch(e) => format!("cannot fetch the image: {e}"),
            ApiError::Policy(e) => format!("the policy failed: {e}"),
            ApiError::Metrics(e) => format!("cannot encode the metrics: {e}"),
        }
    }
}

/// Whose the failure is: the caller's reference (400), this server's setup
/// (500), or the registry's (502).
pub(super) fn fetch_status(e: &FetchError) -> StatusCode {
    match e.fault() {
        Fault::Caller => StatusCode::BAD_REQUEST,
        Fault::Configuration => StatusCode::INTERNAL_SERVER_ERROR,
        Fault::Registry => StatusCode::BAD_GATEWAY,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(json!({ "error": self.message() }))).into_response();
        match &self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"provgate\""),
                );
            }
            ApiError::MethodNotAllowed(allow) => {
                if let Ok(allow) = HeaderValue::from_str(allow) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
            }
            _ => {}
        }
        response
    }
}
