//! `GET /api/v1/ws`: one WebSocket session.
//!
//! Authenticated at the handshake (session cookie or `Authorization: Bearer`;
//! without valid credentials the upgrade is refused with 401, so no socket
//! opens). The server sends [`Event`]s as JSON text frames. The client sends
//! `{"type": "join" | "leave", "conversation_id"}` (typing events of a
//! conversation go to the sessions that joined it), `{"type": "typing",
//! "conversation_id", "active"?}` and `{"type": "read", "conversation_id",
//! "message_id"?}`. A bad frame gets `{"type": "error", "message"}`. A
//! session that falls behind gets `{"type": "resync"}` and reloads.

use std::{collections::HashSet, sync::Arc};

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;

use super::Event;
use crate::{
    db::{self, spaces::SpaceId, users::User},
    web::auth::CurrentUser,
    App,
};

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientFrame {
    Join {
        conversation_id: i64,
    },
    Leave {
        conversation_id: i64,
    },
    Typing {
        conversation_id: i64,
        #[serde(default = "yes")]
        active: bool,
    },
    Read {
        conversation_id: i64,
        message_id: Option<i64>,
    },
}

fn yes() -> bool {
    true
}

/// The handshake: checks the user, then upgrades.
pub async fn handshake(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    ws: WebSocketUpgrade,
) -> Response {
    // Small buffers: thousands of mostly idle sessions on a 1 GB board. Client
    // frames are tiny; events are a few hundred bytes.
    ws.read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(64 << 10)
        .max_frame_size(64 << 10)
        .on_upgrade(move |socket| session(app, user, socket))
}

async fn session(app: Arc<App>, user: User, socket: WebSocket) {
    let uid = user.id;
    let spaces: Vec<SpaceId> = match app.db.run(move |c| db::spaces::list_for_user(c, uid)).await {
        Ok(s) => s.iter().map(|s| s.id()).collect(),
        Err(_) => return,
    };
    // The events of the user's spaces only, merged into one stream; one task
    // per session (this one) reads the socket and writes the events.
    let mut events = futures_util::stream::select_all(spaces.iter().map(|space| {
        Box::pin(futures_util::stream::unfold(
            app.hub.subscribe(*space),
            |mut rx| async move {
                match rx.recv().await {
                    Ok(ev) => Some((ev, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a slow WebSocket client missed events");
                        Some((super::Hub::resync(), rx))
                    }
                    Err(_) => None,
                }
            },
        ))
    }));
    let (mut sink, mut stream) = socket.split();
    let mut joined: HashSet<i64> = HashSet::new();
    let _ = app
        .db
        .run(move |c| db::users::touch_seen(c, uid, db::now()))
        .await;
    if app.hub.connect(uid) {
        for s in &spaces {
            app.hub
                .publish(*s, Event::PresenceOnline { user_id: uid.0 });
        }
    }
    loop {
        tokio::select! {
            ev = events.next(), if !spaces.is_empty() => {
                let Some(ev) = ev else { break };
                if matches!(ev.event, Event::MediaAdded { .. }) {
                    continue;
                }
                let typing = matches!(ev.event, Event::TypingStarted { .. } | Event::TypingStopped { .. });
                if typing && !ev.event.conversation().is_some_and(|c| joined.contains(&c)) {
                    continue;
                }
                if sink.send(Message::Text(ev.json.clone())).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(f) => handle(&app, &user, &spaces, &mut joined, f).await,
                    Err(e) => {
                        let error = serde_json::json!({ "type": "error", "message": format!("bad frame: {e}") });
                        if sink.send(Message::Text(error.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = app
        .db
        .run(move |c| db::users::touch_seen(c, uid, db::now()))
        .await;
    if app.hub.disconnect(uid) {
        for s in &spaces {
            app.hub
                .publish(*s, Event::PresenceOffline { user_id: uid.0 });
        }
    }
}

async fn handle(
    app: &Arc<App>,
    user: &User,
    spaces: &[SpaceId],
    joined: &mut HashSet<i64>,
    frame: ClientFrame,
) {
    let conversation = match &frame {
        ClientFrame::Join { conversation_id }
        | ClientFrame::Leave { conversation_id }
        | ClientFrame::Typing {
            conversation_id, ..
        }
        | ClientFrame::Read {
            conversation_id, ..
        } => *conversation_id,
    };
    // Only conversations of the user's studios.
    let Ok(space) = app
        .db
        .run(move |c| db::inbox::conversation_space(c, conversation))
        .await
    else {
        return;
    };
    if !spaces.contains(&space) {
        return;
    }
    let uid = user.id;
    match frame {
        ClientFrame::Join { .. } => {
            joined.insert(conversation);
        }
        ClientFrame::Leave { .. } => {
            joined.remove(&conversation);
        }
        ClientFrame::Typing { active, .. } => app.hub.publish(
            space,
            if active {
                Event::TypingStarted {
                    conversation_id: conversation,
                    user_id: uid.0,
                }
            } else {
                Event::TypingStopped {
                    conversation_id: conversation,
                    user_id: uid.0,
                }
            },
        ),
        ClientFrame::Read { message_id, .. } => {
            let read = app
                .db
                .run(move |c| {
                    let scope = db::spaces::authorize_id(c, uid, space)?;
                    db::inbox::mark_read(c, &scope, conversation, uid, message_id)
                })
                .await;
            if let Ok(last) = read {
                app.hub.publish(
                    space,
                    Event::MessageRead {
                        conversation_id: conversation,
                        user_id: uid.0,
                        message_id: last,
                    },
                );
                app.hub.publish(
                    space,
                    Event::ConversationRead {
                        conversation_id: conversation,
                        user_id: uid.0,
                    },
                );
            }
        }
    }
}
