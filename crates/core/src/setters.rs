//! The `with_*` builder methods of the workspace's configuration structs, written by one
//! macro instead of five lines each (about a hundred of them across the crates).

/// Writes a struct's consuming builder methods, one line each:
///
/// ```
/// #[derive(Clone, Debug, Default, PartialEq)]
/// pub struct Options {
///     /// The step.
///     pub lr: f64,
///     /// Momentum, if any.
///     pub momentum: Option<f64>,
/// }
///
/// tapegrad_core::setters! { Options {
///     /// With a step.
///     with_lr(lr: f64) => lr = lr;
///     /// With momentum.
///     with_momentum(m: f64) => momentum = Some(m);
/// }}
///
/// let o = Options::default().with_lr(0.1).with_momentum(0.9);
/// assert_eq!((o.lr, o.momentum), (0.1, Some(0.9)));
/// ```
///
/// Each line `with_x(args) => field = value;` becomes
/// `pub fn with_x(mut self, args) -> Self { self.field = value; self }`, with the line's doc
/// comments and `#[must_use]` (a builder whose result is dropped did nothing).
#[macro_export]
macro_rules! setters {
    ($ty:ty {
        $(
            $(#[$meta:meta])*
            $name:ident($($arg:ident: $argty:ty),* $(,)?) => $($field:ident).+ = $value:expr;
        )*
    }) => {
        impl $ty {
            $(
                $(#[$meta])*
                #[must_use]
                pub fn $name(mut self, $($arg: $argty),*) -> Self {
                    self.$($field).+ = $value;
                    self
                }
            )*
        }
    };
}
