//! Random identifiers and tokens, and the clock as Graph prints it.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// `N` random bytes from rustls' ring provider (a CSPRNG; no extra crate).
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    super::tls::provider()
        .secure_random
        .fill(&mut bytes)
        .expect("random bytes from the system");
    bytes
}

/// A lowercase version-4 GUID, as Entra ID's object ids.
pub(super) fn guid() -> String {
    let mut b = random::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An opaque, URL-safe random token (access, skip and delta tokens).
pub(super) fn opaque_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<33>())
}

/// Now in UTC as (year, month, day, hour, minute, second).
fn now_utc() -> (i64, u32, u32, u64, u64, u64) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `2026-12-06T10:00:00`: the `date` of an error's `innerError`.
pub(super) fn graph_date() -> String {
    let (y, mo, d, h, mi, s) = now_utc();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

/// `2026-12-06T10:00:00Z`: a `createdDateTime`.
pub(super) fn graph_timestamp() -> String {
    format!("{}Z", graph_date())
}

/// `2026-12-06 10:00:00Z`: the timestamps of Entra ID's token errors.
pub(super) fn aad_timestamp() -> String {
    let (y, mo, d, h, mi, s) = now_utc();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}
