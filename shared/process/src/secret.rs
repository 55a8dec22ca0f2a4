//! A secret from the command line or the environment (`clap` parses it through
//! [`FromStr`]), kept out of logs and panics: its `Debug` never shows it.

use std::fmt;
use std::str::FromStr;

/// A secret taken verbatim; [`Secret::expose`] is the one way to read it.
///
/// # Examples
///
/// ```
/// let secret: kapso_process::Secret = "test-secret-not-real".parse().unwrap();
/// assert_eq!(format!("{secret:?}"), "[redacted]");
/// assert_eq!(secret.expose(), "test-secret-not-real");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends or keys with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret: Secret = "test-secret-not-real".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret)), "Some([redacted])");
    }
}
