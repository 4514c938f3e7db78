//! [`unavailable_backend!`](crate::unavailable_backend): the stand-in types a GPU backend crate
//! exports when it is built without its feature (or for a system without its GPU API), written
//! once for all of them.

/// Defines a backend's four types as stand-ins that can never have a value, and implements
/// [`Backend`](crate::Backend), [`Stream`](crate::Stream) and [`Event`](crate::Event) for them,
/// so that code generic over backends compiles unchanged in a build without that backend.
///
/// Takes the backend's short name ([`Backend::kind`](crate::Backend::kind)), then four unit-like struct declarations
/// (with their doc comments and derives) in the order backend, stream, event, buffer. Each
/// struct holds a [`std::convert::Infallible`], so none can be built; every trait method is an
/// empty `match` on it. `kind()` alone needs no value and returns the given kind. Constructors
/// (which return [`BackendError::Unavailable`](crate::BackendError::Unavailable) with the
/// crate's own reason) and any inherent methods stay in the crate that invokes the macro.
///
/// ```
/// use streampool_core::{Backend, BackendError};
///
/// streampool_core::unavailable_backend! {
///     kind: "gone";
///     /// A backend that is never there.
///     #[derive(Debug)]
///     pub struct GoneBackend;
///     /// Its stream.
///     #[derive(Debug)]
///     pub struct GoneStream;
///     /// Its event.
///     #[derive(Debug)]
///     pub struct GoneEvent;
///     /// Its buffer.
///     #[derive(Debug, Clone)]
///     pub struct GoneBuffer;
/// }
///
/// impl GoneBackend {
///     pub fn open() -> Result<Self, BackendError> {
///         Err(BackendError::Unavailable { backend: "gone", reason: "never built".into() })
///     }
/// }
///
/// assert!(GoneBackend::open().is_err());
/// fn is_backend<B: Backend>() {}
/// is_backend::<GoneBackend>();
/// ```
#[macro_export]
macro_rules! unavailable_backend {
    (@never $($ty:ident),*) => {$(
        impl $ty {
            /// Unreachable: no value of this type exists. Lets code in other crates implement
            /// traits for the stand-ins (`match` on the private field is only possible here).
            pub fn unreachable(&self) -> ! {
                match self.0 {}
            }
        }
    )*};
    (
        kind: $kind:literal;
        $(#[$backend_attr:meta])* $backend_vis:vis struct $backend:ident;
        $(#[$stream_attr:meta])* $stream_vis:vis struct $stream:ident;
        $(#[$event_attr:meta])* $event_vis:vis struct $event:ident;
        $(#[$buffer_attr:meta])* $buffer_vis:vis struct $buffer:ident;
    ) => {
        $(#[$backend_attr])*
        $backend_vis struct $backend(::std::convert::Infallible);

        $(#[$stream_attr])*
        $stream_vis struct $stream(::std::convert::Infallible);

        $(#[$event_attr])*
        $event_vis struct $event(::std::convert::Infallible);

        $(#[$buffer_attr])*
        $buffer_vis struct $buffer(::std::convert::Infallible);

        $crate::unavailable_backend!(@never $backend, $stream, $event, $buffer);

        impl $crate::Backend for $backend {
            type Stream = $stream;
            type Event = $event;
            type Buffer = $buffer;

            fn kind(&self) -> &'static str {
                $kind
            }
            fn name(&self) -> ::std::string::String {
                match self.0 {}
            }
            fn new_stream(&self, _: usize) -> ::std::result::Result<$stream, $crate::BackendError> {
                match self.0 {}
            }
            fn new_event(
                &self,
                _: $crate::Timing,
            ) -> ::std::result::Result<$event, $crate::BackendError> {
                match self.0 {}
            }
            fn alloc(&self, _: usize) -> ::std::result::Result<$buffer, $crate::BackendError> {
                match self.0 {}
            }
            fn buffer_len(buffer: &$buffer) -> usize {
                match buffer.0 {}
            }
        }

        impl $crate::Stream<$backend> for $stream {
            fn slot(&self) -> usize {
                match self.0 {}
            }
            fn record(&self, _: &$event) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn wait_event(&self, _: &$event) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn synchronize(&self) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn write(
                &self,
                _: &$buffer,
                _: usize,
                _: &[u8],
            ) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn read(
                &self,
                _: &$buffer,
                _: usize,
                _: &mut [u8],
            ) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn fill_u32(
                &self,
                _: &$buffer,
                _: u32,
            ) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn mul_add_u32(
                &self,
                _: &$buffer,
                _: u32,
                _: u32,
            ) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn copy(
                &self,
                _: &$buffer,
                _: &$buffer,
            ) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn hold(
                &self,
                _: ::std::time::Duration,
            ) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
        }

        impl $crate::Event for $event {
            fn timing(&self) -> $crate::Timing {
                match self.0 {}
            }
            fn synchronize(&self) -> ::std::result::Result<(), $crate::BackendError> {
                match self.0 {}
            }
            fn query(&self) -> ::std::result::Result<bool, $crate::BackendError> {
                match self.0 {}
            }
            fn elapsed_since(
                &self,
                _: &Self,
            ) -> ::std::result::Result<::std::time::Duration, $crate::EventError> {
                match self.0 {}
            }
        }
    };
}
