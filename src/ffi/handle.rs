//! Every conversion between a C handle pointer and the Rust object behind it.
//!
//! A handle is `Arc::into_raw` of its object, cast to the opaque C type. A registry of
//! live handles (address -> kind) is consulted on every use:
//!
//! - [`Handle::get`] checks the pointer is a live handle *of this kind* and returns a
//!   new strong reference, so a concurrent close/free cannot pull the object away from a
//!   call in progress;
//! - [`Handle::take`] removes it from the registry and hands back the last reference
//!   the C side held.
//!
//! So a second close/free of the same pointer, a use after close, or a pointer of the
//! wrong kind is an `NPK_STATUS_INVALID_ARGUMENT` (or a no-op for `_free`) instead of
//! undefined behaviour. The one thing it cannot tell apart: once an address has been
//! reused for a *new* handle of the same kind, the stale pointer names the new object.
//! Cost: one mutex and a map lookup per call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{Error, ErrorCode, Result};

// A BTreeMap rather than a HashMap: hashbrown keeps only a pointer into the middle of
// its table, which valgrind reports as "possibly lost" at exit.
type Registry = BTreeMap<usize, &'static str>;

fn registry() -> MutexGuard<'static, Registry> {
    static LIVE: OnceLock<Mutex<Registry>> = OnceLock::new();
    // The registry is only touched by the short code below, which cannot leave it
    // inconsistent, so a poisoned lock is still good.
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// An opaque C handle type and the Rust object it stands for.
pub(crate) trait Handle: Sized {
    /// The object behind the handle.
    type Target: Send + Sync + 'static;
    /// The C type's name, for messages.
    const NAME: &'static str;

    /// Hands ownership of `target` to C.
    fn into_raw(target: Self::Target) -> *mut Self {
        let ptr = Arc::into_raw(Arc::new(target));
        registry().insert(ptr.addr(), Self::NAME);
        ptr.cast_mut().cast::<Self>()
    }

    /// A new reference to the object behind a live handle.
    fn get(ptr: *const Self, arg: &str) -> Result<Arc<Self::Target>> {
        if ptr.is_null() {
            return Err(Error::new(ErrorCode::NullArgument, format!("argument `{arg}` is NULL")));
        }
        let live = registry();
        check_kind::<Self>(live.get(&ptr.addr()).copied(), arg)?;
        let ptr = ptr.cast::<Self::Target>();
        // SAFETY: the registry says `ptr` came from `Arc::into_raw` of a `Self::Target`
        // and the C side's reference has not been taken back; holding the registry lock
        // keeps `take` from releasing it before the count is raised.
        unsafe {
            Arc::increment_strong_count(ptr);
            Ok(Arc::from_raw(ptr))
        }
    }

    /// Takes back the C side's reference: `Ok(None)` for NULL, an error for anything
    /// that is not a live handle of this kind.
    fn take(ptr: *mut Self, arg: &str) -> Result<Option<Arc<Self::Target>>> {
        if ptr.is_null() {
            return Ok(None);
        }
        let mut live = registry();
        check_kind::<Self>(live.get(&ptr.addr()).copied(), arg)?;
        live.remove(&ptr.addr());
        drop(live);
        // SAFETY: as in `get`; the entry is gone, so this reference is taken only once.
        Ok(Some(unsafe { Arc::from_raw(ptr.cast_const().cast::<Self::Target>()) }))
    }
}

fn check_kind<H: Handle>(found: Option<&'static str>, arg: &str) -> Result<()> {
    match found {
        Some(kind) if kind == H::NAME => Ok(()),
        Some(kind) => Err(Error::invalid(format!("argument `{arg}` is a {kind}, not a {}", H::NAME))),
        None => Err(Error::invalid(format!(
            "argument `{arg}` is not a live {} (already closed or freed, or never one)",
            H::NAME
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing {
        _private: [u8; 0],
    }
    impl Handle for Thing {
        type Target = String;
        const NAME: &'static str = "thing";
    }
    struct Other {
        _private: [u8; 0],
    }
    impl Handle for Other {
        type Target = u64;
        const NAME: &'static str = "other";
    }

    #[test]
    fn stale_and_foreign_pointers_are_errors() {
        let p = Thing::into_raw("x".to_string());
        assert_eq!(*Thing::get(p, "p").unwrap(), "x");
        assert_eq!(Other::get(p.cast::<Other>(), "p").unwrap_err().code, ErrorCode::InvalidArgument);
        assert!(Other::take(p.cast::<Other>(), "p").is_err());
        let held = Thing::get(p, "p").unwrap();
        assert!(Thing::take(p, "p").unwrap().is_some());
        assert_eq!(*held, "x", "a reference taken before the free stays valid");
        assert_eq!(Thing::take(p, "p").unwrap_err().code, ErrorCode::InvalidArgument);
        assert_eq!(Thing::get(p, "p").unwrap_err().code, ErrorCode::InvalidArgument);
        assert!(Thing::take(std::ptr::null_mut(), "p").unwrap().is_none());
        assert_eq!(Thing::get(std::ptr::null(), "p").unwrap_err().code, ErrorCode::NullArgument);
    }
}
