//! Active Directory's initial password (made by `common::password`),
//! encoded as `unicodePwd` wants it: the quoted text in UTF-16LE.

pub(crate) use crate::common::password::generate;

/// `unicodePwd`'s value: the password in double quotes, UTF-16LE.
pub(crate) fn unicode_pwd(password: &crate::common::Secret) -> Vec<u8> {
    format!("\"{}\"", password.expose())
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_the_quoted_password_in_utf16le() {
        let p = crate::common::Secret::new("Ab1!".into());
        assert_eq!(unicode_pwd(&p), b"\"\0A\0b\x001\0!\0\"\0".to_vec());
    }
}
