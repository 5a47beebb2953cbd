//! Authentication: argon2id passwords, session cookies, CSRF tokens, and the
//! extractors that give handlers a logged-in user ([`CurrentUser`]) or a
//! checked space membership ([`Member`]).
//!
//! Sessions: the cookie holds 32 random bytes (hex); the database holds only
//! their SHA-256, so a stolen database does not log anyone in. The cookie is
//! `HttpOnly`, `SameSite=Lax`, and `Secure` when the public URL is HTTPS.
//! Scripts use `Authorization: Bearer <token>` with a token from
//! `appliance token create USER` (also stored hashed).
//! CSRF: double-submit token; a random `appliance_csrf` cookie
//! (`SameSite=Strict`, `HttpOnly`) must equal the form's `csrf` field,
//! compared in constant time.

use std::sync::Arc;

use argon2::{
    password_hash::{PasswordHasher, PasswordVerifier},
    Argon2,
};
use axum::{
    extract::{FromRequestParts, RawPathParams},
    http::{header, request::Parts, HeaderValue},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    db::{self, spaces::SpaceScope, users::User},
    error::AppError,
    App,
};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "appliance_session";
/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "appliance_csrf";
/// Session lifetime, seconds (30 days).
pub const SESSION_TTL_S: i64 = 30 * 86_400;

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) into a PHC string.
///
/// # Errors
/// Only on RNG failure.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Checks a password against a PHC string; false on mismatch or a malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&Argon2::default(), password.as_bytes(), phc).is_ok()
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// SHA-256 of a session token, as stored.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Checks a username and password; returns the user on success.
/// Runs argon2 on a blocking thread, and also when the user does not exist,
/// so that timing does not reveal which names exist.
pub async fn login(
    app: &Arc<App>,
    name: String,
    password: String,
) -> Result<Option<User>, AppError> {
    let found = app
        .db
        .run(move |c| db::users::find_with_hash(c, &name))
        .await?;
    tokio::task::spawn_blocking(move || match found {
        Some((user, phc)) => verify_password(&password, &phc).then_some(user),
        None => {
            // Same cost as a real check.
            let _ = verify_password(&password, DUMMY_HASH);
            None
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0mXz2+uSRDEjBAq7PBMnU0VT9oS6B6UTbKlT6d2kr9s";

/// Builds the session cookie for a new token.
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(SESSION_TTL_S))
        .build()
}

/// The logged-in user. Rejects with a redirect to the login page (HTML
/// routes) or 401 (`/api/` routes).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<Arc<App>> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(u) = parts.extensions.get::<CurrentUser>() {
            return Ok(u.clone());
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| token_hash(t.trim()));
        let jar = CookieJar::from_headers(&parts.headers);
        let user = match (bearer, jar.get(SESSION_COOKIE)) {
            (Some(hash), _) => app
                .db
                .run(move |conn| db::users::token_user(conn, &hash))
                .await
                .map_err(|e| AppError::from(e).into_response())?,
            (None, Some(c)) => {
                let hash = token_hash(c.value());
                app.db
                    .run(move |conn| db::users::session_user(conn, &hash))
                    .await
                    .map_err(|e| AppError::from(e).into_response())?
            }
            (None, None) => None,
        };
        match user {
            Some(u) => {
                let u = CurrentUser(u);
                parts.extensions.insert(u.clone());
                Ok(u)
            }
            None if parts.uri.path().starts_with("/api/") => {
                Err(AppError::Unauthorized.into_response())
            }
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!("/login?next={}", urlencode(next));
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// An admin user; others get 404.
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser(u) = CurrentUser::from_request_parts(parts, app).await?;
        if u.is_admin {
            Ok(Admin(u))
        } else {
            Err(AppError::NotFound.into_response())
        }
    }
}

/// A logged-in user who is a member of the space named by the route's
/// `{slug}` parameter, with the [`SpaceScope`] that every space query needs.
/// Non-members get 404, exactly as for a space that does not exist.
#[derive(Debug, Clone)]
pub struct Member {
    /// The user.
    pub user: User,
    /// Proof of membership, passed to the database layer.
    pub scope: SpaceScope,
}

impl FromRequestParts<Arc<App>> for Member {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, app).await?;
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let slug = params
            .iter()
            .find(|(k, _)| *k == "slug")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| AppError::NotFound.into_response())?;
        let uid = user.id;
        let scope = app
            .db
            .run(move |c| db::spaces::authorize(c, uid, &slug))
            .await
            .map_err(|e| AppError::from(e).into_response())?;
        Ok(Member { user, scope })
    }
}

/// The CSRF token of this browser (from its cookie, or a new one set by
/// [`csrf_layer`]). Templates put it in a hidden `csrf` field.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .unwrap_or_else(|| CsrfToken(String::new())))
    }
}

/// Middleware: makes sure every browser has a CSRF cookie, and exposes its
/// value to handlers as a [`CsrfToken`] extension.
pub async fn csrf_layer(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let (token, fresh) = match jar.get(CSRF_COOKIE).map(|c| c.value().to_string()) {
        Some(t) if t.len() == 64 => (t, false),
        _ => (random_token(), true),
    };
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut resp = next.run(req).await;
    if fresh {
        let c = Cookie::build((CSRF_COOKIE, token))
            .http_only(true)
            .same_site(SameSite::Strict)
            .path("/")
            .build();
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Checks a submitted form's `csrf` field against the cookie, in constant time.
///
/// # Errors
/// 403 with a message asking to reload the page.
pub fn check_csrf(cookie: &CsrfToken, submitted: &str) -> Result<(), AppError> {
    let ok = !cookie.0.is_empty() && bool::from(cookie.0.as_bytes().ct_eq(submitted.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "the form expired or came from another site; reload the page and try again".into(),
        ))
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A safe local redirect target: only paths on this site (`/x`, not `//host`).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_roundtrip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", DUMMY_HASH));
    }

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/s/fam")), "/s/fam");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
    }
}
