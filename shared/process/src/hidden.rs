//! A `clap` value parser for secrets: a refused value is never quoted back.
//!
//! clap's own errors repeat the rejected value, which for a webhook secret, a
//! token list or a database URL with a password would print the secret to the
//! terminal and to whatever collects the process's output.

use std::ffi::OsStr;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// Parses a `T` through [`FromStr`]; on failure names the variable and the
/// reason, never the value.
///
/// # Examples
///
/// ```
/// use clap::Parser;
/// use kapso_process::{HiddenValue, Secret};
///
/// #[derive(Parser)]
/// struct Config {
///     #[arg(long, env = "EXAMPLE_TOKEN", value_parser = HiddenValue::<Secret>::new("EXAMPLE_TOKEN"))]
///     token: Secret,
/// }
///
/// let config = Config::try_parse_from(["app", "--token", "test-token-not-real"]).unwrap();
/// assert_eq!(config.token.expose(), "test-token-not-real");
/// ```
pub struct HiddenValue<T> {
    variable: &'static str,
    parsed: PhantomData<fn() -> T>,
}

impl<T> HiddenValue<T> {
    /// A parser whose errors name `variable` (the environment variable the
    /// operator sets).
    pub const fn new(variable: &'static str) -> Self {
        Self {
            variable,
            parsed: PhantomData,
        }
    }
}

impl<T> Clone for HiddenValue<T> {
    fn clone(&self) -> Self {
        Self::new(self.variable)
    }
}

impl<T> fmt::Debug for HiddenValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HiddenValue").field(&self.variable).finish()
    }
}

impl<T> TypedValueParser for HiddenValue<T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: fmt::Display,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let refuse = |why: &dyn fmt::Display| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{}: {why} (value not shown)\n", self.variable),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| refuse(&"not valid UTF-8"))?;
        text.parse().map_err(|e: T::Err| refuse(&e))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Clone, Debug)]
    struct Digits;

    impl FromStr for Digits {
        type Err = &'static str;

        fn from_str(s: &str) -> Result<Self, Self::Err> {
            if s.chars().all(|c| c.is_ascii_digit()) {
                Ok(Digits)
            } else {
                Err("digits only")
            }
        }
    }

    #[derive(Parser, Debug)]
    struct Config {
        #[arg(long, value_parser = HiddenValue::<Digits>::new("EXAMPLE_PIN"))]
        pin: Digits,
    }

    #[test]
    fn a_refused_value_is_named_by_its_variable_and_never_shown() {
        let error = Config::try_parse_from(["app", "--pin", "s3cr3t-not-real"]).unwrap_err();
        let printed = error.to_string();
        assert!(printed.contains("EXAMPLE_PIN: digits only"), "{printed}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }
}
