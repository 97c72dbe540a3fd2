//! pgoutput (logical replication protocol version 1) messages and the replication
//! stream's CopyData framing. Pure decoding; no database.
//!
//! This module owns the byte-level view of a PostgreSQL logical replication stream:
//! [`decode_copy_data`] splits a server → client CopyData payload into XLogData and
//! primary keepalives, [`decode`] turns an XLogData payload into one pgoutput
//! [`Message`], and [`standby_status_update`] builds the client's feedback message. It
//! does no I/O and knows nothing of slots, connections or positions beyond the numbers
//! on the wire.
//!
//! Promises:
//! - **Never panics**, whatever the input: truncated or garbage bytes give a
//!   [`DecodeError`]. No read goes past the end of the buffer, and no allocation is
//!   sized by an untrusted count without bounding it by the bytes that remain.
//! - **Borrows** strings and values from the input buffer ([`Datum`], prefixes, names);
//!   only [`Relation`], which a caller keeps in its relation cache, is owned.
//! - Protocol **version 1** only: no xid fields (those come with streamed transactions,
//!   v2+), and the streaming messages (`S`, `E`, `c`, `A`) are [`DecodeError::UnknownMessage`].
//! - Fields are parsed exactly; bytes after a complete message are ignored (room for
//!   fields a later server might append).
//!
//! All integers are big-endian; strings are NUL-terminated (a missing NUL is
//! [`DecodeError::Truncated`]) and must be UTF-8.

/// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// PostgreSQL timestamp (µs since 2000-01-01) → ms since the Unix epoch.
///
/// Rounds towards negative infinity; saturates instead of overflowing.
pub fn pg_ts_to_unix_ms(pg_us: i64) -> i64 {
    pg_us.saturating_add(PG_EPOCH_OFFSET_US).div_euclid(1000)
}

/// Now as PostgreSQL timestamp µs (for standby status updates).
pub fn now_pg_us() -> i64 {
    let unix_us = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |us| -us),
    };
    unix_us.saturating_sub(PG_EPOCH_OFFSET_US)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `at` is the offset of the field that could not be read in full.
    #[error("pgoutput {what}: message truncated at byte {at}")]
    Truncated { what: &'static str, at: usize },
    #[error("pgoutput: unknown message type {0:?}")]
    UnknownMessage(char),
    /// A TupleData column kind other than `n`, `u`, `t`, `b`, or a tuple marker other
    /// than the `N`/`K`/`O` the message allows there.
    #[error("pgoutput {what}: unknown tuple data kind {kind:?}")]
    UnknownTupleKind { what: &'static str, kind: char },
    #[error("pgoutput {what}: text is not UTF-8")]
    BadUtf8 { what: &'static str },
    #[error("replication stream: unknown CopyData message {0:?}")]
    UnknownCopyData(char),
}

/// One column value of a TupleData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datum<'a> {
    /// `n`: SQL NULL.
    Null,
    /// `u`: an unchanged TOASTed value, not sent.
    Unchanged,
    /// `t`: the type's text output.
    Text(&'a str),
    /// `b`: the type's binary output (only with the `binary` option).
    Binary(&'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelColumn {
    /// Flags: 1 = part of the replica identity key.
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub typmod: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    /// Empty string means pg_catalog (as the protocol says).
    pub namespace: String,
    pub name: String,
    /// Replica identity setting: b'd' default, b'n' nothing, b'f' full, b'i' index.
    pub replica_identity: u8,
    pub columns: Vec<RelColumn>,
}

/// Which old image an Update/Delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKind {
    /// `K`: the replica identity key columns only (others are Null).
    Key,
    /// `O`: the whole old row (replica identity FULL).
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    Begin {
        final_lsn: u64,
        commit_ts: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_ts: i64,
    },
    Origin {
        commit_lsn: u64,
        name: &'a str,
    },
    Relation(Relation),
    Type {
        oid: u32,
        namespace: &'a str,
        name: &'a str,
    },
    Insert {
        rel: u32,
        new: Vec<Datum<'a>>,
    },
    Update {
        rel: u32,
        old: Option<(OldKind, Vec<Datum<'a>>)>,
        new: Vec<Datum<'a>>,
    },
    Delete {
        rel: u32,
        old: (OldKind, Vec<Datum<'a>>),
    },
    /// options bit 1 = CASCADE, bit 2 = RESTART IDENTITY.
    Truncate {
        options: u8,
        rels: Vec<u32>,
    },
    /// pg_logical_emit_message (sent only with the `messages` option).
    LogicalMessage {
        transactional: bool,
        lsn: u64,
        prefix: &'a str,
        content: &'a [u8],
    },
}

/// A bounds-checked big-endian reader over one message; every read returns `Result`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message being read, for errors.
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], pos: usize, what: &'static str) -> Self {
        Cursor { buf, pos, what }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn truncated_at(&self, at: usize) -> DecodeError {
        DecodeError::Truncated {
            what: self.what,
            at,
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| self.truncated_at(self.pos))?;
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.pos;
        let s = self.bytes(N)?;
        <[u8; N]>::try_from(s).map_err(|_| self.truncated_at(at))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_be_bytes)
    }

    /// The rest of the buffer.
    fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }

    /// A NUL-terminated UTF-8 string (the NUL is consumed, not returned).
    fn cstr(&mut self) -> Result<&'a str, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.truncated_at(self.pos))?;
        let s = self.bytes(len)?;
        self.pos += 1; // the NUL, found above
        self.utf8(s)
    }

    /// An Int32 length followed by that many bytes; a negative length is Truncated.
    fn len_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let len = usize::try_from(self.i32()?).map_err(|_| self.truncated_at(at))?;
        if len > self.remaining() {
            return Err(self.truncated_at(at));
        }
        self.bytes(len)
    }

    fn utf8(&self, s: &'a [u8]) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(s).map_err(|_| DecodeError::BadUtf8 { what: self.what })
    }

    fn unknown_kind(&self, kind: u8) -> DecodeError {
        DecodeError::UnknownTupleKind {
            what: self.what,
            kind: char::from(kind),
        }
    }

    /// TupleData: Int16 column count, then per column a kind byte and for `t`/`b` an
    /// Int32 length and the bytes.
    fn tuple(&mut self) -> Result<Vec<Datum<'a>>, DecodeError> {
        let n = usize::from(self.u16()?);
        // Every column takes at least its kind byte.
        let mut cols = Vec::with_capacity(n.min(self.remaining()));
        for _ in 0..n {
            let datum = match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let b = self.len_bytes()?;
                    Datum::Text(self.utf8(b)?)
                }
                b'b' => Datum::Binary(self.len_bytes()?),
                k => return Err(self.unknown_kind(k)),
            };
            cols.push(datum);
        }
        Ok(cols)
    }

    /// Byte1 `K` or `O`, as an old-image kind.
    fn old_kind(&self, marker: u8) -> Option<OldKind> {
        match marker {
            b'K' => Some(OldKind::Key),
            b'O' => Some(OldKind::Full),
            _ => None,
        }
    }
}

/// Decodes one pgoutput message (the payload of an XLogData).
pub fn decode(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    let Some(&tag) = buf.first() else {
        return Err(DecodeError::Truncated {
            what: "message",
            at: 0,
        });
    };
    let what = match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        other => return Err(DecodeError::UnknownMessage(char::from(other))),
    };
    let mut c = Cursor::new(buf, 1, what);
    let msg = match tag {
        b'B' => Message::Begin {
            final_lsn: c.u64()?,
            commit_ts: c.i64()?,
            xid: c.u32()?,
        },
        b'C' => Message::Commit {
            flags: c.u8()?,
            commit_lsn: c.u64()?,
            end_lsn: c.u64()?,
            commit_ts: c.i64()?,
        },
        b'O' => Message::Origin {
            commit_lsn: c.u64()?,
            name: c.cstr()?,
        },
        b'R' => {
            let oid = c.u32()?;
            let namespace = c.cstr()?.to_owned();
            let name = c.cstr()?.to_owned();
            let replica_identity = c.u8()?;
            let n = usize::from(c.u16()?);
            // A column is at least flags, an empty name's NUL, type oid and typmod.
            let mut columns = Vec::with_capacity(n.min(c.remaining() / 10));
            for _ in 0..n {
                columns.push(RelColumn {
                    key: c.u8()? & 1 != 0,
                    name: c.cstr()?.to_owned(),
                    type_oid: c.u32()?,
                    typmod: c.i32()?,
                });
            }
            Message::Relation(Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => Message::Type {
            oid: c.u32()?,
            namespace: c.cstr()?,
            name: c.cstr()?,
        },
        b'I' => {
            let rel = c.u32()?;
            match c.u8()? {
                b'N' => Message::Insert {
                    rel,
                    new: c.tuple()?,
                },
                k => return Err(c.unknown_kind(k)),
            }
        }
        b'U' => {
            let rel = c.u32()?;
            let mut marker = c.u8()?;
            let old = match c.old_kind(marker) {
                Some(kind) => {
                    let old = c.tuple()?;
                    marker = c.u8()?;
                    Some((kind, old))
                }
                None => None,
            };
            if marker != b'N' {
                return Err(c.unknown_kind(marker));
            }
            Message::Update {
                rel,
                old,
                new: c.tuple()?,
            }
        }
        b'D' => {
            let rel = c.u32()?;
            let marker = c.u8()?;
            let kind = c.old_kind(marker).ok_or_else(|| c.unknown_kind(marker))?;
            Message::Delete {
                rel,
                old: (kind, c.tuple()?),
            }
        }
        b'T' => {
            let n = c.u32()?;
            let options = c.u8()?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let mut rels = Vec::with_capacity(n.min(c.remaining() / 4));
            for _ in 0..n {
                rels.push(c.u32()?);
            }
            Message::Truncate { options, rels }
        }
        // b'M', the only tag left.
        _ => Message::LogicalMessage {
            transactional: c.u8()? & 1 != 0,
            lsn: c.u64()?,
            prefix: c.cstr()?,
            content: c.len_bytes()?,
        },
    };
    Ok(msg)
}

/// A CopyData payload of the replication stream (server → client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyData<'a> {
    /// 'w': WAL data.
    XLogData {
        wal_start: u64,
        wal_end: u64,
        send_time: i64,
        data: &'a [u8],
    },
    /// 'k': primary keepalive.
    Keepalive {
        wal_end: u64,
        send_time: i64,
        reply_requested: bool,
    },
}

/// Decodes one server → client CopyData payload of a replication connection.
pub fn decode_copy_data(buf: &[u8]) -> Result<CopyData<'_>, DecodeError> {
    match buf.first() {
        None => Err(DecodeError::Truncated {
            what: "CopyData",
            at: 0,
        }),
        Some(b'w') => {
            let mut c = Cursor::new(buf, 1, "XLogData");
            Ok(CopyData::XLogData {
                wal_start: c.u64()?,
                wal_end: c.u64()?,
                send_time: c.i64()?,
                data: c.rest(),
            })
        }
        Some(b'k') => {
            let mut c = Cursor::new(buf, 1, "Keepalive");
            Ok(CopyData::Keepalive {
                wal_end: c.u64()?,
                send_time: c.i64()?,
                reply_requested: c.u8()? == 1,
            })
        }
        Some(&other) => Err(DecodeError::UnknownCopyData(char::from(other))),
    }
}

/// The client's standby status update ('r'): write, flush and apply positions, the
/// client's clock (PostgreSQL µs) and whether the server should reply at once. 34 bytes.
pub fn standby_status_update(
    write: u64,
    flush: u64,
    apply: u64,
    now_pg_us: i64,
    reply: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(34);
    out.push(b'r');
    out.extend_from_slice(&write.to_be_bytes());
    out.extend_from_slice(&flush.to_be_bytes());
    out.extend_from_slice(&apply.to_be_bytes());
    out.extend_from_slice(&now_pg_us.to_be_bytes());
    out.push(u8::from(reply));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A message builder: each method appends one big-endian field.
    #[derive(Default)]
    struct B(Vec<u8>);

    impl B {
        fn tag(t: u8) -> Self {
            B(vec![t])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn raw(mut self, b: &[u8]) -> Self {
            self.0.extend_from_slice(b);
            self
        }
        fn cstr(self, s: &str) -> Self {
            self.raw(s.as_bytes()).u8(0)
        }
        fn len_bytes(self, b: &[u8]) -> Self {
            self.i32(i32::try_from(b.len()).unwrap()).raw(b)
        }
        /// TupleData for these values.
        fn tuple(self, cols: &[Datum<'_>]) -> Self {
            let mut b = self.u16(u16::try_from(cols.len()).unwrap());
            for d in cols {
                b = match d {
                    Datum::Null => b.u8(b'n'),
                    Datum::Unchanged => b.u8(b'u'),
                    Datum::Text(s) => b.u8(b't').len_bytes(s.as_bytes()),
                    Datum::Binary(v) => b.u8(b'b').len_bytes(v),
                };
            }
            b
        }
        fn done(self) -> Vec<u8> {
            self.0
        }
    }

    fn insert_msg(rel: u32, cols: &[Datum<'_>]) -> Vec<u8> {
        B::tag(b'I').u32(rel).u8(b'N').tuple(cols).done()
    }

    fn sample_cols() -> Vec<Datum<'static>> {
        vec![
            Datum::Text("42"),
            Datum::Null,
            Datum::Unchanged,
            Datum::Text("héllo"),
            Datum::Binary(&[0, 1, 0xff]),
            Datum::Text(""),
        ]
    }

    fn truncated(what: &'static str, at: usize) -> Result<Message<'static>, DecodeError> {
        Err(DecodeError::Truncated { what, at })
    }

    #[test]
    fn begin() {
        let buf = B::tag(b'B').u64(0x16_B374_D848).i64(-5).u32(7777).done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Begin {
                final_lsn: 0x16_B374_D848,
                commit_ts: -5,
                xid: 7777
            })
        );
    }

    #[test]
    fn commit() {
        let buf = B::tag(b'C').u8(0).u64(100).u64(120).i64(1234).done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Commit {
                flags: 0,
                commit_lsn: 100,
                end_lsn: 120,
                commit_ts: 1234
            })
        );
    }

    #[test]
    fn origin() {
        let buf = B::tag(b'O').u64(99).cstr("pg_16384").done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Origin {
                commit_lsn: 99,
                name: "pg_16384"
            })
        );
    }

    #[test]
    fn relation() {
        let buf = B::tag(b'R')
            .u32(16385)
            .cstr("")
            .cstr("orders")
            .u8(b'd')
            .u16(2)
            .u8(1)
            .cstr("id")
            .u32(23)
            .i32(-1)
            .u8(0)
            .cstr("note")
            .u32(1043)
            .i32(104)
            .done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Relation(Relation {
                oid: 16385,
                namespace: String::new(),
                name: "orders".into(),
                replica_identity: b'd',
                columns: vec![
                    RelColumn {
                        key: true,
                        name: "id".into(),
                        type_oid: 23,
                        typmod: -1
                    },
                    RelColumn {
                        key: false,
                        name: "note".into(),
                        type_oid: 1043,
                        typmod: 104
                    },
                ],
            }))
        );
    }

    #[test]
    fn relation_with_huge_column_count_is_truncated() {
        let buf = B::tag(b'R')
            .u32(1)
            .cstr("public")
            .cstr("t")
            .u8(b'f')
            .u16(u16::MAX)
            .done();
        assert_eq!(decode(&buf), truncated("Relation", buf.len()));
    }

    #[test]
    fn type_message() {
        let buf = B::tag(b'Y').u32(70000).cstr("public").cstr("mood").done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Type {
                oid: 70000,
                namespace: "public",
                name: "mood"
            })
        );
    }

    #[test]
    fn insert_all_datum_kinds() {
        let buf = insert_msg(16385, &sample_cols());
        assert_eq!(
            decode(&buf),
            Ok(Message::Insert {
                rel: 16385,
                new: sample_cols()
            })
        );
    }

    #[test]
    fn insert_zero_columns() {
        let buf = insert_msg(1, &[]);
        assert_eq!(
            decode(&buf),
            Ok(Message::Insert {
                rel: 1,
                new: vec![]
            })
        );
    }

    #[test]
    fn insert_truncated_at_every_length() {
        let buf = insert_msg(16385, &sample_cols());
        assert!(decode(&buf).is_ok());
        for len in 0..buf.len() {
            match decode(&buf[..len]) {
                Err(DecodeError::Truncated { what, at }) => {
                    assert_eq!(what, if len == 0 { "message" } else { "Insert" });
                    assert!(at <= len, "len {len}: at {at}");
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn insert_without_new_marker() {
        let buf = B::tag(b'I').u32(1).u8(b'K').tuple(&[]).done();
        assert_eq!(
            decode(&buf),
            Err(DecodeError::UnknownTupleKind {
                what: "Insert",
                kind: 'K'
            })
        );
    }

    #[test]
    fn update_without_old() {
        let new = [Datum::Text("1"), Datum::Unchanged];
        let buf = B::tag(b'U').u32(5).u8(b'N').tuple(&new).done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Update {
                rel: 5,
                old: None,
                new: new.to_vec()
            })
        );
    }

    #[test]
    fn update_with_key() {
        let old = [Datum::Text("1"), Datum::Null];
        let new = [Datum::Text("2"), Datum::Text("x")];
        let buf = B::tag(b'U')
            .u32(5)
            .u8(b'K')
            .tuple(&old)
            .u8(b'N')
            .tuple(&new)
            .done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Update {
                rel: 5,
                old: Some((OldKind::Key, old.to_vec())),
                new: new.to_vec()
            })
        );
    }

    #[test]
    fn update_with_full_old() {
        let old = [Datum::Text("1"), Datum::Text("a")];
        let new = [Datum::Text("1"), Datum::Text("b")];
        let buf = B::tag(b'U')
            .u32(5)
            .u8(b'O')
            .tuple(&old)
            .u8(b'N')
            .tuple(&new)
            .done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Update {
                rel: 5,
                old: Some((OldKind::Full, old.to_vec())),
                new: new.to_vec()
            })
        );
    }

    #[test]
    fn update_bad_markers() {
        let buf = B::tag(b'U').u32(5).u8(b'X').done();
        assert_eq!(
            decode(&buf),
            Err(DecodeError::UnknownTupleKind {
                what: "Update",
                kind: 'X'
            })
        );
        // Old image, then something other than 'N'.
        let buf = B::tag(b'U')
            .u32(5)
            .u8(b'K')
            .tuple(&[Datum::Null])
            .u8(b'K')
            .tuple(&[Datum::Null])
            .done();
        assert_eq!(
            decode(&buf),
            Err(DecodeError::UnknownTupleKind {
                what: "Update",
                kind: 'K'
            })
        );
    }

    #[test]
    fn delete_with_key_and_full() {
        let old = [Datum::Text("7"), Datum::Null];
        for (marker, kind) in [(b'K', OldKind::Key), (b'O', OldKind::Full)] {
            let buf = B::tag(b'D').u32(9).u8(marker).tuple(&old).done();
            assert_eq!(
                decode(&buf),
                Ok(Message::Delete {
                    rel: 9,
                    old: (kind, old.to_vec())
                })
            );
        }
        let buf = B::tag(b'D').u32(9).u8(b'N').tuple(&old).done();
        assert_eq!(
            decode(&buf),
            Err(DecodeError::UnknownTupleKind {
                what: "Delete",
                kind: 'N'
            })
        );
    }

    #[test]
    fn truncate() {
        let buf = B::tag(b'T').u32(3).u8(3).u32(10).u32(11).u32(12).done();
        assert_eq!(
            decode(&buf),
            Ok(Message::Truncate {
                options: 3,
                rels: vec![10, 11, 12]
            })
        );
        // A count far past the bytes: an error, not a huge allocation.
        let buf = B::tag(b'T').u32(u32::MAX).u8(0).u32(10).done();
        assert_eq!(decode(&buf), truncated("Truncate", 10));
    }

    #[test]
    fn logical_message() {
        let buf = B::tag(b'M')
            .u8(1)
            .u64(500)
            .cstr("rtdp")
            .len_bytes(b"\x00hi")
            .done();
        assert_eq!(
            decode(&buf),
            Ok(Message::LogicalMessage {
                transactional: true,
                lsn: 500,
                prefix: "rtdp",
                content: b"\x00hi"
            })
        );
        let buf = B::tag(b'M').u8(0).u64(1).cstr("").len_bytes(b"").done();
        assert_eq!(
            decode(&buf),
            Ok(Message::LogicalMessage {
                transactional: false,
                lsn: 1,
                prefix: "",
                content: b""
            })
        );
    }

    #[test]
    fn unknown_message_type() {
        assert_eq!(
            decode(b"S\0\0\0\x01"),
            Err(DecodeError::UnknownMessage('S'))
        );
        assert_eq!(decode(b"\xff"), Err(DecodeError::UnknownMessage('\u{ff}')));
        assert_eq!(decode(b""), truncated("message", 0));
    }

    #[test]
    fn unknown_tuple_kind() {
        let buf = B::tag(b'I').u32(1).u8(b'N').u16(1).u8(b'x').done();
        assert_eq!(
            decode(&buf),
            Err(DecodeError::UnknownTupleKind {
                what: "Insert",
                kind: 'x'
            })
        );
    }

    #[test]
    fn text_must_be_utf8() {
        let buf = B::tag(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b't')
            .len_bytes(b"\xc3(")
            .done();
        assert_eq!(decode(&buf), Err(DecodeError::BadUtf8 { what: "Insert" }));
        // Binary values may be anything.
        let buf = B::tag(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b'b')
            .len_bytes(b"\xc3(")
            .done();
        assert!(decode(&buf).is_ok());
        let buf = B::tag(b'Y').u32(1).cstr("public").raw(b"\xff\0").done();
        assert_eq!(decode(&buf), Err(DecodeError::BadUtf8 { what: "Type" }));
    }

    #[test]
    fn missing_nul_is_truncated() {
        let buf = B::tag(b'O').u64(1).raw(b"no-nul").done();
        assert_eq!(decode(&buf), truncated("Origin", 9));
    }

    #[test]
    fn bad_lengths_are_truncated() {
        // Negative length.
        let buf = B::tag(b'I').u32(1).u8(b'N').u16(1).u8(b't').i32(-1).done();
        assert_eq!(decode(&buf), truncated("Insert", 9));
        // Length past the end.
        let buf = B::tag(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b'b')
            .i32(4)
            .raw(b"abc")
            .done();
        assert_eq!(decode(&buf), truncated("Insert", 9));
        let buf = B::tag(b'M').u8(0).u64(1).cstr("p").i32(i32::MAX).done();
        assert_eq!(decode(&buf), truncated("Message", 12));
        let buf = B::tag(b'M').u8(0).u64(1).cstr("p").i32(i32::MIN).done();
        assert_eq!(decode(&buf), truncated("Message", 12));
    }

    #[test]
    fn huge_column_count_is_truncated() {
        let buf = B::tag(b'I').u32(1).u8(b'N').u16(u16::MAX).done();
        assert_eq!(decode(&buf), truncated("Insert", buf.len()));
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut buf = B::tag(b'B').u64(1).i64(2).u32(3).done();
        buf.extend_from_slice(b"future");
        assert_eq!(
            decode(&buf),
            Ok(Message::Begin {
                final_lsn: 1,
                commit_ts: 2,
                xid: 3
            })
        );
        let mut buf = insert_msg(1, &[Datum::Null]);
        buf.push(0);
        assert!(decode(&buf).is_ok());
    }

    #[test]
    fn xlogdata() {
        let payload = insert_msg(16385, &sample_cols());
        let buf = B::tag(b'w').u64(10).u64(20).i64(30).raw(&payload).done();
        assert_eq!(
            decode_copy_data(&buf),
            Ok(CopyData::XLogData {
                wal_start: 10,
                wal_end: 20,
                send_time: 30,
                data: &payload
            })
        );
        let buf = B::tag(b'w').u64(10).u64(20).i64(30).done();
        assert_eq!(
            decode_copy_data(&buf),
            Ok(CopyData::XLogData {
                wal_start: 10,
                wal_end: 20,
                send_time: 30,
                data: &[]
            })
        );
    }

    #[test]
    fn keepalive() {
        for (byte, reply_requested) in [(0, false), (1, true)] {
            let buf = B::tag(b'k').u64(77).i64(-3).u8(byte).done();
            assert_eq!(
                decode_copy_data(&buf),
                Ok(CopyData::Keepalive {
                    wal_end: 77,
                    send_time: -3,
                    reply_requested
                })
            );
        }
    }

    #[test]
    fn copy_data_errors() {
        assert_eq!(
            decode_copy_data(b""),
            Err(DecodeError::Truncated {
                what: "CopyData",
                at: 0
            })
        );
        assert_eq!(
            decode_copy_data(b"r\0"),
            Err(DecodeError::UnknownCopyData('r'))
        );
        let buf = B::tag(b'k').u64(77).i64(-3).done();
        assert_eq!(
            decode_copy_data(&buf),
            Err(DecodeError::Truncated {
                what: "Keepalive",
                at: 17
            })
        );
        let buf = B::tag(b'w').u64(10).u64(20).raw(&[0; 7]).done();
        assert_eq!(
            decode_copy_data(&buf),
            Err(DecodeError::Truncated {
                what: "XLogData",
                at: 17
            })
        );
    }

    #[test]
    fn standby_status_update_layout() {
        let buf = standby_status_update(1, 2, 3, -4, true);
        let want = B::tag(b'r').u64(1).u64(2).u64(3).i64(-4).u8(1).done();
        assert_eq!(buf.len(), 34);
        assert_eq!(buf, want);
        assert_eq!(*standby_status_update(1, 2, 3, 4, false).last().unwrap(), 0);
    }

    #[test]
    fn timestamps() {
        assert_eq!(pg_ts_to_unix_ms(0), 946_684_800_000);
        assert_eq!(pg_ts_to_unix_ms(-PG_EPOCH_OFFSET_US), 0);
        assert_eq!(pg_ts_to_unix_ms(1_999), 946_684_800_001);
        assert_eq!(pg_ts_to_unix_ms(-PG_EPOCH_OFFSET_US - 1), -1);
        assert_eq!(pg_ts_to_unix_ms(i64::MAX), i64::MAX / 1000);
        let _ = pg_ts_to_unix_ms(i64::MIN);
        // After 2020-01-01 and well before 2200.
        let now = now_pg_us();
        assert!(now > 631_152_000_000_000, "{now}");
        assert!(now < 6_311_520_000_000_000, "{now}");
    }

    #[test]
    fn errors_display() {
        let e = DecodeError::Truncated {
            what: "Insert",
            at: 7,
        };
        assert_eq!(
            e.to_string(),
            "pgoutput Insert: message truncated at byte 7"
        );
        assert_eq!(
            DecodeError::UnknownMessage('S').to_string(),
            "pgoutput: unknown message type 'S'"
        );
    }

    fn datum() -> impl Strategy<Value = (u8, String, Vec<u8>)> {
        (
            0u8..4,
            "[ -~é😀\n]{0,12}",
            proptest::collection::vec(any::<u8>(), 0..12),
        )
    }

    fn to_datum<'a>((k, s, b): &'a (u8, String, Vec<u8>)) -> Datum<'a> {
        match k {
            0 => Datum::Null,
            1 => Datum::Unchanged,
            2 => Datum::Text(s),
            _ => Datum::Binary(b),
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&buf);
            let _ = decode_copy_data(&buf);
        }

        #[test]
        fn random_bodies_never_panic(
            tag in proptest::sample::select(b"BCORYIUDTMwk".to_vec()),
            body in proptest::collection::vec(
                proptest::sample::select(vec![0u8, 1, 0xff, b'N', b'K', b'O', b'n', b'u', b't', b'b', b'a']),
                0..128,
            ),
        ) {
            let mut buf = vec![tag];
            buf.extend_from_slice(&body);
            let _ = decode(&buf);
            let _ = decode_copy_data(&buf);
        }

        #[test]
        fn insert_round_trips(rel: u32, raw in proptest::collection::vec(datum(), 0..8)) {
            let cols: Vec<Datum<'_>> = raw.iter().map(to_datum).collect();
            let buf = insert_msg(rel, &cols);
            prop_assert_eq!(decode(&buf), Ok(Message::Insert { rel, new: cols.clone() }));
            for len in 0..buf.len() {
                let is_truncated = matches!(decode(&buf[..len]), Err(DecodeError::Truncated { .. }));
                prop_assert!(is_truncated);
            }
        }
    }
}
