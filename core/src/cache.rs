//! A compile-once cache, generic over what is compiled (CUDA functions, Metal pipelines, captured
//! graphs, ...).
//!
//! - N threads missing the same key at once: one of them compiles, all get the result;
//! - a failed (or panicking) compile reaches every thread that waited on it and is not cached:
//!   the next caller compiles again;
//! - a slow compile of one key never blocks hits or compiles of other keys (each key has its own
//!   in-flight state);
//! - hits take no lock at all: the key → entry map is an immutable snapshot read through
//!   arc-swap, and the value sits in a `OnceLock`.

use std::collections::HashMap;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::sync::{self, Arc, AtomicU64, Condvar, Mutex, Ordering, Snapshot};

/// Why a value could not be had from the cache. Cheap to clone: every waiter gets the same one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError<E> {
    /// The compile function returned an error.
    #[error("compile failed: {0}")]
    Failed(std::sync::Arc<E>),
    /// The compile function panicked.
    #[error("compile panicked: {0}")]
    Panicked(String),
}

impl<E> Clone for CacheError<E> {
    fn clone(&self) -> Self {
        match self {
            CacheError::Failed(e) => CacheError::Failed(e.clone()),
            CacheError::Panicked(m) => CacheError::Panicked(m.clone()),
        }
    }
}

/// State of the compile of one key. Guarded by `Entry::progress`.
struct Progress<E> {
    /// A thread is compiling this key now.
    compiling: bool,
    /// Number of compiles started for this key.
    attempt: u64,
    /// The latest failed attempt and its error.
    failure: Option<(u64, CacheError<E>)>,
}

struct Entry<V, E> {
    /// Set once, by the thread whose compile succeeded, while it holds `progress`.
    value: OnceLock<V>,
    /// Guards the compile in flight for this key only (never held during a hit).
    progress: Mutex<Progress<E>>,
    /// Signalled when a compile of this key ends, with success or failure.
    done: Condvar,
}

type Map<K, V, E> = HashMap<K, Arc<Entry<V, E>>>;

/// Compile-once cache; see the module docs.
///
/// ```
/// use streampool_core::CompileCache;
/// let cache: CompileCache<&str, String, std::io::Error> = CompileCache::new();
/// let len = cache.get_with(&"kernel", || Ok("compiled".to_string()), |v| v.len()).unwrap();
/// assert_eq!(len, 8);
/// // A hit: the compile function is not called again.
/// let again = cache.get_with(&"kernel", || unreachable!(), |v| v.clone()).unwrap();
/// assert_eq!(again, "compiled");
/// assert_eq!(cache.compiles(), 1);
/// ```
pub struct CompileCache<K, V, E> {
    /// Key → entry. Read without locks; replaced copy-on-write when a key is first seen.
    map: Snapshot<Map<K, V, E>>,
    /// Guards the copy-on-write replacement of `map` (first sight of a new key only).
    insert: Mutex<()>,
    /// Compiles started (Relaxed: statistics).
    compiles: AtomicU64,
}

impl<K, V, E> Default for CompileCache<K, V, E>
where
    K: Eq + Hash + Clone,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, E> CompileCache<K, V, E>
where
    K: Eq + Hash + Clone,
{
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            map: Snapshot::new(HashMap::new()),
            insert: Mutex::new(()),
            compiles: AtomicU64::new(0),
        }
    }

    /// Number of compiles started so far (successful or not).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Number of keys with a compiled value.
    pub fn len(&self) -> usize {
        self.map.read(|m| m.values().filter(|e| e.value.get().is_some()).count())
    }

    /// Whether no key has a compiled value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `use_value` with the value for `key`, compiling it with `compile` if no value is
    /// cached. A hit takes no lock.
    pub fn get_with<R>(
        &self,
        key: &K,
        compile: impl FnOnce() -> Result<V, E>,
        use_value: impl FnOnce(&V) -> R,
    ) -> Result<R, CacheError<E>> {
        // Fast path: a hit in the current snapshot.
        let use_value = match self.map.read(|m| match m.get(key).and_then(|e| e.value.get()) {
            Some(v) => Ok(use_value(v)),
            None => Err(use_value),
        }) {
            Ok(r) => return Ok(r),
            Err(f) => f,
        };
        let entry = self.entry(key);
        let value = Self::resolve(&entry, compile, &self.compiles)?;
        Ok(use_value(value))
    }

    /// The value for `key`, cloned, compiling it if needed.
    pub fn get(&self, key: &K, compile: impl FnOnce() -> Result<V, E>) -> Result<V, CacheError<E>>
    where
        V: Clone,
    {
        self.get_with(key, compile, V::clone)
    }

    /// The entry for `key`, inserting an empty one if the key is new.
    fn entry(&self, key: &K) -> Arc<Entry<V, E>> {
        if let Some(e) = self.map.read(|m| m.get(key).cloned()) {
            return e;
        }
        let _guard = sync::lock(&self.insert);
        // Check again under the lock: another thread may have inserted the key meanwhile.
        if let Some(e) = self.map.read(|m| m.get(key).cloned()) {
            return e;
        }
        let entry = Arc::new(Entry {
            value: OnceLock::new(),
            progress: Mutex::new(Progress { compiling: false, attempt: 0, failure: None }),
            done: Condvar::new(),
        });
        let mut next = self.map.read(|m| m.clone());
        next.insert(key.clone(), entry.clone());
        self.map.store(next);
        entry
    }

    /// Wait for, or run, the compile of one entry.
    fn resolve<'e>(
        entry: &'e Entry<V, E>,
        compile: impl FnOnce() -> Result<V, E>,
        compiles: &AtomicU64,
    ) -> Result<&'e V, CacheError<E>> {
        let mut progress = sync::lock(&entry.progress);
        loop {
            if let Some(v) = entry.value.get() {
                return Ok(v);
            }
            if progress.compiling {
                let attempt = progress.attempt;
                while progress.compiling && progress.attempt == attempt {
                    progress = sync::wait(&entry.done, progress);
                }
                if let Some(v) = entry.value.get() {
                    return Ok(v);
                }
                match &progress.failure {
                    // The attempt we waited for (or a later one) failed: report it to us too.
                    Some((failed, err)) if *failed >= attempt => return Err(err.clone()),
                    _ => continue,
                }
            }
            // Nobody is compiling this key: we do, without holding the lock.
            progress.compiling = true;
            progress.attempt += 1;
            let attempt = progress.attempt;
            drop(progress);
            compiles.fetch_add(1, Ordering::Relaxed);
            let result = catch_unwind(AssertUnwindSafe(compile));
            progress = sync::lock(&entry.progress);
            progress.compiling = false;
            let outcome = match result {
                Ok(Ok(v)) => {
                    let _ = entry.value.set(v);
                    Ok(())
                }
                Ok(Err(e)) => Err(CacheError::Failed(std::sync::Arc::new(e))),
                Err(panic) => Err(CacheError::Panicked(crate::panic_text(&*panic))),
            };
            if let Err(err) = &outcome {
                progress.failure = Some((attempt, err.clone()));
            }
            entry.done.notify_all();
            drop(progress);
            return match outcome {
                Ok(()) => Ok(entry.value.get().expect("invariant: value was set just above")),
                Err(err) => Err(err),
            };
        }
    }
}
