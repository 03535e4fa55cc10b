//! `Target`: where an amqp publish goes — a queue, a wait queue, a topic's exchange, a lease queue, or a direct reply-to address — and its `Route` on the wire.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;

use crate::driver::amqp::wire;
use crate::error::Result;

/// Where a publish goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// A durable queue (by its user-facing name).
    Queue(String),
    /// The wait queue for `delay` in front of the durable queue `target`.
    Wait { target: String, delay: Duration },
    /// The fanout exchange of a topic: every group's queue bound to it.
    Topic(String),
    /// The lease queue `lease` (a wire name) of a listener of the durable
    /// queue `target`: it dead-letters each copy back after `ttl`.
    Lease {
        target: String,
        lease: Arc<str>,
        ttl: Duration,
    },
    /// A reply address of the broker's own, as is: a direct reply-to
    /// address (`amq.rabbitmq.reply-to.<token>`), or a queue the broker
    /// named (`amq.gen-…`); never declared.
    Reply(String),
}

impl Target {
    /// The exchange the message is published to: the default one for queues.
    pub(crate) fn exchange(&self) -> String {
        match self {
            Target::Topic(topic) => wire::wire_name(topic),
            _ => String::new(),
        }
    }

    /// The routing key: the queue's wire name (a fanout ignores it).
    pub(crate) fn routing_key(&self) -> String {
        match self {
            Target::Queue(name) => wire::wire_name(name),
            Target::Wait { target, delay } => wire::wait_name(target, *delay),
            Target::Lease { lease, .. } => lease.to_string(),
            Target::Topic(_) => String::new(),
            Target::Reply(address) => address.clone(),
        }
    }

    /// What the link remembers as declared.
    pub(crate) fn declared_as(&self) -> String {
        match self {
            Target::Topic(topic) => format!("exchange {}", wire::wire_name(topic)),
            _ => self.routing_key(),
        }
    }

    /// Whether a publish that reaches no queue is an error: not for a
    /// topic without groups, nor for a reply whose requester is gone.
    pub(crate) fn must_route(&self) -> bool {
        matches!(
            self,
            Target::Queue(_) | Target::Wait { .. } | Target::Lease { .. }
        )
    }
}

/// Where a publish to a [`Target`] goes on the wire: worked out once per
/// target of a batch, not once per message.
pub(crate) struct Route {
    /// The exchange: the default one (empty) but for a topic's.
    pub(crate) exchange: ShortString,
    /// The routing key: the queue's wire name.
    pub(crate) key: ShortString,
    /// `mandatory` but for replies.
    pub(crate) options: BasicPublishOptions,
}

impl Route {
    /// The route of `target`; an error where a name does not fit AMQP.
    pub(crate) fn of(target: &Target) -> Result<Route> {
        // A reply is not `mandatory`: one whose requester is gone is
        // simply dropped, and a `basic.return` for it could be taken by
        // lapin for the return of another publish on this channel.
        let options = BasicPublishOptions {
            mandatory: !matches!(target, Target::Reply(_)),
            immediate: false,
        };
        Ok(Route {
            exchange: wire::short(&target.exchange())?,
            key: wire::short(&target.routing_key())?,
            options,
        })
    }
}
