//! The `appliance` executable: parses the command line and dispatches.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use appliance::{
    cli::{self, Cli, Command},
    config::LogFormat,
    App,
};

fn init_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.load_config()?;
    let serving = matches!(cli.command, Command::Serve { .. });
    init_logging(config.log_format, if serving { "info" } else { "warn" });
    for key in appliance::Config::unknown_env_keys() {
        tracing::warn!(%key, "unknown APPLIANCE_* environment variable (ignored)");
    }
    if !serving {
        return cli::run(cli.command, config).await;
    }
    let listen = config.listen;
    let app = App::open(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    if app.db.run(|c| appliance::db::users::count(c)).await? == 0 {
        tracing::warn!(
            "no user yet: create the first admin with `appliance user add NAME --admin --password-stdin`"
        );
    }
    eprintln!("appliance is serving http://{}", listener.local_addr()?);
    appliance::serve(app, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
