//! The one error type of tapegrad.
//!
//! Ops that can fail on their arguments come in two forms: `try_op(..) -> Result<_, Error>`
//! and `op(..)`, which panics with the same message. Both are `#[track_caller]`, so the
//! error and the panic name the line of the caller, never a line inside the library.
//! Everything is validated when an op is recorded: a backward pass cannot fail.

use std::fmt;

use crate::shape::Shape;

/// A source location (`file:line:column`) captured with `#[track_caller]`.
pub type Location = &'static std::panic::Location<'static>;

/// `Result` with [`enum@Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A list of shapes, printed as `[2, 3] and [4]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shapes(pub Vec<Shape>);

impl fmt::Display for Shapes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == self.0.len() { " and " } else { ", " })?;
            }
            write!(f, "{:?}", s.as_slice())?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in tapegrad.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The shapes of the arguments break the op's rule.
    #[error("{op}: {rule}; got {shapes} (at {location})")]
    Shape {
        /// The op that refused its arguments.
        op: &'static str,
        /// The shapes it was given.
        shapes: Shapes,
        /// The rule that was broken, in words.
        rule: String,
        /// Where the op was called.
        location: Location,
    },
    /// An axis argument outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {ndim} (at {location})")]
    Axis {
        /// The op that refused the axis.
        op: &'static str,
        /// The axis as given.
        axis: isize,
        /// The rank of the tensor.
        ndim: usize,
        /// Where the op was called.
        location: Location,
    },
    /// An index outside the size of the dimension it indexes.
    #[error(
        "{op}: index {index} is out of range for dimension {dim} of size {size} (at {location})"
    )]
    Index {
        /// The op that refused the index.
        op: &'static str,
        /// The index as given.
        index: usize,
        /// The dimension it indexes.
        dim: usize,
        /// The size of that dimension.
        size: usize,
        /// Where the op was called.
        location: Location,
    },
    /// Any other invalid argument (a negative step, a zero-sized chunk, a length mismatch...).
    #[error("{op}: {message} (at {location})")]
    Argument {
        /// The op that refused the argument.
        op: &'static str,
        /// What is wrong with it.
        message: String,
        /// Where the op was called.
        location: Location,
    },
    /// A tensor the machine cannot hold: the allocator refused its memory.
    #[error("{op}: cannot allocate {bytes} bytes for a tensor of shape {shape:?} (at {location})")]
    Alloc {
        /// The op whose output it was.
        op: &'static str,
        /// The tensor's shape.
        shape: Shape,
        /// The bytes asked for.
        bytes: usize,
        /// Where the op was called.
        location: Location,
    },
    /// A NaN or an infinity where a finite number is required (a gradient norm, a loss).
    #[error("{op}: {message}")]
    NonFinite {
        /// What found it.
        op: &'static str,
        /// What was not finite.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// A data file (a dataset, a CSV table, an IDX image file) is malformed or does not fit
    /// what it is read into; the message names the line or byte offset where it can.
    #[error("{path}: {message}")]
    Data {
        /// The file (or an origin such as `<digits>` for embedded data).
        path: String,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// A checkpoint or weights file is malformed, or does not fit what it is loaded into
    /// (a missing or unexpected name, a wrong shape or dtype, a truncated file).
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file (or `<memory>` for bytes).
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// `?` on an I/O error in a function returning tapegrad's `Result`. The error names no
/// file; [`Error::io`] adds one.
///
/// ```
/// fn read(path: &str) -> tapegrad_core::Result<Vec<u8>> {
///     Ok(std::fs::read(path)?)
/// }
/// let e = read("/no/such/file").unwrap_err();
/// assert!(matches!(e, tapegrad_core::Error::Io { .. }));
/// ```
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io {
            path: "(a file)".into(),
            message: e.to_string(),
        }
    }
}

impl Error {
    /// An [`Error::Argument`] for `op` at the caller's line: for crates built on tapegrad
    /// (layers, losses, loaders) whose checks should read like the core's.
    ///
    /// ```
    /// use tapegrad_core::Error;
    /// let e = Error::argument("my_loss", "beta must be ≥ 0, got -1");
    /// assert!(e.to_string().starts_with("my_loss: beta must be ≥ 0, got -1 (at "));
    /// ```
    #[track_caller]
    pub fn argument(op: &'static str, message: impl Into<String>) -> Error {
        arg_error(op, message)
    }

    /// An [`Error::Io`] for `path`, with what the operating system said.
    ///
    /// ```
    /// use tapegrad_core::Error;
    /// let e = std::fs::read("/no/such/file").map_err(|e| Error::io("/no/such/file", e));
    /// assert!(e.unwrap_err().to_string().starts_with("/no/such/file: "));
    /// ```
    pub fn io(path: impl AsRef<std::path::Path>, e: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            message: e.to_string(),
        }
    }

    /// An [`Error::Shape`] for `op` at the caller's line.
    #[track_caller]
    pub fn shape(op: &'static str, shapes: &[&[usize]], rule: impl Into<String>) -> Error {
        shape_error(op, shapes, rule)
    }

    /// The same error, located at the caller's line instead of where it was made: for a
    /// check run by library code on behalf of the user's call.
    #[track_caller]
    pub fn at_caller(mut self) -> Error {
        let here = std::panic::Location::caller();
        match &mut self {
            Error::Shape { location, .. }
            | Error::Axis { location, .. }
            | Error::Index { location, .. }
            | Error::Argument { location, .. }
            | Error::Alloc { location, .. } => *location = here,
            _ => {}
        }
        self
    }

    /// Panics with this error's message, at the caller's line (the panicking form of a
    /// check: `if bad { Error::argument(..).raise() }`).
    #[cold]
    #[track_caller]
    pub fn raise(self) -> ! {
        raise(self)
    }
}

/// Panics with the error's message. `#[track_caller]`, so that the panic points at the line
/// of the caller of the panicking op.
#[cold]
#[track_caller]
pub(crate) fn raise(e: Error) -> ! {
    panic!("{e}")
}

/// Unwraps an op's result or panics at the caller's line with the error's message.
#[track_caller]
#[inline]
pub(crate) fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => raise(e),
    }
}

/// A fallible method and its panicking twin, written once: `pub fn name / try_name(args)
/// -> R { body }` defines `try_name` (the docs given, returning `Result<R>`, the body
/// unchanged) and `name`, which returns `R` and panics at the caller's line where
/// `try_name` returns an error. The receiver is `&self`, `self` or none.
macro_rules! fallible {
    (@panics $try:ident) => {
        concat!(
            "[`Self::", stringify!($try), "`], panicking at the caller's line where that ",
            "returns an error."
        )
    };
    ($(#[$doc:meta])* pub fn $name:ident / $try:ident
        (& $s:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty $body:block) => {
        $(#[$doc])*
        #[track_caller]
        pub fn $try(& $s $(, $arg: $ty)*) -> $crate::Result<$ret> $body
        #[doc = fallible!(@panics $try)]
        #[track_caller]
        pub fn $name(& $s $(, $arg: $ty)*) -> $ret {
            $crate::error::ok($s.$try($($arg),*))
        }
    };
    ($(#[$doc:meta])* pub fn $name:ident / $try:ident
        ($s:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty $body:block) => {
        $(#[$doc])*
        #[track_caller]
        pub fn $try($s $(, $arg: $ty)*) -> $crate::Result<$ret> $body
        #[doc = fallible!(@panics $try)]
        #[track_caller]
        pub fn $name($s $(, $arg: $ty)*) -> $ret {
            $crate::error::ok($s.$try($($arg),*))
        }
    };
    ($(#[$doc:meta])* pub fn $name:ident / $try:ident
        ($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$doc])*
        #[track_caller]
        pub fn $try($($arg: $ty),*) -> $crate::Result<$ret> $body
        #[doc = fallible!(@panics $try)]
        #[track_caller]
        pub fn $name($($arg: $ty),*) -> $ret {
            $crate::error::ok(Self::$try($($arg),*))
        }
    };
}
pub(crate) use fallible;

/// Builds an [`Error::Shape`] for `op` at the caller's location.
#[track_caller]
pub(crate) fn shape_error(op: &'static str, shapes: &[&[usize]], rule: impl Into<String>) -> Error {
    shape_error_at(op, shapes, rule, std::panic::Location::caller())
}

/// Builds an [`Error::Shape`] for `op` at `location` (captured at the public entry point,
/// for errors built inside closures, which do not carry `#[track_caller]`).
pub(crate) fn shape_error_at(
    op: &'static str,
    shapes: &[&[usize]],
    rule: impl Into<String>,
    location: Location,
) -> Error {
    Error::Shape {
        op,
        shapes: Shapes(shapes.iter().map(|s| Shape::from_slice(s)).collect()),
        rule: rule.into(),
        location,
    }
}

/// Builds an [`Error::Argument`] for `op` at the caller's location.
#[track_caller]
pub(crate) fn arg_error(op: &'static str, message: impl Into<String>) -> Error {
    Error::Argument {
        op,
        message: message.into(),
        location: std::panic::Location::caller(),
    }
}
