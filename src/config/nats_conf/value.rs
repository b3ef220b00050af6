//! The parsed tree: [`Value`]s (what was written, and where), their
//! [`Kind`]s, and [`Map`]s of [`Entry`]s with NSS's case-insensitive
//! lookups.
//!
//! Plain data, no parsing: [`super::resolve`] builds it, through `insert`
//! and `get_exact_mut`, which only the parser's own modules can call.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

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
    pub(super) entries: Vec<Entry>,
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
    pub(super) fn insert(&mut self, entry: Entry) {
        self.entries.retain(|e| e.key != entry.key);
        self.entries.push(entry);
    }

    pub(super) fn get_exact_mut(&mut self, key: &str) -> Option<&mut Entry> {
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
