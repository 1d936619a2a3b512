//! The SDK depends on no crate built on it, not even for its tests or examples: such a
//! dev-dependency would be a cycle (Cargo allows it, but it builds the SDK twice and hides
//! which crate an item comes from). Tests that need an app and a simulator belong in
//! `elarian-simulator`'s tests, the `examples` crate or the campaigns crate.

/// Crates that depend on `elarian-sdk`.
const BUILT_ON_THE_SDK: [&str; 4] = [
    "elarian-simulator",
    "elarian-campaigns",
    "elarian-examples",
    "elarian-benches",
];

#[test]
fn the_sdk_depends_on_no_crate_built_on_it() {
    let manifest = include_str!("../Cargo.toml");
    let offending: Vec<&str> = manifest
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            BUILT_ON_THE_SDK.iter().any(|name| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['.', ' ', '=']))
            })
        })
        .collect();
    assert!(offending.is_empty(), "elarian-sdk depends on {offending:?}");
}
