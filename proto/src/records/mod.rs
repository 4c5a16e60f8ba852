//! Every jute record a 3.5 to 3.9 client sends or receives, one module per family, plus the
//! [`Request`] and [`Response`] enums that tie operations to their opcodes.

/// Declares a jute record: a struct whose encoding is its fields in order.
///
/// A field marked `[path]` (or `[paths]` for a vector of paths) gets the writer's chroot in
/// front when encoded.
macro_rules! record {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident : $ty:ty $([$how:ident])? ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl $crate::codec::Jute for $name {
            #[allow(unused_variables)]
            fn write(&self, w: &mut $crate::codec::Writer<'_>) {
                $( $crate::records::write_field!(w, self.$field, $($how)?); )*
            }

            #[allow(unused_variables)]
            fn read<'a>(
                origin: $crate::codec::Origin<'_>,
                i: &'a [u8],
            ) -> $crate::codec::PResult<'a, Self> {
                $( let (i, $field) = <$ty as $crate::codec::Jute>::read(origin, i)?; )*
                Ok((i, $name { $($field),* }))
            }

            fn encoded_len(&self) -> usize {
                0 $( + $crate::codec::Jute::encoded_len(&self.$field) )*
            }
        }
    };
}

macro_rules! write_field {
    ($w:ident, $v:expr, path) => {
        $w.path(&$v)
    };
    ($w:ident, $v:expr, paths) => {
        $w.paths(&$v)
    };
    ($w:ident, $v:expr,) => {
        $crate::codec::Jute::write(&$v, $w)
    };
}

pub(crate) use write_field;

pub mod auth;
pub mod connect;
pub mod data;
pub mod header;
pub mod multi;
pub mod ops;
pub mod request;
pub mod response;
pub mod watch;

pub use auth::{AuthPacket, SaslRequest, SaslResponse};
pub use connect::{ConnectRequest, ConnectResponse};
pub use data::{Acl, ClientInfo, Id, Stat};
pub use header::{MultiHeader, ReplyHeader, RequestHeader};
pub use multi::{MultiOp, MultiRequest, MultiResponse, OpResult};
pub use ops::*;
pub use request::Request;
pub use response::Response;
pub use watch::{
    AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest, SetWatches, SetWatches2,
    WatcherEvent,
};

use crate::codec::{Jute, Origin, PResult, Writer};

/// A string that may be null on the wire (-1 length), as some reconfig fields are.
impl Jute for Option<String> {
    fn write(&self, w: &mut Writer<'_>) {
        match self {
            Some(s) => w.string(s),
            None => w.int(-1),
        }
    }

    fn read<'a>(_: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        let (i, b) = crate::codec::jute::raw_buffer("string", i)?;
        match b.map(std::str::from_utf8) {
            None => Ok((i, None)),
            Some(Ok(s)) => Ok((i, Some(s.to_owned()))),
            Some(Err(_)) => crate::codec::jute::fail(crate::codec::DecodeError::InvalidUtf8),
        }
    }

    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, String::len)
    }
}
