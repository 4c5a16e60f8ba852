//! Service discovery in Curator's `curator-x-discovery` layout: registrations, queries, a
//! cache and a provider.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use zk_client::Error;
use zk_proto::consts::CreateMode;

use super::persistent::PersistentNode;
use super::reads::{Listing, list};
use super::tree::TreeCache;
use super::{Driver, Job};
use crate::discovery::{Picker, ServiceInstance, ServiceType, Strategy};

/// How many errors noted against an instance take it out of a provider's picks, and for
/// how long (Curator's `DownInstancePolicy` defaults).
pub const DOWN_THRESHOLD: u32 = 2;
/// See [`DOWN_THRESHOLD`].
pub const DOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Service discovery under one base path (Curator's `ServiceDiscovery`): instances are
/// `<base>/<name>/<id>` nodes holding Curator's JSON ([`ServiceInstance`]), so Curator's
/// services find ours and ours find theirs.
#[derive(Debug, Clone)]
pub struct ServiceDiscovery<D> {
    client: D,
    base: String,
}

impl<D: Driver> ServiceDiscovery<D> {
    /// Discovery under `base` (a path).
    pub fn new(client: &D, base: &str) -> ServiceDiscovery<D> {
        ServiceDiscovery {
            client: client.clone(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn service(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Registers `instance` and returns once its node exists. A `DYNAMIC` instance is an
    /// ephemeral node kept in place ([`PersistentNode`]): it comes back after its session
    /// expires or someone deletes it, as Curator re-registers. `STATIC` and `PERMANENT`
    /// ones are persistent nodes. A registration time of 0 is set to now.
    pub fn register(&self, instance: &ServiceInstance) -> D::Call<Registration<D>> {
        let mode = match instance.service_type {
            ServiceType::Dynamic => CreateMode::Ephemeral,
            ServiceType::Static | ServiceType::Permanent => CreateMode::Persistent,
            ServiceType::DynamicSequential => {
                return self.client.call(Job::ready(Err(Error::InvalidRequest(
                    "DYNAMIC_SEQUENTIAL instances are not registered here: use DYNAMIC",
                ))));
            }
        };
        if instance.name.is_empty()
            || instance.id.is_empty()
            || instance.name.contains('/')
            || instance.id.contains('/')
        {
            return self.client.call(Job::ready(Err(Error::InvalidRequest(
                "an instance's name and id are node names: not empty, no '/'",
            ))));
        }
        let mut instance = instance.clone();
        if instance.registration_time_utc == 0 {
            instance.registration_time_utc =
                i64::try_from(self.client.wall_clock().as_millis()).unwrap_or(i64::MAX);
        }
        let path = format!("{}/{}", self.service(&instance.name), instance.id);
        let data = Bytes::from(instance.to_json());
        let job = super::persistent::start_job(&self.client, &path, mode, 0, data).and_then(
            move |node| {
                Ok(Registration {
                    node,
                    instance: Mutex::new(instance),
                })
            },
        );
        self.client.call(job)
    }

    /// The names of the services registered.
    pub fn query_for_names(&self) -> D::Call<Vec<String>> {
        let job = list(Listing::new(&self.base).names_only())
            .and_then(|found| Ok(found.into_iter().map(|(name, _)| name).collect()));
        self.client.call(job)
    }

    /// Every instance of service `name` (none when the service is unknown). A node that
    /// holds no instance Curator could read fails the call with [`Error::BadData`].
    pub fn query_for_instances(&self, name: &str) -> D::Call<Vec<ServiceInstance>> {
        let dir = self.service(name);
        let job = list(Listing::new(&dir)).and_then(move |found| {
            found
                .into_iter()
                .map(|(child, data)| decode(&format!("{dir}/{child}"), &data))
                .collect()
        });
        self.client.call(job)
    }

    /// Instance `id` of service `name`, if registered.
    pub fn query_for_instance(&self, name: &str, id: &str) -> D::Call<Option<ServiceInstance>> {
        let path = format!("{}/{id}", self.service(name));
        let job = Job::op(zk_client::op::get_data(&path, false)).then(move |r| match r {
            Ok((data, _)) => decode(&path, &data).map(Some),
            Err(e) if e.is(zk_proto::ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(e),
        });
        self.client.call(job)
    }

    /// A local mirror of service `name`'s instances, kept current by watches (Curator's
    /// `ServiceCache`); returns once it is loaded. An unknown service mirrors no instance
    /// until one registers.
    pub fn cache(&self, name: &str) -> D::Call<ServiceCache<D>> {
        let root = self.service(name);
        let job = TreeCache::start_job(&self.client, &root)
            .and_then(move |tree| Ok(ServiceCache { tree, root }));
        self.client.call(job)
    }

    /// A provider of service `name`'s instances picking by `strategy` (Curator's
    /// `ServiceProvider`), over a [`ServiceCache`]; returns once the cache is loaded.
    pub fn provider(&self, name: &str, strategy: Strategy) -> D::Call<ServiceProvider<D>> {
        let root = self.service(name);
        let client = self.client.clone();
        let job = TreeCache::start_job(&self.client, &root).and_then(move |tree| {
            Ok(ServiceProvider {
                client,
                cache: ServiceCache { tree, root },
                picker: Mutex::new(Picker::new(strategy)),
                down: Mutex::new(HashMap::new()),
            })
        });
        self.client.call(job)
    }
}

fn decode(path: &str, data: &[u8]) -> zk_client::Result<ServiceInstance> {
    ServiceInstance::from_json(data).map_err(|why| Error::BadData {
        path: path.to_string(),
        why,
    })
}

/// A registered instance (what [`ServiceDiscovery::register`] gives): its node is kept in
/// place while this lives. Dropping it unregisters in the background;
/// [`Registration::unregister`] waits for the server's confirmation.
#[derive(Debug)]
pub struct Registration<D> {
    node: PersistentNode<D>,
    instance: Mutex<ServiceInstance>,
}

impl<D: Driver> Registration<D> {
    /// The instance as registered (or last updated).
    pub fn instance(&self) -> ServiceInstance {
        self.instance
            .lock()
            .map(|i| i.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Writes a new version of the instance (Curator's `updateService`): same name and
    /// id, anything else may change. Refused for another name or id.
    pub fn update(&self, instance: &ServiceInstance) -> zk_client::Result<()> {
        let mut current = self.instance.lock().unwrap_or_else(|e| e.into_inner());
        if current.name != instance.name || current.id != instance.id {
            return Err(Error::InvalidRequest(
                "an update keeps the instance's name and id: register the other one",
            ));
        }
        let mut next = instance.clone();
        next.registration_time_utc = current.registration_time_utc;
        self.node.set_data(Bytes::from(next.to_json()));
        *current = next;
        Ok(())
    }

    /// The node that holds the registration.
    pub fn node(&self) -> &PersistentNode<D> {
        &self.node
    }

    /// Unregisters: deletes the instance's node and waits for the server's confirmation.
    pub fn unregister(self) -> D::Call<()> {
        self.node.close()
    }
}

/// A service's instances mirrored locally (Curator's `ServiceCache`).
pub struct ServiceCache<D> {
    tree: TreeCache<D>,
    root: String,
}

impl<D> std::fmt::Debug for ServiceCache<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCache")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> ServiceCache<D> {
    /// The instances now, by id order. A node that holds no readable instance is left out
    /// (it is listed by [`ServiceCache::unreadable`]).
    pub fn instances(&self) -> Vec<ServiceInstance> {
        self.read().0
    }

    /// The instance nodes whose data is no instance Curator could read, with why.
    pub fn unreadable(&self) -> Vec<(String, String)> {
        self.read().1
    }

    fn read(&self) -> (Vec<ServiceInstance>, Vec<(String, String)>) {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for child in self.tree.children(&self.root) {
            let path = format!("{}/{child}", self.root);
            if let Some(node) = self.tree.get(&path) {
                match ServiceInstance::from_json(&node.data) {
                    Ok(i) => good.push(i),
                    Err(why) => bad.push((path, why)),
                }
            }
        }
        (good, bad)
    }
}

/// Picks an instance of a service (Curator's `ServiceProvider`): over a [`ServiceCache`],
/// leaving out disabled instances and those noted down ([`ServiceProvider::note_error`]:
/// [`DOWN_THRESHOLD`] errors take one out for [`DOWN_TIMEOUT`], as Curator's
/// `DownInstancePolicy` does).
pub struct ServiceProvider<D> {
    client: D,
    cache: ServiceCache<D>,
    picker: Mutex<Picker>,
    /// Errors noted by instance id: how many, and when the first was (wall clock).
    down: Mutex<HashMap<String, (u32, Duration)>>,
}

impl<D> std::fmt::Debug for ServiceProvider<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> ServiceProvider<D> {
    /// One instance, picked by the strategy among those enabled and not noted down;
    /// `None` when there is none.
    pub fn get_instance(&self) -> Option<ServiceInstance> {
        let available = self.all_instances();
        let random = D::OS.unique_id().map_or(0, |id| {
            u64::from_str_radix(id.get(..16).unwrap_or("0"), 16).unwrap_or(0)
        });
        let mut picker = self.picker.lock().unwrap_or_else(|e| e.into_inner());
        picker.pick(&available, random).cloned()
    }

    /// Every instance a pick may return now.
    pub fn all_instances(&self) -> Vec<ServiceInstance> {
        let now = self.client.wall_clock();
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.retain(|_, (_, first)| now.saturating_sub(*first) < DOWN_TIMEOUT);
        self.cache
            .instances()
            .into_iter()
            .filter(|i| i.enabled)
            .filter(|i| down.get(&i.id).is_none_or(|(n, _)| *n < DOWN_THRESHOLD))
            .collect()
    }

    /// Notes an error talking to `instance` (Curator's `noteError`).
    pub fn note_error(&self, instance: &ServiceInstance) {
        let now = self.client.wall_clock();
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let entry = down.entry(instance.id.clone()).or_insert((0, now));
        entry.0 += 1;
    }

    /// The cache under the provider.
    pub fn cache(&self) -> &ServiceCache<D> {
        &self.cache
    }
}
