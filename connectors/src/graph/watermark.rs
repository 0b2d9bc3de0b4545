//! The Graph connector's watermark: for each type, the delta link Graph
//! returned and the `$select` it was asked with (a delta link keeps the
//! properties of the round that made it, so one made before `attributes`
//! changed would silently go on reading the old ones). Stored as
//! `graph2 user;<select>=<link> group;<select>=<link>` (links and property
//! names hold no spaces or semicolons).

use std::fmt;

use engine::ConnectorError;

const VERSION: &str = "graph2";

/// The delta link of each type read so far, with its `$select`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Watermark {
    links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    object_type: String,
    select: String,
    link: String,
}

impl Watermark {
    /// Reads a stored watermark; one of another form has expired.
    pub(crate) fn parse(text: &str) -> Result<Watermark, ConnectorError> {
        let mut parts = text.split(' ');
        if parts.next() != Some(VERSION) {
            return Err(ConnectorError::watermark_expired(
                "the stored watermark is not a Graph delta link of this version: run a full import",
            ));
        }
        let mut mark = Watermark::default();
        for part in parts {
            let Some(((object_type, select), link)) = part
                .split_once('=')
                .and_then(|(head, link)| Some((head.split_once(';')?, link)))
            else {
                return Err(ConnectorError::watermark_expired(
                    "the stored watermark is damaged: run a full import",
                ));
            };
            mark.set(object_type, select, link.to_owned());
        }
        Ok(mark)
    }

    /// The delta link of `object_type`, when it was made with `select`:
    /// `Ok(None)` when there is none, expired when the properties changed.
    pub(crate) fn link(
        &self,
        object_type: &str,
        select: &str,
    ) -> Result<Option<&str>, ConnectorError> {
        match self.links.iter().find(|l| l.object_type == object_type) {
            None => Ok(None),
            Some(l) if l.select == select => Ok(Some(&l.link)),
            Some(_) => Err(ConnectorError::watermark_expired(format!(
                "the attributes of `{object_type}` changed since the last full import, and a delta link reads only the old ones: run a full import"
            ))),
        }
    }

    /// Sets the delta link of `object_type`.
    pub(crate) fn set(&mut self, object_type: &str, select: &str, link: String) {
        let new = Link {
            object_type: object_type.to_owned(),
            select: select.to_owned(),
            link,
        };
        match self.links.iter_mut().find(|l| l.object_type == object_type) {
            Some(l) => *l = new,
            None => self.links.push(new),
        }
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(VERSION)?;
        for l in &self.links {
            write!(f, " {};{}={}", l.object_type, l.select, l.link)?;
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
        m.set(
            "user",
            "displayName,manager",
            "https://g/v1.0/users/delta?$deltatoken=a=b".into(),
        );
        m.set(
            "group",
            "members",
            "https://g/v1.0/groups/delta?$deltatoken=c".into(),
        );
        m.set(
            "user",
            "displayName,manager",
            "https://g/v1.0/users/delta?$deltatoken=d".into(),
        );
        let text = m.to_string();
        assert_eq!(
            text,
            "graph2 user;displayName,manager=https://g/v1.0/users/delta?$deltatoken=d group;members=https://g/v1.0/groups/delta?$deltatoken=c"
        );
        let back = Watermark::parse(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.link("user", "displayName,manager").unwrap(),
            Some("https://g/v1.0/users/delta?$deltatoken=d")
        );
        assert_eq!(back.link("contact", "x").unwrap(), None);
        let changed = back
            .link("user", "displayName,manager,jobTitle")
            .unwrap_err();
        assert_eq!(changed.kind, engine::ConnectorErrorKind::WatermarkExpired);
        for bad in ["ad-usn1:x:1:2", "graph2 nolink", "graph1 user=https://g"] {
            let e = Watermark::parse(bad).unwrap_err();
            assert_eq!(
                e.kind,
                engine::ConnectorErrorKind::WatermarkExpired,
                "{bad}"
            );
        }
    }
}
