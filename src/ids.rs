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

/// `id` as it may appear in a message: at most a few dozen characters, so
/// an oversized id sent by a client is never echoed whole (error messages
/// travel in metadata, which clients cap at 8 KiB).
pub fn shown(id: &str) -> String {
    const SHOWN: usize = 40;
    match id.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_owned(),
    }
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

    #[test]
    fn oversized_ids_are_cut_when_shown() {
        let id = new_id();
        assert_eq!(shown(&id), id);
        let long = "é".repeat(10_000);
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), 41);
        assert!(cut.ends_with('…'));
    }
}
