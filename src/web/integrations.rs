//! Pages of a space's integrations (owners), autoresponder (owners) and
//! scheduled posts (members): server-rendered forms with CSRF tokens.

use std::sync::Arc;

use crate::web::i18n::Localized;
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use serde::Deserialize;

use super::auth::{self, CsrfToken, Member};
use crate::{
    db::{
        self,
        autoreply::Settings,
        integrations::{Delivery, EVENTS},
        posts::Post,
        spaces::{Role, Space, SpaceScope},
        telegram::Chat,
        users::User,
    },
    error::AppError,
    notify, App,
};

/// The strings of the request's language.
fn texts() -> &'static super::i18n::Texts {
    super::i18n::current().texts()
}

/// `text` with `{name}` replaced by `value`.
fn fill(text: &str, name: &str, value: impl std::fmt::Display) -> String {
    text.replace(&format!("{{{name}}}"), &value.to_string())
}

fn owner(scope: &SpaceScope) -> Result<(), AppError> {
    if scope.role() == Role::Owner {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            texts().owners_manage_integrations.into(),
        ))
    }
}

fn staff(scope: &SpaceScope) -> Result<(), AppError> {
    if scope.role() >= Role::Member {
        Ok(())
    } else {
        Err(AppError::Forbidden(texts().viewers_cannot_schedule.into()))
    }
}

/// An integration as the page shows it.
struct Row {
    id: i64,
    kind: String,
    target: String,
    events: String,
    secret: String,
    enabled: bool,
    deliveries: Vec<Delivery>,
}

#[derive(Template, WebTemplate)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    user: User,
    csrf: String,
    space: Space,
    rows: Vec<Row>,
    events: Vec<&'static str>,
    flash: Option<(bool, String)>,
    auto: Settings,
    open_text: String,
    never_text: String,
    auto_replies: i64,
    tz: String,
}

async fn render(
    app: &Arc<App>,
    user: User,
    csrf: String,
    scope: SpaceScope,
    flash: Option<(bool, String)>,
) -> Result<Response, AppError> {
    let space = scope.space().clone();
    let (list, logs, auto, auto_replies, tz) = app
        .db
        .run(move |c| {
            let list = db::integrations::list(c, &scope)?;
            let mut logs = Vec::new();
            for i in &list {
                logs.push(db::integrations::deliveries(c, &scope, i.id, 10)?);
            }
            Ok((
                list,
                logs,
                db::autoreply::get(c, scope.id())?,
                db::autoreply::count(c, scope.id())?,
                db::autoreply::time_zone(c, scope.id())?,
            ))
        })
        .await?;
    let rows = list
        .into_iter()
        .zip(logs)
        .map(|(i, deliveries)| Row {
            secret: i.secret_sealed.as_deref().map_or_else(
                || "–".into(),
                |s| {
                    app.secrets.open(s).map_or_else(
                        |_| texts().secret_unreadable.into(),
                        |p| crate::secrets::mask(&p),
                    )
                },
            ),
            id: i.id,
            kind: i.kind,
            target: i.target,
            events: i.events.join(", "),
            enabled: i.enabled,
            deliveries,
        })
        .collect();
    let open_text = auto
        .open
        .iter()
        .map(|(d, f, t)| format!("{d} {f} {t}"))
        .collect::<Vec<_>>()
        .join("\n");
    let never_text = auto
        .never
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(IntegrationsPage {
        user,
        csrf,
        space,
        rows,
        events: EVENTS.to_vec(),
        flash,
        auto,
        open_text,
        never_text,
        auto_replies,
        tz,
    }
    .into_response())
}

/// `GET /s/{slug}/integrations`.
pub async fn page(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    owner(&scope)?;
    render(&app, user, csrf.0, scope, None).await
}

/// The form that adds an integration. Event checkboxes are named after the events.
#[derive(Debug, Deserialize)]
pub struct AddForm {
    csrf: String,
    kind: String,
    target: String,
    #[serde(default)]
    secret: String,
    #[serde(rename = "media.added")]
    media_added: Option<String>,
    #[serde(rename = "message.received")]
    message_received: Option<String>,
    #[serde(rename = "ingest.failed")]
    ingest_failed: Option<String>,
    #[serde(rename = "system.status")]
    system_status: Option<String>,
    #[serde(rename = "stats.daily")]
    stats_daily: Option<String>,
}

/// `POST /s/{slug}/integrations`: adds one, then shows the page (with the generated secret once).
pub async fn add(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Form(f): Form<AddForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    owner(&scope)?;
    let events: Vec<&str> = [
        ("media.added", &f.media_added),
        ("message.received", &f.message_received),
        ("ingest.failed", &f.ingest_failed),
        ("system.status", &f.system_status),
        ("stats.daily", &f.stats_daily),
    ]
    .iter()
    .filter(|(_, on)| on.is_some())
    .map(|(e, _)| *e)
    .collect();
    let target = f.target.trim().to_string();
    let mut shown = None;
    let secret = match f.kind.as_str() {
        "webhook" => {
            let s = if f.secret.trim().is_empty() {
                let s = notify::new_webhook_secret();
                shown = Some(s.clone());
                s
            } else {
                f.secret.trim().to_string()
            };
            notify::webhook_key(&s).map_err(AppError::BadRequest)?;
            Some(s)
        }
        "telegram" => {
            target
                .parse::<i64>()
                .map_err(|_| AppError::BadRequest(texts().chat_id_is_number.into()))?;
            if f.secret.trim().is_empty() {
                return Err(AppError::BadRequest(texts().telegram_needs_token.into()));
            }
            Some(f.secret.trim().to_string())
        }
        "email" => (!f.secret.trim().is_empty()).then(|| f.secret.trim().to_string()),
        _ => None,
    };
    if matches!(f.kind.as_str(), "webhook" | "discord" | "slack")
        && !(target.starts_with("https://") || target.starts_with("http://"))
    {
        return Err(AppError::BadRequest(texts().target_must_be_url.into()));
    }
    let sealed = secret.map(|s| app.secrets.seal(&s));
    let kind = f.kind.clone();
    let events = events.join(",");
    let s2 = scope.clone();
    let id = app
        .db
        .run(move |c| db::integrations::create(c, &s2, &kind, &target, sealed.as_deref(), &events))
        .await?;
    let added = fill(texts().integration_added, "id", id);
    let flash = Some((
        true,
        match shown {
            Some(s) => format!(
                "{added} {}",
                fill(texts().integration_secret_once, "secret", s)
            ),
            None => added,
        },
    ));
    render(&app, user, csrf.0, scope, flash).await
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /s/{slug}/integrations/{id}/test`: **Send test**, then the page with the exact outcome.
pub async fn test(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Path((_, id)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    owner(&scope)?;
    let s2 = scope.clone();
    let integration = app
        .db
        .run(move |c| db::integrations::get(c, &s2, id))
        .await?;
    let flash = match notify::test(&app, integration).await {
        Ok(()) => (true, fill(texts().test_delivered, "id", id)),
        // The error last: its text may contain braces.
        Err(e) => (
            false,
            fill(&fill(texts().test_failed, "id", id), "error", e),
        ),
    };
    render(&app, user, csrf.0, scope, Some(flash)).await
}

/// `POST /s/{slug}/integrations/{id}/delete`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    csrf: CsrfToken,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    owner(&scope)?;
    app.db
        .run(move |c| db::integrations::delete(c, &scope, id))
        .await?;
    Ok(Redirect::to(&format!("/s/{slug}/integrations")).into_response())
}

/// The autoresponder form.
#[derive(Debug, Deserialize)]
pub struct AutoForm {
    csrf: String,
    mode: String,
    #[serde(default)]
    away_en: String,
    #[serde(default)]
    away_fr: String,
    #[serde(default)]
    busy_en: String,
    #[serde(default)]
    busy_fr: String,
    cooldown_hours: i64,
    /// One window per line: `weekday HH:MM HH:MM` (0 = Monday).
    #[serde(default)]
    open: String,
    /// Contact ids, comma-separated.
    #[serde(default)]
    never: String,
    tz: String,
}

fn some(s: String) -> Option<String> {
    let t = s.trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// `POST /s/{slug}/autoresponder`.
pub async fn autoresponder(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    csrf: CsrfToken,
    Path(slug): Path<String>,
    Form(f): Form<AutoForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    owner(&scope)?;
    let mut open = Vec::new();
    for line in f.open.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [day, from, to] = parts.as_slice() else {
            return Err(AppError::BadRequest(fill(
                texts().bad_opening_hours,
                "line",
                format!("{line:?}"),
            )));
        };
        let day: u8 = day.parse().map_err(|_| {
            AppError::BadRequest(fill(texts().not_a_weekday, "day", format!("{day:?}")))
        })?;
        open.push((day, from.to_string(), to.to_string()));
    }
    let never = f
        .never
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse().map_err(|_| {
                AppError::BadRequest(fill(texts().not_a_contact_id, "id", format!("{n:?}")))
            })
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let settings = Settings {
        mode: f.mode,
        open,
        away_en: some(f.away_en),
        away_fr: some(f.away_fr),
        busy_en: some(f.busy_en),
        busy_fr: some(f.busy_fr),
        cooldown_hours: f.cooldown_hours,
        never,
    };
    let tz = f.tz.trim().to_string();
    app.db
        .run(move |c| {
            db::autoreply::set_time_zone(c, &scope, &tz)?;
            db::autoreply::set(c, &scope, &settings)
        })
        .await?;
    Ok(Redirect::to(&format!("/s/{slug}/integrations")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "posts.html")]
struct PostsPage {
    user: User,
    csrf: String,
    space: Space,
    posts: Vec<(Post, String)>,
    chats: Vec<Chat>,
    tz: String,
}

/// `GET /s/{slug}/posts`: scheduled posts and the form.
pub async fn posts(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    let space = scope.space().clone();
    let sid = scope.id();
    let (posts, chats, tz) = app
        .db
        .run(move |c| {
            let chats = db::telegram::list_chats(c)?
                .into_iter()
                .filter(|ch| ch.space.as_deref() == Some(scope.space().slug.as_str()))
                .collect();
            Ok((
                db::posts::list(c, &scope)?,
                chats,
                db::autoreply::time_zone(c, sid)?,
            ))
        })
        .await?;
    let zone: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    // The same format as `Lang::datetime`, in the space's time zone.
    let lang = super::i18n::current();
    let posts = posts
        .into_iter()
        .map(|p| {
            let when = lang.datetime_in(p.run_at, zone);
            (p, when)
        })
        .collect();
    Ok(PostsPage {
        user,
        csrf: csrf.0,
        space,
        posts,
        chats,
        tz,
    }
    .into_response())
}

/// The form that schedules a post.
#[derive(Debug, Deserialize)]
pub struct PostForm {
    csrf: String,
    chat: i64,
    at: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    media: String,
}

/// `POST /s/{slug}/posts`.
pub async fn schedule(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    csrf: CsrfToken,
    Path(slug): Path<String>,
    Form(f): Form<PostForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    staff(&scope)?;
    let sid = scope.id();
    let tz = app
        .db
        .run(move |c| db::autoreply::time_zone(c, sid))
        .await?;
    let run_at = crate::posts::parse_time(&f.at, &tz).map_err(AppError::BadRequest)?;
    let media = match f.media.trim() {
        "" => None,
        m => Some(m.parse().map_err(|_| {
            AppError::BadRequest(fill(texts().not_an_album_item, "item", format!("{m:?}")))
        })?),
    };
    crate::posts::schedule(&app, scope, f.chat, f.text, media, run_at).await?;
    Ok(Redirect::to(&format!("/s/{slug}/posts")).into_response())
}

/// `POST /s/{slug}/posts/{id}/cancel`.
pub async fn cancel(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    csrf: CsrfToken,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    staff(&scope)?;
    app.db
        .run(move |c| db::posts::cancel(c, &scope, id))
        .await?;
    Ok(Redirect::to(&format!("/s/{slug}/posts")).into_response())
}
