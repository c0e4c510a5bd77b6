//! Per-worker counters: every bound, drop and anomaly has one. Plain integers owned by the
//! worker; an adapter copies them out (they are `Copy`) to publish or sum across workers.

use crate::action::DropReason;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Counters of one [`Ctx`](crate::Ctx). All monotonic.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// Frames dropped, indexed by `DropReason as usize`; see [`Counters::drops`].
            pub drop_counts: [u64; DropReason::COUNT],
        }

        impl Default for Counters {
            fn default() -> Self {
                Counters { $($name: 0,)* drop_counts: [0; DropReason::COUNT] }
            }
        }

        impl Counters {
            /// Visit every scalar counter with its snake_case name (drops excluded; see
            /// [`Counters::drops`]).
            pub fn for_each(&self, mut f: impl FnMut(&'static str, u64)) {
                $(f(stringify!($name), self.$name);)*
            }

            /// Add another worker's counters into these.
            pub fn merge(&mut self, other: &Counters) {
                $(self.$name += other.$name;)*
                for (a, b) in self.drop_counts.iter_mut().zip(other.drop_counts.iter()) {
                    *a += *b;
                }
            }
        }
    };
}

counters! {
    /// Frames given to `recv_packet` (reassembled datagrams are not counted again).
    packets,
    /// Bytes of those frames.
    bytes,
    /// Frames that were not IPv4/IPv6 (ARP, LLDP, ...): forwarded, not inspected.
    non_ip,
    /// IPv4 packets (after VLAN tags).
    ipv4,
    /// IPv6 packets.
    ipv6,
    /// Frames carrying at least one VLAN tag.
    vlan_tagged,
    /// Frames whose IP length exceeds the captured bytes (snap length); inspected up to
    /// what is there, the stream is then treated as having a gap.
    truncated,
    /// TCP packets.
    tcp,
    /// UDP packets.
    udp,
    /// ICMP and ICMPv6 packets.
    icmp,
    /// Packets of other IP protocols.
    other_ip,
    /// Sessions created, TCP.
    sessions_tcp,
    /// Sessions created, UDP.
    sessions_udp,
    /// Sessions created, ICMP/ICMPv6.
    sessions_icmp,
    /// Sessions created, other IP protocols.
    sessions_other,
    /// Sessions ended by idle timeout.
    sessions_timed_out,
    /// Sessions evicted because the table was full (`Config::max_sessions`).
    sessions_evicted,
    /// Sessions ended because a new SYN reused a closed connection's 4-tuple.
    sessions_port_reused,
    /// Sessions ended by `Ctx::flush`.
    sessions_flushed,
    /// Sessions refused by a hook at creation (policy deny): the packet was dropped.
    sessions_denied,
    /// TCP sessions picked up mid-stream (no handshake seen).
    tcp_midstream,
    /// TCP segments fully below the stream frontier (retransmissions), plus repeated SYNs.
    tcp_retransmissions,
    /// TCP segments that arrived ahead of a hole and were buffered.
    tcp_out_of_order,
    /// TCP segments overlapping data already received, with the new part kept.
    tcp_overlaps,
    /// TCP packets outside the receiver's window: tracked, not inspected.
    tcp_out_of_window,
    /// RST, FIN or a lone ACK with no session: forwarded without creating one.
    tcp_no_session,
    /// SYN or SYN/ACK that does not fit the existing session: ignored.
    tcp_unexpected_syn,
    /// SYN carrying payload (allowed by RFC 793, used by TFO and evasion tricks).
    tcp_syn_with_data,
    /// Sessions whose inspection stopped because an ACK covered data the capture never
    /// saw (capture loss); tracking goes on.
    tcp_bypass_capture_loss,
    /// Sessions whose inspection stopped because buffered out-of-order data exceeded
    /// 64 KiB in one direction (or a hole list overflowed).
    tcp_bypass_overflow,
    /// Sessions whose inspection stopped because the capture cut a payload short.
    tcp_bypass_truncated,
    /// Sessions whose inspection stopped because no stream buffer was free
    /// (`Config::max_stream_buffers`).
    stream_pool_exhausted,
    /// Payload bytes delivered in order to the inspector.
    stream_bytes_delivered,
    /// ICMP errors matched to the session whose packet they quote.
    icmp_errors_matched,
    /// ICMP errors quoting no known session (tracked as ICMP sessions of their own).
    icmp_errors_unmatched,
    /// ICMPv6 link-control sessions (neighbour and router discovery, MLD, redirects)
    /// admitted without policy, as ARP is.
    icmp6_link_control,
    /// IP fragments received.
    frags,
    /// Datagrams reassembled from fragments and inspected.
    frags_reassembled,
    /// Incomplete datagrams discarded after the fragment timeout.
    frags_timed_out,
    /// Overlapping fragments (also a drop reason; the datagram is discarded).
    frags_overlapping,
    /// IPv6 atomic fragments (offset 0, no more fragments) passed straight through.
    frags_atomic,
    /// Events dropped because the event queue was full (`Config::max_pending_events`).
    events_dropped,
    /// Threats raised by the engine or a hook.
    threats,
    /// Policy decisions made (at session creation and re-evaluations).
    policy_lookups,
    /// Sessions re-evaluated (policy version change, application or vhost now known).
    policy_reevaluations,
    /// Violations reported (VIOLATE or DENY), once per session or denied flow.
    violations,
    /// Flows denied at their first packet (no session created).
    flows_denied,
    /// Sessions blocked after creation (mid-session deny).
    sessions_blocked,
    /// TCP resets queued for transmission.
    resets_sent,
    /// Frames the engine wanted to transmit but its queue was full.
    transmit_dropped,
    /// Frames of no workload forwarded uninspected (`UnknownTraffic::Ignore`).
    unknown_ignored,
    /// Connection reports emitted.
    connection_reports,
    /// (name, address) pairs learned from DNS answers (new or refreshed).
    fqdn_learned,
    /// Sessions whose application was identified.
    apps_identified,
    /// Sessions with payload whose application could not be identified.
    apps_unidentified,
    /// Sessions left unidentified because the identification pool was full
    /// (`Config::max_identifying`).
    ident_pool_exhausted,
    /// Application updates reported (a server address/port seen with a new application).
    app_updates,
    /// Sessions whose vhost could not be kept (`Config::max_vhosts`): vhost rules then
    /// see it as unknown.
    vhost_pool_exhausted,
}

impl Counters {
    /// Frames dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drop_counts[reason as usize]
    }

    /// Frames dropped for any reason.
    pub fn drops_total(&self) -> u64 {
        self.drop_counts.iter().sum()
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drop_counts[reason as usize] += 1;
    }
}
