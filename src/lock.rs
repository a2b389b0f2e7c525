//! Advisory whole-file locks (`flock`) that serialise writers across processes.
//! `flock` belongs to the open file description, so every store handle, even two in one
//! process, takes part in the exclusion independently.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Held lock; released on drop.
pub struct FileLock<'a> {
    file: &'a File,
}

impl<'a> FileLock<'a> {
    pub fn exclusive(file: &'a File) -> io::Result<FileLock<'a>> {
        flock(file, libc::LOCK_EX)?;
        Ok(FileLock { file })
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = flock(self.file, libc::LOCK_UN);
    }
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a file descriptor we own for the lifetime of `file`.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
