//! The README's example of testing code against zk-sim with the async client, as written.

use std::time::Duration;

#[tokio::test]
async fn my_code_against_a_model_server() {
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let client = zk_tokio::Client::connect(&zk.connect_string())
        .await
        .unwrap();
    client
        .create("/jobs", "", &zk_tokio::CreateOptions::persistent())
        .await
        .unwrap();
    // ... the code under test ...
    // Faults go through the model: here the server expires every session now.
    let before = client.session_id();
    zk.with(|model, now| {
        for id in model.sessions() {
            model.expire_session(now, id)
        }
    });
    // The client learns it when it reconnects, starts a new session, and finds the node.
    tokio::time::timeout(Duration::from_secs(10), async {
        while client.session_id() == before || client.state() != zk_tokio::SessionState::Connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a new session within 10 s");
    assert!(client.exists("/jobs").await.unwrap().is_some());
}
