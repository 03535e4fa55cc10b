//! Panics turned into values: a handler's panic is a failed delivery, and a
//! channel actor's panic is a restart, never a lost thread.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`; a panic comes back as its message.
///
/// `AssertUnwindSafe` is sound here because every caller either discards the
/// state the panic may have torn (a handler's future) or restarts the actor
/// whose state it was, as actix's supervisor does for a stopped actor.
pub(crate) fn catch<R>(body: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|panic| panic_text(&*panic))
}

/// The text of a panic payload, for logs and `x-error`.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_str_and_string_payloads() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(catch(|| -> () { panic!("plain") }), Err("plain".to_owned()));
        let n = 3;
        assert_eq!(
            catch(|| -> () { panic!("formatted {n}") }),
            Err("formatted 3".to_owned())
        );
        assert_eq!(
            catch(|| std::panic::panic_any(42_u8)),
            Err("non-string panic payload".to_owned())
        );
    }
}
