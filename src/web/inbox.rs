//! The inbox REST API under `/api/v1` (JSON; session cookie or bearer token).
//!
//! Routes named by a space use the [`Member`] extractor; routes named by a
//! conversation, a message or an appointment look up its space and check the
//! caller's membership in it ([`scope_of`]): an id from another studio is a 404.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;

use super::auth::{CurrentUser, Member};
use crate::{
    db::{self, jobs::NewJob, spaces::SpaceScope, users::User},
    error::AppError,
    inbox::Event,
    App,
};

/// The caller's scope in the space of a conversation (404 if not a member).
async fn scope_of(app: &Arc<App>, user: &User, conversation: i64) -> Result<SpaceScope, AppError> {
    let uid = user.id;
    Ok(app
        .db
        .run(move |c| {
            let space = db::inbox::conversation_space(c, conversation)?;
            db::spaces::authorize_id(c, uid, space)
        })
        .await?)
}

fn staff(scope: &SpaceScope) -> Result<(), AppError> {
    if scope.role() >= db::spaces::Role::Member {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "viewers cannot change the inbox".into(),
        ))
    }
}

/// Body of `POST /spaces/{slug}/contacts`.
#[derive(Debug, Deserialize)]
pub struct NewContact {
    name: String,
    telegram_user_id: Option<i64>,
    email: Option<String>,
    phone: Option<String>,
}

/// `POST /api/v1/spaces/{slug}/contacts` -> 201 `{"id"}`.
pub async fn create_contact(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Json(b): Json<NewContact>,
) -> Result<Response, AppError> {
    staff(&scope)?;
    let id = app
        .db
        .run(move |c| {
            db::inbox::create_contact(
                c,
                &scope,
                &b.name,
                b.telegram_user_id,
                b.email.as_deref(),
                b.phone.as_deref(),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `GET /api/v1/spaces/{slug}/contacts`.
pub async fn list_contacts(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
) -> Result<Response, AppError> {
    let items = app
        .db
        .run(move |c| db::inbox::list_contacts(c, &scope))
        .await?;
    Ok(Json(json!({ "items": items })).into_response())
}

/// Body of `POST /spaces/{slug}/appointments`.
#[derive(Debug, Deserialize)]
pub struct NewAppointment {
    contact_id: i64,
    starts_at: String,
    duration_minutes: i64,
    notes: Option<String>,
}

fn parse_time(s: &str) -> Result<i64, AppError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|_| {
            AppError::BadRequest(format!(
                "starts_at {s:?} is not an RFC 3339 time (2025-06-01T14:30:00+02:00)"
            ))
        })
}

/// `POST /api/v1/spaces/{slug}/appointments` -> 201 `{"id", "conversation_id"}`; opens the conversation.
pub async fn create_appointment(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Json(b): Json<NewAppointment>,
) -> Result<Response, AppError> {
    staff(&scope)?;
    let starts = parse_time(&b.starts_at)?;
    let space = scope.id();
    let (id, conversation) = app
        .db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            let r = db::inbox::create_appointment(
                &tx,
                &scope,
                b.contact_id,
                starts,
                b.duration_minutes,
                b.notes.as_deref(),
            )?;
            tx.commit()?;
            Ok(r)
        })
        .await?;
    crate::inbox::publish_latest(&app, space, conversation).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "conversation_id": conversation })),
    )
        .into_response())
}

/// `GET /api/v1/spaces/{slug}/appointments`.
pub async fn list_appointments(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
) -> Result<Response, AppError> {
    let items = app
        .db
        .run(move |c| db::inbox::list_appointments(c, &scope))
        .await?;
    Ok(Json(json!({ "items": items })).into_response())
}

/// Body of `PATCH /appointments/{id}`.
#[derive(Debug, Deserialize)]
pub struct AppointmentPatch {
    starts_at: Option<String>,
    duration_minutes: Option<i64>,
    status: Option<String>,
    notes: Option<String>,
}

async fn appointment_scope(app: &Arc<App>, user: &User, id: i64) -> Result<SpaceScope, AppError> {
    let uid = user.id;
    Ok(app
        .db
        .run(move |c| {
            let space: i64 = c
                .query_row(
                    "SELECT space_id FROM appointments WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .map_err(|_| db::DbError::NotFound)?;
            db::spaces::authorize_id(c, uid, db::spaces::SpaceId(space))
        })
        .await?)
}

/// `PATCH /api/v1/appointments/{id}`: change time, length, status or notes.
pub async fn update_appointment(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Json(b): Json<AppointmentPatch>,
) -> Result<StatusCode, AppError> {
    let scope = appointment_scope(&app, &user, id).await?;
    staff(&scope)?;
    let starts = b.starts_at.as_deref().map(parse_time).transpose()?;
    let space = scope.id();
    let conversation = app
        .db
        .run(move |c| {
            db::inbox::update_appointment(
                c,
                &scope,
                id,
                starts,
                b.duration_minutes,
                b.status.as_deref(),
                b.notes.as_deref(),
            )
        })
        .await?;
    if let Some(conversation_id) = conversation {
        app.hub
            .publish(space, Event::ConversationUpdated { conversation_id });
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/appointments/{id}/cancel`.
pub async fn cancel_appointment(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let scope = appointment_scope(&app, &user, id).await?;
    staff(&scope)?;
    let space = scope.id();
    let conversation = app
        .db
        .run(move |c| {
            db::inbox::update_appointment(c, &scope, id, None, None, Some("cancelled"), None)
        })
        .await?;
    if let Some(conversation_id) = conversation {
        app.hub
            .publish(space, Event::ConversationUpdated { conversation_id });
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the conversation list.
#[derive(Debug, Deserialize)]
pub struct ConversationQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    #[serde(default)]
    archived: bool,
}

/// `GET /api/v1/spaces/{slug}/conversations?limit=&cursor=&archived=` -> `{"items", "next_cursor"}`.
pub async fn list_conversations(
    State(app): State<Arc<App>>,
    Member { user, scope }: Member,
    Query(q): Query<ConversationQuery>,
) -> Result<Response, AppError> {
    let cursor = match q.cursor.as_deref() {
        Some(c) => Some(
            c.split_once('-')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| AppError::BadRequest("bad cursor".into()))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let (items, next) = app
        .db
        .run(move |c| db::inbox::list_conversations(c, &scope, user.id, q.archived, cursor, limit))
        .await?;
    Ok(Json(json!({ "items": items, "next_cursor": next })).into_response())
}

/// Body of `POST /spaces/{slug}/conversations`.
#[derive(Debug, Deserialize)]
pub struct NewConversation {
    contact_id: i64,
    title: Option<String>,
}

/// `POST /api/v1/spaces/{slug}/conversations` -> 201 `{"id"}`.
pub async fn create_conversation(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
    Json(b): Json<NewConversation>,
) -> Result<Response, AppError> {
    staff(&scope)?;
    let id = app
        .db
        .run(move |c| db::inbox::create_conversation(c, &scope, b.contact_id, b.title.as_deref()))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `GET /api/v1/conversations/{id}`.
pub async fn conversation(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let scope = scope_of(&app, &user, id).await?;
    let c = app
        .db
        .run(move |c| db::inbox::conversation(c, &scope, user.id, id))
        .await?;
    Ok(Json(c).into_response())
}

/// Body of `PATCH /conversations/{id}`.
#[derive(Debug, Deserialize)]
pub struct ConversationPatch {
    title: Option<String>,
    archived: Option<bool>,
}

async fn update(
    app: &Arc<App>,
    user: &User,
    id: i64,
    title: Option<String>,
    archived: Option<bool>,
) -> Result<StatusCode, AppError> {
    let scope = scope_of(app, user, id).await?;
    staff(&scope)?;
    let space = scope.id();
    app.db
        .run(move |c| db::inbox::update_conversation(c, &scope, id, title.as_deref(), archived))
        .await?;
    app.hub.publish(
        space,
        Event::ConversationUpdated {
            conversation_id: id,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/v1/conversations/{id}` `{"title"?, "archived"?}`.
pub async fn update_conversation(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Json(b): Json<ConversationPatch>,
) -> Result<StatusCode, AppError> {
    update(&app, &user, id, b.title, b.archived).await
}

/// `POST /api/v1/conversations/{id}/archive`.
pub async fn archive(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    update(&app, &user, id, None, Some(true)).await
}

/// `POST /api/v1/conversations/{id}/unarchive`.
pub async fn unarchive(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    update(&app, &user, id, None, Some(false)).await
}

/// `DELETE /api/v1/conversations/{id}`.
pub async fn delete_conversation(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let scope = scope_of(&app, &user, id).await?;
    staff(&scope)?;
    let space = scope.id();
    app.db
        .run(move |c| db::inbox::delete_conversation(c, &scope, id))
        .await?;
    app.hub.publish(
        space,
        Event::ConversationUpdated {
            conversation_id: id,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /conversations/{id}/read`.
#[derive(Debug, Deserialize, Default)]
pub struct ReadBody {
    up_to: Option<i64>,
}

/// `POST /api/v1/conversations/{id}/read` (optionally `{"up_to": message_id}`) -> 204.
pub async fn read(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    body: Option<Json<ReadBody>>,
) -> Result<StatusCode, AppError> {
    let scope = scope_of(&app, &user, id).await?;
    let space = scope.id();
    let up_to = body.and_then(|b| b.0.up_to);
    let uid = user.id;
    let last = app
        .db
        .run(move |c| db::inbox::mark_read(c, &scope, id, uid, up_to))
        .await?;
    app.hub.publish(
        space,
        Event::MessageRead {
            conversation_id: id,
            user_id: uid.0,
            message_id: last,
        },
    );
    app.hub.publish(
        space,
        Event::ConversationRead {
            conversation_id: id,
            user_id: uid.0,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the message list.
#[derive(Debug, Deserialize)]
pub struct MessageQuery {
    limit: Option<i64>,
    cursor: Option<i64>,
}

/// `GET /api/v1/conversations/{id}/messages?limit=&cursor=` -> `{"items", "next_cursor"}`, newest first.
pub async fn list_messages(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<MessageQuery>,
) -> Result<Response, AppError> {
    let scope = scope_of(&app, &user, id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let (items, next) = app
        .db
        .run(move |c| db::inbox::list_messages(c, &scope, id, q.cursor, limit))
        .await?;
    Ok(Json(json!({ "items": items, "next_cursor": next })).into_response())
}

/// Body of `POST /conversations/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct NewMessage {
    text: String,
}

/// Largest image attached to an inbox message, bytes.
pub const ATTACHMENT_LIMIT: u64 = 10 * 1024 * 1024;
/// Images per inbox message, at most.
pub const MAX_ATTACHMENTS: usize = 5;

/// `POST /api/v1/conversations/{id}/messages`: JSON `{"text"}`, or multipart with a
/// `text` field and up to 5 image files (10 MB each) -> 201 `{"id"}`. Sent on to
/// the contact's Telegram when the contact has one (a durable job).
pub async fn send(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    req: axum::extract::Request,
) -> Result<Response, AppError> {
    use axum::extract::FromRequest;
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (text, blobs) = if multipart {
        // Check membership before a byte of an upload reaches the vault.
        staff(&scope_of(&app, &user, id).await?)?;
        let form = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        read_form(&app, form).await?
    } else {
        let Json(b) = Json::<NewMessage>::from_request(req, &())
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        (b.text, Vec::new())
    };
    let message = post_message(&app, &user, id, text, blobs).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": message }))).into_response())
}

/// Reads a multipart message: its `text` field and its image files, streamed into the vault.
async fn read_form(
    app: &Arc<App>,
    mut form: axum::extract::Multipart,
) -> Result<(String, Vec<crate::vault::StoredBlob>), AppError> {
    let mut text = String::new();
    let mut blobs = Vec::new();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("bad multipart body: {e}")))?
    {
        if field.file_name().is_none() {
            if field.name() == Some("text") {
                text = field
                    .text()
                    .await
                    .map_err(|e| AppError::BadRequest(e.to_string()))?;
            }
            continue;
        }
        if blobs.len() == MAX_ATTACHMENTS {
            return Err(AppError::BadRequest(format!(
                "at most {MAX_ATTACHMENTS} images per message"
            )));
        }
        let mut writer = app.vault.writer(ATTACHMENT_LIMIT)?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| AppError::BadRequest(format!("upload interrupted: {e}")))?
        {
            tokio::task::block_in_place(|| writer.write(&chunk)).map_err(attachment_error)?;
        }
        let blob =
            tokio::task::block_in_place(|| writer.commit(crate::vault::Expect::Image, None, None))
                .map_err(attachment_error)?;
        blobs.push(blob);
    }
    Ok((text, blobs))
}

fn attachment_error(e: crate::vault::VaultError) -> AppError {
    match e {
        crate::vault::VaultError::TooLarge { .. } => {
            AppError::PayloadTooLarge(format!("an image is larger than {ATTACHMENT_LIMIT} bytes"))
        }
        crate::vault::VaultError::Rejected(m) => AppError::BadRequest(m),
        crate::vault::VaultError::Io(e) => AppError::Internal(e.to_string()),
    }
}

/// Adds a staff message with its images, queues its Telegram delivery, and tells the studio.
pub async fn post_message(
    app: &Arc<App>,
    user: &User,
    id: i64,
    text: String,
    blobs: Vec<crate::vault::StoredBlob>,
) -> Result<i64, AppError> {
    let uid = user.id;
    // A group commit: concurrent messages share one durable transaction; the
    // membership check runs inside it (one trip to the database, not two).
    let (message, queued_jobs, space) = app
        .db
        .write(move |tx| {
            let space = db::inbox::conversation_space(tx, id)?;
            let scope = db::spaces::authorize_id(tx, uid, space)?;
            if scope.role() < db::spaces::Role::Member {
                return Err(db::DbError::Forbidden(
                    "viewers cannot change the inbox".into(),
                ));
            }
            let (m, bridged) = db::inbox::add_message_with(
                tx,
                &scope,
                id,
                "staff",
                Some(uid),
                &text,
                !blobs.is_empty(),
            )?;
            for (i, b) in blobs.iter().enumerate() {
                let sha = b.sha256.as_str();
                if db::media::insert_blob(tx, sha, b.bytes as i64, &b.mime)? {
                    db::jobs::enqueue(
                        tx,
                        &NewJob {
                            kind: crate::jobs::kind::THUMBNAIL,
                            payload: json!({ "sha256": sha }),
                            dedup_key: Some(format!("thumb:{sha}")),
                            space: Some(space),
                            max_attempts: 3,
                        },
                    )?;
                }
                db::inbox::add_attachment(tx, m, i as i64, sha)?;
            }
            if bridged {
                crate::inbox::enqueue_delivery(tx, m, space)?;
            }
            db::inbox::mark_read(tx, &scope, id, uid, Some(m))?;
            Ok((
                db::inbox::message(tx, &scope, m)?,
                bridged || !blobs.is_empty(),
                space,
            ))
        })
        .await?;
    if queued_jobs {
        app.jobs_added.notify_waiters();
    }
    let message_id = message.id;
    crate::inbox::publish_message(app, space, message);
    Ok(message_id)
}

/// `GET /api/v1/messages/{id}/attachments/{n}`: an attached image (members only).
pub async fn attachment(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path((id, position)): Path<(i64, i64)>,
    req: axum::extract::Request,
) -> Result<Response, AppError> {
    let (scope, _) = message_scope(&app, &user, id).await?;
    let (sha, mime) = app
        .db
        .run(move |c| db::inbox::attachment(c, &scope, id, position))
        .await?;
    let sha = crate::vault::Sha256Hex::parse(&sha)
        .ok_or_else(|| AppError::Internal("bad sha256".into()))?;
    let mime: mime_guess::mime::Mime = mime
        .parse()
        .unwrap_or(mime_guess::mime::APPLICATION_OCTET_STREAM);
    let mut resp = super::files::serve_blob(&app, &sha, &mime, req).await?;
    resp.headers_mut().insert(
        "x-content-type-options",
        axum::http::HeaderValue::from_static("nosniff"),
    );
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(resp)
}

async fn message_scope(
    app: &Arc<App>,
    user: &User,
    message: i64,
) -> Result<(SpaceScope, i64), AppError> {
    let uid = user.id;
    Ok(app
        .db
        .run(move |c| {
            let (conversation, space) = db::inbox::message_conversation(c, message)?;
            Ok((db::spaces::authorize_id(c, uid, space)?, conversation))
        })
        .await?)
}

/// `DELETE /api/v1/messages/{id}`.
pub async fn delete_message(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let (scope, _) = message_scope(&app, &user, id).await?;
    staff(&scope)?;
    let space = scope.id();
    let conversation_id = app
        .db
        .run(move |c| db::inbox::delete_message(c, &scope, id))
        .await?;
    app.hub.publish(
        space,
        Event::MessageDeleted {
            conversation_id,
            message_id: id,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/messages/{id}/read`: marks the conversation read up to this message.
pub async fn read_message(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let (_, conversation) = message_scope(&app, &user, id).await?;
    read(
        State(app),
        CurrentUser(user),
        Path(conversation),
        Some(Json(ReadBody { up_to: Some(id) })),
    )
    .await
}

/// `POST /api/v1/messages/{id}/retry`: sends a failed delivery again.
pub async fn retry(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let (scope, conversation_id) = message_scope(&app, &user, id).await?;
    staff(&scope)?;
    let space = scope.id();
    app.db
        .run(move |c| {
            let m = db::inbox::message(c, &scope, id)?;
            if m.delivery.as_deref() != Some("failed") {
                return Err(db::DbError::Conflict(
                    "only a failed delivery can be retried".into(),
                ));
            }
            let tx = db::write_tx(c)?;
            db::inbox::set_delivery(&tx, id, "pending", None)?;
            crate::inbox::enqueue_delivery(&tx, id, space)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    app.jobs_added.notify_waiters();
    app.hub
        .publish(space, Event::ConversationUpdated { conversation_id });
    Ok(StatusCode::ACCEPTED)
}

/// Body of `PUT /api/v1/me`.
#[derive(Debug, Deserialize)]
pub struct Preferences {
    email: Option<String>,
    email_digest: Option<bool>,
}

/// `PUT /api/v1/me` `{"email"?, "email_digest"?}`: the caller's inbox email preferences (204).
pub async fn preferences(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    Json(b): Json<Preferences>,
) -> Result<StatusCode, AppError> {
    app.db
        .run(move |c| db::users::set_email_prefs(c, user.id, b.email.as_deref(), b.email_digest))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
