//! The `stanchion` binary: reads the configuration, sets up logging, and runs
//! the server until SIGINT or SIGTERM; `stanchion healthcheck` asks a running
//! one whether it is up; `stanchion import-nss` and `stanchion
//! export-jetstream` move data in and out. Everything else lives in the
//! library.

mod export_cmd;
mod healthcheck;
mod heap;
mod import_cmd;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use stanchion::config::{Config, ConfigError, LogFormat};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    heap::limit_arenas(cores());
    let mut args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "import-nss") {
        init_plain_logging();
        args.remove(1);
        return import_cmd::run(args);
    }
    if args.get(1).is_some_and(|a| a == "export-jetstream") {
        init_plain_logging();
        args.remove(1);
        return export_cmd::run(args);
    }
    let healthcheck = args.get(1).is_some_and(|a| a == "healthcheck");
    if healthcheck {
        args.remove(1);
    }
    let loaded = match Config::load_reporting(args) {
        Ok(loaded) => loaded,
        // Help and version exit 0 on stdout; usage errors exit 2 on stderr.
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("stanchion: {e}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config;
    if healthcheck {
        return healthcheck::run(&config);
    }
    if let Err(e) = init_logging(&config) {
        eprintln!("stanchion: {e:#}");
        return ExitCode::from(2);
    }
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // NSS's words, so that scripts watching for them keep working.
            error!("Failed to start: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logging for subcommands: `RUST_LOG` (default `info`) on stderr.
fn init_plain_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// `RUST_LOG` (default `info`), with `-SD` / `-SV` raising stanchion's own
/// level to debug / trace on top, as NSS's flags do for its logger.
fn init_logging(config: &Config) -> anyhow::Result<()> {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "info".to_string());
    let mut filter = EnvFilter::try_new(&spec).context("invalid RUST_LOG")?;
    let wanted = if config.stan_trace {
        LevelFilter::TRACE
    } else if config.stan_debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::OFF
    };
    if wanted > own_level(&spec) {
        filter = filter.add_directive(format!("stanchion={wanted}").parse()?);
    }
    // openraft is verbose: its lines are shown with cluster_raft_logging,
    // as NSS shows hashicorp/raft's, unless RUST_LOG names it.
    if !spec.contains("openraft") {
        let raft = if config.cluster_raft_logging {
            LevelFilter::INFO.max(wanted)
        } else {
            LevelFilter::ERROR
        };
        filter = filter.add_directive(format!("openraft={raft}").parse()?);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        // One JSON object a line, fields flattened, for log collectors.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        // Colours only on a terminal: log files and collectors get plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}

/// The level `spec` gives the `stanchion` target: its last `stanchion=LEVEL`
/// directive, else its last bare level. A `stanchion=` directive from `-SD`
/// would replace a more verbose one, so it is only added when it raises this.
fn own_level(spec: &str) -> LevelFilter {
    let mut global = LevelFilter::ERROR;
    let mut own = None;
    for directive in spec.split(',').map(str::trim) {
        match directive.split_once('=') {
            Some(("stanchion", level)) => own = level.parse().ok().or(own),
            Some(_) => {}
            None => global = directive.parse().unwrap_or(global),
        }
    }
    own.unwrap_or(global)
}

/// Runs the server on a multi-thread runtime until a signal asks it to stop.
fn run(config: Config) -> anyhow::Result<()> {
    heap::spawn_trimmer();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // Half the cores (at least one) unless TOKIO_WORKER_THREADS says
    // otherwise: a sidecar shares its machine with nats-server and the
    // clients, and each message is mostly hand-offs between tasks, which
    // cost a futex wake-up whenever they cross workers. Disk work runs on
    // the blocking pool either way. Measured on 2 cores (BENCHMARKS.md):
    // one worker spends 6-11 % less CPU per message than two.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads((cores() / 2).max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    // Served from a worker thread: `block_on` runs its future on the main
    // thread, which is not one, so every message handed to the engine
    // would cost a futex wake-up of that thread.
    let result = runtime.block_on(async move {
        tokio::spawn(async move {
            let shutdown = shutdown_signal()?;
            stanchion::server::run(config, shutdown).await?;
            Ok(())
        })
        .await
        .context("the server task failed")?
    });
    // Blocking work still running (a store flush past its deadline) does
    // not hold the exit: the shutdown budget is the server's.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// A future that completes on the first SIGINT or SIGTERM. The handlers are
/// installed before it is returned, so a signal arriving during startup is
/// not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    // The flag is set in the handler itself, so no request queued behind
    // the signal can be taken while the tasks below are being woken.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stanchion::server::signal_flag())
            .context("cannot handle stop signals")?;
    }
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => info!("SIGINT received, shutting down"),
            _ = terminate.recv() => info!("SIGTERM received, shutting down"),
        }
    })
}

/// The cores this process may run on (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_level_reads_the_stanchion_directive_or_the_global_level() {
        assert_eq!(own_level("info"), LevelFilter::INFO);
        assert_eq!(own_level("trace"), LevelFilter::TRACE);
        assert_eq!(own_level("warn,stanchion=trace"), LevelFilter::TRACE);
        assert_eq!(own_level("stanchion=debug,trace"), LevelFilter::DEBUG);
        assert_eq!(own_level("async_nats=debug"), LevelFilter::ERROR);
        assert_eq!(own_level("stanchion::server=trace,info"), LevelFilter::INFO);
    }
}
