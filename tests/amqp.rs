//! The amqp driver's own tests, beyond the conformance suite: crashes,
//! broker restarts, interoperability with other clients, payloads, settings
//! (supervision is in the conformance suite).

#![cfg(feature = "amqp")]

mod support;

mod amqp {
    mod crash;
    mod groups;
    mod interop;
    mod logs;
    mod payloads;
    mod redrive;
    mod reply_interop;
    mod restart;
    mod settings;
}
