//! What the benchmarks that run the server in a child process share: the
//! child's serve loop, and its memory figures from `/proc`.

/// A `/proc/PID/status` figure in MiB: `VmRSS` (now) or `VmHWM` (peak);
/// 0 when it cannot be read.
pub fn vm(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The child's side: opens the app with `config` and serves on
/// `127.0.0.1:port` until Ctrl-C (SIGINT).
pub async fn serve(config: appliance::Config, port: u16) -> anyhow::Result<()> {
    let app = appliance::App::open(config)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    appliance::serve(app, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
