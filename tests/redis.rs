//! The redis driver's own tests, beyond the conformance suite: crashes,
//! broker restarts, interoperability with other clients, settings
//! (supervision is in the conformance suite).

#![cfg(feature = "redis")]

mod support;

mod redis {
    mod cluster;
    mod crash;
    mod deadline;
    mod faults;
    mod groups;
    mod interop;
    mod poison;
    mod redrive;
    mod restart;
    mod settings;
    mod sigterm;
    mod topics;
}
