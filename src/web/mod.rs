//! The HTTP surface: one [`router`] listing every route, the embedded static
//! assets, and the HTML error page.
//!
//! Handlers are thin: extract (user, space membership, form), call a typed
//! function of [`crate::db`], render an askama template. Membership is checked
//! by the [`auth::Member`] extractor, never by hand in a handler.

pub mod api;
pub mod auth;
pub mod collections;
pub mod files;
pub mod i18n;
pub mod inbox;
pub mod integrations;
pub mod limits;
pub mod live;
pub mod pages;
pub mod setup;
pub mod upload;

use std::sync::Arc;

use crate::web::i18n::Localized;
use askama::Template;
use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use rust_embed::RustEmbed;

use crate::App;

/// Files under `static/`, embedded in the binary.
#[derive(RustEmbed)]
#[folder = "static/"]
pub struct Assets;

/// Every route of the server.
pub fn router(app: Arc<App>) -> Router {
    // One upload request may carry many files; each is checked against
    // max_file_bytes while it streams to disk.
    let upload_limit = axum::extract::DefaultBodyLimit::max(
        usize::try_from(app.config.max_file_bytes.saturating_mul(100).max(1 << 30))
            .unwrap_or(usize::MAX),
    );
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(healthz))
        .route("/readyz", get(crate::metrics::readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .route(
            "/login",
            get(pages::login_form)
                .post(pages::login)
                .layer(axum::middleware::from_fn_with_state(
                    app.clone(),
                    limits::login,
                )),
        )
        .route("/logout", post(pages::logout))
        .route("/spaces", get(pages::spaces))
        .route("/s/{slug}", get(pages::album))
        .route("/s/{slug}/stats", get(pages::stats))
        .route("/s/{slug}/events", get(live::events))
        .route(
            "/s/{slug}/collections",
            get(collections::list).post(collections::create),
        )
        .route("/s/{slug}/collections/{id}", get(collections::show))
        .route(
            "/s/{slug}/collections/{id}/delete",
            post(collections::delete),
        )
        .route("/s/{slug}/collections/{id}/share", post(collections::share))
        .route(
            "/s/{slug}/collections/{id}/shares/{share}/revoke",
            post(collections::revoke),
        )
        .route("/s/{slug}/favourites", get(collections::favourites))
        .route("/s/{slug}/media/{id}/collect", post(collections::collect))
        .route(
            "/s/{slug}/media/{id}/favourite",
            post(collections::favourite),
        )
        .route("/share/{token}", get(collections::shared))
        .route(
            "/share/{token}/media/{id}/thumb/{size}",
            get(collections::shared_thumbnail),
        )
        .route(
            "/share/{token}/media/{id}/file",
            get(collections::shared_file),
        )
        .route("/s/{slug}/link-code", post(pages::link_code))
        .route("/s/{slug}/media/{id}", get(pages::media))
        .route("/s/{slug}/media/{id}/file", get(files::original))
        .route("/s/{slug}/media/{id}/thumb/{size}", get(files::thumbnail))
        .route("/s/{slug}/media/{id}/delete", post(pages::delete_media))
        // Uploads stream to disk and check the per-file limit as they go; other
        // routes keep axum's 2 MB body limit.
        .route("/s/{slug}/upload", post(upload::form).layer(upload_limit))
        .route(
            "/api/v1/spaces/{slug}/media",
            post(upload::api).layer(upload_limit),
        )
        .route(
            "/s/{slug}/integrations",
            get(integrations::page).post(integrations::add),
        )
        .route("/s/{slug}/integrations/{id}/test", post(integrations::test))
        .route(
            "/s/{slug}/integrations/{id}/delete",
            post(integrations::delete),
        )
        .route("/s/{slug}/autoresponder", post(integrations::autoresponder))
        .route(
            "/s/{slug}/posts",
            get(integrations::posts).post(integrations::schedule),
        )
        .route("/s/{slug}/posts/{id}/cancel", post(integrations::cancel))
        .route("/search", get(pages::search))
        .route("/s/{slug}/inbox", get(pages::inbox))
        .route("/s/{slug}/inbox/{id}", get(pages::conversation))
        .route("/s/{slug}/inbox/{id}/send", post(pages::reply))
        .route("/api/v1/search", get(api::search))
        .route(
            "/api/v1/spaces/{slug}/media/{id}",
            axum::routing::delete(api::delete_media),
        )
        .route(
            "/api/v1/spaces/{slug}/messages/{id}",
            axum::routing::delete(api::delete_message),
        )
        .route("/api/v1/ws", get(crate::inbox::ws::handshake))
        .route("/api/v1/me", axum::routing::put(inbox::preferences))
        .route(
            "/api/v1/spaces/{slug}/contacts",
            post(inbox::create_contact).get(inbox::list_contacts),
        )
        .route(
            "/api/v1/spaces/{slug}/appointments",
            post(inbox::create_appointment).get(inbox::list_appointments),
        )
        .route(
            "/api/v1/appointments/{id}",
            axum::routing::patch(inbox::update_appointment),
        )
        .route(
            "/api/v1/appointments/{id}/cancel",
            post(inbox::cancel_appointment),
        )
        .route(
            "/api/v1/spaces/{slug}/conversations",
            post(inbox::create_conversation).get(inbox::list_conversations),
        )
        .route(
            "/api/v1/conversations/{id}",
            get(inbox::conversation)
                .patch(inbox::update_conversation)
                .delete(inbox::delete_conversation),
        )
        .route("/api/v1/conversations/{id}/archive", post(inbox::archive))
        .route(
            "/api/v1/conversations/{id}/unarchive",
            post(inbox::unarchive),
        )
        .route("/api/v1/conversations/{id}/read", post(inbox::read))
        .route(
            "/api/v1/conversations/{id}/messages",
            // Up to 5 images of 10 MB each, streamed to the vault.
            post(inbox::send)
                .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
                .get(inbox::list_messages),
        )
        .route(
            "/api/v1/messages/{id}",
            axum::routing::delete(inbox::delete_message),
        )
        .route("/api/v1/messages/{id}/read", post(inbox::read_message))
        .route("/api/v1/messages/{id}/retry", post(inbox::retry))
        .route(
            "/api/v1/messages/{id}/attachments/{n}",
            get(inbox::attachment),
        )
        .route("/admin/chats", get(pages::chats))
        .route("/admin/chats/{chat_id}/bind", post(pages::bind_chat))
        .route("/admin/jobs", get(pages::jobs))
        .route("/admin/jobs/{id}/retry", post(pages::retry_job))
        .route("/static/{*path}", get(asset))
        .route("/lang/{code}", get(i18n::switch))
        .route("/setup", get(setup::form).post(setup::create))
        .route("/setup/telegram", get(setup::telegram))
        .route("/setup/telegram/test", post(setup::test))
        // Pages get the request's language; the webhooks, added below, skip it.
        .layer(axum::middleware::from_fn(i18n::negotiate))
        .merge(
            Router::new()
                .route("/hooks/telegram", post(crate::telegram::webhook::receive))
                .route(
                    "/hooks/meta",
                    get(crate::meta::verify).post(crate::meta::receive),
                )
                .route("/hooks/stripe", post(crate::stripe::receive))
                .route_layer(axum::middleware::from_fn_with_state(
                    app.clone(),
                    limits::hooks,
                )),
        )
        .layer(axum::middleware::from_fn(auth::csrf_layer))
        .layer(axum::middleware::from_fn(limits::headers))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(app)
}

/// `GET /healthz`: 200 when the process serves requests.
async fn healthz() -> &'static str {
    "ok"
}

/// The URL of embedded asset `path` with its content hash:
/// `/static/v/<first 12 hex digits of its SHA-256>/<path>`. Unknown paths get
/// the plain `/static/<path>`.
pub fn asset_url(path: &str) -> String {
    match Assets::get(path) {
        Some(f) => format!(
            "/static/v/{}/{path}",
            &hex::encode(f.metadata.sha256_hash())[..12]
        ),
        None => format!("/static/{path}"),
    }
}

/// `GET /static/{path}` and `GET /static/v/{hash}/{path}`: an embedded asset
/// with its MIME type. A hashed URL whose hash matches the content is
/// `immutable` for a year; anything else is cached for a minute, so a stale
/// page never pins an old file.
async fn asset(Path(path): Path<String>) -> Response {
    let (hash, path) = match path.strip_prefix("v/").and_then(|p| p.split_once('/')) {
        Some((hash, rest)) => (Some(hash.to_string()), rest.to_string()),
        None => (None, path),
    };
    match Assets::get(&path) {
        Some(f) => {
            let fresh = hash.is_some_and(|h| {
                hex::encode(f.metadata.sha256_hash()).starts_with(&h) && h.len() == 12
            });
            let cache = if fresh {
                "public, max-age=31536000, immutable"
            } else {
                "public, max-age=60"
            };
            (
                [
                    (header::CONTENT_TYPE, f.metadata.mimetype().to_string()),
                    (header::CACHE_CONTROL, cache.to_string()),
                ],
                f.data,
            )
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: String,
    message: &'a str,
}

/// Renders the HTML error page.
pub fn render_error(status: StatusCode, message: &str) -> String {
    ErrorPage {
        status: status.to_string(),
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string())
}
