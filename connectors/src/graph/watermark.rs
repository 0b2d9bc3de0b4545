//! The Graph connector's watermark: the delta link of each type, as Graph
//! returned it, stored as `graph1 user=<link> group=<link>` (links hold no
//! spaces).

use std::fmt;

use engine::ConnectorError;

const VERSION: &str = "graph1";

/// The delta link of each type read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Watermark {
    links: Vec<(String, String)>,
}

impl Watermark {
    /// Reads a stored watermark; one of another form has expired.
    pub(crate) fn parse(text: &str) -> Result<Watermark, ConnectorError> {
        let mut parts = text.split(' ');
        if parts.next() != Some(VERSION) {
            return Err(ConnectorError::watermark_expired(
                "the stored watermark is not a Graph delta link (another connector type wrote it): run a full import",
            ));
        }
        let mut mark = Watermark::default();
        for part in parts {
            let Some((name, link)) = part.split_once('=') else {
                return Err(ConnectorError::watermark_expired(
                    "the stored watermark is damaged: run a full import",
                ));
            };
            mark.set(name, link.to_owned());
        }
        Ok(mark)
    }

    /// The delta link of `object_type`.
    pub(crate) fn link(&self, object_type: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|(n, _)| n == object_type)
            .map(|(_, l)| l.as_str())
    }

    /// Sets the delta link of `object_type`.
    pub(crate) fn set(&mut self, object_type: &str, link: String) {
        match self.links.iter_mut().find(|(n, _)| n == object_type) {
            Some((_, l)) => *l = link,
            None => self.links.push((object_type.to_owned(), link)),
        }
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(VERSION)?;
        for (name, link) in &self.links {
            write!(f, " {name}={link}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_did_not_write() {
        let mut m = Watermark::default();
        m.set("user", "https://g/v1.0/users/delta?$deltatoken=a=b".into());
        m.set("group", "https://g/v1.0/groups/delta?$deltatoken=c".into());
        m.set("user", "https://g/v1.0/users/delta?$deltatoken=d".into());
        let text = m.to_string();
        assert_eq!(
            text,
            "graph1 user=https://g/v1.0/users/delta?$deltatoken=d group=https://g/v1.0/groups/delta?$deltatoken=c"
        );
        assert_eq!(Watermark::parse(&text).unwrap(), m);
        for bad in ["ad-usn1:x:1:2", "graph1 nolink"] {
            let e = Watermark::parse(bad).unwrap_err();
            assert_eq!(
                e.kind,
                engine::ConnectorErrorKind::WatermarkExpired,
                "{bad}"
            );
        }
    }
}
