//! A small actix-web service on the bus: `POST /queues/{name}` pushes the
//! request body, `GET /queues/{name}` answers the queue's stats as JSON, and
//! an actix actor (subscribed with its `Recipient`) works through the
//! default queue (`queue.default`). On SIGTERM or Ctrl-C actix-web stops
//! its server, then `bus.shutdown()` lets the job in hand finish,
//! acknowledges it and hands back the rest (amqp, redis: the next process
//! gets them; memory: what is still queued ends with the process).
//!
//! Run with `cargo run --example actix_web` (driver from `./application.conf`,
//! then `ACTORBUS_*`), then:
//!
//! ```text
//! curl -d 'hello' http://127.0.0.1:8080/queues/default
//! curl http://127.0.0.1:8080/queues/default
//! ```
//!
//! `BIND` sets the address (`127.0.0.1:0` picks a free port, printed at
//! start); `WORK_MS` how long the worker takes per job (default 100).

use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use actorbus::{Bus, Config, Delivery, HandlerResult};

/// The listener: "works" on each job for a while, then acknowledges it.
struct Worker {
    /// How long one job takes.
    work: Duration,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Worker {
    type Result = ResponseFuture<HandlerResult>;

    fn handle(&mut self, delivery: Delivery, _ctx: &mut Context<Self>) -> Self::Result {
        let work = self.work;
        Box::pin(async move {
            let job = delivery.as_str()?.to_owned();
            println!("started {job}");
            tokio::time::sleep(work).await;
            // Printed before the acknowledgement: a job printed here and
            // seen again by a later process was handled twice.
            println!("handled {job}");
            Ok(())
        })
    }
}

/// `POST /queues/{name}`: pushes the body; 202 with the message id.
async fn push(bus: web::Data<Bus>, name: web::Path<String>, body: web::Bytes) -> HttpResponse {
    match bus.push(&name, body).await {
        Ok(id) => HttpResponse::Accepted().json(serde_json::json!({ "id": id.to_string() })),
        Err(e) => error_response(&e),
    }
}

/// `GET /queues/{name}`: the queue's stats as JSON.
async fn stats(bus: web::Data<Bus>, name: web::Path<String>) -> HttpResponse {
    match bus.stats(&name).await {
        Ok(stats) => HttpResponse::Ok().json(stats),
        Err(e) => error_response(&e),
    }
}

/// A bad queue name is the client's fault; anything else is ours.
fn error_response(e: &actorbus::Error) -> HttpResponse {
    let body = serde_json::json!({ "error": e.to_string() });
    match e {
        actorbus::Error::InvalidQueueName { .. } | actorbus::Error::PayloadTooLarge { .. } => {
            HttpResponse::BadRequest().json(body)
        }
        actorbus::Error::Timeout => HttpResponse::ServiceUnavailable().json(body),
        _ => HttpResponse::InternalServerError().json(body),
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load()?;
    let queue = config.queue.default.clone();
    let bus = Bus::connect(config).await?;

    let work_ms = std::env::var("WORK_MS").map_or(Ok(100), |v| v.parse())?;
    let worker = Worker {
        work: Duration::from_millis(work_ms),
    }
    .start();
    let _listener = bus.subscribe(&queue, worker.recipient()).await?;

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let data = web::Data::new(bus.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/queues/{name}", web::post().to(push))
            .route("/queues/{name}", web::get().to(stats))
    })
    .workers(1)
    .bind(&bind)?;
    for addr in server.addrs() {
        println!("listening on http://{addr} (worker on queue {queue:?})");
    }

    // Returns after SIGTERM / Ctrl-C, once the server stopped.
    server.run().await?;
    // Drains the job in hand, acknowledges it, hands back the rest.
    bus.shutdown().await?;
    println!("shutdown returned Ok");
    Ok(())
}
