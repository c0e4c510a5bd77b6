//! What the adapter does with a frame, and why a frame is dropped.

/// The verdict on one frame, returned by [`Ctx::recv_packet`](crate::Ctx::recv_packet).
///
/// A TCP "reset" is a `Drop` plus frames queued for
/// [`Ctx::poll_transmit`](crate::Ctx::poll_transmit). On a tap (a passive copy) the
/// adapter ignores the verdict; nothing is ever dropped there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the frame on (possibly rewritten in place).
    Forward,
    /// Do not send the frame; the reason is also counted in
    /// [`Counters::drops`](crate::Counters::drops).
    Drop(DropReason),
}

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $label:literal,)*) => {
        /// Why a frame was dropped. Every variant has a counter and a stable snake_case
        /// label (used in `--stats` and metrics).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons (size of the counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case label.
            pub const fn label(self) -> &'static str {
                match self { $(DropReason::$name => $label,)* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header.
    EthTruncated => "eth_truncated",
    /// A VLAN tag is cut short.
    VlanTruncated => "vlan_truncated",
    /// More than two VLAN tags.
    VlanTooDeep => "vlan_too_deep",
    /// PPPoE session header cut short.
    PppoeTruncated => "pppoe_truncated",
    /// IPv4 header cut short.
    Ipv4Truncated => "ipv4_truncated",
    /// IPv4 version field is not 4.
    Ipv4BadVersion => "ipv4_bad_version",
    /// IPv4 header length below 20 bytes.
    Ipv4BadHeaderLen => "ipv4_bad_header_len",
    /// IPv4 total length smaller than its header.
    Ipv4BadTotalLen => "ipv4_bad_total_len",
    /// IPv4 header checksum wrong (only with `verify_checksums`).
    Ipv4BadChecksum => "ipv4_bad_checksum",
    /// IPv6 header cut short or version not 6.
    Ipv6Truncated => "ipv6_truncated",
    /// IPv6 extension header chain malformed (cut short, repeated hop-by-hop, too long).
    Ipv6BadExtHeader => "ipv6_bad_ext_header",
    /// TCP header cut short.
    TcpTruncated => "tcp_truncated",
    /// TCP data offset below 5 words or beyond the segment.
    TcpBadHeaderLen => "tcp_bad_header_len",
    /// Invalid TCP flag combination (null, SYN+FIN, xmas and similar scans).
    TcpBadFlags => "tcp_bad_flags",
    /// A TCP option with a bad length or cut short.
    TcpBadOption => "tcp_bad_option",
    /// UDP header cut short.
    UdpTruncated => "udp_truncated",
    /// UDP length field below 8 or beyond the IP payload.
    UdpBadLength => "udp_bad_length",
    /// ICMP or ICMPv6 header cut short.
    IcmpTruncated => "icmp_truncated",
    /// TCP/UDP/ICMP checksum wrong (only with `verify_checksums`).
    L4BadChecksum => "l4_bad_checksum",
    /// An IP fragment overlapping data already held for the same datagram.
    FragOverlap => "frag_overlap",
    /// An IP fragment with an impossible offset or length.
    FragInvalid => "frag_invalid",
    /// The fragment table is full (datagram or byte bound); the fragment is not held.
    FragTableFull => "frag_table_full",
    /// Denied by policy (the deciding packet of a flow or session).
    Policy => "policy",
    /// A packet of a session blocked by policy earlier.
    Blocked => "blocked",
    /// A hook's drop verdict.
    Hook => "hook",
    /// A frame of no workload, with `UnknownTraffic::Drop`.
    UnknownWorkload => "unknown_workload",
}
