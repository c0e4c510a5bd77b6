//! One file per application protocol: a `probe` (identification, see
//! [`crate::app::probe`]) and, where the engine needs something from the protocol, small
//! bounded extractors (HTTP Host, TLS SNI, SQL text, ...). All operate on byte slices with
//! bounded reads and never panic.

pub mod amqp;
pub mod cassandra;
pub mod couchbase;
pub mod dhcp;
pub mod dns;
pub mod echo;
pub mod http;
pub mod http2;
pub mod kafka;
pub mod memcached;
pub mod mongodb;
pub mod mqtt;
pub mod mysql;
pub mod nats;
pub mod ntp;
pub mod pgsql;
pub mod redis;
pub mod spark;
pub mod ssh;
pub mod tds;
pub mod tftp;
pub mod tls;
pub mod tns;
pub mod zookeeper;
