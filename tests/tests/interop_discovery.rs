//! Service discovery with Curator's `curator-x-discovery`, both ways, on one real server:
//! a service Curator registered is found by ours with every field of its instance JSON
//! read back as Curator wrote it, and one of ours is found by Curator's `ServiceDiscovery`
//! (each field as Curator read it) and picked by its `ServiceProvider`.
//!
//! Curator comes from Debian's `libcurator-recipes-java` and `libcurator-discovery-java`;
//! without them the test says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as
//! `.ci/run` does.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::{
    JsonValue, ServiceDiscovery, ServiceInstance, ServiceType, Strategy, UriPart,
};

fn uri_parts(spec: &[(&str, bool)]) -> Vec<UriPart> {
    spec.iter()
        .map(|(value, variable)| UriPart {
            value: value.to_string(),
            variable: *variable,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_registered_by_curator_and_by_us_are_found_by_each_other() {
    let Some(curator) =
        interop::Curator::compile_with("CuratorDiscoverySide", &[interop::DISCOVERY_JAR])
    else {
        return;
    };
    let base = "/interop-discovery/services";
    let c = client(&shared_server().connect_string()).await;
    c.create_all("/interop-discovery", "").await.unwrap();
    let mut side = curator
        .java("CuratorDiscoverySide")
        .args([shared_server().connect_string(), base.to_string()])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{base}-ready")).await;

    // Curator's instance, field by field.
    let discovery = ServiceDiscovery::new(&c, base);
    let names = discovery.query_for_names().await.unwrap();
    assert!(names.contains(&"curator-svc".to_string()), "{names:?}");
    let theirs = discovery.query_for_instances("curator-svc").await.unwrap();
    assert_eq!(theirs.len(), 1);
    let t = &theirs[0];
    assert_eq!(t.name, "curator-svc");
    assert_eq!(t.id, "c1");
    assert_eq!(t.address.as_deref(), Some("10.1.2.3"));
    assert_eq!(t.port, Some(7000));
    assert_eq!(t.ssl_port, Some(7443));
    assert_eq!(t.payload, JsonValue::String("curator-payload".into()));
    assert!(t.registration_time_utc > 1_600_000_000_000, "{t:?}");
    assert_eq!(t.service_type, ServiceType::Dynamic);
    assert!(t.enabled);
    assert_eq!(
        t.uri_spec,
        Some(uri_parts(&[
            ("scheme", true),
            ("://", false),
            ("address", true),
            (":", false),
            ("port", true),
        ]))
    );
    // The node is ephemeral, as Curator makes a DYNAMIC instance.
    let (_, stat) = c.get_data(&format!("{base}/curator-svc/c1")).await.unwrap();
    assert_ne!(stat.ephemeral_owner, 0);
    assert_eq!(
        discovery
            .query_for_instance("curator-svc", "c1")
            .await
            .unwrap(),
        Some(t.clone())
    );
    // A cache and a provider of ours see it too.
    let provider = discovery
        .provider("curator-svc", Strategy::RoundRobin)
        .await
        .unwrap();
    assert_eq!(provider.get_instance().map(|i| i.id), Some("c1".into()));

    // Ours, for Curator to find.
    let mut mine = ServiceInstance::new("rust-svc", "r1");
    mine.address = Some("10.9.8.7".into());
    mine.port = Some(9000);
    mine.payload = JsonValue::String("rust-payload".into());
    mine.uri_spec = Some(uri_parts(&[
        ("scheme", true),
        ("://", false),
        ("address", true),
        (":", false),
        ("port", true),
    ]));
    let registration = discovery.register(&mine).await.unwrap();
    let registered = registration.instance();
    let out = side.stdout.take().expect("the side's output");
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap();
            if line == "END" {
                break;
            }
            lines.push(line);
        }
        lines
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .expect("Curator reports what it found")
        .unwrap();
    let fields: BTreeMap<String, String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FIELD "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(fields["name"], "rust-svc", "{lines:?}");
    assert_eq!(fields["id"], "r1");
    assert_eq!(fields["address"], "10.9.8.7");
    assert_eq!(fields["port"], "9000");
    assert_eq!(fields["sslPort"], "null");
    assert_eq!(fields["payload"], "rust-payload");
    assert_eq!(
        fields["registrationTimeUTC"],
        registered.registration_time_utc.to_string()
    );
    assert_eq!(fields["serviceType"], "DYNAMIC");
    assert_eq!(fields["uri"], "http://10.9.8.7:9000");
    assert_eq!(fields["enabled"], "true");
    assert!(lines.contains(&"PROVIDED r1".to_string()), "{lines:?}");

    registration.unregister().await.unwrap();
    assert!(
        discovery
            .query_for_instances("rust-svc")
            .await
            .unwrap()
            .is_empty()
    );
    c.create(&format!("{base}-done"), "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || side.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    c.close().await;
}
