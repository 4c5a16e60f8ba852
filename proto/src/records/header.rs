//! Headers: in front of every request and reply, and of every operation inside a multi.

record! {
    /// In front of every request after the handshake.
    #[derive(Copy)]
    pub struct RequestHeader {
        /// Matches the reply to the request; see [`crate::consts::xid`] for the special ones.
        xid: i32,
        /// The opcode.
        op: i32,
    }
}

record! {
    /// In front of every reply and notification.
    #[derive(Copy)]
    pub struct ReplyHeader {
        /// The xid of the request answered, or a special xid.
        xid: i32,
        /// The zxid of the server's state when it answered.
        zxid: i64,
        /// 0, or the error code; a reply with an error carries no body.
        err: i32,
    }
}

record! {
    /// In front of each operation and result inside a multi.
    #[derive(Copy)]
    pub struct MultiHeader {
        /// The operation's opcode, or -1 for an error result and for the end marker.
        op: i32,
        /// True only on the end marker.
        done: bool,
        /// The error code of an error result; -1 in requests.
        err: i32,
    }
}

impl MultiHeader {
    /// The header that ends every multi request and response.
    pub const END: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };
}
