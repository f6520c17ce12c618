//! Reading the files bucket's objects back.
//!
//! An object is stored as chunks, messages on the subject
//! `$O.<bucket>.C.<nuid>` of the bucket's stream, described by a
//! metadata message (size, chunk count, SHA-256 digest). The client's own
//! object reader makes a consumer for the chunks of each read and unwraps
//! it, so a server that does not answer in time (a leader being elected)
//! panics the task reading. These reads ask for each chunk directly
//! instead (the bucket's stream allows direct gets): no consumer for the
//! server to make and later drop per read, and a failure is an error of
//! the read, tried again from where it stopped.

use crate::nats::{READ_PAUSE, READ_TRIES};
use async_nats::jetstream::object_store::{self, ObjectInfo};
use async_nats::jetstream::stream;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use sha2::{Digest, Sha256};
use std::io::{Error, ErrorKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

/// What reading the bucket's objects needs.
#[derive(Clone)]
pub(crate) struct Objects {
    pub store: object_store::ObjectStore,
    /// The bucket's stream (`OBJ_<bucket>`), where the chunks are.
    pub stream: stream::Stream,
}

impl Objects {
    /// Reads the object `info` describes from `offset` on, in a task of
    /// its own. A read cut short (a server lost mid-way) goes on from
    /// where it was, for a few tries, asking for the object afresh.
    pub fn read(&self, info: ObjectInfo, offset: u64) -> Box<dyn AsyncRead + Send + Unpin> {
        let (chunks, received) = mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
        let objects = self.clone();
        tokio::spawn(async move {
            let sent = Arc::new(AtomicU64::new(offset));
            let name = info.name.clone();
            let mut known = Some(info);
            let mut tries = 1;
            loop {
                let failure = match objects.pump(&name, known.take(), &sent, &chunks).await {
                    Ok(()) => return,
                    Err(e) => e,
                };
                if tries >= READ_TRIES || chunks.is_closed() {
                    let _ = chunks.send(Err(failure)).await;
                    return;
                }
                tracing::debug!("reading {name} from NATS: {failure}; going on from where it was");
                tries += 1;
                tokio::time::sleep(READ_PAUSE).await;
            }
        });
        Box::new(tokio_util::io::StreamReader::new(tokio_stream::wrappers::ReceiverStream::new(received)))
    }

    /// Sends the object's bytes from `sent` on into `chunks`, counting
    /// them, and checks the whole object against its digest. `info` is
    /// the object's as just read, if it was.
    async fn pump(
        &self,
        name: &str,
        info: Option<ObjectInfo>,
        sent: &AtomicU64,
        chunks: &mpsc::Sender<std::io::Result<bytes::Bytes>>,
    ) -> std::io::Result<()> {
        let info = match info {
            Some(info) => info,
            None => self.store.info(name).await.map_err(Error::other)?,
        };
        if info.deleted {
            return Err(Error::new(ErrorKind::NotFound, format!("{name} was deleted")));
        }
        let mut digest = Sha256::new();
        // Bytes of the object passed so far; the part already sent is dropped.
        let mut passed = 0u64;
        let subject = format!("$O.{}.C.{}", info.bucket, info.nuid);
        // The chunks are the subject's messages in order: each is asked
        // for directly, from the one after the last.
        let mut next: Option<u64> = None;
        for _ in 0..info.chunks {
            let message =
                self.stream.direct_get_next_for_subject(subject.as_str(), next).await.map_err(Error::other)?;
            next = Some(message.sequence + 1);
            let payload = message.payload;
            digest.update(&payload);
            let len = payload.len() as u64;
            let from = sent.load(Ordering::SeqCst);
            if passed + len > from {
                let part = payload.slice((from.saturating_sub(passed)) as usize..);
                let part_len = part.len() as u64;
                if chunks.send(Ok(part)).await.is_err() {
                    // Nobody reads any more.
                    return Ok(());
                }
                sent.fetch_add(part_len, Ordering::SeqCst);
            }
            passed += len;
        }
        let whole = format!("SHA-256={}", URL_SAFE.encode(digest.finalize()));
        if passed != info.size as u64 || info.digest.as_ref().is_some_and(|stored| *stored != whole) {
            return Err(Error::new(ErrorKind::InvalidData, format!("{name} read back differs from what was stored")));
        }
        Ok(())
    }
}
