//! Time comes from a clock the tests control, so deletion, rotation and expiry are tested without
//! sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::types::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time, optionally shifted by a fixed offset (the `--clock-offset-seconds` test hook).
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_millis: AtomicI64,
}

impl SystemClock {
    pub fn with_offset_seconds(offset: i64) -> SystemClock {
        SystemClock {
            offset_millis: AtomicI64::new(offset.saturating_mul(1000)),
        }
    }
    pub fn offset_seconds(&self) -> i64 {
        self.offset_millis.load(Ordering::Relaxed) / 1000
    }
    pub fn set_offset_seconds(&self, offset: i64) {
        self.offset_millis
            .store(offset.saturating_mul(1000), Ordering::Relaxed);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms.saturating_add(self.offset_millis.load(Ordering::Relaxed)))
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
    pub fn advance_seconds(&self, s: i64) {
        self.0.fetch_add(s.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}
