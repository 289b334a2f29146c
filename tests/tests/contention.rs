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
