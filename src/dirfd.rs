//! Files of a store (or of a package being unpacked) opened, created, renamed and removed
//! relative to a handle on their directory, never through a symbolic link.
//!
//! Stores travel: a store someone else made may hold `data_a.npkd -> ~/.bashrc`. Every
//! file numpack touches inside a directory therefore goes through this module: the
//! directory is opened once (links on the way *to* it are followed: a store reached
//! through a link is fine), each file inside it with `openat(.., O_NOFOLLOW)`, and only
//! regular files are accepted (checked with `fstat` on the open descriptor, so nothing
//! can be swapped between the check and the use). A link, FIFO, device or directory in
//! place of a file is reported as damage naming the file. Names with `/` (segment
//! files) are walked one directory at a time, refusing links at every level.
//!
//! The only `unsafe` here is the system calls themselves, on descriptors this module owns.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How to open a file inside the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
    /// Create a new file (read-write); an existing file or link of that name is an error.
    CreateNew,
    /// Create or truncate (write-only); a link of that name is refused, never followed.
    Truncate,
}

/// An open directory.
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// No bound on a file's size beyond the bytes it holds.
pub const ANY_SIZE: u64 = u64::MAX >> 1;

/// The message for a link found where a file must be.
pub const LINK_REFUSED: &str = "it is a symbolic link; numpack never follows links inside a store";

fn cstr(s: &[u8], path: &Path) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{} contains a NUL byte", path.display())))
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

impl Dir {
    /// Opens directory `path` (following links on the way to it).
    pub fn open(path: &Path) -> Result<Dir> {
        let c = cstr(path.as_os_str().as_bytes(), path)?;
        // SAFETY: `c` is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Error::io("cannot open directory", path, last_err()));
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(Dir { fd: unsafe { OwnedFd::from_raw_fd(fd) }, path: path.to_path_buf() })
    }

    /// The descriptor of the directory holding `rel` and its last component. Every
    /// intermediate directory is opened without following a link.
    fn parent(&self, rel: &str) -> Result<(Option<OwnedFd>, CString)> {
        let full = self.path.join(rel);
        if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Error::invalid(format!("{} is not a plain name inside {}", rel, self.path.display())));
        }
        let mut parts: Vec<&str> = rel.split('/').collect();
        let leaf = cstr(parts.pop().unwrap_or_default().as_bytes(), &full)?;
        let mut held: Option<OwnedFd> = None;
        let mut walked = self.path.clone();
        for p in parts {
            walked.push(p);
            let c = cstr(p.as_bytes(), &walked)?;
            let at = held.as_ref().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
            // SAFETY: `at` is an open directory descriptor and `c` a valid string.
            let fd = unsafe { libc::openat(at, c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
            if fd < 0 {
                let e = last_err();
                return Err(match e.raw_os_error() {
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) if self.kind(&walked_rel(&self.path, &walked)) == Some(Kind::Link) => {
                        Error::corrupt(&walked, LINK_REFUSED)
                    }
                    _ => Error::io("cannot open directory", &walked, e),
                });
            }
            // SAFETY: just opened, owned here.
            held = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok((held, leaf))
    }

    fn at(&self, held: &Option<OwnedFd>) -> RawFd {
        held.as_ref().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd())
    }

    /// Opens `rel` inside the directory: `Ok(None)` when there is no such file (for the
    /// reading and read-write accesses); a link or anything but a regular file is
    /// `Corrupt`, naming the file.
    pub fn open_file(&self, rel: &str, access: Access) -> Result<Option<File>> {
        let full = self.path.join(rel);
        let (held, leaf) = self.parent(rel)?;
        let mode = match access {
            Access::Read => libc::O_RDONLY,
            Access::ReadWrite => libc::O_RDWR,
            Access::CreateNew => libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            Access::Truncate => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
        };
        // O_NONBLOCK: opening a FIFO planted in the store must not hang; it is cleared
        // again once the file is known to be regular.
        let flags = mode | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: valid descriptor and string; 0o644 is only used when creating.
        let fd = unsafe { libc::openat(self.at(&held), leaf.as_ptr(), flags, 0o644 as libc::c_uint) };
        if fd < 0 {
            let e = last_err();
            return match e.raw_os_error() {
                Some(libc::ENOENT) if matches!(access, Access::Read | Access::ReadWrite) => Ok(None),
                Some(libc::ELOOP) => Err(Error::corrupt(&full, LINK_REFUSED)),
                Some(libc::EEXIST) if access == Access::CreateNew && self.kind(rel) == Some(Kind::Link) => Err(Error::corrupt(&full, LINK_REFUSED)),
                _ => Err(Error::io("cannot open", &full, e)),
            };
        }
        // SAFETY: just opened, owned here.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        require_regular(&file, &full)?;
        Ok(Some(file))
    }

    /// As [`Dir::open_file`], with a missing file an I/O error naming it.
    pub fn open_existing(&self, rel: &str, access: Access) -> Result<File> {
        self.open_file(rel, access)?.ok_or_else(|| {
            Error::io("cannot open", &self.path.join(rel), std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    /// What is at `rel`, without following a link; `None` when nothing is.
    pub fn kind(&self, rel: &str) -> Option<Kind> {
        let (held, leaf) = self.parent(rel).ok()?;
        // SAFETY: `st` is plain old data filled by the call; the descriptor and string are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::fstatat(self.at(&held), leaf.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if rc != 0 {
            return None;
        }
        Some(match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Link,
            _ => Kind::Other,
        })
    }

    /// Renames `from` to `to`, both inside the directory (a link is moved as a link,
    /// never followed).
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (hf, lf) = self.parent(from)?;
        let (ht, lt) = self.parent(to)?;
        // SAFETY: valid descriptors and strings.
        if unsafe { libc::renameat(self.at(&hf), lf.as_ptr(), self.at(&ht), lt.as_ptr()) } != 0 {
            return Err(Error::io(&format!("cannot rename {from} to"), &self.path.join(to), last_err()));
        }
        Ok(())
    }

    /// Removes the file (or link, never its target) `rel` if it is there.
    pub fn remove_if_exists(&self, rel: &str) -> Result<()> {
        let (held, leaf) = self.parent(rel)?;
        // SAFETY: valid descriptor and string.
        if unsafe { libc::unlinkat(self.at(&held), leaf.as_ptr(), 0) } != 0 {
            let e = last_err();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(Error::io("cannot remove", &self.path.join(rel), e));
            }
        }
        Ok(())
    }
}

fn walked_rel(base: &Path, walked: &Path) -> String {
    walked.strip_prefix(base).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What a name in a directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

/// The error for a failed open of `path` (a link refused by `O_NOFOLLOW` named as such).
pub fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) { Error::corrupt(path, LINK_REFUSED) } else { Error::io("cannot open", path, e) }
}

/// Refuses anything but a regular file, and clears the `O_NONBLOCK` it was opened with.
pub fn require_regular(file: &File, path: &Path) -> Result<()> {
    let md = file.metadata().map_err(|e| Error::io("cannot stat", path, e))?;
    if !md.is_file() {
        return Err(Error::corrupt(path, "it is not a regular file"));
    }
    // SAFETY: plain fcntl on an open descriptor.
    unsafe {
        let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(())
}

/// Opens `rel` inside `dir` (see [`Dir::open_file`]).
pub fn open_in(dir: &Path, rel: &str, access: Access) -> Result<Option<File>> {
    Dir::open(dir)?.open_file(rel, access)
}

/// Opens `rel` inside `dir`; a missing file is an I/O error naming it.
pub fn open_existing(dir: &Path, rel: &str, access: Access) -> Result<File> {
    Dir::open(dir)?.open_existing(rel, access)
}

/// Reads all of `rel` inside `dir`: `Ok(None)` when it is missing. At most `max` bytes
/// are read; a longer file is damage.
pub fn read_in(dir: &Path, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(f) = open_in(dir, rel, Access::Read)? else { return Ok(None) };
    let path = dir.join(rel);
    let len = f.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len();
    if len > max {
        return Err(Error::corrupt(&path, format!("it has {len} bytes, more than the {max} such a file may have")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1).read_to_end(&mut bytes).map_err(|e| Error::io("cannot read", &path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::corrupt(&path, format!("it grew past the {max} bytes such a file may have")));
    }
    Ok(Some(bytes))
}

/// Splits `path` into its directory and file name, for callers holding a full path.
pub fn split(path: &Path) -> Result<(&Path, String)> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::invalid(format!("{} names no file", path.display())))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((dir, name.to_string()))
}

/// Opens the file at `path` without following a link at its last component (links on
/// the way to its directory are followed, as for a store's directory).
pub fn open_path(path: &Path, access: Access) -> Result<Option<File>> {
    let (dir, name) = split(path)?;
    open_in(dir, &name, access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_special_files_are_refused_and_plain_files_opened() {
        let t = tempfile::tempdir().unwrap();
        let bait = t.path().join("bait");
        std::fs::write(&bait, b"secret").unwrap();
        let store = t.path().join("s");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join("ok"), b"x").unwrap();
        std::os::unix::fs::symlink(&bait, store.join("link")).unwrap();
        std::os::unix::fs::symlink(t.path().join("nothing"), store.join("dangling")).unwrap();
        std::fs::create_dir(store.join("sub")).unwrap();
        std::os::unix::fs::symlink(t.path(), store.join("sublink")).unwrap();
        let c = CString::new(store.join("fifo").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let d = Dir::open(&store).unwrap();
        assert!(d.open_file("ok", Access::ReadWrite).unwrap().is_some());
        assert!(d.open_file("missing", Access::Read).unwrap().is_none());
        for (name, access) in [
            ("link", Access::Read),
            ("link", Access::ReadWrite),
            ("link", Access::Truncate),
            ("link", Access::CreateNew),
            ("dangling", Access::Truncate),
            ("dangling", Access::CreateNew),
            ("dangling", Access::Read),
            ("fifo", Access::Read),
            ("sub", Access::Read),
            ("sublink/bait", Access::ReadWrite),
        ] {
            let e = d.open_file(name, access).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::Corrupt, "{name} {access:?}: {e}");
            assert!(e.message.contains(name.split('/').next().unwrap()), "{e}");
        }
        assert!(!t.path().join("nothing").exists());
        assert_eq!(std::fs::read(&bait).unwrap(), b"secret");
        d.remove_if_exists("link").unwrap();
        assert_eq!(std::fs::read(&bait).unwrap(), b"secret");
        assert_eq!(d.kind("link"), None);
        assert_eq!(d.kind("dangling"), Some(Kind::Link));
    }
}
