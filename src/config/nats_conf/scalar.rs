//! Scalar values: quoted, unquoted and block strings (with their
//! escapes), booleans, `$variables`, integers with size suffixes, floats,
//! IP addresses and ISO8601 datetimes.
//!
//! Builds on [`super::lex`] and gives [`super::grammar`] a [`Raw`] each;
//! calls [`crate::config::size`] for size suffixes.
//!
//! Error texts say what is wrong and where, never the value itself: a
//! value may be a password or token (`token: 99999999999999999999`). At
//! most the character or two (or the size suffix) that broke the syntax
//! are quoted, and [`super::resolve`] hides even those for `$VAR`s.

use winnow::token::take_till;
use winnow::Parser;

use super::grammar::Raw;
use super::lex::{advance, cut, is_nl, peek, pos, rest, In, PResult};
use crate::config::size;

pub(super) fn single_quoted(i: &mut In<'_>) -> PResult<Raw> {
    let open = pos(i);
    advance(i, 1);
    let text: &str = take_till(0.., '\'').parse_next(i)?;
    if peek(i).is_none() {
        return cut(open, "Unexpected EOF: unterminated quoted string.");
    }
    advance(i, 1);
    Ok(Raw::Str(text.to_string()))
}

pub(super) fn double_quoted(i: &mut In<'_>) -> PResult<Raw> {
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
pub(super) fn unquoted(i: &mut In<'_>) -> PResult<Raw> {
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
pub(super) fn block(i: &mut In<'_>) -> PResult<Raw> {
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
pub(super) fn number(i: &mut In<'_>) -> PResult<Raw> {
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
pub(super) fn negative_number(i: &mut In<'_>) -> PResult<Raw> {
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

/// What an integer beyond int64 is told; the value is not shown.
const INT_RANGE: &str = "integer is out of the range of int64";

fn integer(text: &str, offset: usize) -> PResult<Raw> {
    match text.parse::<i64>() {
        Ok(n) => Ok(Raw::Int(n)),
        Err(_) => cut(offset, INT_RANGE),
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
    let bytes = match size::parse(magnitude) {
        Ok(bytes) => i128::from(bytes),
        Err(size::SizeError::UnknownSuffix { suffix, .. }) => {
            return cut(start, format!("Unknown size suffix '{suffix}'"))
        }
        Err(_) => return cut(start, INT_RANGE),
    };
    let value = if negative { -bytes } else { bytes };
    match i64::try_from(value) {
        Ok(n) => Ok(Raw::Int(n)),
        Err(_) => cut(start, INT_RANGE),
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
        _ => cut(start, "float is out of the range of float64"),
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
            "expected Zulu formatted DateTime, but got a date or time that does not exist",
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
