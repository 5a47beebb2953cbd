//! Abuse limits and security headers.
//!
//! Login attempts and webhook deliveries are rate-limited per client IP with
//! token buckets (governor): a client over its budget gets 429 with
//! `Retry-After`. Every response carries a strict Content-Security-Policy
//! (our own scripts and styles only, no framing), `X-Content-Type-Options:
//! nosniff` and `Referrer-Policy: same-origin`.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::App;

/// The per-IP buckets.
pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    hooks: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimits {
    /// Login: bursts of 5, then one attempt every 10 s. Hooks: `hooks_per_s`
    /// a second with bursts of twice that (Telegram and Meta deliver from a few IPs).
    pub fn new(hooks_per_s: u32) -> Self {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        Self {
            login: RateLimiter::keyed(
                Quota::with_period(std::time::Duration::from_secs(10))
                    .expect("non-zero period")
                    .allow_burst(nz(5)),
            ),
            hooks: RateLimiter::keyed(
                Quota::per_second(nz(hooks_per_s)).allow_burst(nz(hooks_per_s.saturating_mul(2))),
            ),
        }
    }
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn too_many(what: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "10")],
        format!("too many {what} from your address: wait a few seconds"),
    )
        .into_response()
}

/// Middleware for `POST /login`.
pub async fn login(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST {
        if let Some(ip) = peer(&req) {
            if app.rate_limits.login.check_key(&ip).is_err() {
                return too_many("login attempts");
            }
        }
    }
    next.run(req).await
}

/// Middleware for `/hooks/*`.
pub async fn hooks(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(ip) = peer(&req) {
        if app.rate_limits.hooks.check_key(&ip).is_err() {
            return too_many("webhook calls");
        }
    }
    next.run(req).await
}

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Middleware: the security headers, unless a handler set its own.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}
