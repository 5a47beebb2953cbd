//! `GET /metrics` (Prometheus text format, via `metrics-exporter-prometheus`),
//! `GET /healthz` (the process answers) and `GET /readyz` (the database and
//! the vault are usable: 200, else 503 with the reason).
//!
//! Counters and histograms are recorded where things happen
//! (`appliance_updates_received_total{via}`, `appliance_download_bytes_total`,
//! `appliance_download_errors_total`, `appliance_http_request_duration_seconds{method,route,status}`);
//! gauges that the database already knows are read at scrape time
//! (`appliance_jobs{state}`, `appliance_vault_bytes`, `appliance_media{state}`,
//! `appliance_index_docs`). When the server listens beyond loopback, `/metrics`
//! needs `Authorization: Bearer <metrics_token>`.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;

use crate::{db, App};

/// The process-wide recorder (installed once; tests start several servers in one process).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("appliance_http_request_duration_seconds".into()),
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ],
            )
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder is installed (an embedding program's): then ours renders empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Installs the recorder (call once at start, before anything is recorded).
pub fn init() {
    handle();
}

/// Middleware: the latency histogram of every request, by route template.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics::histogram!(
        "appliance_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !app.config.listen.ip().is_loopback() {
        let Some(token) = &app.config.metrics_token else {
            return (
                StatusCode::FORBIDDEN,
                "the server listens beyond loopback: set metrics_token (APPLIANCE_METRICS_TOKEN) to read /metrics",
            )
                .into_response();
        };
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                "Authorization: Bearer <metrics_token>",
            )
                .into_response();
        }
    }
    let gauges = app
        .db
        .run(|c| Ok((db::jobs::counts(c, None)?, db::media::totals(c)?)))
        .await;
    if let Ok((jobs, (bytes, by_state))) = gauges {
        for (state, n) in [
            ("queued", jobs.queued),
            ("running", jobs.running),
            ("done", jobs.done),
            ("failed", jobs.failed),
        ] {
            metrics::gauge!("appliance_jobs", "state" => state).set(n as f64);
        }
        metrics::gauge!("appliance_vault_bytes").set(bytes as f64);
        for (state, n) in by_state {
            metrics::gauge!("appliance_media", "state" => state).set(n as f64);
        }
    }
    metrics::gauge!("appliance_index_docs").set(app.search.num_docs() as f64);
    (
        [("content-type", "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// `GET /readyz`: 200 `ready` when a database query and a vault write work, else 503 with why.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    if let Err(e) = app
        .db
        .run(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")).into_response();
    }
    let vault = app.vault.clone();
    let writable = tokio::task::spawn_blocking(move || {
        tempfile::Builder::new()
            .prefix("ready-")
            .tempfile_in(vault.root().join("tmp"))
            .map(drop)
    })
    .await;
    let free = crate::notify::events::free_bytes(app.vault.root());
    let min = app.config.min_free_mb.saturating_mul(1_000_000);
    match writable {
        Ok(Ok(())) if free.is_some_and(|f| f < min) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "disk almost full: {} MB free in the vault (min_free_mb = {})",
                free.unwrap_or(0) / 1_000_000,
                app.config.min_free_mb
            ),
        )
            .into_response(),
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("vault: {e}")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("vault: {e}")).into_response(),
    }
}
