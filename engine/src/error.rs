//! The public error: typed like mediasoup's error classes so that an application (and the remote
//! API) can tell a bad argument from an unsupported feature from a use of a closed object.
//!
//! Every failing API call leaves the engine's state as it was: validation happens before any
//! table is touched.

use std::fmt;

/// mediasoup's error classes, as names at the API edge (`error.name` in JavaScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad argument: wrong type, missing field, out-of-range value, unknown id.
    TypeError,
    /// Valid but not supported: unknown codec, unsupported parameter, feature not built yet.
    UnsupportedError,
    /// The object (or one it depends on) is closed, or the call does not fit its state.
    InvalidStateError,
    /// Anything else, e.g. an OS error while binding a socket.
    Error,
}

impl ErrorKind {
    /// The class name as mediasoup spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::TypeError => "TypeError",
            ErrorKind::UnsupportedError => "UnsupportedError",
            ErrorKind::InvalidStateError => "InvalidStateError",
            ErrorKind::Error => "Error",
        }
    }
}

/// An error from the engine: its class and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn type_error(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::TypeError, message: message.into() }
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::UnsupportedError, message: message.into() }
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::InvalidStateError, message: message.into() }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Error, message: message.into() }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for `Err(Error::type_error(format!(..)))`.
#[macro_export]
macro_rules! type_err {
    ($($arg:tt)*) => { Err($crate::error::Error::type_error(format!($($arg)*))) };
}

/// Shorthand for `Err(Error::unsupported(format!(..)))`.
#[macro_export]
macro_rules! unsupported_err {
    ($($arg:tt)*) => { Err($crate::error::Error::unsupported(format!($($arg)*))) };
}
