//! First run: while no account exists, `serve` prints a one-time link to
//! `/setup?token=…`; the page creates the administrator and the first
//! space, logs the administrator in, and goes on to `/setup/telegram`, which
//! explains how to connect a bot and tests a token with `getMe`
//! (<https://core.telegram.org/bots/api#getme>).
//!
//! The token is 32 random bytes; only its SHA-256 is stored (key
//! `setup_token` in `kv`), compared in constant time, and deleted in the
//! transaction that creates the first account, so the link works once and
//! only before anyone exists.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{
    auth::{self, Admin, CsrfToken},
    i18n::{current, Localized},
};
use crate::{
    db::{self, spaces::Role},
    error::AppError,
    App,
};

const KV_KEY: &str = "setup_token";

/// When no account exists, makes a new one-time setup token (replacing any
/// earlier one) and returns it; `None` once an account exists.
///
/// # Errors
/// Database errors.
pub async fn issue_token(app: &App) -> Result<Option<String>, AppError> {
    let token = auth::random_token();
    let hash = hex::encode(auth::token_hash(&token));
    let issued = app
        .db
        .run(move |c| {
            if db::users::count(c)? > 0 {
                db::kv_delete(c, KV_KEY)?;
                return Ok(false);
            }
            db::kv_set(c, KV_KEY, &hash)?;
            Ok(true)
        })
        .await?;
    Ok(issued.then_some(token))
}

/// Checks `token` against the stored hash (constant time); false when there
/// is none (used, or an account exists).
async fn token_valid(app: &App, token: &str) -> Result<bool, AppError> {
    let given = hex::encode(auth::token_hash(token));
    let stored = app.db.run(|c| db::kv_get(c, KV_KEY)).await?;
    Ok(stored.is_some_and(|s| s.as_bytes().ct_eq(given.as_bytes()).into()))
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    token: String,
    error: Option<&'static str>,
    name: String,
    space_name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "setup_invalid.html")]
struct InvalidPage {}

/// `?token=` of the setup page.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /setup?token=`: the first-run form, or 403 with how to get a new link.
pub async fn form(
    State(app): State<Arc<App>>,
    csrf: CsrfToken,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    if !token_valid(&app, &q.token).await? {
        return Ok((StatusCode::FORBIDDEN, InvalidPage {}).into_response());
    }
    Ok(SetupPage {
        csrf: csrf.0,
        token: q.token,
        error: None,
        name: String::new(),
        space_name: String::new(),
    }
    .into_response())
}

/// The first-run form.
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    csrf: String,
    token: String,
    name: String,
    password: String,
    password2: String,
    space_name: String,
}

/// A URL name for a space: lowercase ASCII letters, digits and `-`, from
/// its display name (accents dropped); `family` when nothing is left.
fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug
        .trim_end_matches('-')
        .chars()
        .take(40)
        .collect::<String>();
    if slug.is_empty() {
        "family".into()
    } else {
        slug
    }
}

/// `POST /setup`: creates the administrator and the first space in one
/// transaction (which also consumes the token), logs in, and goes to
/// `/setup/telegram`.
pub async fn create(
    State(app): State<Arc<App>>,
    csrf: CsrfToken,
    jar: CookieJar,
    Form(f): Form<SetupForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    if !token_valid(&app, &f.token).await? {
        return Ok((StatusCode::FORBIDDEN, InvalidPage {}).into_response());
    }
    let t = current().texts();
    let (name, space_name) = (f.name.trim().to_string(), f.space_name.trim().to_string());
    let error = if name.is_empty() || space_name.is_empty() {
        Some(t.setup_fields_missing)
    } else if f.password != f.password2 {
        Some(t.setup_passwords_differ)
    } else if f.password.chars().count() < 10 {
        Some(t.setup_password_short)
    } else {
        None
    };
    if let Some(error) = error {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            SetupPage {
                csrf: csrf.0,
                token: f.token,
                error: Some(error),
                name,
                space_name,
            },
        )
            .into_response());
    }
    let password = f.password;
    let phc = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let session = auth::random_token();
    let session_hash = auth::token_hash(&session);
    let given = hex::encode(auth::token_hash(&f.token));
    let slug = slug_of(&space_name);
    let created = app
        .db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            // The token is checked again inside the transaction: two forms
            // posted at once create one administrator.
            let stored = db::kv_get(&tx, KV_KEY)?;
            if db::users::count(&tx)? > 0 || stored.as_deref() != Some(given.as_str()) {
                return Ok(None);
            }
            let user = db::users::create(&tx, &name, &phc, true)?;
            let space = db::spaces::create(&tx, &slug, &space_name)?;
            db::spaces::grant(&tx, space.id, user.id, Role::Owner)?;
            db::users::create_session(&tx, &session_hash, user.id, auth::SESSION_TTL_S)?;
            db::kv_delete(&tx, KV_KEY)?;
            tx.commit()?;
            Ok(Some(space.slug))
        })
        .await?;
    let Some(slug) = created else {
        return Ok((StatusCode::FORBIDDEN, InvalidPage {}).into_response());
    };
    tracing::info!(space = %slug, "first run: administrator and first space created");
    let jar = jar.add(auth::session_cookie(session, app.config.secure_cookies()));
    Ok((jar, Redirect::to(&format!("/setup/telegram?space={slug}"))).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "setup_telegram.html")]
struct TelegramPage {
    csrf: String,
    space: String,
    configured: bool,
    /// `(true, "@bot (Name)")` or `(false, error)` after a test.
    result: Option<(bool, String)>,
}

/// `?space=` of the Telegram step: where "Go to the album" leads.
#[derive(Debug, Deserialize)]
pub struct SpaceQuery {
    #[serde(default)]
    space: String,
}

/// `s` when it is a valid space slug ([`db::spaces::validate_slug`]), else empty.
fn safe_slug(s: &str) -> String {
    if db::spaces::validate_slug(s).is_ok() {
        s.to_string()
    } else {
        String::new()
    }
}

/// `GET /setup/telegram`: how to connect a bot, step by step (administrators).
pub async fn telegram(
    State(app): State<Arc<App>>,
    Admin(_): Admin,
    csrf: CsrfToken,
    Query(q): Query<SpaceQuery>,
) -> Response {
    TelegramPage {
        csrf: csrf.0,
        space: safe_slug(&q.space),
        configured: app.telegram.is_some(),
        result: None,
    }
    .into_response()
}

/// The "Test connection" form.
#[derive(Debug, Deserialize)]
pub struct TestForm {
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    space: String,
}

/// `POST /setup/telegram/test`: calls `getMe` with the token typed (or the
/// configured one when the field is empty) against the configured Bot API
/// URL, and shows the bot's name or the exact error. The token is not stored
/// or logged.
pub async fn test(
    State(app): State<Arc<App>>,
    Admin(_): Admin,
    csrf: CsrfToken,
    Form(f): Form<TestForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    let token = f.token.trim();
    let bot = if token.is_empty() {
        app.telegram.as_ref().map(|t| t.api.clone())
    } else {
        let mut config = app.config.clone();
        config.telegram_token = Some(crate::config::Secret::new(token));
        crate::telegram::Telegram::from_config(&config).map(|t| t.api)
    };
    let result = match bot {
        None => (false, "no token given".to_string()),
        Some(bot) => {
            use teloxide::prelude::Requester;
            match bot.get_me().await {
                Ok(me) => (
                    true,
                    format!(
                        "@{} ({})",
                        me.user.username.as_deref().unwrap_or("?"),
                        me.user.first_name
                    ),
                ),
                Err(e) => (false, crate::redact(&crate::telegram::explain(&e))),
            }
        }
    };
    Ok(TelegramPage {
        csrf: csrf.0,
        space: safe_slug(&f.space),
        configured: app.telegram.is_some(),
        result: Some(result),
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::slug_of;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slug_of("Famille Dupré"), "famille-dupre");
        assert_eq!(slug_of("  Studio Ink!! "), "studio-ink");
        assert_eq!(slug_of("!!!"), "family");
    }
}
