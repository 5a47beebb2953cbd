//! HTML pages: login, spaces, album, media, statistics, and the admin pages
//! (chats waiting for a space, background jobs).

use std::sync::Arc;

use crate::web::i18n::Localized;
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;

use super::auth::{self, Admin, CsrfToken, CurrentUser, Member};
use crate::{
    db::{
        self,
        jobs::{FailedJob, JobCounts, JobId},
        media::{Cursor, MediaId, MediaItem, SpaceStats},
        spaces::{Role, Space},
        telegram::Chat,
        users::User,
    },
    error::AppError,
    App,
};

/// Album page size.
const PAGE: i64 = 60;

/// `GET /`: to the spaces (or, through the auth redirect, to the login page).
pub async fn home() -> Redirect {
    Redirect::to("/spaces")
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
    first_run: bool,
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /login`
pub async fn login_form(
    State(app): State<Arc<App>>,
    csrf: CsrfToken,
    Query(q): Query<NextQuery>,
) -> Result<impl IntoResponse, AppError> {
    let first_run = app.db.run(|c| db::users::count(c)).await? == 0;
    Ok(LoginPage {
        csrf: csrf.0,
        next: auth::safe_next(q.next.as_deref()),
        error: None,
        first_run,
    })
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: checks the password, opens a session, redirects to `next`.
pub async fn login(
    State(app): State<Arc<App>>,
    csrf: CsrfToken,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    let next = auth::safe_next(f.next.as_deref());
    match auth::login(&app, f.name, f.password).await? {
        Some(user) => {
            let token = auth::random_token();
            let hash = auth::token_hash(&token);
            app.db
                .run(move |c| db::users::create_session(c, &hash, user.id, auth::SESSION_TTL_S))
                .await?;
            let jar = jar.add(auth::session_cookie(token, app.config.secure_cookies()));
            Ok((jar, Redirect::to(&next)).into_response())
        }
        None => Ok((
            StatusCode::UNAUTHORIZED,
            LoginPage {
                csrf: csrf.0,
                next,
                error: Some(super::i18n::current().texts().wrong_password.into()),
                first_run: false,
            },
        )
            .into_response()),
    }
}

/// A form with only the CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`
pub async fn logout(
    State(app): State<Arc<App>>,
    csrf: CsrfToken,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    if let Some(c) = jar.get(auth::SESSION_COOKIE) {
        let hash = auth::token_hash(c.value());
        app.db
            .run(move |c| db::users::delete_session(c, &hash))
            .await?;
    }
    let jar = jar.remove(Cookie::build(auth::SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

struct SpaceRow {
    slug: String,
    name: String,
    role: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "spaces.html")]
struct SpacesPage {
    user: User,
    csrf: String,
    spaces: Vec<SpaceRow>,
}

/// `GET /spaces`: the spaces I am a member of.
pub async fn spaces(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    csrf: CsrfToken,
) -> Result<impl IntoResponse, AppError> {
    let uid = user.id;
    let scopes = app
        .db
        .run(move |c| db::spaces::list_for_user(c, uid))
        .await?;
    let spaces = scopes
        .iter()
        .map(|s| SpaceRow {
            slug: s.space().slug.clone(),
            name: s.space().name.clone(),
            role: s.role().as_str(),
        })
        .collect();
    Ok(SpacesPage {
        user,
        csrf: csrf.0,
        spaces,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "album.html")]
struct AlbumPage {
    user: User,
    csrf: String,
    space: Space,
    /// Items by day of arrival (the day in the request's language), newest first.
    groups: Vec<(String, Vec<MediaItem>)>,
    next: Option<String>,
}

/// Groups `items` (newest first) by the UTC day they arrived, labelled in `lang`.
fn by_day(items: Vec<MediaItem>, lang: super::i18n::Lang) -> Vec<(String, Vec<MediaItem>)> {
    let mut groups: Vec<(String, Vec<MediaItem>)> = Vec::new();
    for m in items {
        let day = chrono::DateTime::parse_from_rfc3339(&m.received_at)
            .map(|t| lang.day(t.timestamp()))
            .unwrap_or_default();
        match groups.last_mut() {
            Some((d, list)) if *d == day => list.push(m),
            _ => groups.push((day, vec![m])),
        }
    }
    groups
}

/// `?cursor=` of the album.
#[derive(Debug, Deserialize)]
pub struct AlbumQuery {
    cursor: Option<String>,
}

/// `GET /s/{slug}`: the album, newest first, [`PAGE`] items a page.
pub async fn album(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Query(q): Query<AlbumQuery>,
) -> Result<impl IntoResponse, AppError> {
    let cursor = match q.cursor.as_deref() {
        Some(c) => {
            Some(Cursor::decode(c).ok_or_else(|| AppError::BadRequest("bad cursor".into()))?)
        }
        None => None,
    };
    let space = scope.space().clone();
    let (items, next) = app
        .db
        .run(move |c| db::media::album_page(c, &scope, cursor, PAGE))
        .await?;
    Ok(AlbumPage {
        user,
        csrf: csrf.0,
        space,
        groups: by_day(items, super::i18n::current()),
        next: next.map(|c| c.encode()),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "media.html")]
struct MediaPage {
    user: User,
    csrf: String,
    space: Space,
    item: MediaItem,
    chat_title: String,
    can_delete: bool,
    favourite: bool,
    /// The space's albums, for "Add to album" (members and up).
    collections: Vec<db::collections::Collection>,
}

/// `GET /s/{slug}/media/{id}`: one item, full view and details.
pub async fn media(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Path((_, id)): Path<(String, i64)>,
) -> Result<impl IntoResponse, AppError> {
    let space = scope.space().clone();
    let can_delete = scope.role() >= Role::Member;
    let scope2 = scope.clone();
    let item = app
        .db
        .run(move |c| db::media::get(c, &scope, MediaId(id)))
        .await?;
    let chat_id = item.chat_id;
    let (uid, mid) = (user.id, item.id);
    let (chat_title, favourite, collections) = app
        .db
        .run(move |c| {
            let title = match chat_id {
                Some(id) => db::telegram::chat_title(c, id)?.unwrap_or_default(),
                None => String::new(),
            };
            let collections = if can_delete {
                db::collections::list(c, &scope2)?
            } else {
                Vec::new()
            };
            Ok((
                title,
                db::collections::is_favourite(c, uid, mid)?,
                collections,
            ))
        })
        .await?;
    Ok(MediaPage {
        user,
        csrf: csrf.0,
        space,
        item,
        chat_title,
        can_delete,
        favourite,
        collections,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "stats.html")]
struct StatsPage {
    user: User,
    csrf: String,
    space: Space,
    stats: SpaceStats,
    jobs: JobCounts,
    failed_jobs: Vec<FailedJob>,
    rate: String,
    mb: String,
    scope_is_owner: bool,
    auto_replies: i64,
}

impl StatsPage {
    /// A `YYYY-MM-DD` day of the statistics as a day in the request's language.
    fn day_label(&self, day: &str) -> String {
        chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_or_else(
            |_| day.to_string(),
            |d| {
                super::i18n::current().day(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
            },
        )
    }
}

/// `x` with one decimal, the locale's digit grouping and decimal sign: `1,234.5` / `1 234,5`.
fn decimal(lang: super::i18n::Lang, x: f64) -> String {
    let tenths = (x * 10.0).round() as i64;
    let sign = if tenths < 0 { "-" } else { "" };
    let point = match lang {
        super::i18n::Lang::En => '.',
        super::i18n::Lang::Fr => ',',
    };
    let (units, tenth) = (tenths.abs() / 10, tenths.abs() % 10);
    format!("{sign}{}{point}{tenth}", lang.number(units))
}

/// `GET /s/{slug}/stats`: the space's statistics.
pub async fn stats(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
) -> Result<impl IntoResponse, AppError> {
    let space = scope.space().clone();
    let scope_is_owner = scope.role() == Role::Owner;
    let (stats, jobs, failed_jobs, auto_replies) = app
        .db
        .run(move |c| {
            Ok((
                db::media::stats(c, &scope)?,
                db::jobs::counts(c, Some(scope.id()))?,
                db::jobs::list_failed(c, Some(scope.id()), 50)?,
                db::autoreply::count(c, scope.id())?,
            ))
        })
        .await?;
    let lang = super::i18n::current();
    Ok(StatsPage {
        user,
        csrf: csrf.0,
        space,
        rate: decimal(lang, stats.success_rate()),
        mb: decimal(lang, stats.bytes as f64 / 1_048_576.0),
        stats,
        jobs,
        failed_jobs,
        scope_is_owner,
        auto_replies,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "link_code.html")]
struct LinkCodePage {
    user: User,
    csrf: String,
    space: Space,
    code: String,
}

/// `POST /s/{slug}/link-code` (owners): a one-hour code for `/link CODE`.
pub async fn link_code(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Form(f): Form<CsrfForm>,
) -> Result<impl IntoResponse, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    if scope.role() != Role::Owner {
        return Err(AppError::Forbidden(
            super::i18n::current().texts().link_owners_only.into(),
        ));
    }
    let code = auth::random_token()[..10].to_string();
    let sid = scope.id();
    let c2 = code.clone();
    app.db
        .run(move |c| db::telegram::create_link_code(c, sid, &c2, 3600))
        .await?;
    Ok(LinkCodePage {
        user,
        csrf: csrf.0,
        space: scope.space().clone(),
        code,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "chats.html")]
struct ChatsPage {
    user: User,
    csrf: String,
    chats: Vec<Chat>,
    spaces: Vec<Space>,
}

/// `GET /admin/chats`: chats the bot heard from, pending ones first.
pub async fn chats(
    State(app): State<Arc<App>>,
    Admin(user): Admin,
    csrf: CsrfToken,
) -> Result<impl IntoResponse, AppError> {
    let (chats, spaces) = app
        .db
        .run(|c| Ok((db::telegram::list_chats(c)?, db::spaces::list_all(c)?)))
        .await?;
    Ok(ChatsPage {
        user,
        csrf: csrf.0,
        chats,
        spaces,
    })
}

/// The bind form.
#[derive(Debug, Deserialize)]
pub struct BindForm {
    csrf: String,
    space: String,
}

/// `POST /admin/chats/{chat_id}/bind`: binds a chat to a space; its waiting updates are processed.
pub async fn bind_chat(
    State(app): State<Arc<App>>,
    Admin(_): Admin,
    csrf: CsrfToken,
    Path(chat_id): Path<i64>,
    Form(f): Form<BindForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    app.db
        .run(move |c| {
            let space = db::spaces::find(c, &f.space)?;
            let tx = db::write_tx(c)?;
            let n = db::telegram::bind_chat(&tx, chat_id, space.id)?;
            tx.commit()?;
            Ok(n)
        })
        .await?;
    app.changed();
    Ok(Redirect::to("/admin/chats").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
struct JobsPage {
    user: User,
    csrf: String,
    counts: JobCounts,
    failed: Vec<FailedJob>,
}

/// `GET /admin/jobs`: job counts and failed jobs with their errors.
pub async fn jobs(
    State(app): State<Arc<App>>,
    Admin(user): Admin,
    csrf: CsrfToken,
) -> Result<impl IntoResponse, AppError> {
    let (counts, failed) = app
        .db
        .run(|c| {
            Ok((
                db::jobs::counts(c, None)?,
                db::jobs::list_failed(c, None, 100)?,
            ))
        })
        .await?;
    Ok(JobsPage {
        user,
        csrf: csrf.0,
        counts,
        failed,
    })
}

/// `POST /admin/jobs/{id}/retry`: gives a failed job fresh attempts.
pub async fn retry_job(
    State(app): State<Arc<App>>,
    Admin(_): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    if !app
        .db
        .run(move |c| db::jobs::retry_failed(c, JobId(id)))
        .await?
    {
        return Err(AppError::NotFound);
    }
    app.jobs_added.notify_waiters();
    Ok(([(header::LOCATION, "/admin/jobs")], StatusCode::SEE_OTHER).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "search.html")]
struct SearchResults {
    user: User,
    csrf: String,
    q: String,
    space: String,
    spaces: Vec<Space>,
    hits: Vec<crate::search::Hit>,
    next: Option<String>,
    error: Option<String>,
}

/// `GET /search?q=&space=&cursor=`: results mixing thumbnails and messages.
pub async fn search(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    csrf: CsrfToken,
    Query(q): Query<super::api::SearchQuery>,
) -> Result<impl IntoResponse, AppError> {
    let uid = user.id;
    let spaces: Vec<Space> = app
        .db
        .run(move |c| {
            Ok(db::spaces::list_for_user(c, uid)?
                .into_iter()
                .map(|s| s.space().clone())
                .collect())
        })
        .await?;
    let (text, space) = (q.q.clone(), q.space.clone().unwrap_or_default());
    let (hits, next, error) = if text.trim().is_empty() {
        (Vec::new(), None, None)
    } else {
        match super::api::run_search(&app, &user, q).await {
            Ok(page) => (page.hits, page.next_cursor, None),
            Err(AppError::BadRequest(m)) => (Vec::new(), None, Some(m)),
            Err(e) => return Err(e),
        }
    };
    Ok(SearchResults {
        user,
        csrf: csrf.0,
        q: text,
        space,
        spaces,
        hits,
        next,
        error,
    })
}

/// `POST /s/{slug}/media/{id}/delete`: removes an album item (members and owners).
pub async fn delete_media(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    csrf: CsrfToken,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    super::api::delete_album_item(&app, scope, id).await?;
    Ok(Redirect::to(&format!("/s/{slug}")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "inbox.html")]
struct InboxPage {
    user: User,
    csrf: String,
    space: Space,
    items: Vec<db::inbox::Conversation>,
    next: Option<String>,
    archived: bool,
}

/// `?archived=&cursor=` of the inbox page.
#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    archived: bool,
    cursor: Option<String>,
}

/// `GET /s/{slug}/inbox`: conversations, most recent first, with unread counts.
pub async fn inbox(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Query(q): Query<InboxQuery>,
) -> Result<impl IntoResponse, AppError> {
    let cursor = q
        .cursor
        .as_deref()
        .and_then(|c| c.split_once('-'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    let space = scope.space().clone();
    let uid = user.id;
    let archived = q.archived;
    let (items, next) = app
        .db
        .run(move |c| db::inbox::list_conversations(c, &scope, uid, archived, cursor, 20))
        .await?;
    Ok(InboxPage {
        user,
        csrf: csrf.0,
        space,
        items,
        next,
        archived,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "conversation.html")]
struct ConversationPage {
    user: User,
    csrf: String,
    space: Space,
    conversation: db::inbox::Conversation,
    messages: Vec<db::inbox::InboxMessage>,
}

/// `GET /s/{slug}/inbox/{id}`: a conversation (the last 50 messages), marked read.
pub async fn conversation(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Path((_, id)): Path<(String, i64)>,
) -> Result<impl IntoResponse, AppError> {
    let space = scope.space().clone();
    let uid = user.id;
    let (conversation, mut messages) = app
        .db
        .run(move |c| {
            let conv = db::inbox::conversation(c, &scope, uid, id)?;
            let (messages, _) = db::inbox::list_messages(c, &scope, id, None, 50)?;
            db::inbox::mark_read(c, &scope, id, uid, None)?;
            Ok((conv, messages))
        })
        .await?;
    messages.reverse();
    app.hub.publish(
        space.id,
        crate::inbox::Event::ConversationRead {
            conversation_id: id,
            user_id: uid.0,
        },
    );
    Ok(ConversationPage {
        user,
        csrf: csrf.0,
        space,
        conversation,
        messages,
    })
}

/// The reply form.
#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    csrf: String,
    text: String,
}

/// `POST /s/{slug}/inbox/{id}/send`: the reply form without JavaScript.
pub async fn reply(
    State(app): State<Arc<App>>,
    Member { user, .. }: Member,
    csrf: CsrfToken,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<ReplyForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    super::inbox::post_message(&app, &user, id, f.text, Vec::new()).await?;
    Ok(Redirect::to(&format!("/s/{slug}/inbox/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    #[test]
    fn decimals_follow_the_locale() {
        assert_eq!(decimal(Lang::En, 1234.56), "1,234.6");
        assert_eq!(decimal(Lang::Fr, 1234.56), "1\u{202f}234,6");
        assert_eq!(decimal(Lang::Fr, 100.0), "100,0");
        assert_eq!(decimal(Lang::En, 0.04), "0.0");
    }
}
