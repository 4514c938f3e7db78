//! Metal backend (feature `metal`, macOS only)
