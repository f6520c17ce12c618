//! Sending a token. A docconv service started with a tokens file wants
//! `authorization: Bearer <token>` on every `docconv.v1.Converter` call
//! (health and reflection stay open); `Bearer` adds it to each call.
//!
//! ```no_run
//! use docconv::auth::Bearer;
//! use docconv::proto::v1::{ListFormatsRequest, converter_client::ConverterClient};
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect().await?;
//! let token = std::env::var("DOCCONV_TOKEN")?;
//! let mut client = ConverterClient::with_interceptor(channel, Bearer::new(&token)?);
//! println!("{:?}", client.list_formats(ListFormatsRequest {}).await?.into_inner());
//! # Ok(()) }
//! ```

use tonic::metadata::{Ascii, MetadataValue};

/// A token, or none (for services without authentication), added to every
/// call as `authorization: Bearer <token>`.
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: &str) -> Result<Bearer, InvalidToken> {
        check_token(token)?;
        let mut value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| InvalidToken)?;
        // Kept out of Debug output, and out of HTTP/2's header compression
        // table, where a later request could probe for it.
        value.set_sensitive(true);
        Ok(Bearer(Some(value)))
    }

    /// No token: calls go out as they are.
    pub fn none() -> Bearer {
        Bearer(None)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A token must be one or more visible ASCII characters (no spaces): it
/// travels in HTTP headers and gRPC metadata, which carry nothing else
/// reliably.
pub fn check_token(token: &str) -> Result<(), InvalidToken> {
    match !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(()),
        false => Err(InvalidToken),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

impl std::fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a token must be one or more visible ASCII characters, without spaces")
    }
}

impl std::error::Error for InvalidToken {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_visible_ascii() {
        assert!(Bearer::new("s3cr3t-+/=_~").is_ok());
        for bad in ["", "two words", "tab\there", "naïve", "line\n"] {
            assert_eq!(check_token(bad), Err(InvalidToken), "{bad:?}");
        }
    }

    #[test]
    fn the_token_is_not_printed() {
        let bearer = Bearer::new("s3cr3t").unwrap();
        assert!(!format!("{bearer:?}").contains("s3cr3t"));
    }
}
