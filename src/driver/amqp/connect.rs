//! Which RabbitMQ node to connect to, and opening a link's connections to one.
//!
//! `amqp.urls` (or else `amqp.url`) lists the nodes of a cluster. Each
//! connect tries them in a fresh random order, so that many clients of a
//! lost node spread over the others, with the node whose link just died
//! last: when it went away, the others are tried first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::ArbiterHandle;
use lapin::options::ConfirmSelectOptions;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind};
use tokio::sync::oneshot;

use crate::config::amqp::AmqpConfig;
use crate::error::{Error, Result};

/// Longest wait for one node's connections to open; bad settings fail
/// within this per node, without retrying.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// A link's connections, open on one node.
pub(crate) struct Opened {
    /// The node, as `host:port` (for logs, and to try it last next time).
    pub(crate) node: String,
    /// The publishing connection.
    pub(crate) publish: Connection,
    /// The consuming connection.
    pub(crate) consume: Connection,
    /// The confirm-mode channel on `publish`.
    pub(crate) confirms: Channel,
}

/// The nodes of `config`, as lapin reads them, with `amqp.heartbeat`
/// applied: `amqp.urls` when it lists any, else `amqp.url`.
///
/// # Errors
///
/// [`Error::Config`] naming `amqp.urls` (or `amqp.url`) for a url lapin
/// cannot read, or an `amqps://` one without the `amqps` feature.
pub(crate) fn nodes(config: &AmqpConfig) -> Result<Vec<AMQPUri>> {
    let (key, urls) = if config.urls.is_empty() {
        ("amqp.url", std::slice::from_ref(&config.url))
    } else {
        ("amqp.urls", config.urls.as_slice())
    };
    let heartbeat = u16::try_from(config.heartbeat.as_secs()).unwrap_or(u16::MAX);
    urls.iter()
        .map(|url| {
            let mut uri: AMQPUri = url
                .parse()
                .map_err(|e| Error::config(key, format!("{:?}: {e}", redact(url))))?;
            if uri.scheme == AMQPScheme::AMQPS && !cfg!(feature = "amqps") {
                return Err(Error::config(
                    key,
                    "amqps:// needs the `amqps` cargo feature of actorbus",
                ));
            }
            uri.query.heartbeat = Some(heartbeat);
            Ok(uri)
        })
        .collect()
}

/// `host:port` of `uri`.
fn node_name(uri: &AMQPUri) -> String {
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

/// Opens a link's connections on the first node of `config` that takes
/// them, trying the nodes in a random order with `last` (the node of the
/// link that died) at the end. The consuming connection is opened on
/// `consume_on`, where its I/O then runs.
///
/// # Errors
///
/// With one node, why it failed; with several, why each did.
pub(crate) async fn open_any(
    config: &AmqpConfig,
    consume_on: &ArbiterHandle,
    last: Option<&str>,
) -> Result<Opened> {
    let mut order = nodes(config)?;
    shuffle(&mut order);
    if let Some(last) = last {
        // A stable partition: the others keep their random order.
        order.sort_by_key(|uri| node_name(uri) == last);
    }
    let mut failures = Vec::with_capacity(order.len());
    for uri in &order {
        match open_on(uri, consume_on).await {
            Ok(opened) => return Ok(opened),
            Err(error) => failures.push(error),
        }
    }
    if failures.len() == 1 {
        return Err(failures.remove(0));
    }
    let each: Vec<String> = failures.iter().map(ToString::to_string).collect();
    Err(Error::backend(format!(
        "cannot connect to any of {} RabbitMQ nodes: {}",
        order.len(),
        each.join("; ")
    )))
}

/// Opens both connections and the confirm channel on the node `uri`.
async fn open_on(uri: &AMQPUri, consume_on: &ArbiterHandle) -> Result<Opened> {
    let connect = async {
        let publish = connect(uri, "publish").await?;
        let (tx, rx) = oneshot::channel();
        let consume_uri = uri.clone();
        consume_on.spawn(async move {
            let _ = tx.send(connect(&consume_uri, "consume").await);
        });
        let consume = rx.await.map_err(|_| {
            lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                lapin::ConnectionState::Closed,
            ))
        })??;
        let confirms = publish.create_channel().await?;
        confirms
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok::<_, lapin::Error>((publish, consume, confirms))
    };
    let (publish, consume, confirms) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| {
            Error::backend(format!(
                "cannot connect to RabbitMQ at {}: no answer within {CONNECT_TIMEOUT:?}",
                node_name(uri)
            ))
        })?
        .map_err(|e| connect_error(uri, &e))?;
    Ok(Opened {
        node: node_name(uri),
        publish,
        consume,
        confirms,
    })
}

async fn connect(uri: &AMQPUri, role: &str) -> lapin::Result<Connection> {
    let props =
        ConnectionProperties::default().with_connection_name(format!("actorbus-{role}").into());
    Connection::connect_uri(uri.clone(), props).await
}

/// Fisher–Yates over a clock-and-counter seed: enough to spread clients
/// over nodes, with no dependency for it.
fn shuffle<T>(items: &mut [T]) {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ CALLS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for i in (1..items.len()).rev() {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let pick = state.wrapping_mul(0x2545_F491_4F6C_DD1D) % (i as u64 + 1);
        items.swap(i, pick as usize);
    }
}

/// A connect failure, naming where and (without the password) as whom.
fn connect_error(uri: &AMQPUri, e: &lapin::Error) -> Error {
    let hint = match e.kind() {
        ErrorKind::IOError(_) => "is RabbitMQ running there?",
        ErrorKind::ProtocolError(err) => match err.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => "wrong credentials?",
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => "no such vhost, or no access to it?",
            _ => "refused by RabbitMQ",
        },
        _ => "check amqp.url",
    };
    // The broker's own words (`ACCESS_REFUSED - Login was refused …`)
    // already name the condition that lapin's text would name twice more.
    let said = match e.kind() {
        ErrorKind::ProtocolError(err) => err.get_message().to_string(),
        _ => e.to_string(),
    };
    Error::backend(format!(
        "cannot connect to RabbitMQ at {} vhost {:?} as {:?} ({hint}): {said}",
        node_name(uri),
        uri.vhost,
        uri.authority.userinfo.username
    ))
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(urls: &[&str]) -> AmqpConfig {
        AmqpConfig {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            ..AmqpConfig::default()
        }
    }

    #[test]
    fn urls_win_over_url_and_name_their_key() {
        let nodes = nodes(&config(&["amqp://a:1/%2f", "amqp://b:2/%2f"])).unwrap();
        let names: Vec<String> = nodes.iter().map(node_name).collect();
        assert_eq!(names, ["a:1", "b:2"]);
        assert_eq!(nodes[0].query.heartbeat, Some(10));
        let single = nodes_of_url("amqp://guest:guest@h:5/%2f");
        assert_eq!(single, ["h:5"]);
        let Err(Error::Config { key, message }) =
            super::nodes(&config(&["amqp://a:1/%2f", "amqp://u:secret@b:x/%2f"]))
        else {
            panic!("a bad port is a config error");
        };
        assert_eq!(key, "amqp.urls");
        assert!(!message.contains("secret"), "{message}");
    }

    fn nodes_of_url(url: &str) -> Vec<String> {
        let config = AmqpConfig {
            url: url.to_owned(),
            ..AmqpConfig::default()
        };
        super::nodes(&config)
            .unwrap()
            .iter()
            .map(node_name)
            .collect()
    }

    #[test]
    fn shuffle_keeps_every_node_and_varies_the_order() {
        let mut orders = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut items = [1, 2, 3];
            shuffle(&mut items);
            let mut sorted = items;
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2, 3]);
            orders.insert(items);
        }
        assert_eq!(orders.len(), 6, "all six orders of three nodes show up");
    }
}
