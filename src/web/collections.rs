//! Albums (collections), favourites and share links: the pages of
//! `/s/{slug}/collections`, `/s/{slug}/favourites`, the buttons of the media
//! page, and the public, read-only `/share/{token}` pages.
//!
//! Members (role member and up) make albums and share links; every member,
//! viewers included, keeps favourites. A share token is 32 random bytes in
//! the URL; only its SHA-256 is stored, so the link is shown once.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, Query, Request, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use serde::Deserialize;

use super::{
    auth::{self, CsrfToken, Member},
    files,
    i18n::Localized,
};
use crate::{
    db::{
        self,
        collections::{Collection, ShareLink},
        media::{MediaId, MediaItem},
        spaces::{Role, Space, SpaceScope},
        users::User,
    },
    error::AppError,
    App,
};

fn writer(m: &Member) -> Result<(), AppError> {
    if m.scope.role() >= Role::Member {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "viewers cannot change albums; ask an owner for the member role".into(),
        ))
    }
}

/// The shape of every album change: checks the form's CSRF token and the
/// member's right to change albums, runs `f` on the group-committed writer,
/// and returns the space's slug (for the redirect) with `f`'s result.
async fn change<T: Send + 'static>(
    app: &App,
    member: Member,
    csrf: &CsrfToken,
    form_csrf: &str,
    f: impl FnOnce(&rusqlite::Connection, &SpaceScope, &User) -> db::DbResult<T> + Send + 'static,
) -> Result<(String, T), AppError> {
    auth::check_csrf(csrf, form_csrf)?;
    writer(&member)?;
    let Member { user, scope } = member;
    let slug = scope.space().slug.clone();
    let out = app.db.write(move |c| f(c, &scope, &user)).await?;
    Ok((slug, out))
}

#[derive(Template, WebTemplate)]
#[template(path = "collections.html")]
struct ListPage {
    user: User,
    csrf: String,
    space: Space,
    collections: Vec<Collection>,
    can_edit: bool,
}

/// `GET /s/{slug}/collections`: the space's albums and the form for a new one.
pub async fn list(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    let can_edit = writer(&member).is_ok();
    let Member { user, scope } = member;
    let space = scope.space().clone();
    let collections = app
        .db
        .run(move |c| db::collections::list(c, &scope))
        .await?;
    Ok(ListPage {
        user,
        csrf: csrf.0,
        space,
        collections,
        can_edit,
    }
    .into_response())
}

/// The new-album form.
#[derive(Debug, Deserialize)]
pub struct NameForm {
    csrf: String,
    name: String,
}

/// `POST /s/{slug}/collections`: makes an album, then shows it.
pub async fn create(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
    Form(f): Form<NameForm>,
) -> Result<Response, AppError> {
    let (slug, id) = change(&app, member, &csrf, &f.csrf, move |c, scope, user| {
        db::collections::create(c, scope, &f.name, user.id)
    })
    .await?;
    Ok(Redirect::to(&format!("/s/{slug}/collections/{id}")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "collection.html")]
struct AlbumPage {
    user: User,
    csrf: String,
    space: Space,
    /// None: the user's favourites.
    collection: Option<Collection>,
    items: Vec<MediaItem>,
    shares: Vec<ShareLink>,
    /// The URL of a link made by this request (shown once).
    new_link: Option<String>,
    can_edit: bool,
    now: i64,
}

async fn album_page(
    app: &Arc<App>,
    member: Member,
    csrf: String,
    id: i64,
    new_link: Option<String>,
) -> Result<Response, AppError> {
    let can_edit = writer(&member).is_ok();
    let Member { user, scope } = member;
    let space = scope.space().clone();
    let (collection, items, shares) = app
        .db
        .run(move |c| {
            Ok((
                db::collections::get(c, &scope, id)?,
                db::collections::items(c, &scope, id)?,
                db::collections::shares(c, &scope, id)?,
            ))
        })
        .await?;
    Ok(AlbumPage {
        user,
        csrf,
        space,
        collection: Some(collection),
        items,
        shares,
        new_link,
        can_edit,
        now: db::now(),
    }
    .into_response())
}

/// `GET /s/{slug}/collections/{id}`: an album, its share links.
pub async fn show(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
    Path((_, id)): Path<(String, i64)>,
) -> Result<Response, AppError> {
    album_page(&app, member, csrf.0, id, None).await
}

/// `GET /s/{slug}/favourites`: the user's favourites in this space.
pub async fn favourites(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    let space = scope.space().clone();
    let uid = user.id;
    let items = app
        .db
        .run(move |c| db::collections::favourites(c, &scope, uid))
        .await?;
    Ok(AlbumPage {
        user,
        csrf: csrf.0,
        space,
        collection: None,
        items,
        shares: Vec::new(),
        new_link: None,
        can_edit: false,
        now: db::now(),
    }
    .into_response())
}

/// A form with only the CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /s/{slug}/collections/{id}/delete`.
pub async fn delete(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
    Path((_, id)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    let (slug, ()) = change(&app, member, &csrf, &f.csrf, move |c, scope, _| {
        db::collections::delete(c, scope, id)
    })
    .await?;
    Ok(Redirect::to(&format!("/s/{slug}/collections")).into_response())
}

/// The share form: validity in days.
#[derive(Debug, Deserialize)]
pub struct ShareForm {
    csrf: String,
    days: i64,
}

/// `POST /s/{slug}/collections/{id}/share`: makes a link and shows it once.
pub async fn share(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
    Path((_, id)): Path<(String, i64)>,
    Form(f): Form<ShareForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    writer(&member)?;
    let token = auth::random_token();
    let hash = auth::token_hash(&token);
    let (scope, uid) = (member.scope.clone(), member.user.id);
    app.db
        .write(move |c| db::collections::create_share(c, &scope, id, &hash, f.days, uid))
        .await?;
    let base = app
        .config
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_default();
    album_page(
        &app,
        member,
        csrf.0,
        id,
        Some(format!("{base}/share/{token}")),
    )
    .await
}

/// `POST /s/{slug}/collections/{id}/shares/{share}/revoke`.
pub async fn revoke(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
    Path((_, id, share)): Path<(String, i64, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    let (slug, ()) = change(&app, member, &csrf, &f.csrf, move |c, scope, _| {
        db::collections::revoke_share(c, scope, share)
    })
    .await?;
    Ok(Redirect::to(&format!("/s/{slug}/collections/{id}")).into_response())
}

/// The media page's "Add to album" form.
#[derive(Debug, Deserialize)]
pub struct CollectForm {
    csrf: String,
    collection: i64,
    /// `remove` takes it out instead.
    #[serde(default)]
    action: String,
}

/// `POST /s/{slug}/media/{id}/collect`: puts the item in an album (or takes it out).
pub async fn collect(
    State(app): State<Arc<App>>,
    member: Member,
    csrf: CsrfToken,
    Path((_, media)): Path<(String, i64)>,
    Form(f): Form<CollectForm>,
) -> Result<Response, AppError> {
    let (collection, remove) = (f.collection, f.action == "remove");
    let (slug, ()) = change(&app, member, &csrf, &f.csrf, move |c, scope, _| {
        if remove {
            db::collections::remove_item(c, scope, collection, MediaId(media))
        } else {
            db::collections::add_item(c, scope, collection, MediaId(media))
        }
    })
    .await?;
    let back = if remove {
        format!("/s/{slug}/collections/{collection}")
    } else {
        format!("/s/{slug}/media/{media}")
    };
    Ok(Redirect::to(&back).into_response())
}

/// `POST /s/{slug}/media/{id}/favourite`: marks or unmarks it for the user.
pub async fn favourite(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Path((_, media)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &f.csrf)?;
    let slug = scope.space().slug.clone();
    app.db
        .write(move |c| db::collections::toggle_favourite(c, &scope, user.id, MediaId(media)))
        .await?;
    Ok(Redirect::to(&format!("/s/{slug}/media/{media}")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "shared.html")]
struct SharedPage {
    token: String,
    name: String,
    expires_at: i64,
    items: Vec<MediaItem>,
}

#[derive(Template, WebTemplate)]
#[template(path = "shared_invalid.html")]
struct SharedInvalid {}

async fn resolve(app: &App, token: &str) -> Result<db::collections::ShareScope, AppError> {
    // Only well-formed tokens reach the database.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::NotFound);
    }
    let hash = auth::token_hash(token);
    app.db
        .run(move |c| db::collections::resolve_share(c, &hash, db::now()))
        .await?
        .ok_or(AppError::NotFound)
}

fn private(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /share/{token}`: the shared album, read only, without an account.
pub async fn shared(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let share = match resolve(&app, &token).await {
        Ok(s) => s,
        Err(_) => {
            return private((axum::http::StatusCode::NOT_FOUND, SharedInvalid {}).into_response())
        }
    };
    let s = share.clone();
    match app
        .db
        .run(move |c| db::collections::shared_items(c, &s))
        .await
    {
        Ok(items) => private(
            SharedPage {
                token,
                name: share.name,
                expires_at: share.expires_at,
                items,
            }
            .into_response(),
        ),
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn shared_item(app: &App, token: &str, id: i64) -> Result<MediaItem, AppError> {
    let share = resolve(app, token).await?;
    Ok(app
        .db
        .run(move |c| db::collections::shared_item(c, &share, MediaId(id)))
        .await?)
}

/// `GET /share/{token}/media/{id}/thumb/{size}`: a rendering of a shared item.
pub async fn shared_thumbnail(
    State(app): State<Arc<App>>,
    Path((token, id, size)): Path<(String, i64, u32)>,
    req: Request,
) -> Result<Response, AppError> {
    let size = files::thumb_size(size)?;
    let item = shared_item(&app, &token, id).await?;
    Ok(private(files::thumbnail_of(&app, &item, size, req).await?))
}

/// `?download=1` of a shared file.
#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    download: Option<u8>,
}

/// `GET /share/{token}/media/{id}/file`: a shared item's original.
pub async fn shared_file(
    State(app): State<Arc<App>>,
    Path((token, id)): Path<(String, i64)>,
    Query(q): Query<DownloadQuery>,
    req: Request,
) -> Result<Response, AppError> {
    let item = shared_item(&app, &token, id).await?;
    Ok(private(
        files::original_of(&app, item, q.download == Some(1), req).await?,
    ))
}
