//! The JSON API under `/api/v1` (session cookie or `Authorization: Bearer`).

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;

use super::auth::{CurrentUser, Member};
use crate::{
    db::{self, media::MediaId, spaces::Role, spaces::SpaceScope, users::User},
    error::AppError,
    search::SearchPage,
    App,
};

/// Parameters of a search.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// The query (see `search::query` for the syntax).
    #[serde(default)]
    pub q: String,
    /// Only this space (slug); default: every space of the caller.
    pub space: Option<String>,
    /// Hits per page, 1–200 (default 20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The spaces a search may look into: one (checked) or all of the user's.
pub async fn search_scopes(
    app: &Arc<App>,
    user: &User,
    space: Option<String>,
) -> Result<Vec<SpaceScope>, AppError> {
    let uid = user.id;
    Ok(app
        .db
        .run(move |c| match space.filter(|s| !s.is_empty()) {
            Some(slug) => Ok(vec![db::spaces::authorize(c, uid, &slug)?]),
            None => db::spaces::list_for_user(c, uid),
        })
        .await?)
}

/// Runs a search for a user (shared by the API and the page).
pub async fn run_search(
    app: &Arc<App>,
    user: &User,
    q: SearchQuery,
) -> Result<SearchPage, AppError> {
    let scopes = search_scopes(app, user, q.space).await?;
    let search = app.search.clone();
    let limit = q.limit.unwrap_or(20);
    tokio::task::spawn_blocking(move || search.search(&scopes, &q.q, limit, q.cursor.as_deref()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::from)
}

/// `GET /api/v1/search?q=&space=&limit=&cursor=`: `{"hits": [...], "next_cursor": ...}`.
pub async fn search(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchPage>, AppError> {
    Ok(Json(run_search(&app, &user, q).await?))
}

fn can_edit(scope: &SpaceScope) -> Result<(), AppError> {
    if scope.role() >= Role::Member {
        Ok(())
    } else {
        Err(AppError::Forbidden("viewers cannot delete".into()))
    }
}

/// Deletes an album item for a member (viewers may not), and tells the indexer.
pub async fn delete_album_item(app: &Arc<App>, scope: SpaceScope, id: i64) -> Result<(), AppError> {
    can_edit(&scope)?;
    app.db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            db::media::delete(&tx, &scope, MediaId(id))?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    app.changed();
    Ok(())
}

/// `DELETE /api/v1/spaces/{slug}/media/{id}`: removes an album item (204).
pub async fn delete_media(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Path((_, id)): Path<(String, i64)>,
) -> Result<StatusCode, AppError> {
    delete_album_item(&app, scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/spaces/{slug}/messages/{id}`: removes a message (204).
pub async fn delete_message(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Path((_, id)): Path<(String, i64)>,
) -> Result<StatusCode, AppError> {
    can_edit(&scope)?;
    app.db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            db::media::delete_message(&tx, &scope, id)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    app.changed();
    Ok(StatusCode::NO_CONTENT)
}
