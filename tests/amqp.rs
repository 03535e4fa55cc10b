//! The amqp driver's own tests, beyond the conformance suite: crashes,
//! broker restarts, a cluster (failover, quorum queues), interoperability
//! with other clients, payloads, settings
//! (supervision is in the conformance suite).

#![cfg(feature = "amqp")]

mod support;

mod amqp {
    mod acks;
    mod batch;
    mod cluster;
    mod crash;
    mod faults;
    mod groups;
    mod interop;
    mod logs;
    mod payloads;
    mod poison;
    mod redrive;
    mod reply_interop;
    mod restart;
    mod settings;
    mod sigterm;
}
