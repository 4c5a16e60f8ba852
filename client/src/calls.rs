//! The calls both clients have, written once for either calling convention.

/// Writes the calls every client has on top of its few primitives, in the driver's calling
/// convention: `client_calls!(callbacks on "the callback task", [async], [.await])` for an
/// async client, `client_calls!(callbacks on "the callback thread", [], [])` for a blocking
/// one. The quoted place is where the driver runs watch callbacks, for the docs.
///
/// The caller's module has `Client`, `Transaction` (fields `client`, `ops`), `OneshotWatcher`,
/// `PersistentWatcher` and `WatchHandle`; its `Client` has the field
/// `default_acl: Arc<[Acl]>` and these primitives (each `async` on an async client), which
/// own the watch from the moment they return, also when the reply is an error:
///
/// - `call(&self, Request) -> Result<Reply>`;
/// - `call_watch(&self, Request) -> Result<(Reply, OneshotWatcher)>`;
/// - `call_watch_fn(&self, Request, impl FnOnce(WatchedEvent) + Send + 'static) -> Result<Reply>`;
/// - `call_add_watch(&self, Request) -> Result<(Reply, PersistentWatcher)>`;
/// - `call_add_watch_fn(&self, Request, impl FnMut(WatchedEvent) + Send + 'static) -> Result<(Reply, WatchHandle)>`.
///
/// The operations come from [`for_each_operation!`](crate::for_each_operation).
#[doc(hidden)]
#[macro_export]
macro_rules! client_calls {
    (callbacks on $on:literal, [$($async:tt)*], [$($await:tt)*]) => {
        $crate::for_each_operation!([$crate::client_calls] [@operations [$($async)*] [$($await)*]]);

        impl Client {
            /// Submits an operation and decodes its reply; one that makes its parents runs
            /// as a plan.
            pub(crate) $($async)* fn run<T>(&self, op: $crate::Op<T>) -> $crate::Result<T> {
                if op.makes_parents() {
                    return self.run_plan(op.into_plan()) $($await)*;
                }
                let (request, decode) = op.into_parts();
                decode(self.call(request) $($await)* ?)
            }

            /// Runs a multi-step operation to its end; a step's server error names the node
            /// of that step.
            pub(crate) $($async)* fn run_plan<P: $crate::plan::Plan>(
                &self,
                mut plan: P,
            ) -> $crate::Result<P::Output> {
                while let Some(request) = plan.next_request() {
                    let path = request.path().map(str::to_owned);
                    let reply = self.call(request) $($await)* ?;
                    plan.complete(reply).map_err(|e| $crate::Error::at(e, path.as_deref()))?;
                }
                plan.finish()
            }

            /// The ACL given to nodes created without one (the builder's `default_acl`,
            /// open to everyone unless set).
            pub fn default_acl(&self) -> &[$crate::__proto::records::Acl] {
                &self.default_acl
            }

            /// Creates `path` and any missing parents (persistent, with the default ACL). An
            /// existing node is not an error.
            #[doc(alias = "ensure_path")]
            pub $($async)* fn create_all(
                &self,
                path: &str,
                data: impl Into<$crate::__bytes::Bytes>,
            ) -> $crate::Result<()> {
                let plan = $crate::plan::CreateAll::new(path, data.into(), &self.default_acl);
                self.run_plan(plan) $($await)*
            }

            /// Deletes `path` and everything under it, deepest first, and returns how many
            /// nodes went. A missing node is not an error. Not atomic: a failure (an ACL, a
            /// lost connection) leaves what was not deleted yet.
            #[doc(alias = "delete_recursive")]
            pub $($async)* fn delete_all(&self, path: &str) -> $crate::Result<usize> {
                self.run_plan($crate::plan::DeleteAll::new(path)) $($await)*
            }

            /// Like [`Client::exists`], and a watcher that fires once when the node is
            /// created, changed or deleted.
            pub $($async)* fn exists_watch(
                &self,
                path: &str,
            ) -> $crate::Result<(Option<$crate::__proto::Stat>, OneshotWatcher)> {
                let (request, decode) = $crate::op::exists(path, true).into_parts();
                let (reply, watcher) = self.call_watch(request) $($await)* ?;
                Ok((decode(reply).map_err(|e| e.at_path(path))?, watcher))
            }

            /// Like [`Client::get_data`], and a watcher that fires once when the data changes
            /// or the node is deleted.
            pub $($async)* fn get_data_watch(
                &self,
                path: &str,
            ) -> $crate::Result<($crate::__bytes::Bytes, $crate::__proto::Stat, OneshotWatcher)> {
                let (request, decode) = $crate::op::get_data(path, true).into_parts();
                let (reply, watcher) = self.call_watch(request) $($await)* ?;
                let (data, stat) = decode(reply).map_err(|e| e.at_path(path))?;
                Ok((data, stat, watcher))
            }

            /// Like [`Client::get_children2`], and a watcher that fires once when the
            /// children change or the node is deleted.
            pub $($async)* fn get_children_watch(
                &self,
                path: &str,
            ) -> $crate::Result<(Vec<String>, $crate::__proto::Stat, OneshotWatcher)> {
                let (request, decode) = $crate::op::get_children2(path, true).into_parts();
                let (reply, watcher) = self.call_watch(request) $($await)* ?;
                let (children, stat) = decode(reply).map_err(|e| e.at_path(path))?;
                Ok((children, stat, watcher))
            }

            #[doc = concat!("Like [`Client::exists`], calling `f` on ", $on, " when the node is")]
            /// created, changed or deleted (Kazoo's `exists(path, watch=f)`). `f` runs at most
            /// once: with the change, or with a final `EventType::None` event if the session
            /// ends first.
            pub $($async)* fn exists_watch_fn(
                &self,
                path: &str,
                f: impl FnOnce($crate::__proto::session::WatchedEvent) + Send + 'static,
            ) -> $crate::Result<Option<$crate::__proto::Stat>> {
                let (request, decode) = $crate::op::exists(path, true).into_parts();
                decode(self.call_watch_fn(request, f) $($await)* ?).map_err(|e| e.at_path(path))
            }

            #[doc = concat!("Like [`Client::get_data`], calling `f` on ", $on, " when the data")]
            /// changes or the node is deleted (Kazoo's `get(path, watch=f)`); at most once, as
            /// for [`Client::exists_watch_fn`].
            pub $($async)* fn get_data_watch_fn(
                &self,
                path: &str,
                f: impl FnOnce($crate::__proto::session::WatchedEvent) + Send + 'static,
            ) -> $crate::Result<($crate::__bytes::Bytes, $crate::__proto::Stat)> {
                let (request, decode) = $crate::op::get_data(path, true).into_parts();
                decode(self.call_watch_fn(request, f) $($await)* ?).map_err(|e| e.at_path(path))
            }

            #[doc = concat!("Like [`Client::get_children2`], calling `f` on ", $on, " when the")]
            /// children change or the node is deleted (Kazoo's `get_children(path,
            /// watch=f)`); at most once, as for [`Client::exists_watch_fn`].
            pub $($async)* fn get_children_watch_fn(
                &self,
                path: &str,
                f: impl FnOnce($crate::__proto::session::WatchedEvent) + Send + 'static,
            ) -> $crate::Result<(Vec<String>, $crate::__proto::Stat)> {
                let (request, decode) = $crate::op::get_children2(path, true).into_parts();
                decode(self.call_watch_fn(request, f) $($await)* ?).map_err(|e| e.at_path(path))
            }

            /// A persistent watch on `path` (or, with `AddWatchMode::PersistentRecursive`, on
            /// it and every descendant) that delivers every event, in order, until it is
            /// dropped or removed.
            pub $($async)* fn add_watch(
                &self,
                path: &str,
                mode: $crate::__proto::consts::AddWatchMode,
            ) -> $crate::Result<PersistentWatcher> {
                let (request, decode) = $crate::op::add_watch(path, mode).into_parts();
                let (reply, watcher) = self.call_add_watch(request) $($await)* ?;
                decode(reply).map_err(|e| e.at_path(path))?;
                Ok(watcher)
            }

            #[doc = concat!("A persistent (or recursive) watch calling `f` with every event, in order, on ", $on, ",")]
            /// until the returned handle is dropped or the watch ends.
            pub $($async)* fn add_watch_fn(
                &self,
                path: &str,
                mode: $crate::__proto::consts::AddWatchMode,
                f: impl FnMut($crate::__proto::session::WatchedEvent) + Send + 'static,
            ) -> $crate::Result<WatchHandle> {
                let (request, decode) = $crate::op::add_watch(path, mode).into_parts();
                let (reply, handle) = self.call_add_watch_fn(request, f) $($await)* ?;
                decode(reply).map_err(|e| e.at_path(path))?;
                Ok(handle)
            }
        }

        impl Transaction {
            $crate::transaction_builder_methods!();

            /// Applies the operations. On failure nothing was applied and the error names the
            /// failing operation.
            pub $($async)* fn commit(
                self,
            ) -> $crate::Result<Vec<$crate::__proto::records::OpResult>> {
                self.ops.validate()?;
                if self.ops.is_empty() {
                    return Ok(Vec::new());
                }
                let paths = self.ops.paths();
                let done = self.client.run($crate::op::transaction(self.ops)) $($await)*;
                done.map_err(|e| e.in_transaction(&paths))
            }
        }
    };

    (@operations $async:tt $await:tt $(
        $(#[$doc:meta])*
        $name:ident ( $($arg:ident : $ty:ty),* ) -> $out:ty [$acl:ident, $at:expr] $op:expr ;
    )*) => {
        impl Client {
            $(
                $crate::client_calls!(
                    @method $async $await $(#[$doc])* $name($($arg: $ty),*) -> $out [$acl, $at] $op
                );
            )*
        }
    };

    (@method [$($async:tt)*] [$($await:tt)*]
        $(#[$doc:meta])*
        $name:ident ( $($arg:ident : $ty:ty),* ) -> $out:ty [$acl:ident, $at:expr] $op:expr
    ) => {
        $(#[$doc])*
        pub $($async)* fn $name(&self, $($arg: $ty),*) -> $crate::Result<$out> {
            let $acl: &[$crate::__proto::records::Acl] = &self.default_acl;
            let _ = $acl;
            self.run($op) $($await)* .map_err(|e| $crate::Error::at(e, $at))
        }
    };
}
