//! Web upload: `POST /api/v1/spaces/{slug}/media` (multipart, for scripts and
//! the album's drag-and-drop) and the album's plain form.
//!
//! Each file part is streamed to a temp file of the vault (never held in
//! memory, refused past `max_file_bytes`), then imported like any other file:
//! sniffed against the allow-list, deduplicated by content in the space.

use std::sync::Arc;

use axum::{
    extract::{Multipart, Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Json,
};
use serde::Serialize;
use std::io::Write;

use super::auth::{self, CsrfToken, Member};
use crate::{
    db::spaces::{Role, SpaceScope},
    error::AppError,
    import::{Attachment, Importer},
    App,
};

/// The outcome for one uploaded file.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    /// The file name sent.
    pub name: String,
    /// The album item, when it was added (or already there: `duplicate`).
    pub id: Option<i64>,
    /// `added`, `duplicate` or `refused`.
    pub status: &'static str,
    /// Why it was refused.
    pub error: Option<String>,
}

/// Streams every file part into the space; returns per-file results.
async fn receive(
    app: &Arc<App>,
    scope: SpaceScope,
    sender: String,
    mut form: Multipart,
) -> Result<Vec<Uploaded>, AppError> {
    if scope.role() < Role::Member {
        return Err(AppError::Forbidden("viewers cannot add media".into()));
    }
    let limit = app.config.max_file_bytes;
    let mut results = Vec::new();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("bad multipart body: {e}")))?
    {
        let Some(name) = field.file_name().map(str::to_string) else {
            continue;
        };
        let mut tmp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(app.vault.root().join("tmp"))?;
        let mut size = 0u64;
        let mut too_large = false;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| AppError::BadRequest(format!("upload interrupted: {e}")))?
        {
            size += chunk.len() as u64;
            if size > limit {
                too_large = true;
                break;
            }
            tokio::task::block_in_place(|| tmp.write_all(&chunk))?;
        }
        if too_large {
            // Read the rest of this part (bounded by the route's body limit) so the next parts can be read.
            while field
                .chunk()
                .await
                .map_err(|e| AppError::BadRequest(format!("upload interrupted: {e}")))?
                .is_some()
            {}
            results.push(Uploaded {
                name,
                id: None,
                status: "refused",
                error: Some(format!(
                    "file is larger than the limit of {limit} bytes (max_file_bytes)"
                )),
            });
            continue;
        }
        let (app2, scope2, sender2, name2) =
            (app.clone(), scope.clone(), sender.clone(), name.clone());
        let outcome = tokio::task::spawn_blocking(
            move || -> anyhow::Result<(Option<i64>, crate::import::Summary)> {
                let mut file = tmp.reopen()?;
                let mut importer = Importer::quiet(app2, scope2);
                let id = importer.file(
                    Attachment {
                        reader: &mut file,
                        name: name2,
                        kind: None,
                    },
                    crate::db::now(),
                    Some(&sender2),
                    "upload",
                )?;
                Ok((id, importer.finish()))
            },
        )
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let (id, summary) = outcome;
        results.push(match (id, summary) {
            (Some(id), s) if s.media == 1 => Uploaded { name, id: Some(id), status: "added", error: None },
            (id, s) if s.duplicates == 1 => Uploaded { name, id, status: "duplicate", error: None },
            _ => Uploaded {
                name,
                id: None,
                status: "refused",
                error: Some("refused: not an accepted type (photos, videos, audio, PDF and office documents are)".into()),
            },
        });
    }
    if results.is_empty() {
        return Err(AppError::BadRequest(
            "no file in the form (send multipart/form-data with file parts)".into(),
        ));
    }
    crate::jobs::drain(app, crate::jobs::kind::THUMBNAIL).await;
    Ok(results)
}

/// `POST /api/v1/spaces/{slug}/media`: 200 with per-file results; 422 when every file was refused.
pub async fn api(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    Path(_slug): Path<String>,
    form: Multipart,
) -> Result<Response, AppError> {
    let results = receive(&app, scope, user.name, form).await?;
    let status = if results.iter().all(|r| r.status == "refused") {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(serde_json::json!({ "files": results }))).into_response())
}

/// `POST /s/{slug}/upload`: the album's form (no JavaScript needed); back to the album.
pub async fn form(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    csrf: CsrfToken,
    Path(slug): Path<String>,
    axum::extract::Query(q): axum::extract::Query<CsrfQuery>,
    form: Multipart,
) -> Result<Response, AppError> {
    auth::check_csrf(&csrf, &q.csrf)?;
    receive(&app, scope, user.name, form).await?;
    Ok(Redirect::to(&format!("/s/{slug}")).into_response())
}

/// The CSRF token of a multipart form, passed in the query string.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfQuery {
    csrf: String,
}
