//! Framing of the converter–worker protocol: each message is a 4-byte
//! big-endian length followed by the protobuf encoding.
//!
//! The worker side is blocking (LibreOffice owns its thread); the converter
//! side is async.

use prost::Message;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Far above any real message (paths and a few options); a larger length
/// means the stream is corrupt, and we stop instead of allocating it.
const MAX_FRAME: usize = 1 << 20;

pub fn write_frame<M: Message>(out: &mut impl Write, message: &M) -> io::Result<()> {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    out.write_all(&frame)?;
    out.flush()
}

/// Whether something to read (a request, the end of the stream, or for a
/// pidfd its process's end) arrives on `input` within `wait`; with no
/// wait, whether it is there now.
pub fn readable_within(input: &impl AsRawFd, wait: Duration) -> bool {
    let mut fds = libc::pollfd { fd: input.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let millis = wait.as_millis().min(libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut fds, 1, millis) };
    // An error (EINTR) counts as readable: the caller then just reads.
    ready != 0
}

/// Reads one message; `Ok(None)` on a clean end of stream.
pub fn read_frame<M: Message + Default>(input: &mut impl Read) -> io::Result<Option<M>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(len)?];
    input.read_exact(&mut body)?;
    M::decode(body.as_slice()).map(Some).map_err(invalid)
}

pub async fn write_frame_async<M: Message>(out: &mut (impl AsyncWrite + Unpin), message: &M) -> io::Result<()> {
    let body = message.encode_to_vec();
    out.write_all(&(body.len() as u32).to_be_bytes()).await?;
    out.write_all(&body).await?;
    out.flush().await
}

/// Reads one message; `Ok(None)` on a clean end of stream.
pub async fn read_frame_async<M: Message + Default>(input: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<M>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(len)?];
    input.read_exact(&mut body).await?;
    M::decode(body.as_slice()).map(Some).map_err(invalid)
}

fn frame_len(len: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(invalid(format!("frame of {len} bytes")));
    }
    Ok(len)
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}
