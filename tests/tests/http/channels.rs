//! Sales channels over HTTP: defined and changed keyed on their version, read back, each change
//! one `ChannelUpdated` event; bad input refused whole.

use http::Method;
use integration_tests::TestTable;
use serde_json::json;

use super::{call, keyed};

#[tokio::test]
async fn a_channel_is_created_changed_keyed_on_its_version_and_read_back_each_change_one_event() {
    let t = TestTable::new().await;
    let path = "/v1/channels/web-shop";
    assert_eq!(call(&t.store, Method::GET, path, None).await.status, 404);

    let created = call(
        &t.store,
        Method::PUT,
        path,
        Some(json!({"locations": ["paris", "berlin"], "safetyStock": 2, "expectedVersion": 0})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["locations"], json!(["paris", "berlin"]));
    assert_eq!((created.body["safetyStock"].as_i64(), created.body["version"].as_i64()), (Some(2), Some(1)));

    // The same again: 200, nothing written.
    let same =
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["paris", "berlin"], "safetyStock": 2})))
            .await;
    assert_eq!((same.status, same.body["version"].as_i64()), (200, Some(1)));
    // Another order of locations, keyed on version 1; then a stale version is refused.
    let changed = call(
        &t.store,
        Method::PUT,
        path,
        Some(json!({"locations": ["berlin", "paris"], "expectedVersion": 1})),
    )
    .await;
    assert_eq!((changed.status, changed.body["version"].as_i64()), (200, Some(2)), "{}", changed.body);
    assert_eq!(changed.body["safetyStock"].as_i64(), Some(0), "safetyStock defaults to 0");
    let stale =
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["madrid"], "expectedVersion": 1}))).await;
    assert_eq!((stale.status, stale.body["error"]["code"].as_str()), (409, Some("VERSION_CONFLICT")));
    assert_eq!(stale.body["error"]["details"]["currentVersion"].as_i64(), Some(2));
    let exists =
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["madrid"], "expectedVersion": 0}))).await;
    assert_eq!(exists.status, 409);

    let read = call(&t.store, Method::GET, path, None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, changed.body);
    let events = t.event_details("ChannelUpdated").await;
    assert_eq!(events.len(), 2, "one event per change: {events:?}");
    assert_eq!(events.iter().filter(|e| e["data"]["version"] == json!(2)).count(), 1);

    // A keyed retry of a change is answered again without a second change.
    let body = json!({"locations": ["lyon"], "safetyStock": 1});
    let first = keyed(&t.store, Method::PUT, "/v1/channels/stores", body.clone(), "k-1").await;
    let again = keyed(&t.store, Method::PUT, "/v1/channels/stores", body, "k-1").await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
}

#[tokio::test]
async fn bad_channels_are_refused_whole() {
    let t = TestTable::new().await;
    let path = "/v1/channels/web";
    for (body, field) in [
        (json!({"locations": []}), "locations"),
        (json!({"locations": ["a", "b", "a"]}), "locations[2]"),
        (json!({"locations": ["not valid"]}), "locations[0]"),
        (json!({"locations": ["a"], "safetyStock": -1}), "safetyStock"),
        (json!({"locations": ["a"], "safetyStock": 1_000_001}), "safetyStock"),
        (json!({"locations": ["a"], "expectedVersion": -1}), "expectedVersion"),
    ] {
        let refused = call(&t.store, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(
            refused.body["error"]["details"]["field"].as_str(),
            Some(field),
            "{body}: {}",
            refused.body
        );
    }
    let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
    assert_eq!(call(&t.store, Method::PUT, path, Some(json!({"locations": many}))).await.status, 400);
    assert_eq!(
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["a"], "extra": 1}))).await.status,
        400
    );
    assert_eq!(
        call(&t.store, Method::PUT, "/v1/channels/bad%20id", Some(json!({"locations": ["a"]}))).await.status,
        400
    );
    assert_eq!(call(&t.store, Method::GET, path, None).await.status, 404, "nothing was written");
    assert_eq!(t.event_details("ChannelUpdated").await.len(), 0);
}
