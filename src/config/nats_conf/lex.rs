//! The lexing primitives the grammar is built from: the input type, the
//! [`Syntax`] error and its `cut`, a cursor (`peek`, `pos`, `advance`), and
//! the blanks, newlines and comments between tokens.
//!
//! A leaf: knows no statements or values, only characters.

use winnow::error::{ErrMode, ParserError};
use winnow::stream::{Location, Stream};
use winnow::token::{take_till, take_while};
use winnow::{LocatingSlice, ModalResult, Parser};

pub(super) type In<'a> = LocatingSlice<&'a str>;
pub(super) type PResult<T> = ModalResult<T, Syntax>;

/// A syntax error: where, and what.
#[derive(Debug)]
pub(super) struct Syntax {
    pub(super) offset: usize,
    pub(super) msg: String,
}

impl Syntax {
    pub(super) fn new(offset: usize, msg: impl Into<String>) -> Self {
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

pub(super) fn cut<T>(offset: usize, msg: impl Into<String>) -> PResult<T> {
    Err(ErrMode::Cut(Syntax::new(offset, msg)))
}

pub(super) fn rest<'a>(i: &In<'a>) -> &'a str {
    **i
}

pub(super) fn peek(i: &In<'_>) -> Option<char> {
    rest(i).chars().next()
}

pub(super) fn pos(i: &In<'_>) -> usize {
    i.current_token_start()
}

/// Consumes `n` bytes, which the caller has checked end on a character
/// boundary.
pub(super) fn advance(i: &mut In<'_>, n: usize) {
    if rest(i).is_char_boundary(n) {
        let _ = i.next_slice(n);
    }
}

pub(super) fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Go's `isWhitespace`: blanks that do not end a line.
pub(super) fn blanks(i: &mut In<'_>) -> PResult<()> {
    take_while(0.., [' ', '\t']).void().parse_next(i)
}

/// Go's `unicode.IsSpace`, newlines included.
pub(super) fn spaces(i: &mut In<'_>) -> PResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

/// A `#` or `//` comment up to (not including) the end of its line; false
/// if there is none here.
pub(super) fn comment(i: &mut In<'_>) -> PResult<bool> {
    let s = rest(i);
    if s.starts_with('#') || s.starts_with("//") {
        take_till(0.., is_nl).void().parse_next(i)?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Whitespace, newlines and comments.
pub(super) fn filler(i: &mut In<'_>) -> PResult<()> {
    loop {
        spaces(i)?;
        if !comment(i)? {
            return Ok(());
        }
    }
}
