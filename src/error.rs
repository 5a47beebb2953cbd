//! The one error type of request handlers, and its mapping to HTTP responses.
//!
//! Every handler returns `Result<_, AppError>`; `From` impls for the database,
//! vault and Bot API errors make `?` work everywhere. The status of each variant
//! is decided in exactly one `match` ([`AppError::status`]).

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed; the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials (missing/wrong secret, no session).
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated but not allowed (e.g. a failed CSRF check).
    #[error("{0}")]
    Forbidden(String),
    /// 404: absent, or present in a space the caller is not a member of
    /// (we never reveal which).
    #[error("not found")]
    NotFound,
    /// 409: conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 500: our fault; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// 503: a dependency (database, disk) is not available right now; retry.
    #[error("{0}")]
    Unavailable(String),
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error (see the server log)".to_string()
            }
            other => other.to_string(),
        };
        let body = crate::web::render_error(status, &message);
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
        }
        resp
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::NotFound => AppError::NotFound,
            crate::db::DbError::Conflict(m) => AppError::Conflict(m),
            crate::db::DbError::Forbidden(m) => AppError::Forbidden(m),
            crate::db::DbError::Invalid(m) => AppError::BadRequest(m),
            crate::db::DbError::Busy(m) => AppError::Unavailable(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        AppError::Internal(e.to_string())
    }
}
