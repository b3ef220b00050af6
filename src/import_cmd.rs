//! `stanchion import-nss`: the command line of [`stanchion::import`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use stanchion::crypto::Cipher;
use stanchion::import::{self, ImportOptions, Progress};

/// Copies a nats-streaming-server file store into a new stanchion store.
///
/// Every channel with every message still on disk, durable subscriptions
/// (plain and queue groups) with their positions and unacknowledged
/// messages, non-durable subscriptions of clients that are still
/// registered, and the registered clients. The source is only read. Start
/// stanchion on the new store with the NSS server's cluster ID and limits:
/// it serves what NSS would after a restart.
#[derive(Parser, Debug)]
#[command(name = "stanchion import-nss", version)]
struct ImportArgs {
    /// The NSS data directory (its `-dir`, holding server.dat)
    #[arg(long, value_name = "NSS_DIR")]
    from: PathBuf,
    /// The stanchion store to create; must be missing or empty
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Key the NSS store was encrypted with (NATS_STREAMING_ENCRYPTION_KEY wins when set)
    #[arg(long = "encryption_key", value_name = "KEY")]
    encryption_key: Option<String>,
    /// Encrypt the new store with the same key, to serve it with --encrypt
    #[arg(long)]
    encrypt: bool,
    /// Cipher of the new store: AES or CHACHA [default: AES on x86, CHACHA elsewhere]
    #[arg(
        long = "encryption_cipher",
        value_name = "CIPHER",
        requires = "encrypt"
    )]
    encryption_cipher: Option<String>,
}

/// Runs the import with `args` (after the subcommand's name); the summary
/// goes to stdout, progress and errors to stderr.
pub fn run(args: Vec<std::ffi::OsString>) -> ExitCode {
    let args = match ImportArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let encrypt = match args.encrypt {
        false => None,
        true => match Cipher::parse(args.encryption_cipher.as_deref().unwrap_or_default()) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("stanchion import-nss: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let opts = ImportOptions {
        from: args.from,
        dir: args.dir,
        key: stanchion::crypto::configured_key(args.encryption_key.as_deref()),
        encrypt,
        cache_capacity: 64 << 20,
    };
    let mut progress = <dyn Progress>::for_stderr();
    match import::run(&opts, progress.as_mut()) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            progress.finish();
            eprintln!("stanchion import-nss: {e}");
            if !matches!(e, import::ImportError::Refused(_)) {
                eprintln!(
                    "stanchion import-nss: {} is incomplete; delete it before importing again",
                    opts.dir.display()
                );
            }
            ExitCode::FAILURE
        }
    }
}
