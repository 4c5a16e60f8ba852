//! Service discovery in the layout of Curator's `curator-x-discovery`: what a service
//! instance is, how it is written to and read from its node, and how a provider picks one.
//! The handles ([`crate::handles::ServiceDiscovery`]) run it on a client.
//!
//! Each instance is a node `<base path>/<service name>/<instance id>` holding the instance
//! as JSON, field by field as Curator 5.4 writes it (its default, "compatible" form):
//!
//! ```json
//! {"name":"api","id":"a1","address":"10.0.0.7","port":8080,"sslPort":null,
//!  "payload":null,"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC",
//!  "uriSpec":{"parts":[{"value":"scheme","variable":true}]}}
//! ```
//!
//! `enabled` is written only when it is false (Curator's compatible form leaves it out,
//! and its reader takes a missing one as true). Reading is as lenient as Curator's: unknown
//! fields are ignored and missing ones take Curator's defaults; a field of the wrong type
//! is an error that names it. The payload is kept as JSON: Curator writes an object with
//! an `"@class"` member for a Java class, a bare value for a string or number.
//! `DYNAMIC` instances are ephemeral nodes, `STATIC` and `PERMANENT` persistent ones, as in
//! Curator; `DYNAMIC_SEQUENTIAL` is read but not registered here.

use serde_json::Map;
/// A JSON value: what an instance's payload is (`serde_json`'s, re-exported so a caller
/// needs no dependency of its own).
pub use serde_json::Value;

/// How long an instance's node lives (Curator's `ServiceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceType {
    /// An ephemeral node: gone with the registering session.
    #[default]
    Dynamic,
    /// A persistent node.
    Static,
    /// A persistent node (Curator's discovery server tells it from `Static`).
    Permanent,
    /// An ephemeral sequential node (read only: not registered by this crate).
    DynamicSequential,
}

impl ServiceType {
    /// Curator's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Dynamic => "DYNAMIC",
            ServiceType::Static => "STATIC",
            ServiceType::Permanent => "PERMANENT",
            ServiceType::DynamicSequential => "DYNAMIC_SEQUENTIAL",
        }
    }

    fn parse(s: &str) -> Option<ServiceType> {
        Some(match s {
            "DYNAMIC" => ServiceType::Dynamic,
            "STATIC" => ServiceType::Static,
            "PERMANENT" => ServiceType::Permanent,
            "DYNAMIC_SEQUENTIAL" => ServiceType::DynamicSequential,
            _ => return None,
        })
    }
}

/// One part of a URI template (Curator's `UriSpec.Part`): literal text, or the name of a
/// variable (`{scheme}`, `{address}`, `{port}`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriPart {
    /// The text, or the variable's name.
    pub value: String,
    /// Whether it is a variable.
    pub variable: bool,
}

/// A registered instance of a service (Curator's `ServiceInstance`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance {
    /// The service's name.
    pub name: String,
    /// This instance's id, unique within the service.
    pub id: String,
    /// Where it listens.
    pub address: Option<String>,
    /// Its port.
    pub port: Option<i32>,
    /// Its TLS port.
    pub ssl_port: Option<i32>,
    /// Anything else, as JSON (`Value::Null` for none).
    pub payload: Value,
    /// When it registered, in milliseconds since the Unix epoch.
    pub registration_time_utc: i64,
    /// How long its node lives.
    pub service_type: ServiceType,
    /// A URI template, if any.
    pub uri_spec: Option<Vec<UriPart>>,
    /// Whether providers may pick it.
    pub enabled: bool,
}

impl ServiceInstance {
    /// An instance `id` of service `name`, dynamic, enabled, with nothing else set.
    pub fn new(name: &str, id: &str) -> ServiceInstance {
        ServiceInstance {
            name: name.to_string(),
            id: id.to_string(),
            address: None,
            port: None,
            ssl_port: None,
            payload: Value::Null,
            registration_time_utc: 0,
            service_type: ServiceType::Dynamic,
            uri_spec: None,
            enabled: true,
        }
    }

    /// The instance as Curator writes it, its fields in Curator's order.
    pub fn to_json(&self) -> Vec<u8> {
        let text = |s: &str| Value::String(s.to_string());
        let opt_int = |v: Option<i32>| v.map_or(Value::Null, Value::from);
        let uri = self.uri_spec.as_ref().map_or(Value::Null, |parts| {
            let parts: Vec<Value> = parts
                .iter()
                .map(|p| {
                    let mut m = Map::new();
                    m.insert("value".into(), text(&p.value));
                    m.insert("variable".into(), Value::Bool(p.variable));
                    Value::Object(m)
                })
                .collect();
            let mut m = Map::new();
            m.insert("parts".into(), Value::Array(parts));
            Value::Object(m)
        });
        let mut fields: Vec<(&str, Value)> = vec![
            ("name", text(&self.name)),
            ("id", text(&self.id)),
            ("address", self.address.as_deref().map_or(Value::Null, text)),
            ("port", opt_int(self.port)),
            ("sslPort", opt_int(self.ssl_port)),
            ("payload", self.payload.clone()),
            (
                "registrationTimeUTC",
                Value::from(self.registration_time_utc),
            ),
            ("serviceType", text(self.service_type.as_str())),
            ("uriSpec", uri),
        ];
        if !self.enabled {
            fields.push(("enabled", Value::Bool(false)));
        }
        // serde_json's map sorts its keys: write the object in Curator's order by hand.
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::String((*k).into()), v))
            .collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    }

    /// An instance read from its node's JSON, leniently as Curator reads it; an error names
    /// the field that does not fit.
    pub fn from_json(data: &[u8]) -> Result<ServiceInstance, String> {
        let value: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(m) = value else {
            return Err("not a JSON object".into());
        };
        let string = |k: &str| -> Result<Option<String>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("\"{k}\" is {other}, not a string")),
            }
        };
        let int = |k: &str| -> Result<Option<i64>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| format!("\"{k}\" is {n}, not an integer")),
                Some(other) => Err(format!("\"{k}\" is {other}, not a number")),
            }
        };
        let port = |k: &str| -> Result<Option<i32>, String> {
            int(k)?
                .map(|p| i32::try_from(p).map_err(|_| format!("\"{k}\" is {p}, out of range")))
                .transpose()
        };
        let service_type = match string("serviceType")? {
            None => ServiceType::Dynamic,
            Some(s) => ServiceType::parse(&s)
                .ok_or_else(|| format!("\"serviceType\" is {s:?}, not one Curator knows"))?,
        };
        let uri_spec = match m.get("uriSpec") {
            None | Some(Value::Null) => None,
            Some(Value::Object(u)) => {
                let parts = match u.get("parts") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .map(|p| {
                            let value = p.get("value").and_then(Value::as_str).unwrap_or("");
                            let variable =
                                p.get("variable").and_then(Value::as_bool).unwrap_or(false);
                            UriPart {
                                value: value.to_string(),
                                variable,
                            }
                        })
                        .collect(),
                    Some(other) => return Err(format!("\"uriSpec.parts\" is {other}")),
                };
                Some(parts)
            }
            Some(other) => return Err(format!("\"uriSpec\" is {other}, not an object")),
        };
        let enabled = match m.get("enabled") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(format!("\"enabled\" is {other}, not a boolean")),
        };
        Ok(ServiceInstance {
            name: string("name")?.unwrap_or_default(),
            id: string("id")?.unwrap_or_default(),
            address: string("address")?,
            port: port("port")?,
            ssl_port: port("sslPort")?,
            payload: m.get("payload").cloned().unwrap_or(Value::Null),
            registration_time_utc: int("registrationTimeUTC")?.unwrap_or(0),
            service_type,
            uri_spec,
            enabled,
        })
    }
}

/// How a provider picks one instance of those available (Curator's
/// `ProviderStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Each in turn (Curator's default).
    #[default]
    RoundRobin,
    /// Any, at random.
    Random,
    /// The one picked last, while it is still there; otherwise the inner strategy picks
    /// another (round-robin or random).
    Sticky {
        /// Whether the inner strategy is random (else round-robin).
        random: bool,
    },
}

/// A provider's picking state, pure: fed the instances available and a random number when
/// it picks.
#[derive(Debug, Clone, Default)]
pub struct Picker {
    strategy: Strategy,
    turn: u64,
    sticky: Option<String>,
}

impl Picker {
    /// A picker with `strategy`.
    pub fn new(strategy: Strategy) -> Picker {
        Picker {
            strategy,
            turn: 0,
            sticky: None,
        }
    }

    /// Picks one of `available` (by id, so a sticky choice survives a new listing);
    /// `random` is a fresh random number. `None` when nothing is available.
    pub fn pick<'a>(
        &mut self,
        available: &'a [ServiceInstance],
        random: u64,
    ) -> Option<&'a ServiceInstance> {
        if available.is_empty() {
            self.sticky = None;
            return None;
        }
        let inner = |turn: &mut u64, random_inner: bool| {
            if random_inner {
                (random % available.len() as u64) as usize
            } else {
                let i = (*turn % available.len() as u64) as usize;
                *turn = turn.wrapping_add(1);
                i
            }
        };
        match self.strategy {
            Strategy::RoundRobin => Some(&available[inner(&mut self.turn, false)]),
            Strategy::Random => Some(&available[inner(&mut self.turn, true)]),
            Strategy::Sticky { random } => {
                if let Some(id) = &self.sticky
                    && let Some(same) = available.iter().find(|i| &i.id == id)
                {
                    return Some(same);
                }
                let chosen = &available[inner(&mut self.turn, random)];
                self.sticky = Some(chosen.id.clone());
                Some(chosen)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_reads_back_field_by_field() {
        let mut i = ServiceInstance::new("api", "a1");
        i.address = Some("10.0.0.7".into());
        i.port = Some(8080);
        i.payload = Value::String("blue".into());
        i.registration_time_utc = 1_700_000_000_000;
        i.service_type = ServiceType::Static;
        i.uri_spec = Some(vec![UriPart {
            value: "scheme".into(),
            variable: true,
        }]);
        let json = String::from_utf8(i.to_json()).unwrap();
        assert!(
            json.starts_with(r#"{"name":"api","id":"a1","address":"10.0.0.7","port":8080,"sslPort":null,"payload":"blue","#),
            "{json}"
        );
        assert!(!json.contains("enabled"), "{json}");
        assert_eq!(ServiceInstance::from_json(json.as_bytes()), Ok(i.clone()));
        i.enabled = false;
        assert_eq!(ServiceInstance::from_json(&i.to_json()), Ok(i));
    }

    #[test]
    fn reading_is_lenient_where_curator_is_and_names_what_does_not_fit() {
        let minimal = ServiceInstance::from_json(br#"{"name":"n","future":1}"#).unwrap();
        assert_eq!(minimal.id, "");
        assert!(minimal.enabled);
        assert_eq!(minimal.service_type, ServiceType::Dynamic);
        let e = ServiceInstance::from_json(br#"{"name":"n","port":"80"}"#).unwrap_err();
        assert!(e.contains("\"port\""), "{e}");
        let e = ServiceInstance::from_json(br#"{"serviceType":"ODD"}"#).unwrap_err();
        assert!(e.contains("serviceType"), "{e}");
        assert!(ServiceInstance::from_json(b"[1]").is_err());
        assert!(ServiceInstance::from_json(b"\xff").is_err());
    }

    #[test]
    fn strategies_pick_as_curators_do() {
        let all: Vec<ServiceInstance> = ["a", "b", "c"]
            .iter()
            .map(|id| ServiceInstance::new("s", id))
            .collect();
        let mut rr = Picker::new(Strategy::RoundRobin);
        let ids: Vec<&str> = (0..4)
            .map(|_| rr.pick(&all, 0).unwrap().id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "a"]);
        let mut random = Picker::new(Strategy::Random);
        assert_eq!(random.pick(&all, 7).unwrap().id, "b");
        let mut sticky = Picker::new(Strategy::Sticky { random: false });
        assert_eq!(sticky.pick(&all, 0).unwrap().id, "a");
        assert_eq!(sticky.pick(&all, 0).unwrap().id, "a");
        // Its choice left: another is picked and kept.
        let rest = &all[1..];
        let next = sticky.pick(rest, 0).unwrap().id.clone();
        assert_eq!(sticky.pick(rest, 0).unwrap().id, next);
        assert!(sticky.pick(&[], 0).is_none());
    }
}
