//! Length-prefixed framing: every message is a 4-byte big-endian length, then that many bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The default largest frame accepted from a server: 1,049,599 bytes.
///
/// That is the server's default `jute.maxbuffer` (0xfffff = 1,048,575 bytes, the most a
/// server accepts in one request) plus 1 KiB, the same allowance the server adds for record
/// overhead when it reads (`zookeeper.jute.maxbuffer.extrasize` is never below 1024). A node
/// written with the largest request a server accepts comes back in a getData reply that is up
/// to 88 bytes longer than the request's data (reply header, buffer length and Stat); the
/// reference client's limit of exactly 0xfffff can refuse such a reply, this one cannot.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff + 1024;

/// The largest request frame a server with the default `jute.maxbuffer` accepts: 1,048,575
/// bytes after the length prefix. A longer one makes the server drop the connection
/// (`NIOServerCnxn.readLength`), so the session refuses it before sending.
pub const DEFAULT_MAX_REQUEST: usize = 0xfffff;

/// A frame length read from the wire that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is negative.
    #[error("malformed frame: negative length {0}")]
    NegativeLength(i32),
    /// The length prefix is larger than the configured maximum.
    #[error(
        "frame of {len} bytes exceeds the limit of {max} bytes; raise the client's maximum \
         frame size if the server's jute.maxbuffer was raised"
    )]
    TooLarge {
        /// The length read from the wire.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Splits a byte stream into frames, whatever the chunking of the input.
///
/// ```
/// use zk_proto::codec::FrameDecoder;
///
/// let mut frames = FrameDecoder::new(1024);
/// for b in [0u8, 0, 0, 2, b'h', b'i'] {
///     frames.push(&[b]); // one byte at a time works
/// }
/// assert_eq!(&frames.next_frame().unwrap().unwrap()[..], b"hi");
/// assert!(frames.next_frame().unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
    /// The body length of the frame being received, once its prefix has been read.
    pending: Option<usize>,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_frame` bytes (not counting the prefix).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max: max_frame,
            pending: None,
        }
    }

    /// The largest frame body accepted.
    pub fn max_frame(&self) -> usize {
        self.max
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for drivers that read straight into it (append only).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets any partial frame, as when the connection it came from is gone.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pending = None;
    }

    /// The next complete frame body, `None` if more input is needed.
    ///
    /// A bad length prefix is reported as soon as its four bytes arrive, before any of the
    /// body is buffered, and the error repeats until [`FrameDecoder::clear`].
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let len = match self.pending {
            Some(len) => len,
            None => {
                if self.buf.len() < 4 {
                    return Ok(None);
                }
                let raw = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let len = check_len(raw, self.max)?;
                self.buf.advance(4);
                self.pending = Some(len);
                len
            }
        };
        if self.buf.len() < len {
            // Room for the whole body now, so a large frame arriving in small pieces does not
            // grow the buffer again and again.
            self.buf.reserve(len - self.buf.len());
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

fn check_len(raw: i32, max: usize) -> Result<usize, FrameError> {
    if raw < 0 {
        return Err(FrameError::NegativeLength(raw));
    }
    let len = raw as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Appends one frame to `buf`: a length prefix, then whatever `body` writes.
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use zk_proto::codec::write_frame;
///
/// let mut buf = BytesMut::new();
/// write_frame(&mut buf, |b| b.put_slice(b"hi"));
/// assert_eq!(&buf[..], b"\0\0\0\x02hi");
/// ```
pub fn write_frame(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) -> usize {
    let start = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = buf.len() - start - 4;
    let prefix = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
    buf[start..start + 4].copy_from_slice(&prefix);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_length_is_refused_before_the_body() {
        let mut d = FrameDecoder::new(100);
        d.push(&(-5i32).to_be_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::NegativeLength(-5)));
    }

    #[test]
    fn oversized_length_is_refused_without_buffering() {
        let mut d = FrameDecoder::new(100);
        d.push(&101i32.to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge { len: 101, max: 100 })
        );
        assert!(d.buffered() <= 4);
    }

    #[test]
    fn frames_split_across_pushes_and_several_per_push() {
        let mut d = FrameDecoder::new(100);
        d.push(&[0, 0, 0, 1, 7, 0, 0]);
        assert_eq!(&d.next_frame().unwrap().unwrap()[..], &[7]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[0, 0, 0, 0, 0, 2, 1]);
        assert_eq!(&d.next_frame().unwrap().unwrap()[..], &[] as &[u8]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[2]);
        assert_eq!(&d.next_frame().unwrap().unwrap()[..], &[1, 2]);
    }

    #[test]
    fn the_limit_itself_is_accepted() {
        let mut d = FrameDecoder::new(3);
        d.push(&[0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(&d.next_frame().unwrap().unwrap()[..], &[1, 2, 3]);
    }
}
