//! Application identifiers.
//!
//! An [`AppId`] names the application protocol of a session once a parser identified it
//! (the parser registry comes with its own stage; until then an [`Inspector`] hook can
//! set it). Names follow Suricata's `app_proto` where Suricata has one, and are lowercase
//! otherwise; they are what policy files and reports use.
//!
//! [`Inspector`]: crate::Inspector

pub(crate) mod ident;
pub mod parsers;
pub mod probe;

use core::fmt;

/// An application protocol.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(u16);

macro_rules! apps {
    ($($(#[doc = $doc:literal])* $konst:ident = $val:literal, $name:literal;)*) => {
        impl AppId {
            $($(#[doc = $doc])* pub const $konst: AppId = AppId($val);)*

            /// Every known application, in id order.
            pub const ALL: &'static [AppId] = &[$(AppId::$konst,)*];

            /// The lowercase name used in policy files and reports.
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($val => $name,)*
                    _ => "unknown",
                }
            }

            /// The application with this name (case-insensitive).
            pub fn from_name(name: &str) -> Option<AppId> {
                $(if name.eq_ignore_ascii_case($name) { return Some(AppId::$konst); })*
                None
            }
        }
    };
}

apps! {
    /// HTTP/1.x.
    HTTP = 1, "http";
    /// TLS (and SSLv2 hellos).
    TLS = 2, "tls";
    /// SSH.
    SSH = 3, "ssh";
    /// DNS over UDP or TCP.
    DNS = 4, "dns";
    /// DHCP.
    DHCP = 5, "dhcp";
    /// NTP.
    NTP = 6, "ntp";
    /// TFTP.
    TFTP = 7, "tftp";
    /// PostgreSQL.
    PGSQL = 8, "pgsql";
    /// MQTT.
    MQTT = 9, "mqtt";
    /// HTTP/2 (h2c).
    HTTP2 = 10, "http2";
    /// SIP.
    SIP = 11, "sip";
    /// RTSP.
    RTSP = 12, "rtsp";
    /// MySQL.
    MYSQL = 13, "mysql";
    /// Redis.
    REDIS = 14, "redis";
    /// ZooKeeper.
    ZOOKEEPER = 15, "zookeeper";
    /// Cassandra (CQL and internode).
    CASSANDRA = 16, "cassandra";
    /// MongoDB.
    MONGODB = 17, "mongodb";
    /// Kafka.
    KAFKA = 18, "kafka";
    /// Couchbase / Erlang distribution.
    COUCHBASE = 19, "couchbase";
    /// Spark.
    SPARK = 20, "spark";
    /// Oracle TNS.
    TNS = 21, "tns";
    /// MS-SQL TDS.
    TDS = 22, "tds";
    /// gRPC over cleartext HTTP/2.
    GRPC = 23, "grpc";
    /// Memcached.
    MEMCACHED = 24, "memcached";
    /// AMQP.
    AMQP = 25, "amqp";
    /// NATS.
    NATS = 26, "nats";
    /// Echo.
    ECHO = 27, "echo";
}

impl AppId {
    /// The raw id.
    pub const fn id(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is known of a session's application, as policy sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AppState {
    /// Not decided yet (parsers still looking).
    #[default]
    Pending,
    /// Identified.
    Known(AppId),
    /// The parsers gave up: no application rule can match.
    Unidentified,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &a in AppId::ALL {
            assert_eq!(AppId::from_name(a.name()), Some(a));
        }
        assert_eq!(AppId::from_name("HTTP"), Some(AppId::HTTP));
        assert_eq!(AppId::from_name("gopher"), None);
        assert_eq!(AppId::ALL.len(), 27);
    }
}
