//! The field-by-field conversions between a model struct and its wire message, written once.
//!
//! Most models mirror one prost message field for field; only how each value crosses differs (as
//! is, an enum to its `i32`, a `SystemTime` to a `Timestamp`, …). [`wire_struct!`] writes both
//! `From` impls from a list of fields and how each crosses. Both struct literals name every field
//! and use no `..Default::default()`, so a field missing from the list, on either side, is a
//! compile error rather than a value silently dropped. It stays private to this crate: other
//! crates convert through the `From` impls it writes.

/// Writes `From<Model> for Wire` and `From<Wire> for Model`.
///
/// `wire_struct!(Model <=> proto::Wire { field: mode, model_field => wire_field: mode, … })`,
/// where `mode` is one of:
/// - `same`: the same type on both sides, moved;
/// - `into`: converted with `Into` both ways (a model enum and its wire `i32`, a nested model);
/// - `required`: a model value that the wire wraps in an `Option` (a missing one decodes as the
///   wire default);
/// - `opt` / `vec`: an `Option` / a `Vec` of values converted with `Into`;
/// - `map(to_wire, from_wire)`: an `Option` whose value converts with these two functions;
/// - `time` / `duration`: an `Option<SystemTime>` / `Option<Duration>` and its prost type.
macro_rules! wire_struct {
    ($model:ident <=> $wire:path { $($fields:tt)* }) => {
        $crate::models::convert::wire_struct!(@fields $model, $wire, [] $($fields)*);
    };
    // Normalise each field to `(model_name wire_name mode (mode arguments))`.
    (@fields $model:ident, $wire:path, [$($done:tt)*]
        $field:ident => $wire_field:ident : $mode:ident $(($($args:tt)*))? $(, $($rest:tt)*)?) => {
        $crate::models::convert::wire_struct!(@fields $model, $wire,
            [$($done)* ($field $wire_field $mode ($($($args)*)?))] $($($rest)*)?);
    };
    (@fields $model:ident, $wire:path, [$($done:tt)*]
        $field:ident : $mode:ident $(($($args:tt)*))? $(, $($rest:tt)*)?) => {
        $crate::models::convert::wire_struct!(@fields $model, $wire,
            [$($done)* ($field $field $mode ($($($args)*)?))] $($($rest)*)?);
    };
    (@fields $model:ident, $wire:path,
        [$(($field:ident $wire_field:ident $mode:ident $args:tt))*]) => {
        impl From<$model> for $wire {
            fn from(model: $model) -> Self {
                Self { $($wire_field: $crate::models::convert::wire_struct!(@to_wire $mode $args, model.$field)),* }
            }
        }

        impl From<$wire> for $model {
            fn from(wire: $wire) -> Self {
                Self { $($field: $crate::models::convert::wire_struct!(@from_wire $mode $args, wire.$wire_field)),* }
            }
        }
    };
    (@to_wire same (), $value:expr) => { $value };
    (@to_wire into (), $value:expr) => { ::core::convert::Into::into($value) };
    (@to_wire required (), $value:expr) => {
        ::core::option::Option::Some(::core::convert::Into::into($value))
    };
    (@to_wire opt (), $value:expr) => {
        ::core::option::Option::map($value, ::core::convert::Into::into)
    };
    (@to_wire vec (), $value:expr) => {
        ::core::iter::IntoIterator::into_iter($value)
            .map(::core::convert::Into::into)
            .collect()
    };
    (@to_wire map ($to_wire:path, $from_wire:path), $value:expr) => {
        ::core::option::Option::map($value, $to_wire)
    };
    (@to_wire time (), $value:expr) => {
        ::core::option::Option::map($value, $crate::models::time::timestamp)
    };
    (@to_wire duration (), $value:expr) => {
        ::core::option::Option::map($value, $crate::models::time::duration)
    };
    (@from_wire required (), $value:expr) => {
        ::core::convert::Into::into(::core::option::Option::unwrap_or_default($value))
    };
    (@from_wire map ($to_wire:path, $from_wire:path), $value:expr) => {
        ::core::option::Option::map($value, $from_wire)
    };
    (@from_wire time (), $value:expr) => {
        $crate::models::time::opt_system_time(::core::option::Option::as_ref(&$value))
    };
    (@from_wire duration (), $value:expr) => {
        $crate::models::time::opt_std_duration(::core::option::Option::as_ref(&$value))
    };
    // The other modes are symmetric.
    (@from_wire $mode:ident $args:tt, $value:expr) => {
        $crate::models::convert::wire_struct!(@to_wire $mode $args, $value)
    };
}

pub(crate) use wire_struct;
