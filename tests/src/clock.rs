//! A clock the test can move forward: the store's "now" without waiting for real time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A clock the test can move forward (offset from real time, in milliseconds).
#[derive(Clone, Default)]
pub struct TestClock {
    offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn as_clock(&self) -> inventory::store::Clock {
        let offset = self.offset_ms.clone();
        Arc::new(move || -> DateTime<Utc> {
            Utc::now() + chrono::Duration::milliseconds(offset.load(Ordering::SeqCst))
        })
    }
}
