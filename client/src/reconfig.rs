//! A change of the ensemble's membership, for `reconfig`.

/// A change of the ensemble's membership, for `reconfig`: incremental (servers join and
/// leave) or a whole new membership.
///
/// ```
/// # use zk_client::Reconfig;
/// // Server 3 leaves, server 4 joins (quorum port, election port, role; client port).
/// let change = Reconfig::incremental()
///     .leave(3)
///     .join("server.4=10.0.0.4:2888:3888:participant;2181")
///     .if_version(0x1_0000_0000);
/// let whole = Reconfig::members([
///     "server.1=10.0.0.1:2888:3888;2181",
///     "server.2=10.0.0.2:2888:3888;2181",
/// ]);
/// let r = change.request();
/// assert_eq!(r.leaving_servers.as_deref(), Some("3"));
/// assert_eq!(r.new_members, None);
/// assert_eq!(r.cur_config_id, 0x1_0000_0000);
/// let r = whole.request();
/// assert_eq!((r.joining_servers, r.leaving_servers, r.cur_config_id), (None, None, -1));
/// assert_eq!(r.new_members.unwrap().split(',').count(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconfig {
    joining: Vec<String>,
    leaving: Vec<u64>,
    members: Option<Vec<String>>,
    from_version: Option<i64>,
}

impl Reconfig {
    /// An incremental change; servers join with [`Reconfig::join`] and leave with
    /// [`Reconfig::leave`].
    pub fn incremental() -> Self {
        Self::default()
    }

    /// A whole new membership: one `server.N=...` line per member.
    pub fn members(lines: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Reconfig {
            members: Some(lines.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// A server joins (`server.N=host:quorumPort:electionPort[:role];[clientHost:]clientPort`).
    pub fn join(mut self, server: impl Into<String>) -> Self {
        self.joining.push(server.into());
        self
    }

    /// The server with this id leaves.
    pub fn leave(mut self, id: u64) -> Self {
        self.leaving.push(id);
        self
    }

    /// Apply only if the current configuration has this version (from
    /// `EnsembleConfig::version`); otherwise the server answers `BadVersion`.
    pub fn if_version(mut self, version: i64) -> Self {
        self.from_version = Some(version);
        self
    }

    /// The request this change sends.
    pub fn request(&self) -> zk_proto::records::ReconfigRequest {
        let list = |items: Vec<String>| (!items.is_empty()).then(|| items.join(","));
        zk_proto::records::ReconfigRequest {
            joining_servers: list(self.joining.clone()),
            leaving_servers: list(self.leaving.iter().map(u64::to_string).collect()),
            new_members: self.members.as_ref().map(|m| m.join(",")),
            cur_config_id: self.from_version.unwrap_or(-1),
        }
    }
}
