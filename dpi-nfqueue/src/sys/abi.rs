//! The kernel's netlink and nfnetlink_queue ABI: message types, attribute numbers, flag
//! bits and structure sizes, as in `include/uapi/linux/netlink.h`,
//! `linux/netfilter/nfnetlink.h` and `linux/netfilter/nfnetlink_queue.h`.
//!
//! Kernel constant names live only here; the rest of the crate uses them through `sys`.
//! Every multi-byte field inside an nfnetlink attribute is big-endian; the netlink and
//! attribute headers themselves are in host order.

/// `struct nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `struct nlattr`: len u16, type u16.
pub(crate) const NLA_HDRLEN: usize = 4;
/// `struct nfgenmsg`: family u8, version u8, res_id be16 (the queue number).
pub(crate) const NFGENMSG_LEN: usize = 4;
/// Netlink messages and attributes are padded to 4 bytes.
pub(crate) const NLA_ALIGNTO: usize = 4;

pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;

/// The attribute type bits (the top two are the nested / byte-order flags).
pub(crate) const NLA_TYPE_MASK: u16 = 0x3fff;

pub(crate) const NFNETLINK_V0: u8 = 0;
pub(crate) const NFNL_SUBSYS_QUEUE: u16 = 3;

pub(crate) const NFQNL_MSG_PACKET: u16 = 0;
pub(crate) const NFQNL_MSG_VERDICT: u16 = 1;
pub(crate) const NFQNL_MSG_CONFIG: u16 = 2;
pub(crate) const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

/// nlmsg_type of a queue message: subsystem in the high byte.
pub(crate) const fn queue_msg_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_QUEUE << 8) | msg
}

// Packet (kernel -> user) and verdict (user -> kernel) attributes.
pub(crate) const NFQA_PACKET_HDR: u16 = 1;
pub(crate) const NFQA_VERDICT_HDR: u16 = 2;
pub(crate) const NFQA_MARK: u16 = 3;
pub(crate) const NFQA_TIMESTAMP: u16 = 4;
pub(crate) const NFQA_IFINDEX_INDEV: u16 = 5;
pub(crate) const NFQA_IFINDEX_OUTDEV: u16 = 6;
pub(crate) const NFQA_IFINDEX_PHYSINDEV: u16 = 7;
pub(crate) const NFQA_IFINDEX_PHYSOUTDEV: u16 = 8;
pub(crate) const NFQA_HWADDR: u16 = 9;
pub(crate) const NFQA_PAYLOAD: u16 = 10;
pub(crate) const NFQA_CAP_LEN: u16 = 13;
pub(crate) const NFQA_SKB_INFO: u16 = 14;

/// `struct nfqnl_msg_packet_hdr`: packet_id be32, hw_protocol be16, hook u8 (+1 pad).
pub(crate) const PACKET_HDR_LEN: usize = 7;
/// `struct nfqnl_msg_packet_hw`: hw_addrlen be16, pad u16, hw_addr[8].
pub(crate) const PACKET_HW_LEN: usize = 12;
/// `struct nfqnl_msg_packet_timestamp`: sec be64, usec be64.
pub(crate) const PACKET_TIMESTAMP_LEN: usize = 16;
/// `struct nfqnl_msg_verdict_hdr`: verdict be32, id be32.
pub(crate) const VERDICT_HDR_LEN: usize = 8;

// NFQA_SKB_INFO bits.
pub(crate) const NFQA_SKB_CSUMNOTREADY: u32 = 1 << 0;
pub(crate) const NFQA_SKB_GSO: u32 = 1 << 1;
pub(crate) const NFQA_SKB_CSUM_NOTVERIFIED: u32 = 1 << 2;

// Configuration attributes (verified numbers: MASK=4, FLAGS=5; swapped, the kernel
// answers EINVAL).
pub(crate) const NFQA_CFG_CMD: u16 = 1;
pub(crate) const NFQA_CFG_PARAMS: u16 = 2;
pub(crate) const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
pub(crate) const NFQA_CFG_MASK: u16 = 4;
pub(crate) const NFQA_CFG_FLAGS: u16 = 5;

// `struct nfqnl_msg_config_cmd` is command u8, pad u8, pf be16 (4 bytes);
// `struct nfqnl_msg_config_params` is copy_range be32, copy_mode u8 (packed, 5 bytes).

pub(crate) const NFQNL_CFG_CMD_BIND: u8 = 1;
pub(crate) const NFQNL_COPY_PACKET: u8 = 2;

pub(crate) const NFQA_CFG_F_FAIL_OPEN: u32 = 1 << 0;
pub(crate) const NFQA_CFG_F_GSO: u32 = 1 << 2;

/// `NFQNL_MAX_COPY_RANGE`: 0xffff minus the attribute header; larger ranges are clamped
/// and longer packets are cut, with `NFQA_CAP_LEN` giving the original length.
pub(crate) const NFQNL_MAX_COPY_RANGE: u32 = 0xffff - NLA_HDRLEN as u32;

// Netfilter verdicts.
pub(crate) const NF_DROP: u32 = 0;
pub(crate) const NF_ACCEPT: u32 = 1;
pub(crate) const NF_REPEAT: u32 = 4;

// Netfilter IPv4/IPv6 hooks.
pub(crate) const NF_INET_PRE_ROUTING: u8 = 0;
pub(crate) const NF_INET_LOCAL_IN: u8 = 1;
pub(crate) const NF_INET_FORWARD: u8 = 2;
pub(crate) const NF_INET_LOCAL_OUT: u8 = 3;
pub(crate) const NF_INET_POST_ROUTING: u8 = 4;

pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;

pub(crate) const ENOBUFS: i32 = libc::ENOBUFS;
pub(crate) const EPERM: i32 = libc::EPERM;
pub(crate) const EBUSY: i32 = libc::EBUSY;
