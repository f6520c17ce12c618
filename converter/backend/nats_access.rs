//! How a node proves who it is to NATS, and how it knows it reached the
//! right servers: a user and password or a token in the server URLs
//! (`nats://user:password@host:4222`, as the `nats` tool takes them), a
//! credentials file, TLS with the operator's certificate authority, a
//! client certificate. URLs are never logged with their secrets.

use crate::error::{BackendError, Result};
use async_nats::{ConnectOptions, ServerAddr};
use std::path::PathBuf;

/// What a node needs to be let into a secured NATS. Empty: a plain
/// connection with whatever the URLs carry.
#[derive(Clone, Debug, Default)]
pub struct NatsAccess {
    /// A credentials file (a user JWT and its NKey seed, as `nsc` writes
    /// them), for servers in operator mode.
    pub credentials: Option<PathBuf>,
    /// Certificate authorities (PEM) trusted for the servers' certificates,
    /// on top of the system's. Giving one makes TLS required.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that verify
    /// their clients. Giving one makes TLS required.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl NatsAccess {
    /// The client's connection options with this access, and the user or
    /// token of the servers' URLs, applied.
    pub(crate) async fn options(&self, servers: &[ServerAddr]) -> Result<ConnectOptions> {
        let mut options = ConnectOptions::new().name("docconv");
        // The client takes servers' URLs for where to connect only; who
        // connects is an option, one for all servers of a cluster.
        match user_of(servers)? {
            Some((user, Some(password))) => options = options.user_and_password(user, password),
            Some((token, None)) => options = options.token(token),
            None => {}
        }
        if let Some(path) = &self.credentials {
            options = options.credentials_file(path).await.map_err(|e| {
                BackendError::Misconfigured(format!("NATS: reading the credentials file {}: {e}", path.display()))
            })?;
        }
        if let Some(ca) = &self.ca {
            readable(ca, "certificate authority")?;
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((certificate, key)) = &self.client_certificate {
            readable(certificate, "client certificate")?;
            readable(key, "client key")?;
            options = options.add_client_certificate(certificate.clone(), key.clone()).require_tls(true);
        }
        Ok(options)
    }
}

/// The user and password (or the token) the URLs carry, decoded; the
/// same in every URL that has one.
fn user_of(servers: &[ServerAddr]) -> Result<Option<(String, Option<String>)>> {
    let decoded = |part: &str| percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned();
    let mut found = None;
    for server in servers.iter().filter(|server| server.username().is_some()) {
        let user = (decoded(server.username().unwrap_or_default()), server.password().map(decoded));
        match &found {
            Some(seen) if *seen != user => {
                return Err(BackendError::Misconfigured(
                    "NATS: the server URLs carry different users or tokens; give the same in each".into(),
                ));
            }
            _ => found = Some(user),
        }
    }
    Ok(found)
}

/// The client reads TLS files only when it first connects, and then
/// reports a failure to read one like any failed connection, which a
/// starting node keeps retrying: a missing file is a mistake to report at
/// once instead.
fn readable(path: &std::path::Path, what: &str) -> Result<()> {
    std::fs::metadata(path)
        .map(drop)
        .map_err(|e| BackendError::Misconfigured(format!("NATS: the {what} {}: {e}", path.display())))
}

/// Server URLs as logs and errors show them: a password or a token is
/// replaced by `***`, the rest kept so that the operator sees which
/// servers were meant.
pub fn shown_urls(urls: &[String]) -> String {
    urls.iter().map(|url| shown_url(url.trim())).collect::<Vec<_>>().join(", ")
}

fn shown_url(url: &str) -> String {
    // A URL without a scheme ("host:4222") has nothing secret in it, and
    // the url crate would read its host as the scheme.
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        // The authority ends at the first '/', '?' or '#'; an '@' after it is not a user part.
        Some((user, host)) if !user.contains(['/', '?', '#']) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{NatsAccess, shown_urls};
    use crate::conformance::{self, NatsServer};
    use crate::{Backend, BackendError, NatsSettings};
    use std::path::{Path, PathBuf};

    /// A certificate authority, a server certificate for 127.0.0.1 and a
    /// client certificate, as PEM files in `dir`.
    struct Pki {
        ca: PathBuf,
        server: (PathBuf, PathBuf),
        client: (PathBuf, PathBuf),
    }

    impl Pki {
        fn issue(dir: &Path) -> Pki {
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca_params.distinguished_name.push(rcgen::DnType::CommonName, "docconv test NATS CA");
            let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
            let write = |name: &str, pem: String| {
                let path = dir.join(name);
                std::fs::write(&path, pem).unwrap();
                path
            };
            let leaf = |name: &str, san: &str| {
                let key = rcgen::KeyPair::generate().unwrap();
                let params = rcgen::CertificateParams::new(vec![san.to_owned()]).unwrap();
                let certificate = params.signed_by(&key, &*ca).unwrap();
                (
                    write(&format!("{name}.pem"), certificate.pem()),
                    write(&format!("{name}-key.pem"), key.serialize_pem()),
                )
            };
            let server = leaf("server", "127.0.0.1");
            let client = leaf("client", "docconv-node");
            Pki { ca: write("ca.pem", ca.pem()), server, client }
        }
    }

    async fn connect(url: String, access: NatsAccess, scratch: &Path) -> crate::Result<Backend> {
        let settings = NatsSettings {
            urls: vec![url],
            prefix: "secured".into(),
            lease: conformance::LEASE,
            retention: std::time::Duration::from_secs(3600),
            replicas: 1,
            scratch: scratch.to_owned(),
            access,
        };
        Backend::nats(settings).await
    }

    #[tokio::test]
    async fn a_node_gets_into_a_secured_nats_with_the_right_access_only() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::issue(dir.path());
        let path = |p: &PathBuf| p.display().to_string();
        let args = [
            "--tls",
            "--tlscert",
            &path(&pki.server.0),
            "--tlskey",
            &path(&pki.server.1),
            "--tlsverify",
            "--tlscacert",
            &path(&pki.ca),
            "--user",
            "docconv",
            "--pass",
            "s3cret",
        ]
        .map(String::from);
        let server = NatsServer::start_with_args(&args);
        let with_password = server.url.replace("nats://", "tls://docconv:s3cret@");
        let full =
            NatsAccess { credentials: None, ca: Some(pki.ca.clone()), client_certificate: Some(pki.client.clone()) };
        let scratch = dir.path().join("scratch");

        let backend = connect(with_password.clone(), full.clone(), &scratch).await.expect("the right access gets in");
        backend.records.create(conformance::queued("a", "", 1)).await.unwrap();
        let read = backend.records.get("a").await.unwrap().expect("the record is there");
        assert_eq!(crate::id_of(&read), "a");

        let refused = [
            ("no client certificate", with_password.clone(), NatsAccess { client_certificate: None, ..full.clone() }),
            ("the system's authorities only", with_password.clone(), NatsAccess { ca: None, ..full.clone() }),
            ("a wrong password", with_password.replace("s3cret", "guess"), full.clone()),
            ("no password", server.url.replace("nats://", "tls://"), full.clone()),
        ];
        for (what, url, access) in refused {
            let Err(e) = connect(url, access, &scratch).await else { panic!("{what} got in") };
            assert!(!e.to_string().contains("s3cret"), "{what}: the password is not shown: {e}");
            if what.contains("password") {
                assert!(matches!(e, BackendError::Misconfigured(_)), "{what}: refused for good: {e}");
            }
        }

        let missing = NatsAccess { ca: Some(dir.path().join("nothing.pem")), ..full };
        let Err(e) = connect(with_password, missing, &scratch).await else { panic!("a missing CA file got in") };
        assert!(matches!(e, BackendError::Misconfigured(_)), "a missing file is a settings error: {e}");
    }

    /// An operator, an account with JetStream and a user, as NATS's
    /// decentralised authentication has them: signed JWTs, issued here the
    /// way `nsc` issues them.
    struct Operator {
        jwt: String,
        account: (String, String),
        /// JetStream needs the server's own account.
        system: (String, String),
        user_jwt: String,
        user_seed: String,
    }

    impl Operator {
        fn issue() -> Operator {
            let operator = nkeys::KeyPair::new_operator();
            let account = nkeys::KeyPair::new_account();
            let system = nkeys::KeyPair::new_account();
            let user = nkeys::KeyPair::new_user();
            let unlimited = serde_json::json!({
                "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
                "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
            });
            let account_claims = serde_json::json!({ "limits": unlimited, "type": "account", "version": 2 });
            let user_claims = serde_json::json!({ "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2 });
            Operator {
                jwt: jwt(&operator, &operator, serde_json::json!({ "type": "operator", "version": 2 })),
                account: (account.public_key(), jwt(&operator, &account, account_claims)),
                system: (
                    system.public_key(),
                    jwt(&operator, &system, serde_json::json!({ "type": "account", "version": 2 })),
                ),
                user_jwt: jwt(&account, &user, user_claims),
                user_seed: user.seed().unwrap(),
            }
        }

        fn credentials(&self) -> String {
            format!(
                "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                self.user_jwt, self.user_seed
            )
        }

        fn server_config(&self) -> String {
            let ((account, account_jwt), (system, system_jwt)) = (&self.account, &self.system);
            format!(
                "operator: {}\nsystem_account: {system}\nresolver: MEMORY\n\
                 resolver_preload: {{ {account}: {account_jwt}, {system}: {system_jwt} }}\n",
                self.jwt
            )
        }
    }

    /// A JWT about `subject`, signed by `issuer`, with NATS claims `nats`.
    fn jwt(issuer: &nkeys::KeyPair, subject: &nkeys::KeyPair, nats: serde_json::Value) -> String {
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = serde_json::json!({ "typ": "JWT", "alg": "ed25519-nkey" });
        let claims = serde_json::json!({
            "jti": subject.public_key(), "iat": 1_700_000_000, "iss": issuer.public_key(),
            "name": "docconv test", "sub": subject.public_key(), "nats": nats,
        });
        let signed = format!("{}.{}", encode(header.to_string().as_bytes()), encode(claims.to_string().as_bytes()));
        let signature = issuer.sign(signed.as_bytes()).unwrap();
        format!("{signed}.{}", encode(&signature))
    }

    #[tokio::test]
    async fn a_node_gets_into_an_operator_mode_nats_with_its_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let operator = Operator::issue();
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, operator.server_config()).unwrap();
        let server = NatsServer::start_with_args(&["--config".to_owned(), config.display().to_string()]);
        let credentials = dir.path().join("node.creds");
        std::fs::write(&credentials, operator.credentials()).unwrap();
        let scratch = dir.path().join("scratch");

        let access = NatsAccess { credentials: Some(credentials), ..NatsAccess::default() };
        let backend = connect(server.url.clone(), access, &scratch).await.expect("the credentials get in");
        backend.records.create(conformance::queued("a", "", 1)).await.unwrap();
        assert!(backend.records.get("a").await.unwrap().is_some(), "the record is there");

        let Err(e) = connect(server.url.clone(), NatsAccess::default(), &scratch).await else {
            panic!("no credentials got in")
        };
        assert!(matches!(e, BackendError::Misconfigured(_)), "refused for good: {e}");
    }

    #[test]
    fn secrets_in_urls_are_not_shown() {
        let urls = [
            "nats://alice:s3cret@nats-1:4222".to_owned(),
            "tls://tok3n@nats-2:4222".to_owned(),
            " nats://nats-3:4222".to_owned(),
            "nats-4:4222".to_owned(),
        ];
        assert_eq!(shown_urls(&urls), "nats://***@nats-1:4222, tls://***@nats-2:4222, nats://nats-3:4222, nats-4:4222");
    }
}
