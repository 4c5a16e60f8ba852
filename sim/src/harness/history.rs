//! What happened in a simulation, client side and fault side, with its virtual time: the
//! record invariants are checked on and a failing schedule is printed from.

use std::fmt;
use std::time::Duration;

use zk_proto::records::{Request, Response};
use zk_proto::session::{AppState, Error, RequestId, SessionState, WatchedEvent};

use super::{ClientId, Fault};

/// One entry of a simulation's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Virtual time since the simulation started.
    pub at: Duration,
    /// What happened.
    pub what: Happened,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    /// A client submitted a request.
    Submit {
        /// The client.
        client: ClientId,
        /// Its id.
        id: RequestId,
        /// The request.
        request: Request,
    },
    /// A request completed.
    Complete {
        /// The client.
        client: ClientId,
        /// Its id.
        id: RequestId,
        /// The outcome.
        result: Result<Response, Error>,
    },
    /// A watch fired or ended.
    Watch {
        /// The client.
        client: ClientId,
        /// The event.
        event: WatchedEvent,
    },
    /// A session changed state.
    State {
        /// The client.
        client: ClientId,
        /// The new state.
        state: SessionState,
    },
    /// The application view changed.
    App {
        /// The client.
        client: ClientId,
        /// The new view.
        state: AppState,
    },
    /// A client connected to a server (TCP).
    Connected {
        /// The client.
        client: ClientId,
        /// The server.
        server: usize,
    },
    /// A client's connection ended.
    Disconnected {
        /// The client.
        client: ClientId,
        /// Who ended it and why.
        why: String,
    },
    /// A fault was injected.
    Fault(Fault),
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.at.as_secs_f64();
        match &self.what {
            Happened::Submit {
                client,
                id,
                request,
            } => write!(f, "{t:10.4}s  c{}  submit #{}  {request:?}", client.0, id.0),
            Happened::Complete { client, id, result } => {
                write!(f, "{t:10.4}s  c{}  done   #{}  {result:?}", client.0, id.0)
            }
            Happened::Watch { client, event } => write!(
                f,
                "{t:10.4}s  c{}  watch  #{}  {:?} {}",
                client.0, event.watch.0, event.kind, event.path
            ),
            Happened::State { client, state } => {
                write!(f, "{t:10.4}s  c{}  state  {state:?}", client.0)
            }
            Happened::App { client, state } => {
                write!(f, "{t:10.4}s  c{}  app    {state:?}", client.0)
            }
            Happened::Connected { client, server } => {
                write!(f, "{t:10.4}s  c{}  tcp    connected to s{server}", client.0)
            }
            Happened::Disconnected { client, why } => {
                write!(f, "{t:10.4}s  c{}  tcp    closed: {why}", client.0)
            }
            Happened::Fault(fault) => write!(f, "{t:10.4}s  ---  fault  {fault:?}"),
        }
    }
}
