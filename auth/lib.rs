//! The tokens file: who may call a docconv service that faces others.
//!
//! One line per token: the lowercase hex SHA-256 of the token, optionally
//! followed by whitespace and a name for logs; `#` comments and blank lines
//! are ignored. The file holds hashes only, so reading it (or a backup of
//! it) gives no one a token. `docconv hash-token` writes the lines.
//!
//! The file is read at start (a bad file stops the start, naming the file
//! and line) and read again when it changes, so a token is revoked by
//! deleting its line, without a restart. The converter and the gateway each
//! keep their own `TokensFile`; neither ever stores or logs a token.
//!
//! `tls` is the other half of facing others: the certificate and key the
//! two listeners serve TLS with, kept current with their files the same
//! way (`watch`).
#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use watch::{Look, Watched};

pub mod tls;
mod watch;

/// How often, at most, a check looks at the file for changes. Checks happen
/// as calls come in, so a revocation takes effect within about this long.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The SHA-256 of a token, as listed in the file.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The line of the tokens file that admits `token`, named `name` in logs.
pub fn file_line(token: &str, name: Option<&str>) -> String {
    let hex: String = digest(token).iter().map(|b| format!("{b:02x}")).collect();
    match name {
        Some(name) => format!("{hex} {name}"),
        None => hex,
    }
}

/// The token of an `authorization` value `Bearer <token>` (the scheme in
/// any case, as RFC 9110 allows), if that is what it is.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a file (the tokens file, a TLS certificate, key or CA file) cannot
/// be used; the message names the file (and the line, for a malformed
/// tokens file) and never quotes what may be a secret.
#[derive(Debug)]
pub struct LoadError(String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

struct Entry {
    digest: [u8; 32],
    /// Its name in the file, or the start of its hash: enough to tell
    /// tokens apart in logs, nothing to rebuild one from.
    label: Arc<str>,
}

/// The tokens of one file, kept current with it.
pub struct TokensFile {
    path: PathBuf,
    entries: RwLock<Arc<[Entry]>>,
    watch: Watched,
}

impl TokensFile {
    /// Reads the file; one that cannot be read or has a malformed line is
    /// an error naming it.
    pub fn open(path: &Path) -> Result<TokensFile, LoadError> {
        let watch = Watched::new(&[path], RELOAD_INTERVAL).map_err(|(_, e)| cannot_read(path, &e))?;
        let entries = read(path)?;
        Ok(TokensFile { path: path.to_path_buf(), entries: RwLock::new(entries.into()), watch })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many tokens are in force.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label (name, or hash prefix) of `token` if the file lists it.
    /// Looks at the file for changes first, at most once per
    /// `RELOAD_INTERVAL`.
    pub fn verify(&self, token: &str) -> Option<Arc<str>> {
        self.refresh();
        let presented = digest(token);
        let mut found = None;
        // Every entry is compared, with no early exit, so the time taken
        // says nothing about which entry matched or how much of a hash did.
        for entry in self.entries().iter() {
            if same_digest(&entry.digest, &presented) {
                found = Some(entry.label.clone());
            }
        }
        found
    }

    fn entries(&self) -> Arc<[Entry]> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the file again if it changed since the last read. A file that
    /// became unreadable or malformed (say, saved half-way by an editor)
    /// leaves the tokens in force as they were, with an error in the log:
    /// a typo must not lock everyone out, and the next good save applies.
    fn refresh(&self) {
        match self.watch.look() {
            Look::Same => return,
            Look::Unreadable(path, e) => {
                tracing::error!("{}; the {} tokens read before stay in force", cannot_read(path, &e), self.len());
                return;
            }
            Look::Changed => {}
        }
        let entries = match read(&self.path) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!("{e}; the {} tokens read before stay in force", self.len());
                return;
            }
        };
        let before: HashSet<[u8; 32]> = self.entries().iter().map(|e| e.digest).collect();
        let after: HashSet<[u8; 32]> = entries.iter().map(|e| e.digest).collect();
        let added = after.difference(&before).count();
        let removed = before.difference(&after).count();
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = entries.into();
        let path = self.path.display();
        if added + removed > 0 {
            tracing::info!(%path, added, removed, tokens = after.len(), "tokens file changed");
        } else {
            tracing::debug!(%path, tokens = after.len(), "tokens file saved without a change of tokens");
        }
    }
}

/// Equality of two digests in time independent of their contents.
///
/// `==` on byte arrays may stop at the first difference, and response times
/// would then tell an attacker how many leading bytes of a guess's hash
/// matched. Since only digests are compared that would reveal hashes, not
/// tokens, so this is defence in depth; it costs nothing. The XOR of every
/// byte pair is OR-ed together and only the total is tested (`black_box`
/// keeps the optimiser from turning the fold back into an early exit).
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn cannot_read(path: &Path, error: &std::io::Error) -> LoadError {
    LoadError(format!("cannot read the tokens file {}: {error}", path.display()))
}

fn read(path: &Path) -> Result<Vec<Entry>, LoadError> {
    let text = std::fs::read(path).map_err(|e| cannot_read(path, &e))?;
    let text = String::from_utf8(text)
        .map_err(|_| LoadError(format!("the tokens file {} is not UTF-8 text", path.display())))?;
    parse(&text).map_err(|(line, problem)| LoadError(format!("{}:{line}: {problem}", path.display())))
}

/// The entries of a tokens file, or the first bad line (1-based) and what is
/// wrong with it. A bad line is never quoted: it may be a token pasted in
/// by mistake, which must not end up in a log.
fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (hash, name) = match line.split_once(char::is_whitespace) {
            Some((hash, name)) => (hash, Some(name.trim())),
            None => (line, None),
        };
        let digest = parse_hex(hash).ok_or_else(|| {
            (
                index + 1,
                format!(
                    "expected the lowercase hex SHA-256 of a token (64 characters, 0-9 and a-f), optionally \
                     followed by a name, but the line's first word ({} characters) is not one; \
                     `docconv hash-token` prints such lines",
                    hash.chars().count()
                ),
            )
        })?;
        let label = match name {
            Some(name) => name.into(),
            None => format!("{}…", &hash[..8]).into(),
        };
        entries.push(Entry { digest, label });
    }
    Ok(entries)
}

fn parse_hex(hash: &str) -> Option<[u8; 32]> {
    let hash = hash.as_bytes();
    if hash.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hash.chunks(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(digest)
}

/// Logs, once at start, whether a service listening on `address` needs
/// tokens for its `calls` (the word its log uses: "calls", "requests"),
/// and warns when anyone who can reach a non-loopback address may use it.
pub fn log_state(tokens: Option<&TokensFile>, address: Option<std::net::SocketAddr>, calls: &str) {
    match tokens {
        Some(tokens) if tokens.is_empty() => tracing::warn!(
            file = %tokens.path().display(),
            "the tokens file lists no tokens: every one of the {calls} is refused until one is added"
        ),
        Some(tokens) => tracing::info!(file = %tokens.path().display(), tokens = tokens.len(), "{calls} need a token"),
        None if address.is_some_and(|a| !a.ip().is_loopback()) => {
            tracing::warn!("{calls} are not authenticated; set --auth-tokens-file if others can reach this address")
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_tokens_sha256_and_its_name() {
        // printf 'secret' | sha256sum
        let line = file_line("secret", Some("ci"));
        assert_eq!(line, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ci");
        let entries = parse(&format!("# who may call\n\n  {line}  \n")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].digest, digest("secret"));
        assert_eq!(&*entries[0].label, "ci");
        let unnamed = parse(&file_line("secret", None)).unwrap();
        assert_eq!(&*unnamed[0].label, "2bb80d53…");
    }

    #[test]
    fn malformed_lines_are_named_by_number_and_never_quoted() {
        let good = file_line("a", None);
        for bad in
            ["the-token-itself", &good.to_uppercase(), &good[..63], &format!("{good}0"), &format!("{}g", &good[..63])]
        {
            let (line, problem) = parse(&format!("# tokens\n{good}\n{bad} name\n")).err().unwrap();
            assert_eq!(line, 3, "{bad}");
            assert!(problem.contains("lowercase hex SHA-256"), "{problem}");
            assert!(!problem.contains(bad), "the line was quoted: {problem}");
        }
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a = digest("a");
        let mut b = a;
        assert!(same_digest(&a, &b));
        b[31] ^= 1;
        assert!(!same_digest(&a, &b));
        assert!(!same_digest(&a, &digest("b")));
    }

    #[test]
    fn the_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("{}\n{}\n", file_line("one", Some("first")), file_line("two", None))).unwrap();
        let tokens = TokensFile::open(&path).unwrap();
        assert_eq!(tokens.verify("one").as_deref(), Some("first"));
        assert!(tokens.verify("two").is_some());
        assert!(tokens.verify("three").is_none());

        // An edit in place, then a malformed save that changes nothing.
        std::fs::write(&path, format!("{}\n", file_line("three", None))).unwrap();
        std::thread::sleep(RELOAD_INTERVAL + Duration::from_millis(100));
        assert!(tokens.verify("one").is_none());
        assert!(tokens.verify("three").is_some());
        std::fs::write(&path, "not a hash\n").unwrap();
        std::thread::sleep(RELOAD_INTERVAL + Duration::from_millis(100));
        assert!(tokens.verify("three").is_some(), "a malformed save keeps the tokens in force");

        // A new file renamed over the old one, as editors and tools save.
        let new = dir.path().join("tokens.new");
        std::fs::write(&new, format!("{}\n", file_line("four", None))).unwrap();
        std::fs::rename(&new, &path).unwrap();
        std::thread::sleep(RELOAD_INTERVAL + Duration::from_millis(100));
        assert!(tokens.verify("three").is_none());
        assert!(tokens.verify("four").is_some());
    }

    #[test]
    fn a_missing_or_malformed_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let error = TokensFile::open(&path).err().unwrap().to_string();
        assert!(error.contains("cannot read the tokens file") && error.contains(&path.display().to_string()));
        std::fs::write(&path, format!("{}\n\nnope\n", file_line("a", None))).unwrap();
        let error = TokensFile::open(&path).err().unwrap().to_string();
        assert!(error.starts_with(&format!("{}:3: ", path.display())), "{error}");
    }
}
