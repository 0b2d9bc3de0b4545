//! Certificate credentials: the client assertion the identity platform
//! takes instead of a client secret — a JWT signed with the app's private
//! key (RS256), naming the certificate by its SHA-1 thumbprint (`x5t`), for
//! the token endpoint (`aud`), valid for ten minutes. The key is a `Secret`
//! until it is parsed, and never leaves this module.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::common::Secret;

/// A client assertion for `client_id` at `audience` (the token endpoint).
pub(crate) fn client_assertion(
    certificate_pem: &[u8],
    private_key_pem: &Secret,
    client_id: &str,
    audience: &str,
) -> Result<String, String> {
    let cert = CertificateDer::from_pem_slice(certificate_pem)
        .map_err(|e| format!("the certificate is not a PEM certificate: {e}"))?;
    let key = PrivatePkcs8KeyDer::from_pem_slice(private_key_pem.expose().as_bytes())
        .map_err(|_| {
            "the private key is not a PEM PKCS#8 key (`-----BEGIN PRIVATE KEY-----`; convert one with `openssl pkcs8 -topk8 -nocrypt`)".to_owned()
        })?;
    let pair = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der())
        .map_err(|e| format!("the private key is not an RSA key ring can sign with: {e}"))?;
    let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5t": URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": super::client::request_id(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the client assertion failed".to_owned())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
