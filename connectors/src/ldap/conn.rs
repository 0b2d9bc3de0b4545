//! Connecting and binding (TLS verified by default, the password from the
//! secret, timeouts, retry of transient failures with the one retry
//! policy), and LDAP failures as the engine's error kinds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{ConnectorError, ConnectorErrorKind, ExportFailure, FailureKind, RetryPolicy};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult};

use super::config::{shown_url, LdapConfig};

/// Opens a connection and binds, retrying transient failures.
pub(crate) async fn open(config: &LdapConfig, base_dir: &Path) -> Result<Ldap, ConnectorError> {
    let shown = shown_url(&config.url);
    let password = match &config.password {
        Some(p) => Some(p.resolve(base_dir).map_err(|e| {
            ConnectorError::of(ConnectorErrorKind::Configuration, format!("{shown}: {e}"))
        })?),
        None => None,
    };
    let tls = tls_config(config, base_dir, &shown)?;
    RetryPolicy::default()
        .run(
            &format!("connecting to {shown}"),
            || async {
                let mut settings = LdapConnSettings::new()
                    .set_conn_timeout(Duration::from_secs(config.timeout_secs))
                    .set_starttls(config.url.starts_with("ldap://") && config.starttls);
                match &tls {
                    Some(tls) => settings = settings.set_config(Arc::clone(tls)),
                    None if !config.tls_verify => settings = settings.set_no_tls_verify(true),
                    None => {}
                }
                let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
                    .await
                    .map_err(|e| step_error(&shown, "cannot connect", e))?;
                ldap3::drive!(conn);
                ldap.with_timeout(Duration::from_secs(config.timeout_secs));
                if let (Some(dn), Some(password)) = (&config.bind_dn, &password) {
                    let bound = ldap
                        .simple_bind(dn, password.expose())
                        .await
                        .and_then(LdapResult::success);
                    if let Err(e) = bound {
                        let mut e = step_error(&shown, &format!("cannot bind as {dn}"), e);
                        if e.kind == ConnectorErrorKind::Other {
                            e.kind = ConnectorErrorKind::Authentication;
                        }
                        return Err(e);
                    }
                }
                Ok(ldap)
            },
            |e: &ConnectorError| e.kind == ConnectorErrorKind::Unavailable,
            |_| None,
        )
        .await
}

/// The TLS configuration: the configured CA alone when there is one (the
/// system's roots otherwise, which ldap3 loads), nothing checked when the
/// operator turned verification off for a test.
fn tls_config(
    config: &LdapConfig,
    base_dir: &Path,
    shown: &str,
) -> Result<Option<Arc<rustls::ClientConfig>>, ConnectorError> {
    if !config.tls_verify {
        tracing::warn!(
            "{shown}: the server's TLS certificate is NOT verified (`tls_verify = false`); never outside tests"
        );
        return Ok(None);
    }
    let Some(ca) = &config.ca_file else {
        return Ok(None);
    };
    use rustls::pki_types::pem::PemObject;
    let path = base_dir.join(ca);
    let bad = |why: String| {
        ConnectorError::of(
            ConnectorErrorKind::Configuration,
            format!("{shown}: `ca_file` {}: {why}", path.display()),
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        rustls::pki_types::CertificateDer::pem_file_iter(&path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    #[allow(deprecated)] // the post-quantum default needs aws-lc-rs, which builds C
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(tls)))
}

/// The OID of Active Directory's Show Deleted control.
pub(crate) const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";

/// Active Directory's Show Deleted control (critical): a search returns
/// tombstones too.
pub(crate) fn show_deleted() -> ldap3::controls::RawControl {
    ldap3::controls::RawControl {
        ctype: SHOW_DELETED.into(),
        crit: true,
        val: None,
    }
}

/// An LDAP result code's name, for messages and export failure codes.
pub(crate) fn code_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        4096 => "e-syncRefreshRequired",
        _ => "unknown",
    }
}

/// `LDAP 68 entryAlreadyExists: <server text>`.
pub(crate) fn describe(r: &LdapResult) -> String {
    let mut s = format!("LDAP {} {}", r.rc, code_name(r.rc));
    if !r.text.trim().is_empty() {
        s.push_str(": ");
        s.push_str(r.text.trim_end_matches('\0').trim());
    }
    s
}

/// A failure that ends a step (connect, bind, search), with its kind.
pub(crate) fn step_error(shown: &str, what: &str, e: LdapError) -> ConnectorError {
    let (kind, why) = match &e {
        LdapError::LdapResult { result } => {
            let kind = match result.rc {
                49 => ConnectorErrorKind::Authentication,
                51 | 52 | 3 => ConnectorErrorKind::Unavailable,
                8 | 12 | 13 => ConnectorErrorKind::Configuration,
                32 | 34 => ConnectorErrorKind::Configuration,
                4096 => ConnectorErrorKind::WatermarkExpired,
                _ => ConnectorErrorKind::Other,
            };
            (kind, describe(result))
        }
        // What the connector itself found wrong in an answer (a malformed
        // entry, a range other than the one asked for).
        LdapError::AdapterInit(why) => (
            ConnectorErrorKind::Other,
            format!("the server's answer is not usable: {why}"),
        ),
        other => {
            let text = other.to_string();
            if is_certificate_error(&text) {
                (
                    ConnectorErrorKind::Configuration,
                    format!(
                        "the server's TLS certificate is not trusted for this address ({text}); \
                         give the CA that signed it as `ca_file`, and use the host name it was issued for"
                    ),
                )
            } else {
                (
                    ConnectorErrorKind::Unavailable,
                    format!("the connection was lost or refused ({text})"),
                )
            }
        }
    };
    ConnectorError::of(kind, format!("{shown}: {what}: {why}"))
}

fn is_certificate_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("certificate") || t.contains("unknownissuer") || t.contains("notvalidforname")
}

/// Whether a failure means the connection is gone (the batch stops; what
/// was not answered is of unknown outcome).
pub(crate) fn is_connection_lost(e: &LdapError) -> bool {
    !matches!(
        e,
        LdapError::LdapResult { .. }
            | LdapError::AddNoValues
            | LdapError::FilterParsing
            | LdapError::AdapterInit(_)
    )
}

/// One object's export failure from its LDAP result.
pub(crate) fn export_failure(e: &LdapError) -> ExportFailure {
    let LdapError::LdapResult { result } = e else {
        return ExportFailure::new(FailureKind::Retryable, e.to_string());
    };
    let kind = match result.rc {
        // Samba's answer to a DN-valued attribute naming a missing object:
        // it may be exported later in the run.
        19 if result
            .text
            .to_ascii_lowercase()
            .contains("referenced object") =>
        {
            FailureKind::Retryable
        }
        68 => FailureKind::AlreadyExists,
        32 => FailureKind::NotFound,
        3 | 51 | 52 => FailureKind::Retryable,
        19 | 50 | 53 => FailureKind::RejectedByPolicy,
        _ => FailureKind::Permanent,
    };
    ExportFailure::new(kind, describe(result)).with_code(format!(
        "LDAP {} {}",
        result.rc,
        code_name(result.rc)
    ))
}
