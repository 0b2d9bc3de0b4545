//! The delta watermark's stored form, one per delta method:
//!
//! - `ad-usn1:<invocationId>:<highestCommittedUSN>:<unix seconds>`: Active
//!   Directory's high-water mark, with the domain controller's database
//!   identity (a USN means nothing on another DC, or on this one restored
//!   from a backup) and when it was taken (tombstones older than the
//!   tombstone lifetime are gone, and with them the deletes).
//! - `syncrepl1:<cookie>,<cookie>…`: one RFC 4533 cookie per base DN, in
//!   the configuration's order, each base64 (an empty one: none yet).

use base64::Engine as _;
use engine::ConnectorError;

/// Active Directory's high-water mark: where a later delta resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsnMark {
    /// The DC's database identity.
    pub(crate) invocation_id: String,
    /// Its highest committed USN.
    pub(crate) usn: u64,
    /// When it was read (unix seconds).
    pub(crate) taken_at: i64,
}

/// A watermark of either method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watermark {
    /// Active Directory's update sequence number.
    Usn(UsnMark),
    /// RFC 4533 cookies, one per base DN.
    Cookies(Vec<Option<Vec<u8>>>),
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Watermark {
    /// The stored form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Watermark::Usn(UsnMark {
                invocation_id,
                usn,
                taken_at,
            }) => format!("ad-usn1:{invocation_id}:{usn}:{taken_at}"),
            Watermark::Cookies(cookies) => {
                let parts: Vec<String> = cookies
                    .iter()
                    .map(|c| c.as_deref().map(|c| B64.encode(c)).unwrap_or_default())
                    .collect();
                format!("syncrepl1:{}", parts.join(","))
            }
        }
    }

    /// Reads a stored watermark; one of another method or version is an
    /// expired watermark (a full import starts over).
    pub(crate) fn decode(text: &str) -> Result<Watermark, ConnectorError> {
        let bad = || {
            ConnectorError::watermark_expired(format!(
                "the stored watermark `{text}` is not one this LDAP connector wrote (was the delta method changed?); a full import is needed"
            ))
        };
        if let Some(rest) = text.strip_prefix("ad-usn1:") {
            let mut parts = rest.split(':');
            let (Some(id), Some(usn), Some(at), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            return Ok(Watermark::Usn(UsnMark {
                invocation_id: id.to_owned(),
                usn: usn.parse().map_err(|_| bad())?,
                taken_at: at.parse().map_err(|_| bad())?,
            }));
        }
        if let Some(rest) = text.strip_prefix("syncrepl1:") {
            let cookies = rest
                .split(',')
                .map(|c| {
                    if c.is_empty() {
                        Ok(None)
                    } else {
                        B64.decode(c).map(Some).map_err(|_| bad())
                    }
                })
                .collect::<Result<_, _>>()?;
            return Ok(Watermark::Cookies(cookies));
        }
        Err(bad())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_round_trip_and_foreign_ones_expire() {
        for w in [
            Watermark::Usn(UsnMark {
                invocation_id: "0a1b".into(),
                usn: 4711,
                taken_at: 1_800_000_000,
            }),
            Watermark::Cookies(vec![Some(b"rid=000,csn=2026".to_vec()), None]),
        ] {
            assert_eq!(Watermark::decode(&w.encode()).unwrap(), w);
        }
        for bad in ["", "sql1:log:4", "ad-usn1:x:y:z", "syncrepl1:!!"] {
            let e = Watermark::decode(bad).unwrap_err();
            assert_eq!(
                e.kind,
                engine::ConnectorErrorKind::WatermarkExpired,
                "{bad}"
            );
        }
    }
}
