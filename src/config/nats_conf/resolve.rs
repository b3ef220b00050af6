//! Resolution: [`super::grammar`]'s statements to [`Value`]s, with
//! `include`s read (relative to the including file) and `$VAR`s looked up
//! in the enclosing maps, then the environment.
//!
//! The only part that touches the file system or the environment; bounds
//! include (and environment value) nesting and catches `$VAR` cycles.

use std::path::Path;
use std::sync::Arc;

use winnow::error::ErrMode;
use winnow::LocatingSlice;

use super::grammar::{document, Raw, RawValue, Stmt};
use super::lex::Syntax;
use super::{ConfError, Entry, Kind, Map, Value};

/// How deep includes (and environment values, which are parsed as config
/// text) may nest; the reference has no limit, so an include cycle would
/// recurse forever.
pub(super) const MAX_INCLUDE_DEPTH: usize = 16;

/// The reference keeps `$2a$…` (a bcrypt hash) as text, not a variable, so
/// hashed passwords need no quotes.
const BCRYPT_PREFIX: &str = "2a$";

/// What encloses the text being parsed: how many includes (or environment
/// values) deep it is, and which environment variables are being expanded.
#[derive(Debug, Clone, Default)]
pub(super) struct Nesting {
    depth: usize,
    env: Vec<String>,
}

impl Nesting {
    fn deeper(&self) -> Nesting {
        Nesting {
            depth: self.depth + 1,
            env: self.env.clone(),
        }
    }
}

pub(super) fn parse_file_at(path: &Path, nesting: &Nesting) -> Result<Map, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_text(&text, Arc::from(path), nesting)
}

pub(super) fn parse_text(text: &str, file: Arc<Path>, nesting: &Nesting) -> Result<Map, ConfError> {
    let lines = LineIndex::new(text);
    let mut input = LocatingSlice::new(text);
    let stmts = document(&mut input).map_err(|e| {
        let e = match e {
            ErrMode::Backtrack(e) | ErrMode::Cut(e) => e,
            ErrMode::Incomplete(_) => Syntax::new(text.len(), "Unexpected EOF."),
        };
        ConfError::Syntax {
            file: file.to_path_buf(),
            line: lines.line(e.offset),
            msg: e.msg,
        }
    })?;
    let resolver = Resolver {
        file,
        lines,
        nesting: nesting.clone(),
    };
    let mut scopes = vec![Map::default()];
    resolver.stmts(stmts, &mut scopes)?;
    Ok(scopes.pop().unwrap_or_default())
}

/// Why an environment value was rejected, without any of its text: it
/// may be a password or token (`token: $NATS_TOKEN`), and a syntax error
/// quotes the character that broke it. Errors that name only variables
/// are passed on.
fn env_reason(e: ConfError) -> String {
    match e {
        ConfError::UndefinedVariable { .. }
        | ConfError::BadVariable { .. }
        | ConfError::TooDeep { .. } => e.to_string(),
        ConfError::Syntax { .. } | ConfError::Include { .. } | ConfError::Read { .. } => {
            "its value is not valid config text (the value is not shown: it may be a secret)"
                .to_string()
        }
    }
}

/// Byte offset to 1-based line.
struct LineIndex {
    /// Offset of the first byte of each line.
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(n, _)| n + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

struct Resolver {
    file: Arc<Path>,
    lines: LineIndex,
    nesting: Nesting,
}

impl Resolver {
    /// Sets `stmts` into the innermost of `scopes`.
    fn stmts(&self, stmts: Vec<Stmt>, scopes: &mut Vec<Map>) -> Result<(), ConfError> {
        for stmt in stmts {
            match stmt {
                Stmt::Pair { key, offset, value } => {
                    let value = self.value(value, scopes)?;
                    let entry = Entry {
                        key,
                        line: self.lines.line(offset),
                        value,
                        used_as_variable: false,
                    };
                    if let Some(scope) = scopes.last_mut() {
                        scope.insert(entry);
                    }
                }
                Stmt::Include { path, offset } => {
                    let included = self.include(path, self.lines.line(offset))?;
                    if let Some(scope) = scopes.last_mut() {
                        for entry in included.entries {
                            scope.insert(entry);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn value(&self, raw: RawValue, scopes: &mut Vec<Map>) -> Result<Value, ConfError> {
        let line = self.lines.line(raw.offset);
        let kind = match raw.raw {
            Raw::Str(s) => Kind::String(s),
            Raw::Bool(b) => Kind::Bool(b),
            Raw::Int(n) => Kind::Integer(n),
            Raw::Float(x) => Kind::Float(x),
            Raw::Datetime(s) => Kind::Datetime(s),
            Raw::Var(name) => return self.variable(&name, line, scopes),
            Raw::Array(items) => Kind::Array(
                items
                    .into_iter()
                    .map(|item| self.value(item, scopes))
                    .collect::<Result<_, _>>()?,
            ),
            Raw::Map(stmts) => {
                scopes.push(Map::default());
                let filled = self.stmts(stmts, scopes);
                let map = scopes.pop().unwrap_or_default();
                filled?;
                Kind::Map(map)
            }
        };
        Ok(self.at(kind, line))
    }

    fn at(&self, kind: Kind, line: usize) -> Value {
        Value {
            kind,
            line,
            file: Arc::clone(&self.file),
        }
    }

    /// `$name`: the nearest enclosing map's key of exactly that name set so
    /// far, else the environment variable, whose value is parsed as config
    /// text (so `$PORT` of `"4222"` is an integer).
    fn variable(&self, name: &str, line: usize, scopes: &mut [Map]) -> Result<Value, ConfError> {
        if name.starts_with(BCRYPT_PREFIX) {
            return Ok(self.at(Kind::String(format!("${name}")), line));
        }
        for scope in scopes.iter_mut().rev() {
            if let Some(entry) = scope.get_exact_mut(name) {
                entry.used_as_variable = true;
                let kind = entry.value.kind.clone();
                return Ok(self.at(kind, line));
            }
        }
        match self.env(name, line)? {
            Some(value) => Ok(value),
            None => Err(ConfError::UndefinedVariable {
                file: self.file.to_path_buf(),
                line,
                name: name.to_string(),
            }),
        }
    }

    fn env(&self, name: &str, line: usize) -> Result<Option<Value>, ConfError> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Ok(None);
        }
        let Some(raw) = std::env::var_os(name) else {
            return Ok(None);
        };
        let bad = |reason: String| ConfError::BadVariable {
            file: self.file.to_path_buf(),
            line,
            name: name.to_string(),
            reason,
        };
        let text = raw
            .into_string()
            .map_err(|_| bad("its value is not valid UTF-8".to_string()))?;
        if text.trim().is_empty() {
            return Ok(Some(self.at(Kind::String(String::new()), line)));
        }
        if self.nesting.env.iter().any(|n| n == name) {
            return Err(bad(format!("variable reference cycle for '{name}'")));
        }
        if self.nesting.depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfError::TooDeep {
                file: self.file.to_path_buf(),
                line,
            });
        }
        let mut nesting = self.nesting.deeper();
        nesting.env.push(name.to_string());
        let pseudo: Arc<Path> = Arc::from(Path::new(&format!("${name}")));
        let parsed =
            parse_text(&format!("pk={text}"), pseudo, &nesting).map_err(|e| bad(env_reason(e)))?;
        Ok(parsed.entry("pk").map(|entry| {
            let mut value = entry.value.clone();
            self.restamp(&mut value, line);
            value
        }))
    }

    /// Gives an environment value, and everything in it, the reference's
    /// line: its own text has no file.
    fn restamp(&self, value: &mut Value, line: usize) {
        value.line = line;
        value.file = Arc::clone(&self.file);
        match &mut value.kind {
            Kind::Array(items) => items.iter_mut().for_each(|v| self.restamp(v, line)),
            Kind::Map(map) => map.entries.iter_mut().for_each(|e| {
                e.line = line;
                self.restamp(&mut e.value, line);
            }),
            _ => {}
        }
    }

    /// Reads `path`, relative to this file's directory (an absolute path
    /// is taken as it is).
    fn include(&self, path: String, line: usize) -> Result<Map, ConfError> {
        if self.nesting.depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfError::TooDeep {
                file: self.file.to_path_buf(),
                line,
            });
        }
        let dir = self
            .file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        parse_file_at(&dir.join(&path), &self.nesting.deeper()).map_err(|source| {
            ConfError::Include {
                file: self.file.to_path_buf(),
                line,
                include: path,
                source: Box::new(source),
            }
        })
    }
}
