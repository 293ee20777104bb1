//! A cache of read results that is never stale: every entry is tagged with the store's data
//! version ([`mesa_store::SystemStore::data_version`]) and served only while the store still
//! reports that version, so any commit — through this `Mesa`, the scheduler, another `Mesa` on
//! the same database or another process — empties it for the next reader.
//!
//! The protocol of [`Mesa::read_through`]: read the version `v`, look up the key under `v`; on a
//! miss, load, then read the version again and keep the result only if it is still `v` (nothing
//! committed while loading, so the result is exactly the data at `v`). A store that cannot tell
//! its version (`None`) gets no caching at all.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use mesa_domain::Actor;
use mesa_store::PageRequest;

use crate::error::Result;
use crate::issues::IssueList;
use crate::mesa::Mesa;

/// Total weight (roughly bytes) kept before the cache starts over.
const MAX_WEIGHT: usize = 48 * 1024 * 1024;

type Entry = (Arc<dyn Any + Send + Sync>, usize);

/// Entries of one data version.
#[derive(Default)]
pub(crate) struct ReadCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    version: Vec<u8>,
    entries: HashMap<String, Entry>,
    weight: usize,
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value kept for `key` under `version`, if any (and of type `T`).
    fn get<T: Send + Sync + 'static>(&self, version: &[u8], key: &str) -> Option<Arc<T>> {
        let state = self.lock();
        if state.version != version {
            return None;
        }
        let (value, _) = state.entries.get(key)?;
        Arc::clone(value).downcast::<T>().ok()
    }

    /// Keeps `value` for `key` under `version`, dropping entries of any other version.
    fn put(&self, version: Vec<u8>, key: String, value: Entry) {
        let mut state = self.lock();
        if state.version != version || state.weight + value.1 > MAX_WEIGHT {
            state.entries.clear();
            state.weight = 0;
            state.version = version;
        }
        state.weight += value.1;
        if let Some((_, old)) = state.entries.insert(key, value) {
            state.weight -= old;
        }
    }

    /// Entries kept now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Mesa {
    /// `load`'s result for `key`, from the cache while nothing was committed since it was
    /// loaded. `weight` sizes a result (roughly its bytes) for the cache's bound. Errors are
    /// never kept.
    pub(crate) async fn read_through<T, E, F, Fut>(
        &self,
        key: String,
        weight: impl FnOnce(&T) -> usize,
        load: F,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let store = &self.inner.store;
        let Some(before) = store.data_version() else {
            return load().await.map(Arc::new);
        };
        if let Some(hit) = self.inner.reads.get::<T>(&before, &key) {
            return Ok(hit);
        }
        let value = Arc::new(load().await?);
        if store.data_version().as_deref() == Some(before.as_slice()) {
            let w = weight(&value).saturating_add(key.len());
            let shared: Arc<dyn Any + Send + Sync> = Arc::clone(&value) as _;
            self.inner.reads.put(before, key, (shared, w));
        }
        Ok(value)
    }
}

impl Mesa {
    /// [`Mesa::inbox`] as `render` turns it into the front end's wire format, served from the
    /// read cache while nothing has been committed since it was rendered. Equal to calling
    /// `render(self.inbox(actor, page).await?)`.
    pub async fn inbox_rendered(
        &self,
        actor: &Actor,
        page: &PageRequest,
        render: impl FnOnce(IssueList) -> Vec<u8>,
    ) -> Result<Arc<Vec<u8>>> {
        // Everything the answer depends on besides the data: whose inbox, and which page.
        let owner = match actor.agent_id() {
            Some(me) => me.to_string(),
            None if actor.is_board() => "board".to_owned(),
            None => "nobody".to_owned(),
        };
        let cursor = page.cursor.as_deref().unwrap_or("");
        self.read_through(
            format!("inbox\u{0}{owner}\u{0}{}\u{0}{cursor}", page.limit),
            Vec::len,
            || async { Ok(render(self.inbox(actor, page).await?)) },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_in_one_version() {
        let cache = ReadCache::default();
        cache.put(vec![1], "a".into(), (Arc::new(1_u32), 4));
        assert_eq!(cache.get::<u32>(&[1], "a").as_deref(), Some(&1));
        assert!(
            cache.get::<u32>(&[2], "a").is_none(),
            "another version misses"
        );
        assert!(cache.get::<u64>(&[1], "a").is_none(), "another type misses");
        cache.put(vec![2], "b".into(), (Arc::new(2_u32), 4));
        assert!(cache.get::<u32>(&[1], "a").is_none());
        assert_eq!(cache.len(), 1, "a new version drops the old entries");
    }

    #[test]
    fn the_weight_is_bounded() {
        let cache = ReadCache::default();
        cache.put(vec![1], "a".into(), (Arc::new(1_u32), MAX_WEIGHT - 1));
        cache.put(vec![1], "b".into(), (Arc::new(2_u32), 2));
        assert_eq!(cache.len(), 1);
        assert!(cache.get::<u32>(&[1], "a").is_none());
    }
}
