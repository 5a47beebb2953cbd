//! Serving vault files to members: originals (with Range requests, via
//! tower-http's `ServeFile` for local blobs, streamed from the bucket for
//! blobs that moved to S3) and thumbnails (or a placeholder).
//!
//! Every response is `private` (never stored by shared caches), carries
//! `X-Content-Type-Options: nosniff` and a sandboxing CSP, and uses the MIME
//! type sniffed at ingestion, never one derived from a user-given name.

use axum::{
    extract::{Path, Query, Request, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::{auth::Member, Assets};
use crate::{
    db::{self, media::MediaId},
    error::AppError,
    vault::{Sha256Hex, ThumbSize},
    App,
};

/// `?download=1` asks for `Content-Disposition: attachment`.
#[derive(Debug, serde::Deserialize)]
pub struct FileQuery {
    download: Option<u8>,
}

fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; media-src 'self'; img-src 'self'"),
    );
}

/// `GET /s/{slug}/media/{id}/file`: the original bytes, with Range support.
pub async fn original(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Path((_, id)): Path<(String, i64)>,
    Query(q): Query<FileQuery>,
    req: Request,
) -> Result<Response, AppError> {
    let item = app
        .db
        .run(move |c| db::media::get(c, &scope, MediaId(id)))
        .await?;
    original_of(&app, item, q.download == Some(1), req).await
}

/// The original bytes of `item` (already authorized), inline or as an
/// attachment, with its stored MIME type and a file name for downloads.
pub async fn original_of(
    app: &App,
    item: db::media::MediaItem,
    download: bool,
    req: Request,
) -> Result<Response, AppError> {
    let id = item.id.0;
    let sha = item.sha256.clone().unwrap_or_default();
    let mime = item.mime.clone().unwrap_or_default();
    let sha = Sha256Hex::parse(&sha)
        .ok_or_else(|| AppError::Internal(format!("bad sha256 in the database: {sha}")))?;
    let mime: mime_guess::mime::Mime = mime
        .parse()
        .unwrap_or(mime_guess::mime::APPLICATION_OCTET_STREAM);
    let mut resp = serve_blob(app, &sha, &mime, req).await?;
    harden(&mut resp);
    let name = item.file_name.unwrap_or_else(|| {
        let ext = mime_guess::get_mime_extensions(&mime)
            .and_then(|e| e.first())
            .copied()
            .unwrap_or("bin");
        format!("{}-{}.{ext}", item.kind, id)
    });
    let disposition = if download { "attachment" } else { "inline" };
    let value = format!(
        "{disposition}; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Answers `req` with the blob's bytes: `ServeFile` (conditional and Range
/// requests) when the blob is on this disk, otherwise a stream from the
/// remote backend honouring a single `Range` (RFC 9110 §14): 206 with
/// `Content-Range`, or 416 when unsatisfiable. Multi-range requests get the
/// whole blob (200), which RFC 9110 allows.
///
/// # Errors
/// [`AppError::NotFound`] when the blob is nowhere; backend errors as 500.
pub async fn serve_blob(
    app: &App,
    sha: &Sha256Hex,
    mime: &mime_guess::mime::Mime,
    req: Request,
) -> Result<Response, AppError> {
    if !app.vault.is_remote() || app.vault.has_local(sha) {
        return Ok(ServeFile::new_with_mime(app.vault.blob_path(sha), mime)
            .oneshot(req)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .into_response());
    }
    let size = app
        .vault
        .size(sha)
        .await
        .map_err(|e| AppError::Internal(format!("blob store: {e}")))?
        .ok_or(AppError::NotFound)?;
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| http_range_header::parse_range_header(v).and_then(|r| r.validate(size)));
    let range = match range {
        None => None,
        Some(Ok(r)) if r.len() == 1 => Some(*r[0].start()..*r[0].end() + 1),
        Some(Ok(_)) => None,
        Some(Err(_)) => {
            return Ok((
                axum::http::StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response())
        }
    };
    let read = app
        .vault
        .read(sha, range.clone())
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AppError::NotFound,
            _ => AppError::Internal(format!("blob store: {e}")),
        })?;
    let mut resp = axum::body::Body::from_stream(read.body).into_response();
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let len = range.as_ref().map_or(size, |r| r.end - r.start);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(r) = range {
        let v = format!("bytes {}-{}/{size}", r.start, r.end - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&v).expect("ascii"),
        );
        *resp.status_mut() = axum::http::StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

/// `GET /s/{slug}/media/{id}/thumb/{360|1280}`: the JPEG rendering, or a placeholder
/// for kinds and formats without one.
pub async fn thumbnail(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Path((_, id, size)): Path<(String, i64, u32)>,
    req: Request,
) -> Result<Response, AppError> {
    let size = thumb_size(size)?;
    let item = app
        .db
        .run(move |c| db::media::get(c, &scope, MediaId(id)))
        .await?;
    thumbnail_of(&app, &item, size, req).await
}

/// The rendering size named in a URL (360 or 1280).
///
/// # Errors
/// [`AppError::BadRequest`] for any other number.
pub fn thumb_size(size: u32) -> Result<ThumbSize, AppError> {
    match size {
        360 => Ok(ThumbSize::Thumb),
        1280 => Ok(ThumbSize::Preview),
        _ => Err(AppError::BadRequest("thumbnail size is 360 or 1280".into())),
    }
}

/// The rendering of `item` (already authorized) at `size`, or the placeholder.
pub async fn thumbnail_of(
    app: &App,
    item: &db::media::MediaItem,
    size: ThumbSize,
    req: Request,
) -> Result<Response, AppError> {
    let sha = item.sha256.as_deref().and_then(Sha256Hex::parse);
    let mut resp = match sha.filter(|_| item.has_thumbnail) {
        Some(sha) => ServeFile::new_with_mime(
            app.vault.thumb_path(&sha, size),
            &mime_guess::mime::IMAGE_JPEG,
        )
        .oneshot(req)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .into_response(),
        None => {
            let svg = Assets::get("placeholder.svg").ok_or(AppError::NotFound)?;
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg.data).into_response()
        }
    };
    harden(&mut resp);
    if !item.has_thumbnail {
        // The rendering may exist in a moment: never keep the placeholder in its place.
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}
