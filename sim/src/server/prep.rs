//! Turning a write into a transaction before it is applied (`PrepRequestProcessor`): the
//! checks in the server's order, against the tree plus the changes earlier operations of
//! the same multi made, so every error code is the one the server gives.

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::consts::{CreateMode, perms};
use zk_proto::path::validate_path;
use zk_proto::records::{Acl, MultiOp};
use zk_proto::{ErrorCode, OpCode};

use crate::acl::{self, Identities};
use crate::tree::{self, CONTAINER_OWNER, DataTree, Kind, Map, Persisted};

/// A prepared write.
#[derive(Debug, Clone)]
pub(crate) enum TxnOp {
    Create {
        op: OpCode,
        path: String,
        data: Bytes,
        acl: Vec<Acl>,
        owner: i64,
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Bytes,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
    },
}

/// What a path looks like with the pending changes of this transaction (`ChangeRecord`).
#[derive(Debug, Clone)]
struct Record {
    /// None once deleted.
    stat: Option<Persisted>,
    child_count: i32,
    acl: Arc<Vec<Acl>>,
}

/// The tree seen through the changes of the operations prepared so far.
pub(crate) struct View<'a> {
    tree: &'a DataTree,
    changes: Map<String, Record>,
    session: i64,
    ids: &'a Identities,
    zxid: i64,
    time: i64,
}

impl<'a> View<'a> {
    pub(crate) fn new(
        tree: &'a DataTree,
        session: i64,
        ids: &'a Identities,
        zxid: i64,
        time: i64,
    ) -> Self {
        View {
            tree,
            changes: Map::default(),
            session,
            ids,
            zxid,
            time,
        }
    }

    /// `getRecordForPath`: NoNode when missing or deleted.
    fn record(&self, path: &str) -> Result<Record, ErrorCode> {
        let path = if path.is_empty() { "/" } else { path };
        if let Some(r) = self.changes.get(path) {
            return match r.stat {
                Some(_) => Ok(r.clone()),
                None => Err(ErrorCode::NoNode),
            };
        }
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        Ok(Record {
            stat: Some(node.stat),
            child_count: node.children.len() as i32,
            acl: node.acl.clone(),
        })
    }

    fn stat(r: &Record) -> Persisted {
        r.stat.unwrap_or_default()
    }

    fn check_acl(&self, r: &Record, perm: i32) -> Result<(), ErrorCode> {
        acl::check(self.ids, &r.acl, perm)
    }

    /// One write of a single request or of a multi.
    pub(crate) fn prepare(&mut self, op: &MultiOp) -> Result<TxnOp, ErrorCode> {
        match op {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                let code = op.opcode();
                self.create(code, &r.path, &r.data, &r.acl, r.flags, -1)
            }
            MultiOp::CreateTtl(r) => {
                self.create(OpCode::CreateTtl, &r.path, &r.data, &r.acl, r.flags, r.ttl)
            }
            MultiOp::Delete(r) => self.delete(&r.path, r.version),
            MultiOp::SetData(r) => self.set_data(&r.path, &r.data, r.version),
            MultiOp::Check(r) => self.check(&r.path, r.version),
            // The server has no transaction for reads; inside a multi they fail the whole
            // request (see the crate's list of differences).
            MultiOp::GetData(_) | MultiOp::GetChildren(_) => Err(ErrorCode::MarshallingError),
        }
    }

    fn create(
        &mut self,
        code: OpCode,
        path: &str,
        data: &Bytes,
        acl_in: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Result<TxnOp, ErrorCode> {
        let mode = CreateMode::from_i32(flags).ok_or(ErrorCode::BadArguments)?;
        // validateCreateRequest
        if mode.is_ttl() && !self.tree.extended_types() {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_ok = if mode.is_ttl() {
            ttl > 0 && ttl <= tree::MAX_TTL
        } else {
            ttl < 0
        };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        // validatePathForCreate
        let Some(slash) = path.rfind('/') else {
            return Err(ErrorCode::BadArguments);
        };
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = &path[..slash];
        let acl = acl::fixup(self.ids, acl_in)?;
        let parent = self.record(parent_path)?;
        self.check_acl(&parent, perms::CREATE)?;
        let parent_stat = Self::stat(&parent);
        let mut path = path.to_owned();
        if mode.is_sequential() {
            path.push_str(&format!("{:010}", parent_stat.cversion));
        }
        validate_path(&path).map_err(|_| ErrorCode::BadArguments)?;
        if self.record(&path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if tree::kind_of(parent_stat.ephemeral_owner, self.tree.extended_types()) == Kind::Normal {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent_stat.cversion.wrapping_add(1);
        // The change record takes the owner from the mode, the applied transaction from the
        // opcode: a container mode sent as a plain create makes a persistent node.
        let record_owner = if mode.is_container() {
            CONTAINER_OWNER
        } else if mode.is_ttl() {
            tree::ttl_owner(ttl)
        } else if mode.is_ephemeral() {
            self.session
        } else {
            0
        };
        let owner = match code {
            OpCode::CreateContainer => CONTAINER_OWNER,
            OpCode::CreateTtl if mode.is_ttl() => tree::ttl_owner(ttl),
            // A createTTL with a plain mode and a negative TTL passes every check, and the
            // server then fails to apply it: its request thread dies and the server stops.
            OpCode::CreateTtl => return Err(ErrorCode::SystemError),
            _ if mode.is_ephemeral() => self.session,
            _ => 0,
        };
        let mut parent_after = parent.clone();
        parent_after.child_count += 1;
        if let Some(s) = parent_after.stat.as_mut() {
            s.cversion = new_cversion;
            s.pzxid = self.zxid;
        }
        self.changes.insert(key(parent_path), parent_after);
        let stat = Persisted {
            czxid: self.zxid,
            mzxid: self.zxid,
            ctime: self.time,
            mtime: self.time,
            pzxid: self.zxid,
            ephemeral_owner: record_owner,
            ..Persisted::default()
        };
        self.changes.insert(
            path.clone(),
            Record {
                stat: Some(stat),
                child_count: 0,
                acl: Arc::new(acl.clone()),
            },
        );
        Ok(TxnOp::Create {
            op: code,
            path,
            data: data.clone(),
            acl,
            owner,
            parent_cversion: new_cversion,
        })
    }

    /// `getParentPathAndValidate`: the parent, refusing the server's own nodes.
    fn parent_for_delete(path: &str) -> Result<&str, ErrorCode> {
        let Some(slash) = path.rfind('/') else {
            return Err(ErrorCode::BadArguments);
        };
        if path.contains('\0')
            || matches!(
                path,
                "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
            )
        {
            return Err(ErrorCode::BadArguments);
        }
        Ok(&path[..slash])
    }

    fn delete(&mut self, path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
        let parent_path = Self::parent_for_delete(path)?;
        let parent = self.record(parent_path)?;
        self.check_acl(&parent, perms::DELETE)?;
        let node = self.record(path)?;
        check_version(Self::stat(&node).version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let mut parent_after = parent;
        parent_after.child_count -= 1;
        if let Some(s) = parent_after.stat.as_mut() {
            s.pzxid = self.zxid;
        }
        self.changes.insert(key(parent_path), parent_after);
        self.changes.insert(
            path.to_owned(),
            Record {
                stat: None,
                child_count: -1,
                acl: Arc::new(Vec::new()),
            },
        );
        Ok(TxnOp::Delete {
            path: path.to_owned(),
        })
    }

    /// The server's own deletion of an empty container or expired TTL node.
    pub(crate) fn delete_container(&mut self, path: &str) -> Result<TxnOp, ErrorCode> {
        let parent_path = Self::parent_for_delete(path)?;
        let node = self.record(path)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if tree::kind_of(
            Self::stat(&node).ephemeral_owner,
            self.tree.extended_types(),
        ) == Kind::Normal
        {
            return Err(ErrorCode::BadVersion);
        }
        let mut parent = self.record(parent_path)?;
        parent.child_count -= 1;
        if let Some(s) = parent.stat.as_mut() {
            s.pzxid = self.zxid;
        }
        self.changes.insert(key(parent_path), parent);
        Ok(TxnOp::Delete {
            path: path.to_owned(),
        })
    }

    fn set_data(&mut self, path: &str, data: &Bytes, version: i32) -> Result<TxnOp, ErrorCode> {
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.record(path)?;
        self.check_acl(&node, perms::WRITE)?;
        let current = Self::stat(&node).version;
        check_version(current, version)?;
        let new_version = current.wrapping_add(1);
        if let Some(s) = node.stat.as_mut() {
            s.version = new_version;
            s.mtime = self.time;
            s.mzxid = self.zxid;
        }
        self.changes.insert(path.to_owned(), node);
        Ok(TxnOp::SetData {
            path: path.to_owned(),
            data: data.clone(),
            version: new_version,
        })
    }

    pub(crate) fn set_acl(
        &mut self,
        path: &str,
        acl_in: &[Acl],
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let acl = acl::fixup(self.ids, acl_in)?;
        let mut node = self.record(path)?;
        self.check_acl(&node, perms::ADMIN)?;
        let current = Self::stat(&node).aversion;
        check_version(current, version)?;
        let new_version = current.wrapping_add(1);
        if let Some(s) = node.stat.as_mut() {
            s.aversion = new_version;
        }
        self.changes.insert(path.to_owned(), node);
        Ok(TxnOp::SetAcl {
            path: path.to_owned(),
            acl,
            version: new_version,
        })
    }

    fn check(&mut self, path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.record(path)?;
        self.check_acl(&node, perms::READ)?;
        check_version(Self::stat(&node).version, version)?;
        Ok(TxnOp::Check {
            path: path.to_owned(),
        })
    }
}

/// The root's change record is kept under "/" like its node.
fn key(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

/// `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(())
    }
}
