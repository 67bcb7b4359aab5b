//! Process-wide counters of the event store, read by the `/metrics` page. Plain atomics and one
//! small map, so the store needs no metrics crate. Counted when the statement succeeds: an append
//! whose transaction later rolls back is still counted (the figures are for rates, not audits).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static APPENDED: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static CONFLICTS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn count_appended<'a>(types: impl Iterator<Item = &'a str>) {
    if let Ok(mut map) = APPENDED.lock() {
        for t in types {
            *map.entry(t.to_owned()).or_default() += 1;
        }
    }
}

pub(crate) fn count_conflict() {
    CONFLICTS.fetch_add(1, Ordering::Relaxed);
}

/// Events appended by this process, by event type.
pub fn appended_by_type() -> Vec<(String, u64)> {
    APPENDED
        .lock()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default()
}

/// Commands that met a concurrent append or a stale expected version.
pub fn conflicts() -> u64 {
    CONFLICTS.load(Ordering::Relaxed)
}
