//! Command-line options of the bench programs.
//!
//! `cargo bench` passes `--bench` to programs with `harness = false`; it is accepted and
//! ignored. Every numeric option can also come from an environment variable, so that
//! `cargo xtask bench` and CI can size a run without a command line.

use crate::{BenchError, Result};

/// Parsed options: flags and `--name value` pairs.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `--quick` (or `ELARIAN_BENCH_QUICK=1`): smaller sizes for a fast run.
    pub quick: bool,
    /// `--no-js` (or `ELARIAN_BENCH_NO_JS=1`): skip the JavaScript client.
    pub no_js: bool,
    /// `--check` (or `ELARIAN_BENCH_CHECK=1`): exit non-zero when a ratio the project commits
    /// to falls below its floor in any run.
    pub check: bool,
    values: Vec<(String, u64)>,
}

impl Options {
    /// Parses `args` (without the program name); `numbers` lists the accepted `--name N` options.
    pub fn parse(args: impl IntoIterator<Item = String>, numbers: &[&str]) -> Result<Self> {
        let mut options = Options {
            quick: env_flag("ELARIAN_BENCH_QUICK"),
            no_js: env_flag("ELARIAN_BENCH_NO_JS"),
            check: env_flag("ELARIAN_BENCH_CHECK"),
            values: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => {}
                "--quick" => options.quick = true,
                "--no-js" => options.no_js = true,
                "--check" => options.check = true,
                name if numbers.contains(&name) => {
                    let value = args
                        .next()
                        .ok_or_else(|| BenchError::new(format!("{name} needs a number")))?;
                    let value = parse_count(&value).ok_or_else(|| {
                        BenchError::new(format!("{name}: invalid number {value:?}"))
                    })?;
                    options.values.push((name.to_owned(), value));
                }
                other => {
                    return Err(BenchError::new(format!(
                        "unknown option {other:?} (accepted: --quick, --no-js, --check, {})",
                        numbers.join(", ")
                    )));
                }
            }
        }
        Ok(options)
    }

    /// The value of `--name`, else of the environment variable `env`, else `quick` or `full`
    /// depending on `--quick`.
    pub fn count(&self, name: &str, env: &str, quick: u64, full: u64) -> Result<u64> {
        Ok(self
            .value(name, env)?
            .unwrap_or(if self.quick { quick } else { full }))
    }

    /// The value of `--name`, else of the environment variable `env`, else `None`.
    pub fn value(&self, name: &str, env: &str) -> Result<Option<u64>> {
        if let Some((_, v)) = self.values.iter().rev().find(|(n, _)| n == name) {
            return Ok(Some(*v));
        }
        match std::env::var(env) {
            Ok(text) => parse_count(&text)
                .map(Some)
                .ok_or_else(|| BenchError::new(format!("{env}: invalid number {text:?}"))),
            Err(_) => Ok(None),
        }
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A positive count; `_` separators allowed (`1_000_000`).
fn parse_count(text: &str) -> Option<u64> {
    text.replace('_', "").parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn cargo_bench_flag_is_ignored_and_values_are_read() {
        let o = Options::parse(args(&["--bench", "--customers", "1_000"]), &["--customers"])
            .expect("valid");
        assert_eq!(
            o.count("--customers", "ELARIAN_BENCH_TEST_UNSET", 1, 2)
                .unwrap(),
            1_000
        );
        assert_eq!(
            o.count("--other", "ELARIAN_BENCH_TEST_UNSET", 1, 2)
                .unwrap(),
            2
        );
    }

    #[test]
    fn check_is_a_flag() {
        let o = Options::parse(args(&["--check", "--quick"]), &[]).expect("valid");
        assert!(o.check && o.quick);
        assert!(
            !Options::parse(args(&[]), &[]).expect("valid").check
                || env_flag("ELARIAN_BENCH_CHECK")
        );
    }

    #[test]
    fn quick_picks_the_small_size() {
        let o = Options::parse(args(&["--quick"]), &[]).expect("valid");
        assert!(o.quick);
        assert_eq!(o.count("--n", "ELARIAN_BENCH_TEST_UNSET", 1, 2).unwrap(), 1);
    }

    #[test]
    fn an_absent_optional_value_is_none() {
        let o = Options::parse(args(&["--in-flight", "64"]), &["--in-flight", "--rounds"])
            .expect("valid");
        assert_eq!(
            o.value("--in-flight", "ELARIAN_BENCH_TEST_UNSET").unwrap(),
            Some(64)
        );
        assert_eq!(
            o.value("--rounds", "ELARIAN_BENCH_TEST_UNSET").unwrap(),
            None
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Options::parse(args(&["--customers"]), &["--customers"]).is_err());
        assert!(Options::parse(args(&["--customers", "x"]), &["--customers"]).is_err());
        assert!(Options::parse(args(&["--customers", "0"]), &["--customers"]).is_err());
        assert!(Options::parse(args(&["--nope"]), &["--customers"]).is_err());
    }
}
