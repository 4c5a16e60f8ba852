//! The handshake: `ConnectRequest` and `ConnectResponse`, sent without a header.

use bytes::Bytes;

use crate::codec::{Jute, Origin, PResult, Writer};

/// Opens or resumes a session; the first frame a client sends on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The last zxid the client saw, so a server that is behind refuses the connection.
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds.
    pub timeout: i32,
    /// 0 for a new session, otherwise the session to resume.
    pub session_id: i64,
    /// 16 zero bytes for a new session, otherwise the session's password.
    pub passwd: Bytes,
    /// The client accepts a read-only server. Clients older than 3.4 omit this byte.
    pub read_only: bool,
}

/// The server's answer to a [`ConnectRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// The server's protocol version (0).
    pub protocol_version: i32,
    /// The negotiated session timeout in milliseconds; 0 or less means the session expired.
    pub timeout: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password, needed to resume the session on another connection.
    pub passwd: Bytes,
    /// The server is read-only. Servers older than 3.4 omit this byte; it then reads false.
    pub read_only: bool,
}

/// Reads the trailing read-only flag, which old peers leave out: at the end of the input it
/// is absent (false) rather than missing.
fn optional_flag(i: &[u8]) -> PResult<'_, bool> {
    if i.is_empty() {
        Ok((i, false))
    } else {
        crate::codec::jute::boolean(i)
    }
}

impl Jute for ConnectRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.int(self.protocol_version);
        w.long(self.last_zxid_seen);
        w.int(self.timeout);
        w.long(self.session_id);
        w.buffer(&self.passwd);
        w.bool(self.read_only);
    }

    fn read<'a>(origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        let (i, protocol_version) = i32::read(origin, i)?;
        let (i, last_zxid_seen) = i64::read(origin, i)?;
        let (i, timeout) = i32::read(origin, i)?;
        let (i, session_id) = i64::read(origin, i)?;
        let (i, passwd) = Bytes::read(origin, i)?;
        let (i, read_only) = optional_flag(i)?;
        Ok((
            i,
            ConnectRequest {
                protocol_version,
                last_zxid_seen,
                timeout,
                session_id,
                passwd,
                read_only,
            },
        ))
    }

    fn encoded_len(&self) -> usize {
        4 + 8 + 4 + 8 + 4 + self.passwd.len() + 1
    }
}

impl Jute for ConnectResponse {
    fn write(&self, w: &mut Writer<'_>) {
        w.int(self.protocol_version);
        w.int(self.timeout);
        w.long(self.session_id);
        w.buffer(&self.passwd);
        w.bool(self.read_only);
    }

    fn read<'a>(origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        let (i, protocol_version) = i32::read(origin, i)?;
        let (i, timeout) = i32::read(origin, i)?;
        let (i, session_id) = i64::read(origin, i)?;
        let (i, passwd) = Bytes::read(origin, i)?;
        let (i, read_only) = optional_flag(i)?;
        Ok((
            i,
            ConnectResponse {
                protocol_version,
                timeout,
                session_id,
                passwd,
                read_only,
            },
        ))
    }

    fn encoded_len(&self) -> usize {
        4 + 4 + 8 + 4 + self.passwd.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_without_the_read_only_byte_is_read_write() {
        let full = ConnectResponse {
            protocol_version: 0,
            timeout: 4000,
            session_id: 7,
            passwd: Bytes::from_static(&[1; 16]),
            read_only: true,
        }
        .to_bytes();
        let old = full.slice(..full.len() - 1);
        let (r, used) = ConnectResponse::decode(&old).unwrap();
        assert!(!r.read_only);
        assert_eq!(used, old.len());
        assert_eq!(r.timeout, 4000);
    }
}
