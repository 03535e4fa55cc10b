//! `ListenerActor`: one listener — runs its handler on the deliveries its queue leases to it.
//!
//! It holds up to its window of leased deliveries, runs at most
//! `concurrency` handlers at once, and reports each verdict back to its
//! queue in batches ([`Settle`]). A suspect delivery (one whose previous
//! delivery may have ended without a verdict) is counted by its queue
//! first ([`Arm`]), one at a time, with every verdict before it sent. A panicking handler is a failed delivery,
//! not a dead actor. On [`StopListener`] it hands back what it has not
//! started, finishes what is in hand, and then stops; its handler is never
//! called again.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Poll, Waker};

use actix::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::channel::messages::{Arm, Detached, ListenerQueue, Outcome, Settle, Unsubscribe};
use crate::delivery::{AckToken, Delivery, HandlerResult};
use crate::listener::ListenerId;
use crate::observe::meters::Stopwatch;
use crate::observe::{spans, Observer};
use crate::panic_guard::{self, panic_text};
use crate::reject::Reject;

/// A handler as the listener stores it: any closure or actor recipient,
/// behind one type.
pub(crate) type HandlerFn =
    Arc<dyn Fn(Delivery) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// One listener's actor, reporting to its channel actor `Q`.
pub(crate) struct ListenerActor<Q: ListenerQueue> {
    /// Its id within the queue.
    id: ListenerId,
    /// The queue that leases to it and takes its verdicts.
    queue: Addr<Q>,
    /// The user's handler.
    handler: HandlerFn,
    /// Most handlers running at once.
    concurrency: usize,
    /// Leased deliveries not yet started, in queue order.
    backlog: VecDeque<(AckToken, Delivery)>,
    /// Handlers running now (a suspect being counted included).
    running: usize,
    /// A suspect is being counted or handled: the next waits for it, so
    /// that a crash counts against one suspect only (and on amqp its
    /// lease copy is the head of this listener's lease queue).
    suspect_busy: bool,
    /// Verdicts not yet sent to the queue.
    unsent: Vec<(AckToken, Outcome)>,
    /// Send verdicts once this many have gathered; sending them one by one
    /// would double the messages per delivery under load.
    flush_at: usize,
    /// A stop was asked for: start nothing more.
    stopping: bool,
    /// Who waits for the stop to complete.
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// The queue's metrics and span fields.
    observer: Arc<Observer>,
}

/// Leased deliveries from the queue, in queue order.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Deliver(pub(crate) Vec<(AckToken, Delivery)>);

/// The listener's stop message. Answered once the actor has stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopListener;

impl<Q: ListenerQueue> ListenerActor<Q> {
    pub(crate) fn new(
        id: ListenerId,
        queue: Addr<Q>,
        handler: HandlerFn,
        concurrency: usize,
        window: usize,
        observer: Arc<Observer>,
    ) -> Self {
        ListenerActor {
            id,
            queue,
            handler,
            concurrency: concurrency.max(1),
            backlog: VecDeque::new(),
            running: 0,
            suspect_busy: false,
            unsent: Vec::new(),
            flush_at: (window / 2).max(1),
            stopping: false,
            stop_waiters: Vec::new(),
            observer,
        }
    }

    /// Starts handlers while there is room and work, then reports.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while self.running < self.concurrency && !self.stopping {
            let Some((token, delivery)) = self.backlog.pop_front() else {
                break;
            };
            if delivery.is_suspect() {
                if self.suspect_busy {
                    self.backlog.push_front((token, delivery));
                    break;
                }
                self.arm(token, delivery, ctx);
            } else {
                self.run(token, delivery, false, ctx);
            }
        }
        self.report(ctx);
    }

    /// Has the queue count the suspect `delivery` on the broker, then runs
    /// it as the attempt counted (or drops it: the queue settled it).
    fn arm(&mut self, token: AckToken, mut delivery: Delivery, ctx: &mut Context<Self>) {
        // What finished so far is settled first: if this one kills the
        // process, those are not handled again.
        self.flush();
        self.suspect_busy = true;
        self.running += 1;
        let (reply, counted) = oneshot::channel();
        self.queue.do_send(Arm { token, reply });
        ctx.spawn(counted.into_actor(self).map(move |counted, act, ctx| {
            act.running -= 1;
            match counted {
                // Counted as started: it runs even if a stop came meanwhile
                // (it is the delivery in hand), or the count would be wrong.
                Ok(Some(attempt)) => {
                    delivery.set_attempt(attempt);
                    act.run(token, delivery, true, ctx);
                }
                // Settled by the queue, or the queue is gone.
                _ => act.suspect_busy = false,
            }
            act.pump(ctx);
        }));
    }

    /// Runs the handler on `delivery`; `suspect` frees the suspect slot
    /// once it is done.
    fn run(&mut self, token: AckToken, delivery: Delivery, suspect: bool, ctx: &mut Context<Self>) {
        let handling = Handling::start(&self.observer, &delivery);
        match start(&self.handler, delivery, &handling) {
            Started::Done(outcome) => {
                handling.ended(&self.observer, &outcome);
                self.unsent.push((token, outcome));
                self.suspect_busy &= !suspect;
            }
            Started::Pending(future) => {
                self.running += 1;
                // The handler's future runs inside the delivery's span.
                let future = future.instrument(handling.span.clone());
                let guarded = AssertUnwindSafe(future).catch_unwind();
                ctx.spawn(guarded.into_actor(self).map(move |result, act, ctx| {
                    act.running -= 1;
                    act.suspect_busy &= !suspect;
                    let result = result.map_err(|panic| panic_text(&*panic));
                    let outcome = outcome(result);
                    handling.ended(&act.observer, &outcome);
                    act.unsent.push((token, outcome));
                    act.pump(ctx);
                }));
            }
        }
    }

    /// Sends verdicts when enough have gathered, and finishes a stop.
    fn report(&mut self, ctx: &mut Context<Self>) {
        // Flush when idle too, so a lone message is acknowledged at once.
        if self.unsent.len() >= self.flush_at || self.backlog.is_empty() || self.stopping {
            self.flush();
        }
        if self.stopping && self.running == 0 {
            ctx.stop();
        }
    }

    fn flush(&mut self) {
        if !self.unsent.is_empty() {
            self.queue.do_send(Settle {
                listener: self.id,
                outcomes: std::mem::take(&mut self.unsent),
            });
        }
    }

    fn release_backlog(&mut self) {
        self.unsent.extend(
            self.backlog
                .drain(..)
                .map(|(token, _)| (token, Outcome::Release)),
        );
        self.flush();
    }
}

/// A handler call, polled once.
enum Started {
    /// It finished (or panicked) on its first poll, as most handlers do.
    Done(Outcome),
    /// It waits on something: spawn it.
    Pending(BoxFuture<'static, HandlerResult>),
}

/// Calls the handler and polls its future once, inside the delivery's
/// span, so that a handler which does not wait costs no task of its own.
fn start(handler: &HandlerFn, delivery: Delivery, handling: &Handling) -> Started {
    // The handler's synchronous part can panic too.
    let polled = handling.span.in_scope(|| {
        panic_guard::catch(|| {
            let mut future = handler(delivery);
            // A future polled with a no-op waker re-registers its real waker on
            // the next poll, which the spawn below guarantees.
            let mut cx = std::task::Context::from_waker(Waker::noop());
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(result) => Ok(result),
                Poll::Pending => Err(future),
            }
        })
    });
    match polled {
        Ok(Ok(result)) => Started::Done(outcome(Ok(result))),
        Ok(Err(future)) => Started::Pending(future),
        Err(panic) => Started::Done(outcome(Err(panic))),
    }
}

/// One handler run as it is observed: its span and its timing.
struct Handling {
    /// The delivery's span; the handler runs inside it.
    span: tracing::Span,
    /// When the handler started (empty without `metrics`).
    watch: Stopwatch,
}

impl Handling {
    /// Counts the delivery and opens its span, as its handler starts.
    fn start(observer: &Observer, delivery: &Delivery) -> Self {
        Handling {
            watch: observer.meters.delivered(delivery.id()),
            span: spans::process(observer.system, delivery),
        }
    }

    /// Records the handler's time and, on a failure, marks its span.
    fn ended(self, observer: &Observer, outcome: &Outcome) {
        observer.meters.handled(self.watch);
        if let Outcome::Fail(error) | Outcome::Reject(error) = outcome {
            spans::failed(&self.span, error);
        }
    }
}

/// The verdict on a handler's result, or on its panic message.
fn outcome(result: Result<HandlerResult, String>) -> Outcome {
    match result {
        Ok(Ok(())) => Outcome::Ack,
        Ok(Err(error)) if Reject::is_in(&*error) => Outcome::Reject(error.to_string()),
        Ok(Err(error)) => Outcome::Fail(error.to_string()),
        Err(panic) => Outcome::Fail(format!("handler panicked: {panic}")),
    }
}

impl<Q: ListenerQueue> Actor for ListenerActor<Q> {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.release_backlog();
        // After every verdict, so the queue reclaims only what never arrived.
        let (done, returned) = oneshot::channel();
        self.queue.do_send(Detached {
            listener: self.id,
            done,
        });
        let waiters = std::mem::take(&mut self.stop_waiters);
        // This actor's context is ending: answer from a task of the arbiter.
        actix::spawn(async move {
            // An error means the channel is gone: nothing is left to hand back.
            let _ = returned.await;
            for waiter in waiters {
                let _ = waiter.send(());
            }
        });
    }
}

impl<Q: ListenerQueue> Handler<Deliver> for ListenerActor<Q> {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.backlog.extend(msg.0);
        if self.stopping {
            self.release_backlog();
        } else {
            self.pump(ctx);
        }
    }
}

impl<Q: ListenerQueue> Handler<StopListener> for ListenerActor<Q> {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopListener, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        if !self.stopping {
            self.stopping = true;
            self.queue.do_send(Unsubscribe { listener: self.id });
            self.release_backlog();
            if self.running == 0 {
                ctx.stop();
            }
        }
        Box::pin(async move {
            // An error only means the actor is already gone: stopped all the same.
            let _ = rx.await;
        })
    }
}
