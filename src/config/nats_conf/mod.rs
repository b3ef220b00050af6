//! The NATS server config syntax (`key: value`, `{}` maps, `[]` arrays,
//! `include`, `$VAR`), read into a tree of [`Value`]s that remember the file
//! and line they came from.
//!
//! NSS config files are written in this syntax, so it follows the reference
//! lexer and parser (nats-server's `conf` package) in what it accepts and
//! what it makes of it: unquoted strings, `yes`/`on` booleans, `1k`/`1kb`
//! sizes, `(` block strings `)`, ISO8601 Zulu datetimes, JSON-style outer
//! braces. Where the reference silently drops or misreads a value, this
//! parser reads what was meant (`[1, 2]`'s last element is the integer 2,
//! not the string `2]`) or says what is wrong (a key with no value, an
//! unknown size suffix, an include or `$VAR` cycle).
//!
//! Owns parsing only; [`super::nss_file`] gives the keys their meaning.
//! Calls [`super::size`] for size suffixes and reads files only for
//! `include` (and the environment for `$VAR`). Grammar on `winnow`.
//!
//! Here: the entry points and [`ConfError`]. Submodules, each a step:
//! `lex` (cursor and blank/comment primitives), `grammar` (statements,
//! maps, arrays: text to unresolved statements), `scalar` (strings,
//! numbers, datetimes), `resolve` (`$VAR`s and `include`s: statements to
//! [`Value`]s) and `value` (the [`Value`] tree the caller gets).

mod grammar;
mod lex;
mod resolve;
mod scalar;
#[cfg(test)]
mod tests;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use resolve::{parse_file_at, parse_text, Nesting, MAX_INCLUDE_DEPTH};
pub use value::{Entry, Kind, Map, Value};

/// Why a config text could not be read. Every variant's text starts with
/// the file (and line, where there is one).
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The text is not valid config syntax; `msg` says what was found,
    /// mostly in the reference lexer's words.
    #[error("{}:{line}: {msg}", file.display())]
    Syntax {
        /// The file with the error.
        file: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// `$name` is neither a key set earlier in this or an enclosing map nor
    /// an environment variable.
    #[error("{}:{line}: variable reference for '{name}' can not be found", file.display())]
    UndefinedVariable {
        /// The file with the reference.
        file: PathBuf,
        /// 1-based line of the reference.
        line: usize,
        /// The variable, without `$`.
        name: String,
    },
    /// `$name` came from an environment variable whose value is not valid
    /// config text.
    #[error("{}:{line}: variable reference for '{name}' could not be parsed: {reason}", file.display())]
    BadVariable {
        /// The file with the reference.
        file: PathBuf,
        /// 1-based line of the reference.
        line: usize,
        /// The variable, without `$`.
        name: String,
        /// Why its value was rejected.
        reason: String,
    },
    /// An included file is missing or invalid.
    #[error("{}:{line}: error parsing include file '{include}': {source}", file.display())]
    Include {
        /// The including file.
        file: PathBuf,
        /// 1-based line of the `include`.
        line: usize,
        /// The path as written after `include`.
        include: String,
        /// What went wrong in the included file.
        source: Box<ConfError>,
    },
    /// Includes (or environment values) nest too deep: most likely a file
    /// that includes itself.
    #[error("{}:{line}: includes nest deeper than {MAX_INCLUDE_DEPTH} files (an include cycle?)", file.display())]
    TooDeep {
        /// The file with the innermost `include`.
        file: PathBuf,
        /// 1-based line of that `include`.
        line: usize,
    },
    /// A file could not be read.
    #[error("{}: error opening config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
}

/// Reads and parses the config file at `path`, resolving `include`s
/// relative to its directory and `$VAR`s from earlier keys or the
/// environment.
///
/// # Errors
///
/// [`ConfError::Read`] if the file cannot be read, else as [`parse_str`].
pub fn parse_file(path: &Path) -> Result<Map, ConfError> {
    parse_file_at(path, &Nesting::default())
}

/// Parses config `text` as if read from `file`: errors name `file`, and
/// `include`s are read relative to its directory.
///
/// # Errors
///
/// [`ConfError::Syntax`] for text that is not config syntax,
/// [`ConfError::UndefinedVariable`] / [`ConfError::BadVariable`] for a
/// `$VAR` that cannot be resolved, [`ConfError::Include`] /
/// [`ConfError::TooDeep`] for a bad include.
pub fn parse_str(text: &str, file: &Path) -> Result<Map, ConfError> {
    parse_text(text, Arc::from(file), &Nesting::default())
}
