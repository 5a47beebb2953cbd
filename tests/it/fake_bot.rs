//! A fake Telegram Bot API server for tests and the demo.
//!
//! It answers the methods the appliance calls (`getUpdates`, `getFile`,
//! `getMe`, `setWebhook`, `deleteWebhook`, `sendMessage`), matched
//! case-insensitively as teloxide sends PascalCase names, and serves file
//! downloads at `/file/bot<token>/<file_path>`. Files are registered by
//! `file_id`; every call is recorded so tests can assert what was asked.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

/// A file the fake serves.
#[derive(Clone)]
pub struct FakeFile {
    /// `file_path` returned by getFile.
    pub path: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `file_size` reported by getFile (None: omitted).
    pub reported_size: Option<u64>,
}

/// Mutable state of the fake.
#[derive(Default)]
pub struct FakeState {
    /// Updates served by getUpdates (those with update_id >= offset).
    pub updates: Vec<Value>,
    /// Files by file_id.
    pub files: HashMap<String, FakeFile>,
    /// (method in lowercase, JSON parameters) of every call.
    pub calls: Vec<(String, Value)>,
    /// Scripted error answers for getFile, by file_id, consumed one per call:
    /// (HTTP status, body).
    pub get_file_errors: HashMap<String, Vec<(u16, Value)>>,
    /// Number of file downloads served, by file path.
    pub downloads: HashMap<String, usize>,
    /// Scripted error answers for sendMessage, by chat id, consumed one per call.
    pub send_errors: HashMap<i64, Vec<(u16, Value)>>,
    /// Until then, every call and download fails, alternating 429 (retry
    /// after 1 s) and 500: an outage of the Bot API.
    pub outage_until: Option<std::time::Instant>,
    /// Calls and downloads refused during the outage.
    pub refused: usize,
}

/// The next answer of an outage, if one is under way.
fn outage(state: &Arc<Mutex<FakeState>>) -> Option<Response> {
    let mut st = state.lock().unwrap();
    if st
        .outage_until
        .is_none_or(|t| std::time::Instant::now() >= t)
    {
        return None;
    }
    st.refused += 1;
    Some(if st.refused % 2 == 0 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": { "retry_after": 1 } })),
        )
            .into_response()
    } else {
        err(500, "Internal Server Error")
    })
}

/// A running fake Bot API.
pub struct FakeBot {
    /// Base URL to give as `telegram_api_url` (ends with '/').
    pub url: String,
    /// Shared state.
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeBot {
    /// Starts the fake on an ephemeral port.
    pub async fn start() -> FakeBot {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new()
            .route("/{bot}/{method}", post(method).get(method_get))
            .route("/file/{bot}/{*path}", get(file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeBot {
            url: format!("http://{addr}/"),
            state,
        }
    }

    /// Registers a file under `file_id`.
    pub fn add_file(&self, file_id: &str, path: &str, bytes: Vec<u8>) {
        let size = bytes.len() as u64;
        self.state.lock().unwrap().files.insert(
            file_id.to_string(),
            FakeFile {
                path: path.to_string(),
                bytes,
                reported_size: Some(size),
            },
        );
    }

    /// Queues updates for getUpdates.
    pub fn push_updates(&self, updates: impl IntoIterator<Item = Value>) {
        self.state.lock().unwrap().updates.extend(updates);
    }

    /// Calls of one method (lowercase name).
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn err(status: u16, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "ok": false, "error_code": status, "description": description })),
    )
        .into_response()
}

async fn method_get(state: State<Arc<Mutex<FakeState>>>, path: Path<(String, String)>) -> Response {
    answer(state, path, json!({})).await
}

/// Reads parameters sent as JSON or, for methods that may upload files
/// (`setWebhook`), as multipart/form-data.
async fn method(
    state: State<Arc<Mutex<FakeState>>>,
    path: Path<(String, String)>,
    req: Request,
) -> Response {
    let multipart = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let params = if multipart {
        let mut form = Multipart::from_request(req, &()).await.unwrap();
        let mut obj = serde_json::Map::new();
        while let Some(field) = form.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_string();
            let text = field.text().await.unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            obj.insert(name, value);
        }
        Value::Object(obj)
    } else {
        let body = Bytes::from_request(req, &()).await.unwrap_or_default();
        serde_json::from_slice(&body).unwrap_or(json!({}))
    };
    answer(state, path, params).await
}

async fn answer(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((bot, method)): Path<(String, String)>,
    params: Value,
) -> Response {
    if !bot.starts_with("bot") {
        return err(404, "Not Found");
    }
    if bot.contains("wrong") {
        // What the Bot API answers for a revoked or mistyped token.
        return err(401, "Unauthorized");
    }
    let method = method.to_ascii_lowercase();
    if let Some(r) = outage(&state) {
        return r;
    }
    state
        .lock()
        .unwrap()
        .calls
        .push((method.clone(), params.clone()));
    match method.as_str() {
        "getme" => ok(json!({
            "id": 42, "is_bot": true, "first_name": "Family Album", "username": "family_album_bot",
            "can_join_groups": true, "can_read_all_group_messages": true,
            "supports_inline_queries": false, "can_connect_to_business": false, "has_main_web_app": false
        })),
        "getupdates" => {
            let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
            let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(100) as usize;
            let pending: Vec<Value> = state
                .lock()
                .unwrap()
                .updates
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                .take(limit)
                .cloned()
                .collect();
            if pending.is_empty() {
                // A short long-poll, so tests stay fast.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            ok(Value::Array(pending))
        }
        "getfile" => {
            let file_id = params
                .get("file_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut st = state.lock().unwrap();
            if let Some(list) = st.get_file_errors.get_mut(&file_id) {
                if !list.is_empty() {
                    let (status, body) = list.remove(0);
                    return (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
                }
            }
            match st.files.get(&file_id) {
                Some(f) => {
                    let mut r = json!({ "file_id": file_id, "file_unique_id": format!("u-{file_id}"), "file_path": f.path });
                    if let Some(s) = f.reported_size {
                        r["file_size"] = json!(s);
                    }
                    ok(r)
                }
                None => err(400, "Bad Request: invalid file_id"),
            }
        }
        "setwebhook" | "deletewebhook" => ok(json!(true)),
        "sendphoto" => ok(json!({
            "message_id": 2, "date": 1700000000,
            "chat": { "id": params["chat_id"], "type": "private", "first_name": "x" },
            "photo": [{ "file_id": "sent", "file_unique_id": "sent", "width": 1, "height": 1 }]
        })),
        "sendmessage"
            if params["chat_id"].as_i64().is_some_and(|c| {
                state
                    .lock()
                    .unwrap()
                    .send_errors
                    .get(&c)
                    .is_some_and(|l| !l.is_empty())
            }) =>
        {
            let chat = params["chat_id"].as_i64().unwrap();
            let (status, body) = state
                .lock()
                .unwrap()
                .send_errors
                .get_mut(&chat)
                .unwrap()
                .remove(0);
            (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
        }
        "sendmessage" => ok(json!({
            "message_id": 1, "date": 1700000000,
            "chat": { "id": params["chat_id"], "type": "private", "first_name": "x" },
            "text": params["text"]
        })),
        _ => err(404, "Not Found: method not found"),
    }
}

async fn file(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if !bot.starts_with("bot") {
        return err(404, "Not Found");
    }
    if let Some(r) = outage(&state) {
        return r;
    }
    let mut st = state.lock().unwrap();
    let found = st
        .files
        .values()
        .find(|f| f.path == path)
        .map(|f| f.bytes.clone());
    match found {
        Some(bytes) => {
            *st.downloads.entry(path).or_default() += 1;
            bytes.into_response()
        }
        None => err(404, "Not Found"),
    }
}
