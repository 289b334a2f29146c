//! The store under the contention model (`integration_tests::contention`): what real DynamoDB
//! does to a hot item and DynamoDB Local does not (conflicting transactions are cancelled, an item
//! has a write budget). The store's retries must keep every answer right: no oversell, no
//! INSUFFICIENT_STOCK while a unit is left, every hold accounted for.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::SharedHttpClient;
use integration_tests::invariants::Snapshot;
use integration_tests::{set_stock, ContentionModel, ContentionParams, TestTable};
use inventory::domain::Line;
use inventory::Error;

#[tokio::test]
async fn a_hot_item_under_the_model_conflicts_and_still_sells_exactly_its_stock() {
    let t = TestTable::new().await;
    set_stock(&t.store, "HOT", "w1", 40).await;
    let model =
        ContentionModel::in_front_of(ContentionParams::default(), SharedHttpClient::new(t.faults.clone()));
    let store = Arc::new(t.store_via(model.clone()));
    let buyers: Vec<_> = (0..64)
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..2 {
                    let line = Line::new("HOT".into(), "w1".into(), 1);
                    let answer =
                        store.reserve(&format!("o-{b}-{i}"), vec![line], 900, &Default::default()).await;
                    let left = store.get_stock("HOT", "w1").await.expect("read").available;
                    answers.push((answer.map(|r| r.created), left));
                }
                answers
            })
        })
        .collect();
    let (mut sold, mut unavailable) = (0i64, 0u64);
    for buyer in buyers {
        for (answer, left_after) in buyer.await.unwrap() {
            match answer {
                Ok(created) => {
                    assert!(created);
                    sold += 1;
                }
                // Stock only goes down here: a unit left after the answer was there before it.
                Err(Error::InsufficientStock { .. }) => assert_eq!(left_after, 0, "a spurious rejection"),
                Err(Error::Unavailable { .. }) => unavailable += 1,
                Err(e) => panic!("unexpected answer: {e}"),
            }
        }
    }
    let counts = model.counts();
    assert!(counts.conflicts > 0, "the model cancelled no transaction: {counts:?}");
    // Every conflict was retried, but the last one of a request that gave up (503).
    assert!(store.stats().retries() + unavailable >= counts.conflicts, "{counts:?}");
    let item = t.store.get_stock("HOT", "w1").await.unwrap();
    assert_eq!((item.reserved, item.available), (sold, 40 - sold), "no oversell, every success held");
    assert!(sold + unavailable as i64 >= 40 || item.available == 0, "sold {sold}, 503 {unavailable}");
    let snapshot = Snapshot::take(&t).await;
    assert_eq!(snapshot.violations(), Vec::<String>::new());
    eprintln!("under the model ({}): sold {sold}, 503 {unavailable}, {counts:?}", model.params());
}

/// Issue 27: under the model's write budget per partition, a burst of reserves over 16 shards
/// whose shard and hold items share their sku's partition (the old layout, `STOCK#{sku}`) is
/// throttled where the same burst on the store's layout (each shard, with its holds, in a
/// partition of its own) is not. The transactions are a reserve's, with the store's own keys.
#[test]
fn shards_sharing_their_skus_partition_are_throttled_where_shards_in_partitions_of_their_own_are_not() {
    use inventory::store::items::{hold_key, shard_key, Item};
    use serde_json::{json, Value};

    fn key_json(key: &Item) -> Value {
        let s = |name: &str| key[name].as_s().unwrap().clone();
        json!({"pk": {"S": s("pk")}, "sk": {"S": s("sk")}})
    }
    fn reserve(keys: [Value; 6]) -> Value {
        let [order, take, reservation, order_reservation, outbox, hold] = keys;
        let put = |key: Value| json!({"Put": {"TableName": "t", "Item": key}});
        json!({"TransactItems": [put(order), {"Update": {"TableName": "t", "Key": take}}, put(reservation),
            put(order_reservation), put(outbox), put(hold)]})
    }
    let burst = |old_layout: bool| {
        let model = ContentionModel::new(ContentionParams::default());
        for i in 0..600u32 {
            let (order, shard) = (format!("o-{i}"), i % 16);
            let reservation =
                inventory::domain::Reservation::new(order.clone(), vec![], 900, chrono::Utc::now());
            let mut take = key_json(&shard_key("HOT", "w1", shard));
            let mut hold = key_json(&hold_key("HOT", "w1", shard, &reservation));
            if old_layout {
                take["pk"] = json!({"S": "STOCK#HOT"});
                hold["pk"] = json!({"S": "STOCK#HOT"});
            }
            let own = |pk: String| json!({"pk": {"S": pk}, "sk": {"S": "X"}});
            let tx = reserve([
                own(format!("ORDER#{order}")),
                take,
                own(format!("RES#{i}")),
                json!({"pk": {"S": format!("ORDER#{order}")}, "sk": {"S": "RES"}}),
                own(format!("OUTBOX#{i}")),
                hold,
            ]);
            if let Ok(Some((number, _))) = model.decide("TransactWriteItems", &tx) {
                model.release(number);
            }
        }
        model.counts()
    };
    let (old, new) = (burst(true), burst(false));
    // One partition's 1,000 units (a second's burst), 4 a reserve (the shard and the hold, 2
    // each): 250, and a few more for what refills while the burst is sent.
    assert!((250..300).contains(&old.transactions) && old.throttles == 600 - old.transactions, "{old:?}");
    assert_eq!((new.transactions, new.throttles), (600, 0), "{new:?}");
}
