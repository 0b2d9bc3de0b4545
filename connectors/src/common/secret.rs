//! The one secret type: a password, client secret, certificate key or token,
//! read from an environment variable or a file, never from the TOML itself.
//!
//! A configuration names where the secret is ([`SecretRef`]: `{ env = "NAME" }`
//! or `{ file = "path" }`); that reference is safe to print. The value
//! ([`Secret`]) prints as a redaction in `Debug`, `Display` and `Serialize`,
//! so no log line, error, history record, lock file or `show` output can hold
//! it; only [`Secret::expose`] gives it, at the point of use (a bind, a token
//! request). A secret file readable by group or others is refused.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What every redacted secret prints as.
pub const REDACTED: &str = "<redacted>";

/// The words of the error for a secret written into the configuration; the
/// CLI masks the value in that error's snippet.
pub const LITERAL_SECRET: &str = "a secret is never written in the configuration";

/// Where a secret is kept: the configuration holds this, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable of the mvsync process.
    Env(String),
    /// A file (relative to the configuration's folder), readable by its owner
    /// only; one trailing line end is not part of the secret.
    File(PathBuf),
}

/// `{ env = "NAME" }` or `{ file = "path" }`; a plain string is refused with
/// a message that says why, so a pasted password never sits in the file
/// unnoticed.
impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            env: Option<String>,
            file: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            // Only told apart from a table; the value is never kept.
            Literal(#[allow(dead_code)] String),
            Table(Table),
        }
        const HOW: &str = "expected { env = \"VARIABLE\" } or { file = \"path\" }";
        match Raw::deserialize(d) {
            Ok(Raw::Literal(_)) => Err(serde::de::Error::custom(format!(
                "{LITERAL_SECRET}: {HOW} (and remove the value from this file and its history)"
            ))),
            Ok(Raw::Table(Table {
                env: Some(name),
                file: None,
            })) if !name.is_empty() => Ok(SecretRef::Env(name)),
            Ok(Raw::Table(Table {
                env: None,
                file: Some(path),
            })) => Ok(SecretRef::File(path)),
            // Marked like a literal, so the CLI masks what was written
            // (`password = 12345`, `{ value = "…" }`).
            Ok(Raw::Table(_)) | Err(_) => Err(serde::de::Error::custom(format!(
                "{LITERAL_SECRET}: {HOW}, exactly one of the two"
            ))),
        }
    }
}

/// Why a secret could not be read. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set (or not Unicode).
    #[error("the environment variable {0} that holds the secret is not set")]
    MissingEnv(String),
    /// The file cannot be read.
    #[error("cannot read the secret file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is readable by group or others.
    #[error("the secret file {path} is readable by group or others (mode {mode:04o}); refusing it: make it readable by its owner only (chmod 600 {path})")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The value is empty.
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl SecretRef {
    /// Reads the secret; a relative file resolves against `base_dir`.
    pub fn resolve(&self, base_dir: &Path) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => {
                let value =
                    std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?;
                if value.is_empty() {
                    return Err(SecretError::Empty(format!("${name}")));
                }
                Ok(Secret::new(value))
            }
            SecretRef::File(path) => {
                let path = base_dir.join(path);
                let unreadable = |e: std::io::Error| SecretError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                let meta = std::fs::metadata(&path).map_err(unreadable)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = meta.permissions().mode() & 0o7777;
                    if mode & 0o077 != 0 {
                        return Err(SecretError::TooOpen { path, mode });
                    }
                }
                #[cfg(not(unix))]
                let _ = meta;
                let mut value = std::fs::read_to_string(&path).map_err(unreadable)?;
                if value.ends_with('\n') {
                    value.pop();
                    if value.ends_with('\r') {
                        value.pop();
                    }
                }
                if value.is_empty() {
                    return Err(SecretError::Empty(path.display().to_string()));
                }
                Ok(Secret::new(value))
            }
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "${name}"),
            SecretRef::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A secret value. Prints as [`REDACTED`]; compare and use it only through
/// [`Secret::expose`]. Its bytes are overwritten when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Secret {
        Secret(value.into_bytes())
    }

    /// The value, for the one call that needs it (a bind, a token request).
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&self.0);
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

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "hunter2-Sup3r-s3cret";

    #[test]
    fn a_secret_prints_as_a_redaction_everywhere() {
        let s = Secret::new(VALUE.into());
        for shown in [
            format!("{s}"),
            format!("{s:?}"),
            format!("{:?}", Some(&s)),
            serde_json::to_string(&s).expect("json"),
            toml::to_string(&std::collections::BTreeMap::from([("password", &s)])).expect("toml"),
        ] {
            assert!(!shown.contains(VALUE), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        assert_eq!(s.expose(), VALUE);
    }

    #[derive(Debug, Deserialize)]
    struct Conf {
        password: SecretRef,
    }

    #[test]
    fn the_configuration_names_where_the_secret_is_never_the_secret() {
        let c: Conf = toml::from_str("password = { env = \"MVSYNC_T\" }").expect("env");
        assert_eq!(c.password, SecretRef::Env("MVSYNC_T".into()));
        let c: Conf = toml::from_str("password = { file = \"pw\" }").expect("file");
        assert_eq!(c.password, SecretRef::File("pw".into()));
        let e = toml::from_str::<Conf>(&format!("password = \"{VALUE}\"")).expect_err("literal");
        // The message only: the toml crate's own rendering quotes the line,
        // which the CLI masks (`diagnostics::mask_literal_secrets`).
        let e = e.message().to_owned();
        assert!(e.contains("never written in the configuration"), "{e}");
        assert!(!e.contains(VALUE), "the error repeats the secret: {e}");
        for bad in [
            "password = { env = \"A\", file = \"b\" }",
            "password = {}",
            "password = { vault = \"x\" }",
            "password = 5",
        ] {
            let e = toml::from_str::<Conf>(bad).expect_err(bad).to_string();
            assert!(e.contains("{ env = "), "{bad}: {e}");
        }
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let name = "MVSYNC_SECRET_TEST_VAR";
        std::env::set_var(name, VALUE);
        let s = SecretRef::Env(name.into())
            .resolve(Path::new("."))
            .expect("set");
        assert_eq!(s.expose(), VALUE);
        let e = SecretRef::Env("MVSYNC_SECRET_TEST_UNSET".into())
            .resolve(Path::new("."))
            .expect_err("unset");
        assert!(e.to_string().contains("MVSYNC_SECRET_TEST_UNSET"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_readable_by_others_is_refused_naming_file_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ad.pw");
        std::fs::write(&path, format!("{VALUE}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let r = SecretRef::File("ad.pw".into());
        let e = r.resolve(dir.path()).expect_err("too open").to_string();
        assert!(e.contains("ad.pw") && e.contains("0644"), "{e}");
        assert!(!e.contains(VALUE), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(r.resolve(dir.path()).expect("owner only").expose(), VALUE);
        std::fs::write(&path, "").expect("empty");
        assert!(r.resolve(dir.path()).is_err());
    }
}
