//! `pkgsign serve`: the HTTP API (src/serve/), configured by the file's
//! `[service]` section, with these flags over it.

use std::net::SocketAddr;
use std::path::PathBuf;

use pkgsign::config::Config;
use pkgsign::serve::{Server, Settings};

use super::error::CliError;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The first line on stderr is `listening on http://ADDR:PORT` (or https://). \
SIGTERM or SIGINT stops accepting, lets requests in flight finish, and exits 0. \
Request logs: PKGSIGN_LOG=info. See docs/service.md."
)]
pub struct Args {
    /// Listen here (port 0: any free port) instead of service.listen
    /// (default 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Serve plain HTTP on an address other than loopback (tokens and
    /// packages then cross the network in clear).
    #[arg(long)]
    insecure_plain_http: bool,
    /// The bearer tokens file, instead of service.tokens_file.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    /// The trusted-keys directory, instead of service.trusted_keys.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// The release store, instead of service.release_store.
    #[arg(long, value_name = "DIR")]
    release_store: Option<PathBuf>,
    /// The audit log, instead of service.audit_log.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Accepted for symmetry with the other commands; `serve` prints no JSON.
    #[arg(long, hide = true)]
    pub json: bool,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the service could not stop cleanly:
        // it never starts then (see run).
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("shutting down: no new connections; waiting for requests in flight");
}

/// Serve with `config` (the global `--config FILE` or PKGSIGN_CONFIG; its
/// [service] section), the flags over it.
pub fn run(args: Args, config: Option<Config>) -> Result<(), CliError> {
    let mut config = config.unwrap_or_default();
    let s = &mut config.service;
    if let Some(a) = args.listen {
        s.listen = Some(a);
    }
    s.insecure_plain_http |= args.insecure_plain_http;
    if args.tokens_file.is_some() {
        s.tokens_file = args.tokens_file;
    }
    if args.trusted_keys.is_some() {
        s.trusted_keys = args.trusted_keys;
    }
    if args.release_store.is_some() {
        s.release_store = args.release_store;
    }
    if args.audit_log.is_some() {
        s.audit_log = args.audit_log;
    }
    let settings = Settings::from_config(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pkgsign-serve")
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the service's runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::bind(settings).await?;
        eprintln!("listening on {}://{}", server.scheme(), server.local_addr());
        let filter = tracing_subscriber::EnvFilter::try_from_env("PKGSIGN_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
        server.run(shutdown_signal()).await?;
        Ok::<(), CliError>(())
    })?;
    // Blocking work still running (a verification whose client left) is
    // not waited for: it holds nothing that must be finished.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}
