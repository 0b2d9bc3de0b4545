//! Initial passwords for added accounts (AD's `unicodePwd`, Graph's
//! `passwordProfile`): made from the operating system's randomness, with
//! each character class the complexity rules of AD and Entra count. A
//! password lives only for the add that sends it: never stored, logged or
//! shown.

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#%+-.:=?@_~";

/// A random password of `length` characters (at least 4), holding an
/// upper-case letter, a lower-case letter, a digit and a symbol.
pub(crate) fn generate(length: usize) -> crate::common::Secret {
    let classes = [UPPER, LOWER, DIGITS, SYMBOLS];
    let all: Vec<u8> = classes.concat();
    let length = length.max(classes.len());
    let mut random = vec![0u8; length + 2 * classes.len()];
    // The OS's generator failing is not something to carry on from.
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut random).expect("the operating system's random number generator");
    let pick = |set: &[u8], r: u8| set[usize::from(r) % set.len()] as char;
    let mut chars: Vec<char> = (0..length).map(|i| pick(&all, random[i])).collect();
    // One of each class at positions chosen at random.
    for (k, class) in classes.iter().enumerate() {
        let at = usize::from(random[length + k]) % length;
        chars[at] = pick(class, random[length + classes.len() + k]);
    }
    // Positions may collide; make sure every class is there.
    for (k, class) in classes.iter().enumerate() {
        if !chars.iter().any(|c| class.contains(&(*c as u8))) {
            chars[k] = pick(class, random[k]);
        }
    }
    crate::common::Secret::new(chars.into_iter().collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_every_class_and_differ() {
        let a = generate(16);
        let b = generate(16);
        assert_ne!(a.expose(), b.expose());
        for p in [&a, &b] {
            let p = p.expose();
            assert_eq!(p.len(), 16);
            for class in [UPPER, LOWER, DIGITS, SYMBOLS] {
                assert!(p.bytes().any(|c| class.contains(&c)), "{p}");
            }
        }
        assert_eq!(format!("{a}"), crate::common::secret::REDACTED);
    }
}
