//! Job ids: 128 random bits from the OS, as 32 lowercase hex digits.
//! Ids are capabilities (whoever has one can read the result), so they must
//! not be guessable; and they become directory names, so anything that is
//! not exactly this shape is rejected before it reaches a path.

pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    hex(&bytes)
}

/// Lowercase hex digits of `bytes` (ids, SHA-256 digests).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn is_valid(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_path_safe() {
        let (a, b) = (new_id(), new_id());
        assert!(is_valid(&a) && is_valid(&b));
        assert_ne!(a, b);
        assert!(!is_valid("../../etc/passwd"));
        assert!(!is_valid(&a.to_uppercase()));
        assert!(!is_valid(&a[..31]));
    }
}
