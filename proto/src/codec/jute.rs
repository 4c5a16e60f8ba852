//! Jute, ZooKeeper's serialization format: big-endian primitives, length-prefixed buffers,
//! strings and vectors. Encoders append to a `BytesMut`; decoders are small `nom` parsers over
//! `&[u8]` that report missing input as `Incomplete` and never allocate from an unchecked length.

use bytes::{BufMut, Bytes, BytesMut};
use nom::error::{ErrorKind, ParseError};
use nom::{Err, IResult, Needed, Parser};

use super::DecodeError;

/// Where a null buffer points: a static of its own, so no other buffer can point there.
static NULL: [u8; 1] = [0];

/// A null jute buffer (length -1 on the wire): empty, and told apart from an empty buffer
/// by [`is_null`]. A node created or set with it reads back as null on a real server,
/// as the Java client's `null` data does; a null buffer read from the wire decodes as
/// this.
///
/// ```
/// use zk_proto::codec::jute::{is_null, null};
/// assert!(null().is_empty() && is_null(&null()));
/// assert!(!is_null(&bytes::Bytes::new()));
/// ```
pub fn null() -> Bytes {
    Bytes::from_static(&NULL[..0])
}

/// Whether `data` is the null buffer ([`null`]) rather than an empty one.
pub fn is_null(data: &[u8]) -> bool {
    data.is_empty() && std::ptr::eq(data.as_ptr(), NULL.as_ptr())
}

/// The result type of every jute parser: the rest of the input and the decoded value.
pub type PResult<'a, T> = IResult<&'a [u8], T, DecodeError>;

fn nom_kind(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Eof => "unexpected end of input",
        _ => "unexpected input",
    }
}

impl ParseError<&[u8]> for DecodeError {
    fn from_error_kind(_input: &[u8], kind: ErrorKind) -> Self {
        DecodeError::Malformed {
            what: nom_kind(kind),
        }
    }

    fn append(_input: &[u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Where decoded byte buffers come from.
///
/// When the input being decoded is a slice of a `Bytes` (a received frame), buffers such as
/// node data are returned as cheap `Bytes` slices of it instead of copies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin<'s>(Option<&'s Bytes>);

impl<'s> Origin<'s> {
    /// Buffers decoded from slices of `frame` share its storage.
    pub fn shared(frame: &'s Bytes) -> Self {
        Origin(Some(frame))
    }

    /// Buffers are copied out of the input.
    pub fn copied() -> Self {
        Origin(None)
    }

    fn bytes(self, part: &[u8]) -> Bytes {
        match self.0 {
            Some(frame) if contains(frame, part) => frame.slice_ref(part),
            _ => Bytes::copy_from_slice(part),
        }
    }
}

fn contains(frame: &Bytes, part: &[u8]) -> bool {
    let start = frame.as_ptr() as usize;
    let end = start + frame.len();
    let p = part.as_ptr() as usize;
    part.is_empty() || (p >= start && p + part.len() <= end)
}

/// An output buffer plus the chroot to put in front of every path written through it.
pub struct Writer<'b> {
    buf: &'b mut BytesMut,
    chroot: &'b str,
}

impl<'b> Writer<'b> {
    /// A writer appending to `buf`, with no chroot.
    pub fn new(buf: &'b mut BytesMut) -> Self {
        Writer { buf, chroot: "" }
    }

    /// A writer appending to `buf` that prefixes `chroot` (for example `/app`, never ending
    /// in `/`) to every path it writes with [`Writer::path`].
    pub fn with_chroot(buf: &'b mut BytesMut, chroot: &'b str) -> Self {
        Writer { buf, chroot }
    }

    /// The underlying buffer.
    pub fn buf(&mut self) -> &mut BytesMut {
        self.buf
    }

    /// Writes a jute `int`.
    pub fn int(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    /// Writes a jute `long`.
    pub fn long(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    /// Writes a jute `boolean` (one byte, 0 or 1).
    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(v as u8);
    }

    /// Writes a jute `buffer`: length then bytes; the null buffer ([`null`]) as length -1.
    pub fn buffer(&mut self, v: &[u8]) {
        if is_null(v) {
            self.buf.put_i32(-1);
            return;
        }
        self.buf.put_i32(len_i32(v.len()));
        self.buf.put_slice(v);
    }

    /// Writes a jute `ustring`: length then UTF-8 bytes.
    pub fn string(&mut self, v: &str) {
        self.buffer(v.as_bytes());
    }

    /// Writes a node path as a `ustring`, with the chroot in front of it. The root path `/`
    /// under a chroot is the chroot itself.
    pub fn path(&mut self, v: &str) {
        if self.chroot.is_empty() {
            self.string(v);
        } else if v == "/" {
            self.string(self.chroot);
        } else {
            self.buf.put_i32(len_i32(self.chroot.len() + v.len()));
            self.buf.put_slice(self.chroot.as_bytes());
            self.buf.put_slice(v.as_bytes());
        }
    }

    /// Writes a path as is, ignoring the chroot (for the few absolute server paths such as
    /// `/zookeeper/config`).
    pub fn absolute_path(&mut self, v: &str) {
        self.string(v);
    }

    /// Writes a jute `vector` of paths, each with the chroot in front.
    pub fn paths(&mut self, v: &[String]) {
        self.buf.put_i32(len_i32(v.len()));
        for p in v {
            self.path(p);
        }
    }
}

/// Lengths on the wire are i32. Anything we encode is far below the frame limit, which the
/// session checks before writing; saturate rather than wrap if a caller bypasses that.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A value with a jute encoding.
///
/// The stable entry points are [`Jute::encode`], [`Jute::decode`] and [`Jute::from_slice`];
/// `write` and `read` are the building blocks records are made of.
pub trait Jute: Sized {
    /// Appends the encoding of `self`.
    fn write(&self, w: &mut Writer<'_>);

    /// Parses a value from the front of `input`.
    fn read<'a>(origin: Origin<'_>, input: &'a [u8]) -> PResult<'a, Self>;

    /// The number of bytes [`Jute::write`] produces with no chroot.
    fn encoded_len(&self) -> usize;

    /// Appends the encoding of `self` to `buf`.
    fn encode(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf));
    }

    /// The encoding of `self` as a new buffer.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes a value from the front of `input`, sharing its storage for byte buffers.
    /// Returns the value and the number of bytes it used.
    fn decode(input: &Bytes) -> Result<(Self, usize), DecodeError> {
        finish(input, Self::read(Origin::shared(input), input))
    }

    /// Decodes a value from the front of `input`, copying byte buffers.
    /// Returns the value and the number of bytes it used.
    fn from_slice(input: &[u8]) -> Result<(Self, usize), DecodeError> {
        finish(input, Self::read(Origin::copied(), input))
    }
}

/// Converts a parser result into the public form: the value and the bytes consumed.
pub fn finish<T>(input: &[u8], r: PResult<'_, T>) -> Result<(T, usize), DecodeError> {
    match r {
        Ok((rest, v)) => Ok((v, input.len() - rest.len())),
        Err(e) => Err(flatten(e)),
    }
}

/// Turns nom's three-way error into our single error type.
pub fn flatten(e: Err<DecodeError>) -> DecodeError {
    match e {
        Err::Incomplete(Needed::Size(n)) => DecodeError::Incomplete { needed: n.get() },
        Err::Incomplete(Needed::Unknown) => DecodeError::Incomplete { needed: 1 },
        Err::Error(e) | Err::Failure(e) => e,
    }
}

/// A hard error (not "need more input").
pub fn fail<T>(e: DecodeError) -> Result<T, Err<DecodeError>> {
    Err(Err::Failure(e))
}

/// Parses a jute `int`.
pub fn int(i: &[u8]) -> PResult<'_, i32> {
    nom::number::streaming::be_i32(i)
}

/// Parses a jute `long`.
pub fn long(i: &[u8]) -> PResult<'_, i64> {
    nom::number::streaming::be_i64(i)
}

/// Parses a jute `boolean`. Like the Java reader, any non-zero byte is true.
pub fn boolean(i: &[u8]) -> PResult<'_, bool> {
    let (i, b) = nom::number::streaming::u8(i)?;
    Ok((i, b != 0))
}

/// Parses a length prefix: -1 means null (returned as `None`), other negatives are errors.
fn length<'a>(what: &'static str, i: &'a [u8]) -> PResult<'a, Option<usize>> {
    let (i, n) = int(i)?;
    match n {
        -1 => Ok((i, None)),
        n if n < 0 => fail(DecodeError::InvalidLength { what, len: n }),
        n => Ok((i, Some(n as usize))),
    }
}

/// Parses a jute `buffer` as a borrowed slice; null is `None`.
pub fn raw_buffer<'a>(what: &'static str, i: &'a [u8]) -> PResult<'a, Option<&'a [u8]>> {
    let (i, len) = length(what, i)?;
    match len {
        None => Ok((i, None)),
        Some(n) => {
            let (i, b) = nom::bytes::streaming::take(n).parse(i)?;
            Ok((i, Some(b)))
        }
    }
}

/// Parses a jute `buffer`; null decodes as the null buffer ([`null`]), empty like an
/// empty one and told apart by [`is_null`].
pub fn buffer<'a>(origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Bytes> {
    let (i, b) = raw_buffer("buffer", i)?;
    Ok((i, b.map_or_else(null, |b| origin.bytes(b))))
}

/// Parses a jute `ustring`; null decodes as the empty string.
pub fn string(i: &[u8]) -> PResult<'_, String> {
    let (i, b) = raw_buffer("string", i)?;
    match b {
        None => Ok((i, String::new())),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Ok((i, s.to_owned())),
            Err(_) => fail(DecodeError::InvalidUtf8),
        },
    }
}

/// Parses a jute `vector` whose items are parsed by `item`; null decodes as empty.
///
/// The count comes from the peer, so capacity is bounded by what the input could hold
/// (every item takes at least `min_item_len` bytes), never by the count itself.
pub fn vector<'a, T>(
    i: &'a [u8],
    min_item_len: usize,
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut i, len) = length("vector", i)?;
    let Some(n) = len else {
        return Ok((i, Vec::new()));
    };
    let mut out = Vec::with_capacity(n.min(i.len() / min_item_len.max(1)));
    for _ in 0..n {
        let (rest, v) = item(i)?;
        i = rest;
        out.push(v);
    }
    Ok((i, out))
}

impl Jute for i32 {
    fn write(&self, w: &mut Writer<'_>) {
        w.int(*self);
    }
    fn read<'a>(_: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        int(i)
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Jute for i64 {
    fn write(&self, w: &mut Writer<'_>) {
        w.long(*self);
    }
    fn read<'a>(_: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        long(i)
    }
    fn encoded_len(&self) -> usize {
        8
    }
}

impl Jute for bool {
    fn write(&self, w: &mut Writer<'_>) {
        w.bool(*self);
    }
    fn read<'a>(_: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        boolean(i)
    }
    fn encoded_len(&self) -> usize {
        1
    }
}

impl Jute for Bytes {
    fn write(&self, w: &mut Writer<'_>) {
        w.buffer(self);
    }
    fn read<'a>(origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        buffer(origin, i)
    }
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

impl Jute for String {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(self);
    }
    fn read<'a>(_: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        string(i)
    }
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

impl<T: Jute> Jute for Vec<T> {
    fn write(&self, w: &mut Writer<'_>) {
        w.int(len_i32(self.len()));
        for v in self {
            v.write(w);
        }
    }
    fn read<'a>(origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        vector(i, 1, |i| T::read(origin, i))
    }
    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Jute::encoded_len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_big_endian() {
        let mut buf = BytesMut::new();
        let mut w = Writer::new(&mut buf);
        w.int(1);
        w.long(-2);
        w.bool(true);
        w.string("ab");
        assert_eq!(
            &buf[..],
            &[
                0, 0, 0, 1, 255, 255, 255, 255, 255, 255, 255, 254, 1, 0, 0, 0, 2, b'a', b'b'
            ]
        );
    }

    #[test]
    fn null_buffer_string_and_vector_decode_as_empty() {
        let minus_one = [0xff, 0xff, 0xff, 0xff];
        assert_eq!(Bytes::from_slice(&minus_one).unwrap().0, Bytes::new());
        assert_eq!(String::from_slice(&minus_one).unwrap().0, "");
        assert_eq!(
            Vec::<i32>::from_slice(&minus_one).unwrap().0,
            Vec::<i32>::new()
        );
    }

    #[test]
    fn negative_lengths_other_than_null_are_errors() {
        let minus_two = [0xff, 0xff, 0xff, 0xfe];
        assert_eq!(
            String::from_slice(&minus_two).unwrap_err(),
            DecodeError::InvalidLength {
                what: "string",
                len: -2
            }
        );
    }

    #[test]
    fn a_huge_vector_count_asks_for_input_instead_of_allocating() {
        let huge = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1];
        assert!(matches!(
            Vec::<i32>::from_slice(&huge).unwrap_err(),
            DecodeError::Incomplete { .. }
        ));
    }

    #[test]
    fn chroot_is_prefixed_to_paths() {
        let mut buf = BytesMut::new();
        let mut w = Writer::with_chroot(&mut buf, "/app");
        w.path("/a");
        w.path("/");
        assert_eq!(&buf[..], b"\0\0\0\x06/app/a\0\0\0\x04/app");
    }

    #[test]
    fn shared_origin_slices_without_copying() {
        let frame = Bytes::from_static(b"\0\0\0\x03abc");
        let (b, used) = Bytes::decode(&frame).unwrap();
        assert_eq!(used, 7);
        assert_eq!(b.as_ptr(), frame[4..].as_ptr());
    }
}
