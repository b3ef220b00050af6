//! The grammar's structure: text to [`Stmt`]s (`key value` pairs and
//! `include`s), with maps and arrays nested and `$VAR`s still unresolved.
//!
//! Builds on [`super::lex`]; the scalar values (strings, numbers,
//! datetimes) are [`super::scalar`]'s. Reads no files and no environment.

use winnow::token::{take_till, take_while};
use winnow::Parser;

use super::lex::{advance, blanks, comment, cut, filler, is_nl, peek, pos, spaces, In, PResult};
use super::scalar::{block, double_quoted, negative_number, number, single_quoted, unquoted};

/// How deep maps and arrays may nest in one file; deeper input is rejected
/// rather than risking the stack.
const MAX_NESTING: usize = 64;

/// A value before variables are resolved.
#[derive(Debug)]
pub(super) enum Raw {
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
pub(super) struct RawValue {
    pub(super) raw: Raw,
    pub(super) offset: usize,
}

#[derive(Debug)]
pub(super) enum Stmt {
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

pub(super) fn document(i: &mut In<'_>) -> PResult<Vec<Stmt>> {
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
