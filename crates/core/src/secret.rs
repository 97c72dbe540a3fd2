//! Secrets typed as secrets.
//!
//! [`Secret`] owns a sensitive string (a password, an access key) and promises that the
//! value can only be read through [`Secret::expose`]: `Debug` and `Display` print `***`,
//! and the type does not implement `Serialize`, so a secret cannot leak into a log line,
//! an HTTP response, an error message or a JSON dump by accident. Structs that want a
//! redacted serialized view opt in per field with [`serialize_redacted`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};

/// What `Debug`, `Display` and [`serialize_redacted`] print instead of a secret value.
pub const REDACTED: &str = "***";

/// A sensitive string. Empty by default ("not set").
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Call this only where the value is handed to the system that
    /// needs it (a database driver, a Kafka client), never to build a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// For `#[serde(serialize_with = "crate::secret::serialize_redacted")]`: writes `""` for an
/// empty secret and `***` otherwise, so a redacted dump still shows whether it is set.
pub fn serialize_redacted<S: Serializer>(
    secret: &Secret,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if secret.is_empty() { "" } else { REDACTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
        assert!(!s.is_empty());
    }

    #[test]
    fn default_is_empty() {
        assert!(Secret::default().is_empty());
        assert_eq!(Secret::default().expose(), "");
    }

    #[test]
    fn deserializes_from_a_string_only() {
        let s: Secret = serde_json::from_str("\"p@ss\"").expect("string");
        assert_eq!(s.expose(), "p@ss");
        assert!(serde_json::from_str::<Secret>("42").is_err());
    }

    #[test]
    fn redacted_serialization() {
        #[derive(serde::Serialize)]
        struct Holder {
            #[serde(serialize_with = "serialize_redacted")]
            set: Secret,
            #[serde(serialize_with = "serialize_redacted")]
            unset: Secret,
        }
        let json = serde_json::to_string(&Holder {
            set: Secret::new("topsecret"),
            unset: Secret::default(),
        })
        .expect("serialize");
        assert_eq!(json, r#"{"set":"***","unset":""}"#);
    }
}
