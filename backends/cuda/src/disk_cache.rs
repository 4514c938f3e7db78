//! On-disk cache of compiled kernels, so that a restarted process loads its CUBINs instead of
//! running NVRTC again.
//!
//! An entry's file name is its whole key: a hash of the kernel source, the target architecture
//! and the driver version (`<hash>-<arch>-drv<version>.cubin`). A changed source, another GPU or a
//! driver update therefore misses and compiles afresh; stale files are never read. Entries are
//! written to a temporary file and renamed into place, so a reader never sees half a file even
//! when several processes fill the cache at once. Every failure to read or write the cache is a
//! miss, never an error: the cache only saves time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming streampool's home folder; kernels are cached in `kernels/` under
/// it.
pub const HOME_VAR: &str = "STREAMPOOL_HOME";

/// Where compiled kernels are cached: `$STREAMPOOL_HOME/kernels` if that variable is set,
/// otherwise `$XDG_CACHE_HOME/streampool/kernels` or `~/.cache/streampool/kernels`. `None` when
/// none of these variables is set.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var(HOME_VAR) {
        return Some(home.join("kernels"));
    }
    let cache = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(cache.join("streampool").join("kernels"))
}

/// What identifies one compiled kernel image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiskKey {
    /// Hash of the kernel source ([`source_hash`]).
    pub source_hash: u64,
    /// Target architecture, e.g. `sm_90`.
    pub arch: String,
    /// Driver version as `cuDriverGetVersion` reports it, e.g. 13000.
    pub driver_version: i32,
}

impl DiskKey {
    /// The file name of this entry.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{}-drv{}.cubin", self.source_hash, self.arch, self.driver_version)
    }
}

/// A stable 64-bit hash of a kernel's source and compile options (FNV-1a: the same across
/// processes, platforms and Rust versions, unlike `std`'s hasher).
pub fn source_hash(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        // Length first, so that ["ab", "c"] and ["a", "bc"] differ.
        for byte in (part.len() as u64).to_le_bytes().iter().chain(part.as_bytes()) {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// A folder of compiled kernel images (or none: every lookup misses).
#[derive(Debug)]
pub struct DiskCache {
    dir: Option<PathBuf>,
    /// Lookups answered from disk (Relaxed: statistics).
    hits: AtomicU64,
}

impl DiskCache {
    /// A cache in `dir`, created when the first entry is stored; `None` disables it.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir, hits: AtomicU64::new(0) }
    }

    /// The cache folder, if enabled.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Number of lookups answered from disk so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The stored image for `key`, if there is one.
    pub fn load(&self, key: &DiskKey) -> Option<Vec<u8>> {
        let path = self.dir.as_ref()?.join(key.file_name());
        let bytes = std::fs::read(path).ok().filter(|b| !b.is_empty())?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(bytes)
    }

    /// Store `image` for `key`. Best effort: a failure leaves the cache as it was.
    pub fn store(&self, key: &DiskKey, image: &[u8]) {
        let Some(dir) = &self.dir else { return };
        let _ = Self::store_in(dir, key, image);
    }

    fn store_in(dir: &Path, key: &DiskKey, image: &[u8]) -> std::io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)?;
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{}.{}.{unique}.tmp", key.file_name(), std::process::id()));
        std::fs::write(&tmp, image)?;
        // rename is atomic within one folder: readers see the old state or the whole file.
        std::fs::rename(&tmp, dir.join(key.file_name())).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Remove the entry for `key` (for an image the driver refused to load).
    pub fn remove(&self, key: &DiskKey) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(key.file_name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("streampool-cuda-disk-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn hash_is_stable_and_separates_parts() {
        assert_eq!(source_hash(&["abc"]), source_hash(&["abc"]));
        assert_ne!(source_hash(&["ab", "c"]), source_hash(&["a", "bc"]));
        // Pinned value: the on-disk names must not change between builds.
        assert_eq!(source_hash(&[]), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn store_then_load_round_trips_and_keys_separate() {
        let dir = scratch("roundtrip");
        let cache = DiskCache::new(Some(dir.clone()));
        let key = DiskKey { source_hash: 7, arch: "sm_90".into(), driver_version: 13000 };
        assert_eq!(cache.load(&key), None);
        cache.store(&key, b"cubin bytes");
        assert_eq!(cache.load(&key).as_deref(), Some(&b"cubin bytes"[..]));
        assert_eq!(cache.hits(), 1);
        let newer_driver = DiskKey { driver_version: 13010, ..key.clone() };
        assert_eq!(cache.load(&newer_driver), None);
        let other_arch = DiskKey { arch: "sm_80".into(), ..key.clone() };
        assert_eq!(cache.load(&other_arch), None);
        cache.remove(&key);
        assert_eq!(cache.load(&key), None);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn disabled_cache_always_misses() {
        let cache = DiskCache::new(None);
        let key = DiskKey { source_hash: 1, arch: "sm_90".into(), driver_version: 1 };
        cache.store(&key, b"x");
        assert_eq!(cache.load(&key), None);
    }
}
