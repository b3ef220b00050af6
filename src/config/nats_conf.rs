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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use winnow::error::{ErrMode, ParserError};
use winnow::stream::{Location, Stream};
use winnow::token::{take_till, take_while};
use winnow::{LocatingSlice, ModalResult, Parser};

/// How deep maps and arrays may nest in one file; deeper input is rejected
/// rather than risking the stack.
const MAX_NESTING: usize = 64;

/// How deep includes (and environment values, which are parsed as config
/// text) may nest; the reference has no limit, so an include cycle would
/// recurse forever.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The reference keeps `$2a$…` (a bcrypt hash) as text, not a variable, so
/// hashed passwords need no quotes.
const BCRYPT_PREFIX: &str = "2a$";

/// A parsed value, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What was written.
    pub kind: Kind,
    /// 1-based line where the value starts (for a value taken from a
    /// `$VAR`, the line of the reference).
    pub line: usize,
    /// The file it was read from; an included file's values name that file.
    pub file: Arc<Path>,
}

/// The kinds of values the syntax has.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Quoted, unquoted or block text.
    String(String),
    /// `true`/`false`/`yes`/`no`/`on`/`off`, any case, unquoted.
    Bool(bool),
    /// An integer, with any size suffix already applied (`1kb` is 1024).
    Integer(i64),
    /// A number with a fractional part.
    Float(f64),
    /// An ISO8601 Zulu datetime (`2016-05-04T18:53:41Z`), kept as written.
    Datetime(String),
    /// `[ … ]`.
    Array(Vec<Value>),
    /// `{ … }`.
    Map(Map),
}

impl Kind {
    /// The name of the Go kind the reference parser gives this value
    /// (`string`, `int64`, `slice`, …), as NSS's type errors print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::String(_) => "string",
            Kind::Bool(_) => "bool",
            Kind::Integer(_) => "int64",
            Kind::Float(_) => "float64",
            Kind::Datetime(_) => "struct",
            Kind::Array(_) => "slice",
            Kind::Map(_) => "map",
        }
    }
}

/// Prints a value the way Go's `%v` prints the reference parser's values,
/// for messages that quote what was found.
impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::String(s) | Kind::Datetime(s) => f.write_str(s),
            Kind::Bool(b) => write!(f, "{b}"),
            Kind::Integer(n) => write!(f, "{n}"),
            Kind::Float(x) => write!(f, "{x}"),
            Kind::Array(items) => {
                f.write_str("[")?;
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{}", item.kind)?;
                }
                f.write_str("]")
            }
            Kind::Map(map) => {
                f.write_str("map[")?;
                for (n, entry) in map.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{}:{}", entry.key, entry.value.kind)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One `key: value` of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (quotes removed, case kept).
    pub key: String,
    /// 1-based line of the key, where errors about this setting point.
    pub line: usize,
    /// The value.
    pub value: Value,
    /// Whether a `$key` reference used this entry. The reference keeps such
    /// keys in the map too; callers may want to not call them unknown.
    pub used_as_variable: bool,
}

/// A map's entries in the order their keys were last set. Keys are unique
/// as written (setting one again replaces it, as in the reference); lookups
/// with [`Map::get`] ignore case, as NSS does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<Entry>,
}

impl Map {
    /// The value of `key`, compared case-insensitively; when spellings
    /// differ only in case, the one set last.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry of `key`, compared case-insensitively, as [`Map::get`].
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// The entries, in the order their keys were last set.
    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `entry.key`, replacing an entry of exactly that spelling.
    fn insert(&mut self, entry: Entry) {
        self.entries.retain(|e| e.key != entry.key);
        self.entries.push(entry);
    }

    fn get_exact_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = &'a Entry;
    type IntoIter = std::slice::Iter<'a, Entry>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

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

/// What encloses the text being parsed: how many includes (or environment
/// values) deep it is, and which environment variables are being expanded.
#[derive(Debug, Clone, Default)]
struct Nesting {
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

fn parse_file_at(path: &Path, nesting: &Nesting) -> Result<Map, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_text(&text, Arc::from(path), nesting)
}

fn parse_text(text: &str, file: Arc<Path>, nesting: &Nesting) -> Result<Map, ConfError> {
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

// ---------------------------------------------------------------------------
// Grammar: text to statements, variables and includes still unresolved.
// ---------------------------------------------------------------------------

type In<'a> = LocatingSlice<&'a str>;
type PResult<T> = ModalResult<T, Syntax>;

/// A syntax error: where, and what.
#[derive(Debug)]
struct Syntax {
    offset: usize,
    msg: String,
}

impl Syntax {
    fn new(offset: usize, msg: impl Into<String>) -> Self {
        Syntax {
            offset,
            msg: msg.into(),
        }
    }
}

impl<'a> ParserError<In<'a>> for Syntax {
    type Inner = Self;

    fn from_input(input: &In<'a>) -> Self {
        Syntax::new(input.current_token_start(), "syntax error")
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

fn cut<T>(offset: usize, msg: impl Into<String>) -> PResult<T> {
    Err(ErrMode::Cut(Syntax::new(offset, msg)))
}

/// A value before variables are resolved.
#[derive(Debug)]
enum Raw {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Datetime(String),
    Var(String),
    Array(Vec<RawValue>),
    Map(Vec<Stmt>),
}

#[derive(Debug)]
struct RawValue {
    raw: Raw,
    offset: usize,
}

#[derive(Debug)]
enum Stmt {
    Pair {
        key: String,
        offset: usize,
        value: RawValue,
    },
    Include {
        path: String,
        offset: usize,
    },
}

/// Where a statement sits: the two differ in what may follow a key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Map,
}

fn rest<'a>(i: &In<'a>) -> &'a str {
    **i
}

fn peek(i: &In<'_>) -> Option<char> {
    rest(i).chars().next()
}

fn pos(i: &In<'_>) -> usize {
    i.current_token_start()
}

/// Consumes `n` bytes, which the caller has checked end on a character
/// boundary.
fn advance(i: &mut In<'_>, n: usize) {
    if rest(i).is_char_boundary(n) {
        let _ = i.next_slice(n);
    }
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Go's `isWhitespace`: blanks that do not end a line.
fn blanks(i: &mut In<'_>) -> PResult<()> {
    take_while(0.., [' ', '\t']).void().parse_next(i)
}

/// Go's `unicode.IsSpace`, newlines included.
fn spaces(i: &mut In<'_>) -> PResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

/// A `#` or `//` comment up to (not including) the end of its line; false
/// if there is none here.
fn comment(i: &mut In<'_>) -> PResult<bool> {
    let s = rest(i);
    if s.starts_with('#') || s.starts_with("//") {
        take_till(0.., is_nl).void().parse_next(i)?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Whitespace, newlines and comments.
fn filler(i: &mut In<'_>) -> PResult<()> {
    loop {
        spaces(i)?;
        if !comment(i)? {
            return Ok(());
        }
    }
}

fn document(i: &mut In<'_>) -> PResult<Vec<Stmt>> {
    let mut stmts = Vec::new();
    loop {
        filler(i)?;
        match peek(i) {
            None => return Ok(stmts),
            // JSON compatibility: the reference skips braces around the
            // whole file.
            Some('{' | '}') => advance(i, 1),
            Some(_) => {
                stmts.push(statement(i, Ctx::Top, 0)?);
                top_value_end(i)?;
            }
        }
    }
}

/// After a top-level value: blanks, then a comment, newline, `;`, `,`,
/// `}` or the end.
fn top_value_end(i: &mut In<'_>) -> PResult<()> {
    blanks(i)?;
    if comment(i)? {
        return Ok(());
    }
    match peek(i) {
        None => Ok(()),
        Some('\n' | '\r' | ';' | ',' | '}') => {
            advance(i, 1);
            Ok(())
        }
        Some(c) => cut(
            pos(i),
            format!(
                "Expected a top-level value to end with a new line, comment or EOF, but got '{}' instead.",
                c.escape_default()
            ),
        ),
    }
}

/// `key value` (with `=`, `:` or blanks between) or `include path`.
fn statement(i: &mut In<'_>, ctx: Ctx, depth: usize) -> PResult<Stmt> {
    let offset = pos(i);
    let key = match peek(i) {
        Some(c @ ('=' | ':')) => return cut(offset, format!("Unexpected key separator '{c}'.")),
        Some(']') if ctx == Ctx::Map => {
            return cut(offset, "Unexpected array end ']' processing map.")
        }
        Some('/') => return cut(offset, "Unexpected '/': comments start with '//' or '#'."),
        Some(q @ ('"' | '\'')) => {
            advance(i, 1);
            let key: &str = take_till(0.., q).parse_next(i)?;
            if peek(i).is_none() {
                return cut(
                    offset,
                    format!("Unexpected EOF processing quoted key {q}{key}."),
                );
            }
            advance(i, 1);
            key.to_string()
        }
        _ => {
            let key: &str = take_while(1.., |c: char| !c.is_whitespace() && c != '=' && c != ':')
                .parse_next(i)?;
            if key.eq_ignore_ascii_case("include") && peek(i).is_some_and(char::is_whitespace) {
                return include(i, offset);
            }
            key.to_string()
        }
    };
    spaces(i)?;
    let separated = matches!(peek(i), Some('=' | ':'));
    if separated {
        advance(i, 1);
    }
    if ctx == Ctx::Map || !separated {
        spaces(i)?;
    } else {
        blanks(i)?;
    }
    match peek(i) {
        None => {
            return cut(
                pos(i),
                format!("Expected a value for key {key:?} but got EOF."),
            )
        }
        Some(',') if ctx == Ctx::Map => return cut(pos(i), "Unexpected map value terminator ','."),
        Some('}') if ctx == Ctx::Map => {
            return cut(
                pos(i),
                format!("Expected a value for key {key:?} but got '}}'."),
            )
        }
        _ => {}
    }
    let value = value(i, depth)?;
    Ok(Stmt::Pair { key, offset, value })
}

/// The path after `include`: quoted, or unquoted up to a blank, newline,
/// `;` or `}`.
fn include(i: &mut In<'_>, offset: usize) -> PResult<Stmt> {
    blanks(i)?;
    let at = pos(i);
    let what = match peek(i) {
        None => "end of file",
        Some('[') => "start of an array",
        Some('{') => "start of a map",
        Some('(') => "start of a block",
        Some('0'..='9' | '-') => "start of a number",
        Some('\\') => "escape sequence",
        Some('\n' | '\r') => "new line",
        Some(q @ ('"' | '\'')) => {
            advance(i, 1);
            let path: &str = take_till(0.., q).parse_next(i)?;
            if peek(i).is_none() {
                let kind = if q == '"' { "double quoted" } else { "quoted" };
                return cut(at, format!("Unexpected EOF in {kind} include"));
            }
            advance(i, 1);
            let path = path.to_string();
            return Ok(Stmt::Include { path, offset });
        }
        Some(_) => {
            let path: &str = take_till(0.., |c: char| {
                is_nl(c) || matches!(c, ';' | '}' | ' ' | '\t' | '\'')
            })
            .parse_next(i)?;
            if path.is_empty() {
                return cut(at, "Expected include value but found none");
            }
            let path = path.to_string();
            if peek(i) == Some('\'') {
                advance(i, 1);
            }
            return Ok(Stmt::Include { path, offset });
        }
    };
    cut(at, format!("Expected include value but found {what}"))
}

fn value(i: &mut In<'_>, depth: usize) -> PResult<RawValue> {
    blanks(i)?;
    let offset = pos(i);
    let raw = match peek(i) {
        None => return cut(offset, "Expected a value but got EOF."),
        Some('\n' | '\r') => return cut(offset, "Expected value but found new line"),
        Some('.') => return cut(offset, "Floats must start with a digit"),
        Some(c @ (';' | ',' | ']' | '}')) => {
            return cut(offset, format!("Expected a value but got '{c}'."))
        }
        Some(c @ ('[' | '{')) if depth >= MAX_NESTING => {
            return cut(
                offset,
                format!("'{c}' nests deeper than {MAX_NESTING} levels"),
            )
        }
        Some('[') => array(i, depth + 1)?,
        Some('{') => map(i, depth + 1)?,
        Some('\'') => single_quoted(i)?,
        Some('"') => double_quoted(i)?,
        Some('(') => block(i)?,
        Some('-') => negative_number(i)?,
        Some('0'..='9') => number(i)?,
        Some(_) => unquoted(i)?,
    };
    Ok(RawValue { raw, offset })
}

fn array(i: &mut In<'_>, depth: usize) -> PResult<Raw> {
    let open = pos(i);
    advance(i, 1);
    let mut items = Vec::new();
    loop {
        filler(i)?;
        match peek(i) {
            None => return cut(open, "Unexpected EOF processing array."),
            Some(',') => return cut(pos(i), "Unexpected array value terminator ','."),
            Some(']') => {
                advance(i, 1);
                return Ok(Raw::Array(items));
            }
            Some(_) => items.push(value(i, depth)?),
        }
        loop {
            blanks(i)?;
            if comment(i)? {
                continue;
            }
            match peek(i) {
                None => return cut(open, "Unexpected EOF processing array."),
                Some(',' | '\n' | '\r') => {
                    advance(i, 1);
                    break;
                }
                Some(']') => {
                    advance(i, 1);
                    return Ok(Raw::Array(items));
                }
                Some(c) => {
                    return cut(
                        pos(i),
                        format!(
                            "Expected an array value terminator ',' or an array terminator ']', but got '{}' instead.",
                            c.escape_default()
                        ),
                    )
                }
            }
        }
    }
}

fn map(i: &mut In<'_>, depth: usize) -> PResult<Raw> {
    let open = pos(i);
    advance(i, 1);
    let mut stmts = Vec::new();
    loop {
        filler(i)?;
        match peek(i) {
            None => return cut(open, "Unexpected EOF processing map."),
            Some('}') => {
                advance(i, 1);
                return Ok(Raw::Map(stmts));
            }
            Some(_) => stmts.push(statement(i, Ctx::Map, depth)?),
        }
        loop {
            blanks(i)?;
            if comment(i)? {
                continue;
            }
            match peek(i) {
                None => return cut(open, "Unexpected EOF processing map."),
                Some(';' | ',' | '\n' | '\r') => {
                    advance(i, 1);
                    break;
                }
                Some('}') => {
                    advance(i, 1);
                    return Ok(Raw::Map(stmts));
                }
                Some(c) => {
                    return cut(
                        pos(i),
                        format!(
                            "Expected a map value terminator ',' or a map terminator '}}', but got '{}' instead.",
                            c.escape_default()
                        ),
                    )
                }
            }
        }
    }
}

fn single_quoted(i: &mut In<'_>) -> PResult<Raw> {
    let open = pos(i);
    advance(i, 1);
    let text: &str = take_till(0.., '\'').parse_next(i)?;
    if peek(i).is_none() {
        return cut(open, "Unexpected EOF: unterminated quoted string.");
    }
    advance(i, 1);
    Ok(Raw::Str(text.to_string()))
}

fn double_quoted(i: &mut In<'_>) -> PResult<Raw> {
    let open = pos(i);
    advance(i, 1);
    let mut buf = Vec::new();
    loop {
        let chunk: &str = take_till(0.., ['"', '\\']).parse_next(i)?;
        buf.extend_from_slice(chunk.as_bytes());
        match peek(i) {
            None => return cut(open, "Unexpected EOF: unterminated quoted string."),
            Some('"') => {
                advance(i, 1);
                return utf8(buf, open).map(Raw::Str);
            }
            Some(_) => escape(i, &mut buf)?,
        }
    }
}

/// Text of escaped bytes; `\x` escapes can make invalid UTF-8, which the
/// reference would keep but a Rust string cannot hold.
fn utf8(buf: Vec<u8>, offset: usize) -> PResult<String> {
    String::from_utf8(buf).or_else(|_| {
        cut(
            offset,
            "String is not valid UTF-8 once its \\x escapes are decoded.",
        )
    })
}

/// An escape, from its backslash: `\t \n \r \" \\` or `\xHH`.
fn escape(i: &mut In<'_>, buf: &mut Vec<u8>) -> PResult<()> {
    let at = pos(i);
    advance(i, 1);
    let c = peek(i);
    if let Some(c) = c {
        advance(i, c.len_utf8());
    }
    let byte = match c {
        Some('t') => b'\t',
        Some('n') => b'\n',
        Some('r') => b'\r',
        Some('"') => b'"',
        Some('\\') => b'\\',
        Some('x') => {
            let mut digits = rest(i).chars();
            let pair = [digits.next(), digits.next()];
            if pair.iter().any(|c| c.is_none_or(is_nl)) {
                return cut(
                    at,
                    "Expected two hexadecimal digits after '\\x', but hit end of line",
                );
            }
            let hex: String = pair.iter().flatten().collect();
            let is_hex = hex.chars().all(|c| c.is_ascii_hexdigit());
            let (true, Ok(byte)) = (is_hex, u8::from_str_radix(&hex, 16)) else {
                return cut(
                    at,
                    format!("Expected two hexadecimal digits after '\\x', but got '{hex}'"),
                );
            };
            advance(i, hex.len());
            byte
        }
        other => {
            let shown = other.map_or("EOF".to_string(), |c| c.escape_default().to_string());
            return cut(
                at,
                format!("Invalid escape character '{shown}'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\."),
            );
        }
    };
    buf.push(byte);
    Ok(())
}

/// An unquoted string, up to a blank, newline, `;`, `,`, `]`, `}` or the
/// end; a `'` ends it too and is dropped. Unescaped, it may be a boolean
/// or a `$variable` instead.
fn unquoted(i: &mut In<'_>) -> PResult<Raw> {
    let start = pos(i);
    let mut buf = Vec::new();
    let mut escaped = false;
    let mut quote_ended = false;
    loop {
        let chunk: &str = take_till(0.., |c: char| {
            is_nl(c) || matches!(c, '\\' | ';' | ',' | ']' | '}' | ' ' | '\t' | '\'')
        })
        .parse_next(i)?;
        buf.extend_from_slice(chunk.as_bytes());
        match peek(i) {
            Some('\\') => {
                escape(i, &mut buf)?;
                escaped = true;
            }
            Some('\'') => {
                advance(i, 1);
                quote_ended = true;
                break;
            }
            _ => break,
        }
    }
    let text = utf8(buf, start)?;
    if escaped || quote_ended {
        return Ok(Raw::Str(text));
    }
    Ok(match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Raw::Bool(true),
        "false" | "no" | "off" => Raw::Bool(false),
        _ => match text.strip_prefix('$') {
            Some(name) => Raw::Var(name.to_string()),
            None => Raw::Str(text),
        },
    })
}

/// A `(` block string `)`: everything up to a `)` alone at the start of a
/// line, that line's newline included.
fn block(i: &mut In<'_>) -> PResult<Raw> {
    let open = pos(i);
    advance(i, 1);
    let s = rest(i);
    let end = s.match_indices("\n)").map(|(n, _)| n).find(|&n| {
        let after = &s[n + 2..];
        after.is_empty() || after.starts_with('\n')
    });
    let Some(end) = end else {
        return cut(open, "Unexpected EOF processing block.");
    };
    let text = s[..=end].to_string();
    advance(i, end + 2);
    Ok(Raw::Str(text))
}

fn count(s: &str, pred: impl Fn(u8) -> bool) -> usize {
    s.bytes().position(|b| !pred(b)).unwrap_or(s.len())
}

fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// Where a number may end without turning into a string: the reference's
/// list, plus `]` (the reference reads `[1, 2]`'s `2]` as a string).
fn ends_number(c: Option<char>) -> bool {
    c.is_none_or(|c| is_nl(c) || matches!(c, '}' | ';' | ',' | ' ' | '\t' | ']'))
}

/// Something starting with a digit: an integer (with size suffix), a
/// float, an IP address, a datetime, or else an unquoted string.
fn number(i: &mut In<'_>) -> PResult<Raw> {
    let start = pos(i);
    let s = rest(i);
    let digits = count(s, |b| b.is_ascii_digit());
    let next = s[digits..].chars().next();
    match next {
        Some('-') if digits == 4 => datetime(i),
        Some('-') => cut(start, "All ISO8601 dates must be in full Zulu form."),
        Some('.') => float_or_ip(i, digits),
        Some(c) if is_size_suffix(c) => sized(i, digits),
        c if ends_number(c) => {
            advance(i, digits);
            integer(&s[..digits], start)
        }
        _ => unquoted(i),
    }
}

/// `-` then digits: an integer (with size suffix) or a float.
fn negative_number(i: &mut In<'_>) -> PResult<Raw> {
    let start = pos(i);
    let s = rest(i);
    let digits = 1 + count(&s[1..], |b| b.is_ascii_digit());
    if digits == 1 {
        return match s[1..].chars().next() {
            Some('.') => cut(start, "Floats must start with a digit, not '.'."),
            c => cut(
                start,
                format!(
                    "Expected a digit but got '{}'.",
                    c.map_or("EOF".to_string(), |c| c.escape_default().to_string())
                ),
            ),
        };
    }
    match s[digits..].chars().next() {
        Some('.') => float_or_ip(i, digits),
        Some(c) if is_size_suffix(c) => sized(i, digits),
        _ => {
            advance(i, digits);
            integer(&s[..digits], start)
        }
    }
}

fn integer(text: &str, offset: usize) -> PResult<Raw> {
    match text.parse::<i64>() {
        Ok(n) => Ok(Raw::Int(n)),
        Err(_) => cut(offset, format!("integer '{text}' is out of the range")),
    }
}

/// Digits (`len` bytes, sign included) then a size suffix: `k`, `m`, `g`,
/// `t`, `p`, `e` followed by any run of `b`/`i`. Followed by anything but
/// the end of the value (or a digit), it is a string (`10ms`, `3Gyz`), as
/// in nats-server since v2.2; the vendored lexer of NSS v0.23 errs there.
fn sized(i: &mut In<'_>, len: usize) -> PResult<Raw> {
    let start = pos(i);
    let s = rest(i);
    let end = len + 1 + count(&s[len + 1..], |b| matches!(b, b'b' | b'B' | b'i' | b'I'));
    let next = s[end..].chars().next();
    if !ends_number(next) && !next.is_some_and(|c| c.is_ascii_digit()) {
        return unquoted(i);
    }
    let text = &s[..end];
    advance(i, end);
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, text),
    };
    let bytes = match super::size::parse(magnitude) {
        Ok(bytes) => i128::from(bytes),
        Err(super::size::SizeError::UnknownSuffix { suffix, .. }) => {
            return cut(start, format!("Unknown size suffix '{suffix}' in '{text}'"))
        }
        Err(_) => return cut(start, format!("integer '{text}' is out of the range")),
    };
    let value = if negative { -bytes } else { bytes };
    match i64::try_from(value) {
        Ok(n) => Ok(Raw::Int(n)),
        Err(_) => cut(start, format!("integer '{text}' is out of the range")),
    }
}

/// `len` bytes of digits (and sign) then `.`: a float, or with another `.`
/// an IP address (`127.0.0.1:4222`), kept as a string.
fn float_or_ip(i: &mut In<'_>, len: usize) -> PResult<Raw> {
    let start = pos(i);
    let s = rest(i);
    let fraction = count(&s[len + 1..], |b| b.is_ascii_digit());
    if fraction == 0 {
        let got = s[len + 1..]
            .chars()
            .next()
            .map_or("EOF".to_string(), |c| c.escape_default().to_string());
        return cut(
            start,
            format!("Floats must have a digit after the '.', but got '{got}' instead."),
        );
    }
    let end = len + 1 + fraction;
    if s[end..].starts_with('.') {
        let ip_end = end
            + count(&s[end..], |b| {
                b.is_ascii_digit() || matches!(b, b'.' | b':' | b'-')
            });
        advance(i, ip_end);
        return Ok(Raw::Str(s[..ip_end].to_string()));
    }
    advance(i, end);
    match s[..end].parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Raw::Float(x)),
        _ => cut(start, format!("float '{}' is out of the range", &s[..end])),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, from its first digit.
fn datetime(i: &mut In<'_>) -> PResult<Raw> {
    const FORMAT: &[u8] = b"0000-00-00T00:00:00Z";
    let start = pos(i);
    let s = rest(i);
    let mut chars = s.char_indices();
    for &want in FORMAT {
        let (at, got) = match chars.next() {
            Some(next) => next,
            None => (s.len(), '\0'),
        };
        let ok = if want == b'0' {
            got.is_ascii_digit()
        } else {
            got == char::from(want)
        };
        if !ok {
            let shown = if got == '\0' {
                "EOF".to_string()
            } else {
                got.escape_default().to_string()
            };
            let expected = if want == b'0' {
                "digit".to_string()
            } else {
                format!("'{}'", char::from(want))
            };
            return cut(
                start + at,
                format!("Expected {expected} in ISO8601 datetime, but found '{shown}' instead."),
            );
        }
    }
    let text = &s[..FORMAT.len()];
    advance(i, FORMAT.len());
    if !valid_datetime(text) {
        return cut(
            start,
            format!("expected Zulu formatted DateTime, but got '{text}'"),
        );
    }
    Ok(Raw::Datetime(text.to_string()))
}

/// Whether a `YYYY-MM-DDTHH:MM:SSZ` names a real instant, as Go's
/// `time.Parse` checks.
fn valid_datetime(text: &str) -> bool {
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(|f| f.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        field(0..4),
        field(5..7),
        field(8..10),
        field(11..13),
        field(14..16),
        field(17..19),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour < 24 && min < 60 && sec < 60
}

// ---------------------------------------------------------------------------
// Resolution: statements to values, with includes read and variables looked
// up.
// ---------------------------------------------------------------------------

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
            parse_text(&format!("pk={text}"), pseudo, &nesting).map_err(|e| bad(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Map, ConfError> {
        parse_str(text, Path::new("test.conf"))
    }

    fn ok(text: &str) -> Map {
        match parse(text) {
            Ok(map) => map,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(map) => panic!("{text:?} parsed: {map:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn kind<'a>(map: &'a Map, key: &str) -> &'a Kind {
        match map.get(key) {
            Some(v) => &v.kind,
            None => panic!("no {key} in {map:?}"),
        }
    }

    fn s(text: &str) -> Kind {
        Kind::String(text.to_string())
    }

    fn sub<'a>(map: &'a Map, key: &str) -> &'a Map {
        match kind(map, key) {
            Kind::Map(m) => m,
            other => panic!("{key} is {other:?}"),
        }
    }

    fn items<'a>(map: &'a Map, key: &str) -> Vec<&'a Kind> {
        match kind(map, key) {
            Kind::Array(items) => items.iter().map(|v| &v.kind).collect(),
            other => panic!("{key} is {other:?}"),
        }
    }

    #[test]
    fn separators_between_key_and_value() {
        for text in [
            "a: 1",
            "a = 1",
            "a 1",
            "a:1",
            "a=1",
            "a\t1",
            "a  :  1",
            "'a': 1",
            "\"a\" = 1",
        ] {
            assert_eq!(kind(&ok(text), "a"), &Kind::Integer(1), "{text}");
        }
        // Without a separator the value may even be on the next line.
        assert_eq!(kind(&ok("a\n  1"), "a"), &Kind::Integer(1));
    }

    #[test]
    fn separators_between_statements() {
        for text in [
            "a: 1\nb: 2\n",
            "a: 1, b: 2",
            "a: 1; b: 2;",
            "a: 1\r\nb: 2\r\n",
            "{ \"a\": 1, \"b\": 2 }",
            "{\n  \"a\": 1,\n  \"b\": 2\n}\n",
        ] {
            let map = ok(text);
            assert_eq!(kind(&map, "a"), &Kind::Integer(1), "{text}");
            assert_eq!(kind(&map, "b"), &Kind::Integer(2), "{text}");
        }
        let map = ok("m { a: 1, b: 2; c: 3\n d: 4 }");
        assert_eq!(sub(&map, "m").len(), 4);
    }

    #[test]
    fn comments() {
        let map = ok(
            "# top\n// also\na: 1 # after\nb: x // after\nm {\n # in map\n c: 2 // end\n}\n\
                      l: [\n 1, # one\n 2 // two\n # alone\n 3\n]\n# last",
        );
        assert_eq!(kind(&map, "a"), &Kind::Integer(1));
        assert_eq!(kind(&map, "b"), &s("x"));
        assert_eq!(kind(sub(&map, "m"), "c"), &Kind::Integer(2));
        assert_eq!(
            items(&map, "l"),
            [&Kind::Integer(1), &Kind::Integer(2), &Kind::Integer(3)]
        );
        assert_eq!(map.len(), 4);
        // `#` inside a word is text.
        assert_eq!(kind(&ok("a: b#c"), "a"), &s("b#c"));
    }

    #[test]
    fn strings() {
        let map = ok(concat!(
            "dq: \"a \\\"b\\\" \\\\ \\t\\n\\r \\x41\\x7c # not a comment\"\n",
            "sq: 'raw \\n \"x\"'\n",
            "url: nats://host:4222\n",
            "ip: 127.0.0.1:4233\n",
            "path: /data/stan\n",
            "name: alice\n",
            "dur: 10s\n",
            "q: bar'\n",
            "empty: \"\"\n",
            "multi: \"one\ntwo\"\n",
            "utf: \"h\\xc3\\xa9 é\"\n",
            "esc: a\\tb\n",
        ));
        assert_eq!(kind(&map, "dq"), &s("a \"b\" \\ \t\n\r A| # not a comment"));
        assert_eq!(kind(&map, "sq"), &s("raw \\n \"x\""));
        assert_eq!(kind(&map, "url"), &s("nats://host:4222"));
        assert_eq!(kind(&map, "ip"), &s("127.0.0.1:4233"));
        assert_eq!(kind(&map, "path"), &s("/data/stan"));
        assert_eq!(kind(&map, "name"), &s("alice"));
        assert_eq!(kind(&map, "dur"), &s("10s"));
        assert_eq!(kind(&map, "q"), &s("bar"));
        assert_eq!(kind(&map, "empty"), &s(""));
        assert_eq!(kind(&map, "multi"), &s("one\ntwo"));
        assert_eq!(kind(&map, "utf"), &s("hé é"));
        assert_eq!(kind(&map, "esc"), &s("a\tb"));
        assert_eq!(map.get("multi").map(|v| v.line), Some(10));
        assert_eq!(map.entry("utf").map(|e| e.line), Some(12));
    }

    #[test]
    fn block_strings() {
        let map = ok("numbers (\n  12(34)56\n  (\n    7890\n  )\n)\nafter: 1\n");
        assert_eq!(
            kind(&map, "numbers"),
            &s("\n  12(34)56\n  (\n    7890\n  )\n")
        );
        assert_eq!(kind(&map, "after"), &Kind::Integer(1));
        assert_eq!(kind(&ok("b (\nx\n)"), "b"), &s("\nx\n"));
        assert!(err("b (\nx\n  )\n").contains("Unexpected EOF processing block."));
    }

    #[test]
    fn booleans() {
        for (text, want) in [
            ("true", true),
            ("TRUE", true),
            ("yes", true),
            ("On", true),
            ("false", false),
            ("No", false),
            ("OFF", false),
        ] {
            assert_eq!(
                kind(&ok(&format!("a: {text}")), "a"),
                &Kind::Bool(want),
                "{text}"
            );
        }
        assert_eq!(kind(&ok("a: \"true\""), "a"), &s("true"));
        assert_eq!(kind(&ok("a: truely"), "a"), &s("truely"));
    }

    #[test]
    fn numbers() {
        let map = ok("a: 123\nb: -45\nc: 2.5\nd: -0.5\ne: 007\nf: 9223372036854775807\n");
        assert_eq!(kind(&map, "a"), &Kind::Integer(123));
        assert_eq!(kind(&map, "b"), &Kind::Integer(-45));
        assert_eq!(kind(&map, "c"), &Kind::Float(2.5));
        assert_eq!(kind(&map, "d"), &Kind::Float(-0.5));
        assert_eq!(kind(&map, "e"), &Kind::Integer(7));
        assert_eq!(kind(&map, "f"), &Kind::Integer(i64::MAX));
        assert!(err("a: 9223372036854775808").contains("out of the range"));
        assert!(err("a: .5").contains("Floats must start with a digit"));
        assert!(err("a: 1.").contains("Floats must have a digit after the '.'"));
        assert!(err("a: 1.5h").contains("but got 'h' instead"));
        assert!(err("a: -x").contains("Expected a digit but got 'x'."));
        assert!(err("a: 12-3").contains("All ISO8601 dates must be in full Zulu form."));
    }

    #[test]
    fn size_suffixes() {
        const K: i64 = 1000;
        const KI: i64 = 1024;
        for (text, want) in [
            ("1k", K),
            ("1K", K),
            ("1kb", KI),
            ("1KB", KI),
            ("1Ki", KI),
            ("1kib", KI),
            ("10m", 10 * K * K),
            ("10MB", 10 * KI * KI),
            ("10mib", 10 * KI * KI),
            ("2g", 2 * K * K * K),
            ("2GB", 2 * KI * KI * KI),
            ("2Gb", 2 * KI * KI * KI),
            ("3t", 3 * K.pow(4)),
            ("3tb", 3 * KI.pow(4)),
            ("1p", K.pow(5)),
            ("1pb", KI.pow(5)),
            ("1e", K.pow(6)),
            ("1EB", KI.pow(6)),
            ("-1GB", -KI.pow(3)),
            ("-2k", -2 * K),
        ] {
            assert_eq!(
                kind(&ok(&format!("a: {text}")), "a"),
                &Kind::Integer(want),
                "{text}"
            );
        }
        // The reference drops the key silently on these; we say why.
        assert!(err("a: 1kbi").contains("Unknown size suffix 'kbi'"));
        assert!(err("a: 9EB").contains("out of the range"));
        // A quoted size is a string; `10s` is not a size.
        assert_eq!(kind(&ok("a: \"10MB\""), "a"), &s("10MB"));
        // A suffix with more after it is text, as in current nats-server.
        assert_eq!(kind(&ok("a: 10ms"), "a"), &s("10ms"));
        assert_eq!(kind(&ok("a: 3Gyz"), "a"), &s("3Gyz"));
        assert_eq!(kind(&ok("a: -1kx"), "a"), &s("-1kx"));
        assert!(err("a: 1k5").contains("but got '5' instead"));
    }

    #[test]
    fn datetimes() {
        let map = ok("a: 2016-05-04T18:53:41Z\n");
        assert_eq!(
            kind(&map, "a"),
            &Kind::Datetime("2016-05-04T18:53:41Z".into())
        );
        assert_eq!(kind(&map, "a").type_name(), "struct");
        assert!(err("a: 2016-05-04").contains("Expected 'T' in ISO8601 datetime"));
        assert!(err("a: 2016-13-04T18:53:41Z").contains("expected Zulu formatted DateTime"));
        assert!(err("a: 2015-02-29T00:00:00Z").contains("expected Zulu formatted DateTime"));
        assert!(ok("a: 2016-02-29T23:59:59Z").get("a").is_some());
    }

    #[test]
    fn arrays() {
        let map = ok("a: [1, 2, 3]\nb: [x,y]\nc: [\n  \"p\"\n  'q'\n]\nd: []\ne: [[1, [2]], {k: v}]\nf: [1,]\n");
        assert_eq!(
            items(&map, "a"),
            [&Kind::Integer(1), &Kind::Integer(2), &Kind::Integer(3)]
        );
        assert_eq!(items(&map, "b"), [&s("x"), &s("y")]);
        assert_eq!(items(&map, "c"), [&s("p"), &s("q")]);
        assert!(items(&map, "d").is_empty());
        assert_eq!(items(&map, "f"), [&Kind::Integer(1)]);
        let e = items(&map, "e");
        assert!(matches!(e[0], Kind::Array(inner) if inner.len() == 2));
        assert!(matches!(e[1], Kind::Map(m) if m.get("k").map(|v| &v.kind) == Some(&s("v"))));
        assert!(err("a: [1,,2]").contains("Unexpected array value terminator ','."));
        assert!(err("a: [1 2]").contains("Expected an array value terminator"));
        assert!(err("a: [1, 2").contains("Unexpected EOF processing array."));
    }

    #[test]
    fn arrays_of_maps() {
        let map = ok("authorization {\n  users = [\n    {user: alice, password: foo}\n    {user: bob,   password: bar}\n  ]\n  timeout: 0.5\n}\n");
        let auth = sub(&map, "authorization");
        let users = items(auth, "users");
        assert_eq!(users.len(), 2);
        let Kind::Map(bob) = users[1] else {
            panic!("{users:?}")
        };
        assert_eq!(kind(bob, "user"), &s("bob"));
        assert_eq!(bob.entry("password").map(|e| e.line), Some(4));
        assert_eq!(kind(auth, "timeout"), &Kind::Float(0.5));
    }

    #[test]
    fn nested_maps() {
        for text in [
            "a { b { c { d: 1 } } }",
            "a: { b = { c { d 1 } } }",
            "a {\n  b:{\n    c {\n      d: 1\n    }\n  }\n}\n",
        ] {
            let map = ok(text);
            let d = kind(sub(sub(sub(&map, "a"), "b"), "c"), "d");
            assert_eq!(d, &Kind::Integer(1), "{text}");
        }
        let map = ok("a {\n\n  b {\n    c: 1\n  }\n}");
        assert_eq!(map.entry("a").map(|e| e.line), Some(1));
        assert_eq!(sub(&map, "a").entry("b").map(|e| e.line), Some(3));
        assert_eq!(sub(sub(&map, "a"), "b").get("c").map(|v| v.line), Some(4));
        assert!(err("a { b: 1").contains("Unexpected EOF processing map."));
        assert!(err("a { b: 1 ]").contains("Expected a map value terminator"));
        let deep = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(err(&deep).contains("nests deeper"));
    }

    #[test]
    fn keys_keep_their_spelling_and_lookups_ignore_case() {
        let map = ok("Cluster_ID: a\n\"Quoted Key\": b\n'x.y-z': c\n");
        let keys: Vec<_> = map.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["Cluster_ID", "Quoted Key", "x.y-z"]);
        assert_eq!(kind(&map, "cluster_id"), &s("a"));
        assert_eq!(kind(&map, "QUOTED KEY"), &s("b"));
        // Setting a key again replaces it; the later spelling wins lookups.
        let map = ok("a: 1\nA: 2\na: 3\n");
        assert_eq!(map.len(), 2);
        assert_eq!(kind(&map, "a"), &Kind::Integer(3));
    }

    #[test]
    fn variables() {
        let map = ok("port: 4222\nname = \"n\"\nm {\n  inner: $name\n  port: 1\n  p: $port\n  deep { q: $port }\n}\nuse: $port\nhash: $2a$11$abc\n");
        let m = sub(&map, "m");
        assert_eq!(kind(m, "inner"), &s("n"));
        assert_eq!(kind(m, "p"), &Kind::Integer(1), "nearest scope first");
        assert_eq!(kind(sub(m, "deep"), "q"), &Kind::Integer(1));
        assert_eq!(kind(&map, "use"), &Kind::Integer(4222));
        assert_eq!(kind(&map, "hash"), &s("$2a$11$abc"));
        assert_eq!(map.get("use").map(|v| v.line), Some(9));
        // The reference keeps variables' keys; we mark them.
        assert!(map.entry("port").is_some_and(|e| e.used_as_variable));
        assert!(!map.entry("use").is_some_and(|e| e.used_as_variable));
        let e = err("a: 1\nb: $nope_stanchion_undefined\n");
        assert_eq!(
            e,
            "test.conf:2: variable reference for 'nope_stanchion_undefined' can not be found"
        );
        // Only keys set before the reference count.
        assert!(err("a: $b\nb: 1\n").contains("'b' can not be found"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // `Jail`'s closure returns figment's error
    fn variables_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STANCHION_NATS_CONF_TEST_PORT", "4333");
            jail.set_env("STANCHION_NATS_CONF_TEST_SIZE", "2kb");
            jail.set_env("STANCHION_NATS_CONF_TEST_TEXT", "hello");
            jail.set_env("STANCHION_NATS_CONF_TEST_BAD", "a b");
            let map = ok(
                "port: $STANCHION_NATS_CONF_TEST_PORT\nsize: $STANCHION_NATS_CONF_TEST_SIZE\n\
                          m { t: $STANCHION_NATS_CONF_TEST_TEXT }\n",
            );
            assert_eq!(kind(&map, "port"), &Kind::Integer(4333));
            assert_eq!(kind(&map, "size"), &Kind::Integer(2048));
            assert_eq!(kind(sub(&map, "m"), "t"), &s("hello"));
            assert_eq!(sub(&map, "m").get("t").map(|v| v.line), Some(3));
            jail.set_env(
                "STANCHION_NATS_CONF_TEST_LOOP",
                "$STANCHION_NATS_CONF_TEST_LOOP",
            );
            let e = err("x: $STANCHION_NATS_CONF_TEST_LOOP");
            assert!(
                e.contains("variable reference cycle for 'STANCHION_NATS_CONF_TEST_LOOP'"),
                "{e}"
            );
            let e = err("\nx: $STANCHION_NATS_CONF_TEST_BAD");
            assert!(e.starts_with("test.conf:2: variable reference for 'STANCHION_NATS_CONF_TEST_BAD' could not be parsed"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn includes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
        };
        std::fs::create_dir(dir.path().join("sub")).unwrap_or_else(|e| panic!("{e}"));
        write(
            "main.conf",
            "a: 1\ninclude sub/limits.conf\nm { include 'sub/inner.conf' }\nb: 2\n",
        );
        write(
            "sub/limits.conf",
            "# included\nmax_msgs: 10\nb: 99\ninclude \"more.conf\"\n",
        );
        write("sub/more.conf", "deeper: yes\n");
        write("sub/inner.conf", "x: 5\n");
        let main = dir.path().join("main.conf");
        let map = parse_file(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kind(&map, "max_msgs"), &Kind::Integer(10));
        assert_eq!(kind(&map, "deeper"), &Kind::Bool(true));
        assert_eq!(
            kind(&map, "b"),
            &Kind::Integer(2),
            "later keys override included ones"
        );
        assert_eq!(kind(sub(&map, "m"), "x"), &Kind::Integer(5));
        let from = map.get("max_msgs").map(|v| (v.file.to_path_buf(), v.line));
        assert_eq!(from, Some((dir.path().join("sub/limits.conf"), 2)));

        write("broken.conf", "include missing.conf\n");
        let e = parse_file(&dir.path().join("broken.conf"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("broken.conf:1: error parsing include file 'missing.conf'"),
            "{e}"
        );
        assert!(e.contains("missing.conf: error opening config file"), "{e}");

        write("bad_inner.conf", "x: 1\n\ninclude bad.conf\n");
        write("bad.conf", "ok: 1\narr: [\n");
        let e = parse_file(&dir.path().join("bad_inner.conf"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad_inner.conf:3: error parsing include file 'bad.conf'"),
            "{e}"
        );
        assert!(
            e.contains("bad.conf:2: Unexpected EOF processing array."),
            "{e}"
        );

        write("cycle.conf", "include cycle.conf\n");
        let e = parse_file(&dir.path().join("cycle.conf"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("an include cycle?"), "{e}");

        assert!(err("include\n").contains("Expected include value but found new line"));
        assert!(err("include [x]").contains("found start of an array"));
        assert!(err("include ;").contains("Expected include value but found none"));
        // `include:` is an ordinary key.
        assert_eq!(kind(&ok("include: x"), "include"), &s("x"));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        assert_eq!(
            err("a: 1\nb: \"open\n\nc: 2\n"),
            "test.conf:2: Unexpected EOF: unterminated quoted string."
        );
        assert_eq!(
            err("a: 1\n\n  : x\n"),
            "test.conf:3: Unexpected key separator ':'."
        );
        assert_eq!(
            err("a: 1 2\n"),
            "test.conf:1: Expected a top-level value to end with a new line, comment or EOF, but got '2' instead."
        );
        assert_eq!(
            err("a: 1\nb:\nc: 2"),
            "test.conf:2: Expected value but found new line"
        );
        assert_eq!(
            err("a: 1\nlonely"),
            "test.conf:2: Expected a value for key \"lonely\" but got EOF."
        );
        assert!(err("m { a: }").contains("Expected a value for key \"a\" but got '}'."));
        assert!(err("a: \"\\q\"").contains("Invalid escape character 'q'"));
        assert!(err("a: \"\\x4\"").contains("Expected two hexadecimal digits after '\\x'"));
        assert!(err("a: \"\\xff\"").contains("not valid UTF-8"));
        assert!(err("a: ;").contains("Expected a value but got ';'."));
        assert!(err("'open: 1").contains("Unexpected EOF processing quoted key"));
    }

    #[test]
    fn empty_and_blank_texts() {
        for text in ["", "\n\n", "# only a comment", "{}", "  \t\r\n"] {
            assert!(ok(text).is_empty(), "{text:?}");
        }
    }

    /// Never a panic, whatever the bytes: every prefix of a realistic file
    /// (truncation mid-token) and random byte strings.
    #[test]
    fn any_input_is_ok_or_err() {
        use rand::{Rng, SeedableRng};
        let sample = concat!(
            "# sample\nstreaming {\n  id: \"c\", store: file; dir = '/d'\n  sd: yes\n",
            "  store_limits { max_bytes: 10MB, max_age: \"1h\"\n",
            "    channels { \"foo.>\": { max_msgs: -1 }, 'b': {mm: 1k} }\n  }\n",
            "  ns: [nats://a:4222, \"nats://b:4222\"]\n  peers: [1, 2.5, 127.0.0.1:1, x]\n",
            "  t: 2016-05-04T18:53:41Z\n  blk (\n  text\n)\n  v: $id // c\n",
            "  esc: \"\\x41\\t\\u\" \n  include nothing.conf\n}\n",
        );
        for end in 0..=sample.len() {
            if sample.is_char_boundary(end) {
                let _ = parse(&sample[..end]);
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let alphabet: &[u8] = b"ab1.-:=;, \t\n\r{}[]()'\"\\#/$xkKbB0Z";
        for _ in 0..3000 {
            let len = rng.random_range(0..64);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.random_bool(0.8) {
                        alphabet[rng.random_range(0..alphabet.len())]
                    } else {
                        rng.random()
                    }
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }
    }
}
