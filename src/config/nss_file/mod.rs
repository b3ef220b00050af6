//! NSS config files mapped onto stanchion's settings: NSS's keys and
//! aliases (`server/conf.go`) to stanchion's canonical names, with NSS's
//! type checks and error texts, as a figment [`Dict`].
//!
//! Owns which keys mean what; the syntax is [`super::nats_conf`]'s and the
//! durations [`super::duration`]'s. Keys NSS accepts but stanchion does not
//! implement, and keys nobody knows, are never errors: they come back in
//! [`NssFile::ignored`] for the loader to warn about.
//!
//! Here: the entry points, the result and error types, and why keys are
//! ignored. Submodules: `reader` (the output being built, and which block
//! is read), `keys` (the streaming block's keys and aliases), `sections`
//! (`store_limits`, `tls`, `file_options`, `cluster`, `sql_options`) and
//! `checks` (NSS's type checks and value rules).

mod checks;
mod keys;
mod reader;
mod sections;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::Dict;

use super::duration::DurationError;
use super::nats_conf::{self, ConfError};
use super::secret::RedactedDict;
use reader::map_file;

/// Why a key is in [`NssFile::ignored`]: not a setting anyone knows.
pub const UNKNOWN: &str = "unknown key";
/// Why a `file_options` key other than `sync` is ignored.
pub const FILE_TUNING: &str =
    "file-store tuning of the reference server; stanchion's store has its own";
const ONLY_VARIABLE: &str = "only defines a variable";
const NATS_SERVER_PART: &str = "outside the streaming block: nats-server's part of the file";
/// Why a `cluster` key of hashicorp/raft's or bbolt's own tuning is ignored.
const RAFT_TUNING: &str =
    "tuning of the reference server's Raft library (hashicorp/raft, bbolt); stanchion's openraft and sled need none";
/// Why the `cluster` keys of features still to come are ignored.
const NO_CLUSTERING: &str = "this cluster setting is not implemented yet";
const NO_SQL: &str = "the SQL store is not implemented";
const NO_SYSLOG: &str = "syslog is not implemented";
const NO_HTTPS: &str = "HTTPS monitoring is not implemented";

/// An NSS config file's settings.
///
/// Its `Debug` hides credentials (`pass`, `auth`, and the user info of
/// `nats_server`'s URLs).
#[derive(Clone, PartialEq)]
pub struct NssFile {
    /// Settings under stanchion's canonical names (`cluster_id`,
    /// `max_msgs`, `tls_client_cert`, a nested `channels` dict, …), ready to
    /// be a figment layer.
    pub values: Dict,
    /// Where each of [`NssFile::values`] was written, by canonical name, so
    /// that a rule only [`crate::config::Config::validate`] knows (a zero
    /// duration, a cluster ID's syntax) can still point at the line.
    pub origins: BTreeMap<String, Origin>,
    /// Keys accepted but not used, in file order, for startup warnings.
    pub ignored: Vec<Ignored>,
}

impl fmt::Debug for NssFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NssFile")
            .field("values", &RedactedDict(&self.values))
            .field("origins", &self.origins)
            .field("ignored", &self.ignored)
            .finish()
    }
}

/// Where a setting was written: the file (an included file names itself)
/// and the 1-based line of its key. Shown as `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line of the key.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A key that was accepted but has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Dotted path as written, e.g. `streaming.file_options.compact`.
    pub key: String,
    /// The file it is in (an included file names itself).
    pub file: PathBuf,
    /// 1-based line of the key.
    pub line: usize,
    /// Why it has no effect.
    pub why: &'static str,
}

/// Why an NSS config file was rejected. The text starts with
/// `<path>:<line>:` whenever there is a line.
#[derive(Debug, thiserror::Error)]
pub enum NssFileError {
    /// The file is unreadable, or not valid NATS config syntax.
    #[error(transparent)]
    Syntax(#[from] ConfError),
    /// A value of the wrong type, in NSS's words:
    /// `parameter "max_msgs" value is expected to be int64, got string`.
    #[error("{}:{line}: parameter {key:?} value is expected to be {expected}, got {got}", file.display())]
    WrongType {
        /// The file.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The Go kind NSS expects (`string`, `int64`, `bool`, …).
        expected: &'static str,
        /// The Go kind found.
        got: &'static str,
    },
    /// A duration Go's `time.ParseDuration` would not take.
    #[error("{}:{line}: parameter {key:?}: {source}", file.display())]
    Duration {
        /// The file.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// What is wrong with the text.
        source: DurationError,
    },
    /// A value of the right type that NSS (or stanchion) rejects: a
    /// negative global limit, a number too large for its setting, an
    /// unknown store type, a bad channel pattern, a section that is not a
    /// map.
    #[error("{}:{line}: {msg}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// What is wrong, in NSS's words where it has them.
        msg: String,
    },
}

type Result<T> = std::result::Result<T, NssFileError>;

/// Reads the NSS config file at `path` (includes relative to its
/// directory).
///
/// # Errors
///
/// [`NssFileError::Syntax`] when it cannot be read or parsed, else as
/// [`from_str`].
pub fn read(path: &Path) -> Result<NssFile> {
    map_file(&nats_conf::parse_file(path)?)
}

/// Reads NSS config `text` as if from the file `path`.
///
/// # Errors
///
/// [`NssFileError::Syntax`] for bad syntax, [`NssFileError::WrongType`],
/// [`NssFileError::Duration`] and [`NssFileError::Invalid`] for values NSS
/// would reject; each names the file, line and key.
pub fn from_str(text: &str, path: &Path) -> Result<NssFile> {
    map_file(&nats_conf::parse_str(text, path)?)
}
