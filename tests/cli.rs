//! The `actorbus` command driven as a user would: the built binary, run
//! against the shared RabbitMQ and Redis (`scripts/test` makes sure of
//! them), its output read as text and JSON.

mod support;

mod cli {
    mod bench;
    mod dead;
    mod errors;
    mod peek;
    mod push;
    mod stats;
}
