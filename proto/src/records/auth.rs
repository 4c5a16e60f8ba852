//! Authentication records: `AuthPacket` (add credentials) and the SASL token exchange.

use bytes::Bytes;

record! {
    /// Adds credentials to the session (sent with xid -4, opcode auth).
    pub struct AuthPacket {
        /// Always 0.
        kind: i32,
        /// The scheme, for example `digest`.
        scheme: String,
        /// The credentials, for example `user:password` for digest.
        auth: Bytes,
    }
}

record! {
    /// A SASL token from the client (`GetSASLRequest`).
    pub struct SaslRequest {
        /// The token.
        token: Bytes,
    }
}

record! {
    /// A SASL token from the server (`SetSASLResponse`).
    pub struct SaslResponse {
        /// The token.
        token: Bytes,
    }
}
