//! The macOS version (`NSProcessInfo`'s `operatingSystemVersion`): `MetalBackend::open` refuses
//! systems older than [`MIN_MACOS`], and the kernel compile picks its options API by it.

use objc2::rc::autoreleasepool;
use objc2_foundation::NSProcessInfo;

/// The oldest macOS the backend runs on: `MTLSharedEvent`'s `waitUntilSignaledValue:timeoutMS:`
/// (every host wait on an event or a hold gate) is macOS 12.
pub(crate) const MIN_MACOS: (isize, isize) = (12, 0);

/// A macOS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OsVersion {
    pub(crate) major: isize,
    pub(crate) minor: isize,
    pub(crate) patch: isize,
}

impl OsVersion {
    /// The running system's version.
    pub(crate) fn current() -> Self {
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads
        // (`processInfo` is returned autoreleased, and `open` may run on any thread).
        let v = autoreleasepool(|_| NSProcessInfo::processInfo().operatingSystemVersion());
        Self { major: v.majorVersion, minor: v.minorVersion, patch: v.patchVersion }
    }

    /// Whether this is `major.minor` or later.
    pub(crate) fn at_least(self, major: isize, minor: isize) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl std::fmt::Display for OsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}
