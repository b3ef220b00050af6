//! Hand-written protobuf for the client's hot path: encoding `PubMsg` and
//! `Ack` straight from borrowed fields into one exactly-sized buffer, and
//! decoding `PubAck` without allocating. The generated `pb` types would need
//! owned `String`s per message; these produce the same canonical proto3 bytes
//! (ascending field numbers, default values omitted), which the unit tests
//! check against prost and against the reference wire captures.
//!
//! Pure: no I/O. Everything else the client sends or receives uses `pb`.

use bytes::{BufMut, Bytes, BytesMut};

/// Wire type of length-delimited fields (strings, bytes).
const LEN: u64 = 2;
/// Wire type of varint fields.
const VARINT: u64 = 0;

/// The one-byte key of field `field` (< 16) with wire type `wire_type`.
const fn key(field: u64, wire_type: u64) -> u8 {
    // Fields 1..=15 with a 3-bit wire type fit in one byte by construction.
    ((field << 3) | wire_type) as u8
}

/// Bytes a varint takes on the wire.
fn varint_len(v: u64) -> usize {
    // 1..=10; (64 - leading zeros) significant bits, 7 per byte.
    let bits = 64 - (v | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    buf.put_u8((v & 0x7f) as u8);
}

/// Encoded size of a length-delimited field, 0 when the value is empty (omitted).
fn len_field_size(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        1 + varint_len(len as u64) + len
    }
}

fn put_len_field(buf: &mut BytesMut, field: u64, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    buf.put_u8(key(field, LEN));
    put_varint(buf, value.len() as u64);
    buf.put_slice(value);
}

/// Encodes `PubMsg{clientID, guid, subject, data, connID}` (fields 1, 2, 3, 5, 6;
/// `reply` and `sha256` unset, as stan.go sends it) into one allocation.
pub(crate) fn encode_pub_msg(
    client_id: &str,
    guid: &[u8],
    channel: &str,
    data: &[u8],
    conn_id: &[u8],
) -> Bytes {
    let size = len_field_size(client_id.len())
        + len_field_size(guid.len())
        + len_field_size(channel.len())
        + len_field_size(data.len())
        + len_field_size(conn_id.len());
    let mut buf = BytesMut::with_capacity(size);
    put_len_field(&mut buf, 1, client_id.as_bytes());
    put_len_field(&mut buf, 2, guid);
    put_len_field(&mut buf, 3, channel.as_bytes());
    put_len_field(&mut buf, 5, data);
    put_len_field(&mut buf, 6, conn_id);
    debug_assert_eq!(buf.len(), size);
    buf.freeze()
}

/// Encodes `Ack{subject, sequence}`.
pub(crate) fn encode_ack(channel: &str, sequence: u64) -> Bytes {
    let seq_size = if sequence == 0 {
        0
    } else {
        1 + varint_len(sequence)
    };
    let mut buf = BytesMut::with_capacity(len_field_size(channel.len()) + seq_size);
    put_len_field(&mut buf, 1, channel.as_bytes());
    if sequence != 0 {
        buf.put_u8(key(2, VARINT));
        put_varint(&mut buf, sequence);
    }
    buf.freeze()
}

/// A `PubAck` borrowed from its payload.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PubAckRef<'a> {
    /// The guid of the acknowledged PubMsg.
    pub guid: &'a [u8],
    /// Empty on success, else the server's error text (not UTF-8 checked).
    pub error: &'a [u8],
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Decodes a `PubAck`, skipping unknown fields (last occurrence wins, as in
/// protobuf). `None` if the payload is not valid protobuf.
pub(crate) fn decode_pub_ack(buf: &[u8]) -> Option<PubAckRef<'_>> {
    let mut ack = PubAckRef::default();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                read_varint(buf, &mut pos)?;
            }
            1 => pos = pos.checked_add(8).filter(|&p| p <= buf.len())?,
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|&e| e <= buf.len())?;
                let value = &buf[pos..end];
                pos = end;
                match field {
                    1 => ack.guid = value,
                    2 => ack.error = value,
                    _ => {}
                }
            }
            5 => pos = pos.checked_add(4).filter(|&p| p <= buf.len())?,
            _ => return None,
        }
    }
    Some(ack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::pb;
    use prost::Message;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn pub_msg_matches_reference_capture() {
        // 03-publish.jsonl: node client c1 publishes "msg-1" to foo.
        let wire = unhex("0a026331121658565142304844304958584732585a43554d5451464a1a03666f6f2a056d73672d31321658565142304844304958584732585a43554d54514256");
        let got = encode_pub_msg(
            "c1",
            b"XVQB0HD0IXXG2XZCUMTQFJ",
            "foo",
            b"msg-1",
            b"XVQB0HD0IXXG2XZCUMTQBV",
        );
        assert_eq!(&got[..], &wire[..]);
    }

    #[test]
    fn pub_msg_matches_prost() {
        let big = vec![7u8; 300];
        for (cid, data) in [("c1", &b""[..]), ("", &b"x"[..]), ("client-x", &big[..])] {
            let guid = nuid::next();
            let expected = pb::PubMsg {
                client_id: cid.into(),
                guid: guid.as_str().into(),
                subject: "a.b".into(),
                data: Bytes::copy_from_slice(data),
                conn_id: Bytes::from_static(b"conn"),
                ..Default::default()
            }
            .encode_to_vec();
            let got = encode_pub_msg(cid, guid.as_str().as_bytes(), "a.b", data, b"conn");
            assert_eq!(&got[..], &expected[..]);
        }
    }

    #[test]
    fn ack_matches_reference_and_prost() {
        // 04-subscribe_first_ack.jsonl: Ack{subject: foo, sequence: 1}.
        assert_eq!(&encode_ack("foo", 1)[..], &unhex("0a03666f6f1001")[..]);
        for seq in [0, 1, 127, 128, 300, u64::MAX] {
            let expected = pb::Ack {
                subject: "chan".into(),
                sequence: seq,
            }
            .encode_to_vec();
            assert_eq!(&encode_ack("chan", seq)[..], &expected[..], "{seq}");
        }
    }

    #[test]
    fn pub_ack_decodes_like_prost() {
        let ok = pb::PubAck {
            guid: "G1".into(),
            error: String::new(),
        }
        .encode_to_vec();
        assert_eq!(
            decode_pub_ack(&ok),
            Some(PubAckRef {
                guid: b"G1",
                error: b""
            })
        );
        let err = pb::PubAck {
            guid: "G2".into(),
            error: "stan: invalid publish request".into(),
        }
        .encode_to_vec();
        let got = decode_pub_ack(&err).unwrap();
        assert_eq!(got.guid, b"G2");
        assert_eq!(got.error, b"stan: invalid publish request");
        assert_eq!(decode_pub_ack(&[]), Some(PubAckRef::default()));
    }

    #[test]
    fn pub_ack_skips_unknown_fields_and_rejects_garbage() {
        // field 3 varint 150, field 4 fixed64, field 5 fixed32, then guid.
        let mut buf = vec![
            0x18, 0x96, 0x01, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0x2d, 0, 0, 0, 0,
        ];
        buf.extend_from_slice(&[0x0a, 1, b'g']);
        assert_eq!(decode_pub_ack(&buf).unwrap().guid, b"g");
        assert_eq!(decode_pub_ack(&[0x0a, 5, b'g']), None); // truncated
        assert_eq!(decode_pub_ack(&[0x0b]), None); // wire type 3
        assert_eq!(decode_pub_ack(&[0x08]), None); // missing varint
    }

    #[test]
    fn varint_sizes() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read_varint(&buf, &mut pos), Some(v));
        }
    }
}
