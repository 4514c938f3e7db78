//! Device-level options of the Metal backend ([`MetalOptions`]). Plain data, the same in every
//! build (the stand-in without Metal accepts them too), so code that sets them compiles
//! everywhere.

use streampool_core::BackendError;

/// Variable that turns encoder serialisation off (`0`, `false`, `off`, `no`) or on (`1`, `true`,
/// `on`, `yes`) for [`MetalOptions::from_env`].
const SERIALIZE_ENCODERS_VAR: &str = "STREAMPOOL_METAL_SERIALIZE_ENCODERS";
/// Variable with the cap on concurrently open compute encoders (a positive integer) for
/// [`MetalOptions::from_env`].
const MAX_ENCODERS_VAR: &str = "STREAMPOOL_METAL_MAX_ENCODERS";

/// Options of one Metal device, given to `MetalBackend::open_with` (`MetalBackend::open` takes
/// [`MetalOptions::from_env`]).
///
/// Compute encoders are short-lived: every op creates its own encoder on its stream's command
/// buffer, encodes, and ends it before the call returns, so no encoder is ever left open between
/// calls. Before a thread creates one it takes a device-wide *encoder permit*; with
/// `serialize_encoders` there is one permit (a device lock around encoder creation, encoding
/// and `endEncoding`, across all streams), otherwise `max_encoders` of them. The permit is
/// always taken *before* the stream's own lock and never while holding it, so no thread ever
/// waits for the permit while holding a stream's lock, and a permit holder never waits for
/// anything but its own stream's lock (whose holders never block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetalOptions {
    /// Serialise compute-encoder creation, encoding and `endEncoding` across all streams of the
    /// device behind one device lock. On by default.
    // MPS lesson: Apple's driver crashed with 3+ threads creating encoders at once; serialise
    // until measured on hardware.
    pub serialize_encoders: bool,
    /// Cap on compute encoders open at once across all streams of the device, when
    /// `serialize_encoders` is off (with it on, the cap is 1). At least 1; 8 by default.
    pub max_encoders: usize,
}

impl Default for MetalOptions {
    /// Serialised encoders, a cap of 8 (the built-in defaults; the environment is not read: see
    /// [`MetalOptions::from_env`]).
    fn default() -> Self {
        Self { serialize_encoders: true, max_encoders: 8 }
    }
}

impl MetalOptions {
    /// The defaults, overridden by `STREAMPOOL_METAL_SERIALIZE_ENCODERS` (`0`/`false`/`off`/`no`
    /// or `1`/`true`/`on`/`yes`) and `STREAMPOOL_METAL_MAX_ENCODERS` (a positive integer) where
    /// set and not empty. A value that does not parse is an
    /// [`BackendError::InvalidArgument`] naming the variable, not silently ignored.
    pub fn from_env() -> Result<Self, BackendError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`MetalOptions::from_env`] with the variables read through `get`.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, BackendError> {
        let mut options = Self::default();
        if let Some(value) = get(SERIALIZE_ENCODERS_VAR).filter(|v| !v.trim().is_empty()) {
            options.serialize_encoders = match value.trim().to_ascii_lowercase().as_str() {
                "0" | "false" | "off" | "no" => false,
                "1" | "true" | "on" | "yes" => true,
                _ => {
                    return Err(BackendError::InvalidArgument(format!(
                        "{SERIALIZE_ENCODERS_VAR}={value:?}: expected 0, false, off, no, 1, \
                         true, on or yes"
                    )))
                }
            };
        }
        if let Some(value) = get(MAX_ENCODERS_VAR).filter(|v| !v.trim().is_empty()) {
            options.max_encoders = match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(BackendError::InvalidArgument(format!(
                        "{MAX_ENCODERS_VAR}={value:?}: expected a positive integer"
                    )))
                }
            };
        }
        options.check()?;
        Ok(options)
    }

    /// `InvalidArgument` for options no device can use.
    pub(crate) fn check(&self) -> Result<(), BackendError> {
        if self.max_encoders == 0 {
            return Err(BackendError::InvalidArgument(
                "MetalOptions::max_encoders is 0: at least one encoder must be allowed".into(),
            ));
        }
        Ok(())
    }

    /// How many encoders may be open at once on the device.
    #[cfg_attr(not(all(feature = "metal", target_os = "macos")), allow(dead_code))]
    pub(crate) fn encoder_permits(&self) -> usize {
        if self.serialize_encoders {
            1
        } else {
            self.max_encoders.max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_serialize_with_a_cap_of_eight() {
        let options = MetalOptions::from_lookup(lookup(&[])).unwrap();
        assert_eq!(options, MetalOptions::default());
        assert!(options.serialize_encoders);
        assert_eq!(options.max_encoders, 8);
        assert_eq!(options.encoder_permits(), 1);
    }

    #[test]
    fn variables_override_the_defaults() {
        let vars = [(SERIALIZE_ENCODERS_VAR, "false"), (MAX_ENCODERS_VAR, " 3 ")];
        let options = MetalOptions::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(options, MetalOptions { serialize_encoders: false, max_encoders: 3 });
        assert_eq!(options.encoder_permits(), 3);
        let on = MetalOptions::from_lookup(lookup(&[(SERIALIZE_ENCODERS_VAR, "1")])).unwrap();
        assert!(on.serialize_encoders);
        let empty = MetalOptions::from_lookup(lookup(&[(MAX_ENCODERS_VAR, "")])).unwrap();
        assert_eq!(empty.max_encoders, 8);
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for vars in [
            [(SERIALIZE_ENCODERS_VAR, "maybe")],
            [(MAX_ENCODERS_VAR, "0")],
            [(MAX_ENCODERS_VAR, "-2")],
            [(MAX_ENCODERS_VAR, "many")],
        ] {
            match MetalOptions::from_lookup(lookup(&vars)) {
                Err(BackendError::InvalidArgument(message)) => {
                    assert!(message.contains(vars[0].0), "{message}")
                }
                other => panic!("{vars:?}: expected InvalidArgument, got {other:?}"),
            }
        }
        let zero = MetalOptions { serialize_encoders: false, max_encoders: 0 };
        assert!(matches!(zero.check(), Err(BackendError::InvalidArgument(_))));
    }
}
