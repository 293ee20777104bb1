//! A cache of read results that is never stale: every entry is tagged with the store's data
//! version ([`mesa_store::SystemStore::data_version`]) and what it depends on ([`Depends`]), and
//! is served only while the store can vouch that nothing it depends on was committed since.
//!
//! When the version has moved, the store is asked what changed in between
//! ([`mesa_store::SystemStore::changes_between`]). It can say only when every commit in between
//! was one of its own writes that recorded what it changed (checkouts, issue creations, key
//! uses); then the entries that depend on none of it are kept, so one agent's checkout does not
//! empty every other agent's cached inbox. Any other commit — through another write of this
//! `Mesa`, the scheduler, another `Mesa` on the same database or another process — leaves the
//! store unable to say, and the cache starts over. (A version met while one of the store's
//! tracked writes is between its commit and the recording of what it changed is served nothing
//! and drops nothing: it is placed, or the cache starts over, once that write is done.)
//!
//! The protocol of [`Mesa::read_through`]: read the version `v`, look up the key (valid at `v`);
//! on a miss, load, then read the version `w` again and keep the result as valid at `w` only if
//! the store can say what changed from `v` to `w` and none of it touches what the result depends
//! on (the load read the data at some point between `v` and `w`, so the result is exactly the
//! data at `w`). A store that cannot tell its version (`None`) gets no caching at all.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use mesa_domain::{Actor, ApiKeyId};
use mesa_store::{Changes, InboxOwner, PageRequest};

use crate::error::Result;
use crate::issues::IssueList;
use crate::mesa::Mesa;

/// Total weight (roughly bytes) kept before the cache starts over.
const MAX_WEIGHT: usize = 48 * 1024 * 1024;

/// What a cached value depends on: which commits make it stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depends {
    /// Anything: any commit.
    Everything,
    /// The key row stored under a hash (`id`; `None` when no key had that hash) and, for a
    /// run key (`run`), the runs.
    Key {
        /// The key found, if any.
        id: Option<ApiKeyId>,
        /// Whether the value depends on a run's status.
        run: bool,
    },
    /// One inbox.
    Inbox(InboxOwner),
}

impl Depends {
    /// Whether `changes` may have changed what this depends on.
    fn stale_after(self, changes: &Changes) -> bool {
        match self {
            Depends::Everything => true,
            Depends::Key { id, run } => changes.touches_key(id) || (run && changes.runs),
            Depends::Inbox(owner) => changes.touches_inbox(owner),
        }
    }
}

type Value = Arc<dyn Any + Send + Sync>;

/// A kept value, its weight and what it depends on.
struct Entry {
    value: Value,
    weight: usize,
    depends: Depends,
}

/// What the store knows about two data versions (see the module docs).
pub(crate) trait Versions {
    /// [`mesa_store::SystemStore::changes_between`].
    fn between(&self, from: &[u8], to: &[u8]) -> Option<Changes>;
    /// [`mesa_store::SystemStore::tracked_commit_pending`].
    fn pending(&self) -> bool;
}

type Between<'a> = &'a dyn Versions;

/// Entries valid at one data version.
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

/// How a data version relates to the cache's.
enum Relation {
    /// The same version.
    Same,
    /// The cache's is older; the cache now holds only what is still valid at the new one.
    Advanced,
    /// The cache's is newer, and these are the changes from the other one to it.
    Behind(Changes),
    /// Unknown: the cache was emptied and now stands at the given version.
    Restarted,
    /// Unknown for now, while one of the store's tracked writes finishes committing (it may be
    /// the commit that made this version): nothing is served or kept for it, nothing dropped.
    Unplaced,
}

impl State {
    fn clear(&mut self) {
        self.entries.clear();
        self.weight = 0;
    }

    /// Relates `version` to the cache's version, moving the cache to `version` when it is
    /// newer (keeping what is still valid), or starting over when the store cannot say.
    fn relate(&mut self, version: &[u8], between: Between<'_>) -> Relation {
        if self.version == version {
            return Relation::Same;
        }
        if let Some(changes) = between.between(&self.version, version) {
            self.entries.retain(|_, e| !e.depends.stale_after(&changes));
            self.weight = self.entries.values().map(|e| e.weight).sum();
            self.version = version.to_vec();
            return Relation::Advanced;
        }
        if let Some(changes) = between.between(version, &self.version) {
            return Relation::Behind(changes);
        }
        if between.pending() {
            return Relation::Unplaced;
        }
        self.clear();
        self.version = version.to_vec();
        Relation::Restarted
    }
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value kept for `key` that is valid at `version`, if any (and of type `T`).
    fn get<T: Send + Sync + 'static>(
        &self,
        version: &[u8],
        key: &str,
        between: Between<'_>,
    ) -> Option<Arc<T>> {
        let mut state = self.lock();
        let behind = match state.relate(version, between) {
            Relation::Same | Relation::Advanced => None,
            Relation::Behind(changes) => Some(changes),
            Relation::Restarted | Relation::Unplaced => return None,
        };
        let entry = state.entries.get(key)?;
        // Kept at a newer version: still the data at `version` if nothing it depends on
        // changed in between.
        if behind.is_some_and(|changes| entry.depends.stale_after(&changes)) {
            return None;
        }
        Arc::clone(&entry.value).downcast::<T>().ok()
    }

    /// Keeps `value` for `key`, valid at `version`.
    fn put(&self, version: &[u8], key: String, entry: Entry, between: Between<'_>) {
        let mut state = self.lock();
        match state.relate(version, between) {
            // Already outdated at the cache's newer version, or not placeable yet.
            Relation::Behind(changes) if entry.depends.stale_after(&changes) => return,
            Relation::Unplaced => return,
            _ => {}
        }
        if state.weight + entry.weight > MAX_WEIGHT {
            state.clear();
        }
        state.weight += entry.weight;
        if let Some(old) = state.entries.insert(key, entry) {
            state.weight -= old.weight;
        }
    }

    /// Entries kept now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// The store's answers.
struct StoreVersions<'a>(&'a dyn mesa_store::Store);

impl Versions for StoreVersions<'_> {
    fn between(&self, from: &[u8], to: &[u8]) -> Option<Changes> {
        self.0.changes_between(from, to)
    }

    fn pending(&self) -> bool {
        self.0.tracked_commit_pending()
    }
}

impl Mesa {
    /// `load`'s result for `key`, from the cache while nothing it depends on (`depends`, given
    /// the result) was committed since it was loaded. `weight` sizes a result (roughly its
    /// bytes) for the cache's bound. Errors are never kept.
    pub(crate) async fn read_through<T, E, F, Fut>(
        &self,
        key: String,
        weight: impl FnOnce(&T) -> usize,
        depends: impl FnOnce(&T) -> Depends,
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
        let between = StoreVersions(store.as_ref());
        if let Some(hit) = self.inner.reads.get::<T>(&before, &key, &between) {
            return Ok(hit);
        }
        let value = Arc::new(load().await?);
        let Some(after) = store.data_version() else {
            return Ok(value);
        };
        let depends = depends(&value);
        let unchanged = if after == before {
            true
        } else {
            between
                .between(&before, &after)
                .is_some_and(|changes| !depends.stale_after(&changes))
        };
        if unchanged {
            let entry = Entry {
                value: Arc::clone(&value) as Value,
                weight: weight(&value).saturating_add(key.len()),
                depends,
            };
            self.inner.reads.put(&after, key, entry, &between);
        }
        Ok(value)
    }
}

impl Mesa {
    /// [`Mesa::inbox`] as `render` turns it into the front end's wire format, served from the
    /// read cache while nothing in this inbox has changed since it was rendered. Equal to calling
    /// `render(self.inbox(actor, page).await?)`.
    pub async fn inbox_rendered(
        &self,
        actor: &Actor,
        page: &PageRequest,
        render: impl FnOnce(IssueList) -> Vec<u8>,
    ) -> Result<Arc<Vec<u8>>> {
        // Everything the answer depends on besides the data: whose inbox, and which page.
        let (owner, depends) = match actor.agent_id() {
            Some(me) => (me.to_string(), Depends::Inbox(InboxOwner::Agent(me))),
            None if actor.is_board() => ("board".to_owned(), Depends::Inbox(InboxOwner::Board)),
            None => ("nobody".to_owned(), Depends::Everything),
        };
        let cursor = page.cursor.as_deref().unwrap_or("");
        self.read_through(
            format!("inbox\u{0}{owner}\u{0}{}\u{0}{cursor}", page.limit),
            Vec::len,
            |_| depends,
            || async { Ok(render(self.inbox(actor, page).await?)) },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_domain::AgentId;

    fn entry(value: u32, weight: usize, depends: Depends) -> Entry {
        Entry {
            value: Arc::new(value),
            weight,
            depends,
        }
    }

    fn agent(n: u128) -> AgentId {
        AgentId::from(uuid::Uuid::from_u128(n))
    }

    /// Version 2 follows 1 by a commit that touched agent 1's inbox; 3 follows 2 by a commit
    /// the store cannot vouch for; `pending`: a tracked commit is under way.
    struct Fake {
        pending: bool,
    }

    impl Versions for Fake {
        fn between(&self, from: &[u8], to: &[u8]) -> Option<Changes> {
            match (from, to) {
                ([1], [2]) => {
                    let mut changes = Changes::default();
                    changes.inboxes.add(agent(1));
                    Some(changes)
                }
                _ => None,
            }
        }

        fn pending(&self) -> bool {
            self.pending
        }
    }

    const KNOWN: Fake = Fake { pending: false };

    #[test]
    fn entries_live_in_one_version_unless_the_store_vouches() {
        let cache = ReadCache::default();
        cache.put(&[1], "a".into(), entry(1, 4, Depends::Everything), &KNOWN);
        assert_eq!(cache.get::<u32>(&[1], "a", &KNOWN).as_deref(), Some(&1));
        assert!(
            cache.get::<u64>(&[1], "a", &KNOWN).is_none(),
            "another type misses"
        );
        assert!(
            cache.get::<u32>(&[3], "a", &KNOWN).is_none(),
            "an unknown version misses"
        );
        assert_eq!(cache.len(), 0, "an unknown version drops the old entries");
    }

    #[test]
    fn known_changes_drop_only_what_depends_on_them() {
        let cache = ReadCache::default();
        let mine = Depends::Inbox(InboxOwner::Agent(agent(1)));
        let theirs = Depends::Inbox(InboxOwner::Agent(agent(2)));
        cache.put(&[1], "mine".into(), entry(1, 4, mine), &KNOWN);
        cache.put(&[1], "theirs".into(), entry(2, 4, theirs), &KNOWN);
        cache.put(&[1], "all".into(), entry(3, 4, Depends::Everything), &KNOWN);
        assert!(cache.get::<u32>(&[2], "mine", &KNOWN).is_none());
        assert!(cache.get::<u32>(&[2], "all", &KNOWN).is_none());
        assert_eq!(
            cache.get::<u32>(&[2], "theirs", &KNOWN).as_deref(),
            Some(&2)
        );
        // A reader still at version 1 is served what is valid at 2 only if unchanged.
        cache.put(&[2], "mine".into(), entry(4, 4, mine), &KNOWN);
        assert!(cache.get::<u32>(&[1], "mine", &KNOWN).is_none());
        assert_eq!(
            cache.get::<u32>(&[1], "theirs", &KNOWN).as_deref(),
            Some(&2)
        );
        // A value loaded at 1 that changed by 2 is not kept.
        cache.put(&[1], "mine".into(), entry(5, 4, mine), &KNOWN);
        assert_eq!(cache.get::<u32>(&[2], "mine", &KNOWN).as_deref(), Some(&4));
    }

    #[test]
    fn an_unplaced_version_drops_nothing_while_a_tracked_commit_finishes() {
        let cache = ReadCache::default();
        let pending = Fake { pending: true };
        cache.put(&[1], "a".into(), entry(1, 4, Depends::Everything), &KNOWN);
        assert!(
            cache.get::<u32>(&[3], "a", &pending).is_none(),
            "never served"
        );
        cache.put(&[3], "b".into(), entry(2, 4, Depends::Everything), &pending);
        assert_eq!(cache.len(), 1, "nothing kept for it, nothing dropped");
        assert_eq!(cache.get::<u32>(&[1], "a", &pending).as_deref(), Some(&1));
        assert!(cache.get::<u32>(&[3], "a", &KNOWN).is_none());
        assert_eq!(
            cache.len(),
            0,
            "with nothing pending, the cache starts over"
        );
    }

    #[test]
    fn the_weight_is_bounded() {
        let cache = ReadCache::default();
        cache.put(
            &[1],
            "a".into(),
            entry(1, MAX_WEIGHT - 1, Depends::Everything),
            &KNOWN,
        );
        cache.put(&[1], "b".into(), entry(2, 2, Depends::Everything), &KNOWN);
        assert_eq!(cache.len(), 1);
        assert!(cache.get::<u32>(&[1], "a", &KNOWN).is_none());
    }
}
