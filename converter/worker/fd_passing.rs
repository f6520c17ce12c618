//! Messages with file descriptors attached (`SCM_RIGHTS`) on a Unix
//! socket: how the converter hands a forked worker its pipes through the
//! zygote.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// The most descriptors one message carries (a worker's stdin, stdout and
/// stderr, and the pipe told how it ends).
pub const MAX_FDS: usize = 4;

/// Sends `payload` with `fds` attached, in one message.
pub fn send(socket: &UnixStream, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS && !payload.is_empty());
    let mut control = ControlBuffer::new();
    let mut iov = libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: payload.len() };
    // SAFETY: msghdr is plain data; zeroed is its empty value.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    message.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    // SAFETY: `message` points at `control`, which is large enough for
    // MAX_FDS descriptors (checked above), so the first header and its data
    // lie inside it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(header).cast::<RawFd>(), fds.len());
    }
    // SAFETY: every pointer in `message` is valid for the call.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_NOSIGNAL) };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != payload.len() => Err(io::Error::other("message cut short")),
        _ => Ok(()),
    }
}

/// Receives one message into `buffer`: its length (0 at the end of the
/// stream) and the descriptors that came with it, owned by the caller.
pub fn receive(socket: &UnixStream, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut control = ControlBuffer::new();
    let mut iov = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() };
    // SAFETY: msghdr is plain data; zeroed is its empty value.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes.as_mut_ptr().cast();
    message.msg_controllen = control.bytes.len();
    // SAFETY: every pointer in `message` is valid for the call; received
    // descriptors are close-on-exec.
    let received = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` and set msg_controllen; the
    // CMSG macros walk only what it wrote, and each SCM_RIGHTS entry holds
    // descriptors now open in this process, which we take ownership of.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                let count = ((*header).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    if message.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("descriptors were cut off"));
    }
    Ok((received as usize, fds))
}

/// Room for the control message; aligned for `cmsghdr`.
#[repr(C, align(8))]
struct ControlBuffer {
    bytes: [u8; 64],
}

impl ControlBuffer {
    fn new() -> ControlBuffer {
        ControlBuffer { bytes: [0; 64] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn descriptors_arrive_with_their_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut reader, writer) = UnixStream::pair().unwrap();
        send(&a, b"hello", &[writer.as_raw_fd()]).unwrap();
        drop(writer);
        let mut buffer = [0u8; 16];
        let (n, fds) = receive(&b, &mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut passed = UnixStream::from(fds.into_iter().next().unwrap());
        passed.write_all(b"through").unwrap();
        drop(passed);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "through");
        drop(a);
        assert_eq!(receive(&b, &mut buffer).unwrap().0, 0);
    }
}
