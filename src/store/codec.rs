//! Small helpers shared by both stores: the stored form of a message, its
//! counted size, and the error for corrupt records that are not protobuf
//! failures (bad key lengths, short values). Pure: no I/O.

use std::borrow::Cow;

use prost::Message;

use super::StoreError;
use crate::protocol::pb::MsgProto;

/// The form in which a message is stored: delivery flags are per delivery,
/// not part of the log, so they are cleared before counting and writing.
/// Borrowed when there is nothing to clear (always, from the server).
pub(super) fn stored_form(msg: &MsgProto) -> Cow<'_, MsgProto> {
    if !msg.redelivered && msg.redelivery_count == 0 {
        return Cow::Borrowed(msg);
    }
    Cow::Owned(MsgProto {
        redelivered: false,
        redelivery_count: 0,
        ..msg.clone()
    })
}

/// The size a stored message counts for in `ChannelState::bytes`: its
/// encoded protobuf length (both stores must agree on it).
pub(super) fn counted_size(stored: &MsgProto) -> u64 {
    len_u64(stored.encoded_len())
}

/// Converts a length to `u64` without a lossy cast (saturates on the
/// impossible overflow instead of wrapping).
pub(super) fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// A `Corrupt` error for damage that prost did not detect itself.
///
/// `StoreError::Corrupt` carries a `prost::DecodeError`, and prost offers
/// no non-deprecated way to build one with a custom text, hence the allow.
pub(super) fn corrupt(what: &'static str, detail: impl Into<Cow<'static, str>>) -> StoreError {
    #[allow(deprecated)]
    let source = prost::DecodeError::new(detail);
    StoreError::Corrupt { what, source }
}

/// Decodes a protobuf record, naming the record kind on failure.
pub(super) fn decode<M: Message + Default>(
    what: &'static str,
    buf: &[u8],
) -> Result<M, StoreError> {
    M::decode(buf).map_err(|source| StoreError::Corrupt { what, source })
}

/// Reads a big-endian `u64` that must be exactly 8 bytes long.
pub(super) fn be_u64(what: &'static str, buf: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = buf
        .try_into()
        .map_err(|_| corrupt(what, format!("expected 8 bytes, found {}", buf.len())))?;
    Ok(u64::from_be_bytes(arr))
}
