//! Capture files in, Ethernet II frames with timestamps out.
//!
//! [`CaptureReader`] reads a pcap file (microsecond or nanosecond, either byte order) or a
//! pcapng file (any number of sections and interfaces, each interface with its own link
//! type, `if_tsresol` and `if_tsoffset`). The format is chosen by the magic number, never
//! by the file name. Every packet is normalised to an Ethernet II frame (see [`link`]) in
//! one reused buffer, and its time converted to a [`Time`] in microseconds since the Unix
//! epoch (times before 1970 become 0, since `Time` is unsigned).
//!
//! ## Errors and warnings
//!
//! - A file that cannot be opened, is not a pcap/pcapng file, or has a bad file header is a
//!   [`CaptureError`] before the first packet.
//! - A file that breaks part-way (cut short inside a record, or a corrupt pcapng block) is
//!   not an error: every packet before the break is delivered, then the reader stops and
//!   [`CaptureReader::warning`] says where it broke.
//! - An I/O error part-way is a [`CaptureError::Read`].
//!
//! ## Invariants
//!
//! - No allocation per packet once the frame buffer has grown to the largest frame (it
//!   starts at 256 KiB), except what pcap-file does itself: nothing for pcap records and
//!   pcapng packet blocks (they are parsed here from pcap-file's raw blocks); interface
//!   and section header blocks are parsed, and allocate, in pcap-file.
//! - Reads go through pcap-file's own 8 MB buffer, so there is one `read` call per 8 MB,
//!   not per packet; do not wrap the input in a `BufReader`.
//! - [`CaptureStats::packets`] counts every packet record read, delivered or skipped.

pub mod link;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use dpi_core::Time;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{Endianness, PcapError};

pub use link::{linktype, linktype_name, to_ethernet, Skip};

/// Initial capacity of the frame buffer: larger than any snap length in practice
/// (262 144 is libpcap's maximum), so it never grows.
const FRAME_CAPACITY: usize = 256 * 1024 + 64;

/// Bytes looked at to recognise the format (a whole pcap file header).
const PEEK_LEN: usize = 24;
/// Largest packet record accepted from a mapped pcap (pcap-file's limit for the buffered
/// path is its 8 MiB buffer).
const MAX_MAPPED_PACKET: usize = 8 << 20;

/// Why a capture could not be read at all (or stopped on an I/O error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("cannot read {}: {}", .path.display(), IoMsg(.source))]
    Open {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("cannot read {}: not a pcap or pcapng file ({})", .path.display(), .detail)]
    NotCapture {
        /// The file.
        path: PathBuf,
        /// What it starts with instead ("empty file", "starts with 3c 21 44 4f").
        detail: String,
    },
    /// The magic number is right but the file header is not.
    #[error("cannot read {}: bad {format} file header: {detail}", .path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// "pcap" or "pcapng".
        format: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Reading failed part-way (an I/O error, not the end of the file).
    #[error("cannot read {}: read error after byte {offset}: {}", .path.display(), IoMsg(.source))]
    Read {
        /// The file.
        path: PathBuf,
        /// Offset of the record being read.
        offset: u64,
        /// What the OS said.
        source: io::Error,
    },
}

impl CaptureError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            CaptureError::Open { path, .. }
            | CaptureError::NotCapture { path, .. }
            | CaptureError::BadHeader { path, .. }
            | CaptureError::Read { path, .. } => path,
        }
    }
}

/// An I/O error's message without the "(os error N)" suffix.
struct IoMsg<'a>(&'a io::Error);

impl fmt::Display for IoMsg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.to_string();
        match s.find(" (os error ") {
            Some(i) => f.write_str(&s[..i]),
            None => f.write_str(&s),
        }
    }
}

/// How a capture that broke part-way broke.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakKind {
    /// The file ends inside a record (or a length field points past its end).
    Truncated,
    /// A pcapng block is malformed; the text says how.
    Corrupt(String),
}

/// A capture that broke part-way: every packet before the break was delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureWarning {
    /// The file.
    pub path: PathBuf,
    /// Byte offset of the record (pcap packet record, pcapng block) that is broken.
    pub offset: u64,
    /// Packets read before the break.
    pub packets: u64,
    /// How it broke.
    pub kind: BreakKind,
}

impl fmt::Display for CaptureWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        let n = self.packets;
        match &self.kind {
            BreakKind::Truncated => write!(
                f,
                "{p}: truncated: the record at byte {} (packet {}) is cut short; \
                 {n} packets read before it",
                self.offset,
                n + 1
            ),
            BreakKind::Corrupt(why) => write!(
                f,
                "{p}: corrupt block at byte {} ({why}); {n} packets read before it",
                self.offset
            ),
        }
    }
}

/// File format, from the magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap with microsecond timestamps.
    Pcap,
    /// Classic pcap with nanosecond timestamps.
    PcapNanos,
    /// pcapng.
    PcapNg,
}

impl Format {
    /// Recognise the format from the first bytes of a file.
    pub fn detect(head: &[u8]) -> Option<Format> {
        match head.get(..4)? {
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xd4, 0xc3, 0xb2, 0xa1] => Some(Format::Pcap),
            [0xa1, 0xb2, 0x3c, 0x4d] | [0x4d, 0x3c, 0xb2, 0xa1] => Some(Format::PcapNanos),
            [0x0a, 0x0d, 0x0d, 0x0a] => Some(Format::PcapNg),
            _ => None,
        }
    }
}

/// Per-capture tallies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packet records read, delivered or skipped.
    pub packets: u64,
    /// Captured bytes of those records (the link-layer frames as stored).
    pub bytes: u64,
    /// Frames delivered (normalised to Ethernet).
    pub frames: u64,
    /// Skipped packets by link type (unsupported link type, non-IP protocol on a non-Ethernet
    /// link, or shorter than the link header).
    pub skipped: BTreeMap<u32, u64>,
}

/// One frame from a capture: an Ethernet II frame in the reader's buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Capture time, microseconds since the Unix epoch.
    pub ts: Time,
    /// The frame (a synthesised Ethernet header plus the payload for non-Ethernet links);
    /// the engine may rewrite it in place.
    pub data: &'a mut [u8],
    /// Link type the packet was captured with.
    pub linktype: u32,
    /// Length of the packet on the wire (including the original link header).
    pub orig_len: u32,
}

/// Timestamp conversion of one pcapng interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Iface {
    linktype: u32,
    /// `if_tsresol`: bit 7 clear = 10^-n s, set = 2^-n s. Default 6 (microseconds).
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: i64,
    snaplen: u32,
}

impl Iface {
    fn time(&self, units: u64) -> Time {
        let n = u32::from(self.tsresol & 0x7f);
        let us: u64 = if self.tsresol & 0x80 != 0 {
            if n >= 64 + 20 {
                0
            } else {
                ((u128::from(units) * 1_000_000) >> n).try_into().unwrap_or(u64::MAX)
            }
        } else if n <= 6 {
            units.saturating_mul(10u64.pow(6 - n))
        } else {
            match 10u64.checked_pow(n - 6) {
                Some(d) => units / d,
                None => 0,
            }
        };
        offset_time(us, self.tsoffset)
    }
}

fn offset_time(us: u64, offset_secs: i64) -> Time {
    let t = i128::from(us) + i128::from(offset_secs) * 1_000_000;
    Time::from_micros(t.clamp(0, i128::from(u64::MAX)) as u64)
}

/// What a read step produced.
enum Step {
    /// A frame is in the buffer.
    Frame { ts: Time, linktype: u32, orig_len: u32 },
    /// A record was consumed without a frame (skipped packet, non-packet block).
    Nothing,
    /// End of input (clean or broken; see `warning`).
    End,
}

enum Source<R: Read> {
    /// A classic pcap file mapped into memory (the fast path for files on disk): frames of
    /// Ethernet captures are handed out in place, without a copy.
    Mapped {
        map: memmap2::MmapMut,
        /// Offset of the next record header.
        pos: usize,
        big: bool,
        nanos: bool,
        linktype: u32,
    },
    Pcap {
        reader: PcapReader<R>,
        linktype: u32,
        nanos: bool,
    },
    PcapNg {
        reader: PcapNgReader<R>,
        ifaces: Vec<Iface>,
        big_endian: bool,
        /// Time of the last packet, used for simple packet blocks (they carry none).
        last_ts: Time,
    },
}

/// The input as pcap-file sees it: the bytes peeked to detect the format, then the rest.
type Input<R> = io::Chain<io::Take<Cursor<[u8; PEEK_LEN]>>, R>;

/// Reads one capture file and yields Ethernet frames; see the module docs.
pub struct CaptureReader<R: Read> {
    path: PathBuf,
    format: Format,
    src: Source<Input<R>>,
    frame: Vec<u8>,
    stats: CaptureStats,
    /// Offset of the next record.
    offset: u64,
    warning: Option<CaptureWarning>,
    done: bool,
}

impl<R: Read> fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("offset", &self.offset)
            .field("stats", &self.stats)
            .field("warning", &self.warning)
            .finish_non_exhaustive()
    }
}

impl CaptureReader<File> {
    /// Open a capture file. Classic pcap files are memory-mapped (read in place); pcapng
    /// files, and any file that cannot be mapped, are read through a buffer.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file =
            File::open(path).map_err(|source| CaptureError::Open { path: path.into(), source })?;
        // The buffered reader validates the header (through a duplicate of the handle);
        // a classic pcap is then read from a private mapping of the same file instead.
        let dup =
            file.try_clone().map_err(|source| CaptureError::Open { path: path.into(), source })?;
        let mut reader = Self::from_reader(path, dup)?;
        if let Source::Pcap { linktype, nanos, .. } = reader.src {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len > PEEK_LEN as u64 {
                if let Ok(map) = crate::sys::map_private(&file) {
                    let big = map[0] == 0xa1;
                    reader.src = Source::Mapped { map, pos: PEEK_LEN, big, nanos, linktype };
                    reader.offset = PEEK_LEN as u64;
                }
            }
        }
        Ok(reader)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Read a capture from `input`; `path` names it in errors and warnings.
    pub fn from_reader(path: impl Into<PathBuf>, mut input: R) -> Result<Self, CaptureError> {
        let path = path.into();
        let mut head = [0u8; PEEK_LEN];
        let n = read_up_to(&mut input, &mut head)
            .map_err(|source| CaptureError::Open { path: path.clone(), source })?;
        let Some(format) = Format::detect(&head[..n]) else {
            let detail = if n == 0 {
                "empty file".to_string()
            } else {
                let hex: Vec<String> =
                    head[..n.min(4)].iter().map(|b| format!("{b:02x}")).collect();
                format!("starts with {}", hex.join(" "))
            };
            return Err(CaptureError::NotCapture { path, detail });
        };
        let chained: Input<R> = Cursor::new(head).take(n as u64).chain(input);
        let bad = |format: &'static str, detail: String| CaptureError::BadHeader {
            path: path.clone(),
            format,
            detail,
        };
        let (src, offset) = match format {
            Format::Pcap | Format::PcapNanos => {
                if n < PEEK_LEN {
                    return Err(bad("pcap", format!("the file is only {n} bytes long")));
                }
                let big = head[0] == 0xa1;
                let raw_lt = if big {
                    u32::from_be_bytes([head[20], head[21], head[22], head[23]])
                } else {
                    u32::from_le_bytes([head[20], head[21], head[22], head[23]])
                };
                let reader =
                    PcapReader::new(chained).map_err(|e| header_error(&path, "pcap", e))?;
                // The upper bits of the field carry FCS information (pcap-linktype §LINKTYPE).
                let linktype = raw_lt & 0xffff;
                (Source::Pcap { reader, linktype, nanos: format == Format::PcapNanos }, 24)
            }
            Format::PcapNg => {
                if n < 12 {
                    return Err(bad("pcapng", format!("the file is only {n} bytes long")));
                }
                let big = match head[8..12] {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => {
                        return Err(bad("pcapng", "bad byte-order magic".to_string()));
                    }
                };
                let l = [head[4], head[5], head[6], head[7]];
                let shb_len = if big { u32::from_be_bytes(l) } else { u32::from_le_bytes(l) };
                let reader =
                    PcapNgReader::new(chained).map_err(|e| header_error(&path, "pcapng", e))?;
                let big_endian = reader.section().endianness == Endianness::Big;
                let src =
                    Source::PcapNg { reader, ifaces: Vec::new(), big_endian, last_ts: Time::ZERO };
                (src, u64::from(shb_len))
            }
        };
        Ok(CaptureReader {
            path,
            format,
            src,
            frame: Vec::with_capacity(FRAME_CAPACITY),
            stats: CaptureStats::default(),
            offset,
            warning: None,
            done: false,
        })
    }

    /// The file's name as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Tallies so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Where the file broke, once [`CaptureReader::next_frame`] has returned `None` for a
    /// file that broke part-way.
    pub fn warning(&self) -> Option<&CaptureWarning> {
        self.warning.as_ref()
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame, skipping (and counting) packets that cannot be normalised. `None` at
    /// the end of the file, including a broken end (see [`CaptureReader::warning`]).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if matches!(self.src, Source::Mapped { .. }) {
            return Ok(self.next_mapped());
        }
        loop {
            if self.done {
                return Ok(None);
            }
            match self.step()? {
                Step::Frame { ts, linktype, orig_len } => {
                    return Ok(Some(Frame { ts, data: &mut self.frame[..], linktype, orig_len }));
                }
                Step::Nothing => {}
                Step::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    /// The next frame of a mapped classic pcap file.
    fn next_mapped(&mut self) -> Option<Frame<'_>> {
        let Source::Mapped { map, pos, big, nanos, linktype } = &mut self.src else {
            return None;
        };
        loop {
            if self.done {
                return None;
            }
            let rest = &map[*pos..];
            if rest.is_empty() {
                self.done = true;
                return None;
            }
            let word = |i: usize| {
                let b = [rest[i], rest[i + 1], rest[i + 2], rest[i + 3]];
                if *big {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            };
            let incl = if rest.len() >= 16 { word(8) as usize } else { usize::MAX };
            if incl > rest.len().saturating_sub(16) || incl > MAX_MAPPED_PACKET {
                self.done = true;
                self.warning = Some(CaptureWarning {
                    path: self.path.clone(),
                    offset: *pos as u64,
                    packets: self.stats.packets,
                    kind: if incl > MAX_MAPPED_PACKET
                        && incl != usize::MAX
                        && rest.len() >= 16 + incl
                    {
                        BreakKind::Corrupt(format!("packet of {incl} bytes"))
                    } else {
                        BreakKind::Truncated
                    },
                });
                return None;
            }
            let (sec, frac, orig_len) = (word(0), word(4), word(12));
            let frac = if *nanos { u64::from(frac) / 1000 } else { u64::from(frac) };
            let ts = Time::from_micros(u64::from(sec) * 1_000_000 + frac);
            let start = *pos + 16;
            *pos = start + incl;
            self.offset = *pos as u64;
            self.stats.packets += 1;
            self.stats.bytes += incl as u64;
            let lt = *linktype;
            if lt == link::linktype::ETHERNET {
                self.stats.frames += 1;
                return Some(Frame {
                    ts,
                    data: &mut map[start..start + incl],
                    linktype: lt,
                    orig_len,
                });
            }
            match to_ethernet(lt, &map[start..start + incl], &mut self.frame) {
                Ok(()) => {
                    self.stats.frames += 1;
                    return Some(Frame { ts, data: &mut self.frame[..], linktype: lt, orig_len });
                }
                Err(_) => *self.stats.skipped.entry(lt).or_insert(0) += 1,
            }
        }
    }

    fn step(&mut self) -> Result<Step, CaptureError> {
        match &mut self.src {
            Source::Mapped { .. } => Ok(Step::End),
            Source::Pcap { reader, linktype, nanos } => {
                let pkt = match reader.next_raw_packet() {
                    None => return Ok(Step::End),
                    Some(Ok(p)) => p,
                    Some(Err(e)) => return self.broken(e),
                };
                self.offset += 16 + u64::from(pkt.incl_len);
                let frac =
                    if *nanos { u64::from(pkt.ts_frac) / 1000 } else { u64::from(pkt.ts_frac) };
                let ts = Time::from_micros(u64::from(pkt.ts_sec) * 1_000_000 + frac);
                let lt = *linktype;
                Ok(accept(&mut self.stats, &mut self.frame, lt, &pkt.data, ts, pkt.orig_len))
            }
            Source::PcapNg { reader, ifaces, big_endian, last_ts } => {
                let block = match reader.next_raw_block() {
                    None => return Ok(Step::End),
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return self.broken(e),
                };
                let block_offset = self.offset;
                self.offset += u64::from(block.initial_len);
                let pkt = match packet_block(block.type_, &block.body, *big_endian, ifaces) {
                    Ok(p) => p,
                    Err(why) => {
                        self.warning = Some(CaptureWarning {
                            path: self.path.clone(),
                            offset: block_offset,
                            packets: self.stats.packets,
                            kind: BreakKind::Corrupt(why.to_string()),
                        });
                        return Ok(Step::End);
                    }
                };
                if let Some(PacketRef { iface: ifc, units, data, orig_len }) = pkt {
                    let Some(iface) = ifaces.get(ifc) else {
                        self.warning = Some(CaptureWarning {
                            path: self.path.clone(),
                            offset: block_offset,
                            packets: self.stats.packets,
                            kind: BreakKind::Corrupt(format!(
                                "packet on interface {ifc}, which has no description block"
                            )),
                        });
                        return Ok(Step::End);
                    };
                    let ts = match units {
                        Some(units) => iface.time(units),
                        None => *last_ts,
                    };
                    *last_ts = ts;
                    let lt = iface.linktype;
                    return Ok(accept(&mut self.stats, &mut self.frame, lt, data, ts, orig_len));
                }
                let ty = block.type_;
                drop(block);
                match ty {
                    SECTION_HEADER_BLOCK => {
                        ifaces.clear();
                        *big_endian = reader.section().endianness == Endianness::Big;
                    }
                    INTERFACE_DESCRIPTION_BLOCK => {
                        if let Some(idb) = reader.interfaces().last() {
                            let mut iface = Iface {
                                linktype: u32::from(idb.linktype),
                                tsresol: 6,
                                tsoffset: 0,
                                snaplen: idb.snaplen,
                            };
                            for opt in &idb.options {
                                match opt {
                                    InterfaceDescriptionOption::IfTsResol(r) => iface.tsresol = *r,
                                    InterfaceDescriptionOption::IfTsOffset(o) => {
                                        iface.tsoffset = *o as i64
                                    }
                                    _ => {}
                                }
                            }
                            ifaces.push(iface);
                        }
                    }
                    _ => {}
                }
                Ok(Step::Nothing)
            }
        }
    }

    /// The input broke: end with a warning, or fail on a real I/O error.
    fn broken(&mut self, e: PcapError) -> Result<Step, CaptureError> {
        let kind = match e {
            PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
                BreakKind::Truncated
            }
            PcapError::IoError(source) => {
                return Err(CaptureError::Read {
                    path: self.path.clone(),
                    offset: self.offset,
                    source,
                })
            }
            PcapError::IncompleteBuffer => BreakKind::Truncated,
            other => BreakKind::Corrupt(other.to_string()),
        };
        self.warning = Some(CaptureWarning {
            path: self.path.clone(),
            offset: self.offset,
            packets: self.stats.packets,
            kind,
        });
        Ok(Step::End)
    }
}

/// A packet inside a pcapng packet block.
struct PacketRef<'a> {
    iface: usize,
    /// Timestamp in the interface's units (`None` for simple packet blocks).
    units: Option<u64>,
    data: &'a [u8],
    orig_len: u32,
}

/// Parse an enhanced, simple or (obsolete) packet block body; `Ok(None)` for other blocks.
fn packet_block<'a>(
    ty: u32,
    body: &'a [u8],
    big_endian: bool,
    ifaces: &[Iface],
) -> Result<Option<PacketRef<'a>>, &'static str> {
    let rd = |at: usize| -> Option<u32> {
        let b = body.get(at..at + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    };
    // Both layouts: interface, timestamp high, timestamp low, captured length, original
    // length, data. The obsolete packet block has a 16-bit interface id and a drop count.
    let fixed = |iface: usize| -> Option<PacketRef<'a>> {
        let units = (u64::from(rd(4)?) << 32) | u64::from(rd(8)?);
        let cap = rd(12)? as usize;
        let orig_len = rd(16)?;
        let data = body.get(20..20usize.checked_add(cap)?)?;
        Some(PacketRef { iface, units: Some(units), data, orig_len })
    };
    match ty {
        ENHANCED_PACKET_BLOCK => {
            let iface = rd(0).ok_or("enhanced packet block too short")? as usize;
            fixed(iface).map(Some).ok_or("enhanced packet block shorter than its captured length")
        }
        PACKET_BLOCK => {
            let w = rd(0).ok_or("packet block too short")?;
            let iface = if big_endian { w >> 16 } else { w & 0xffff } as usize;
            fixed(iface).map(Some).ok_or("packet block shorter than its captured length")
        }
        SIMPLE_PACKET_BLOCK => {
            let orig_len = rd(0).ok_or("simple packet block too short")?;
            let snap = ifaces.first().map_or(0, |i| i.snaplen);
            let snap = if snap == 0 { u32::MAX } else { snap };
            let data = &body[4..];
            let cap = (orig_len.min(snap) as usize).min(data.len());
            Ok(Some(PacketRef { iface: 0, units: None, data: &data[..cap], orig_len }))
        }
        _ => Ok(None),
    }
}

/// Count a packet record and normalise it into `frame`.
fn accept(
    stats: &mut CaptureStats,
    frame: &mut Vec<u8>,
    linktype: u32,
    data: &[u8],
    ts: Time,
    orig_len: u32,
) -> Step {
    stats.packets += 1;
    stats.bytes += data.len() as u64;
    match to_ethernet(linktype, data, frame) {
        Ok(()) => {
            stats.frames += 1;
            Step::Frame { ts, linktype, orig_len }
        }
        Err(_) => {
            *stats.skipped.entry(linktype).or_insert(0) += 1;
            Step::Nothing
        }
    }
}

fn header_error(path: &Path, format: &'static str, e: PcapError) -> CaptureError {
    let detail = match e {
        PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the file ends inside it".to_string()
        }
        PcapError::IoError(source) => {
            return CaptureError::Read { path: path.into(), offset: 0, source };
        }
        PcapError::IncompleteBuffer => "the file ends inside it".to_string(),
        other => other.to_string(),
    };
    CaptureError::BadHeader { path: path.into(), format, detail }
}

/// Fill `buf` as far as the input allows; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn iface(tsresol: u8, tsoffset: i64) -> Iface {
        Iface { linktype: 1, tsresol, tsoffset, snaplen: 0 }
    }

    #[test]
    fn tsresol_conversions() {
        assert_eq!(iface(6, 0).time(1_500_000), Time::from_micros(1_500_000));
        assert_eq!(iface(9, 0).time(1_500_000_999), Time::from_micros(1_500_000));
        assert_eq!(iface(3, 0).time(1_500), Time::from_micros(1_500_000));
        assert_eq!(iface(0, 0).time(2), Time::from_secs(2));
        // 2^-10 s units: 1024 units = 1 s.
        assert_eq!(iface(0x80 | 10, 0).time(1024 * 3), Time::from_secs(3));
        assert_eq!(iface(0x80 | 10, 0).time(512), Time::from_micros(500_000));
        // Offsets, and clamping below the epoch.
        assert_eq!(iface(6, 10).time(1), Time::from_micros(10_000_001));
        assert_eq!(iface(6, -10).time(1), Time::ZERO);
        // Absurd resolutions do not panic.
        assert_eq!(iface(127, 0).time(u64::MAX), Time::ZERO);
        assert_eq!(iface(0xff, 0).time(u64::MAX), Time::ZERO);
        assert_eq!(iface(0, 0).time(u64::MAX), Time::from_micros(u64::MAX));
    }

    #[test]
    fn detect_formats() {
        assert_eq!(Format::detect(&[0xd4, 0xc3, 0xb2, 0xa1]), Some(Format::Pcap));
        assert_eq!(Format::detect(&[0xa1, 0xb2, 0xc3, 0xd4]), Some(Format::Pcap));
        assert_eq!(Format::detect(&[0x4d, 0x3c, 0xb2, 0xa1]), Some(Format::PcapNanos));
        assert_eq!(Format::detect(&[0x0a, 0x0d, 0x0d, 0x0a]), Some(Format::PcapNg));
        assert_eq!(Format::detect(b"GET "), None);
        assert_eq!(Format::detect(&[0xd4, 0xc3]), None);
    }

    #[test]
    fn not_a_capture() {
        let e = CaptureReader::from_reader("x.txt", &b"hello world\n"[..]).unwrap_err();
        assert!(matches!(e, CaptureError::NotCapture { .. }));
        assert_eq!(
            e.to_string(),
            "cannot read x.txt: not a pcap or pcapng file (starts with 68 65 6c 6c)"
        );
        let e = CaptureReader::from_reader("e.pcap", &b""[..]).unwrap_err();
        assert_eq!(e.to_string(), "cannot read e.pcap: not a pcap or pcapng file (empty file)");
        let e =
            CaptureReader::from_reader("s.pcap", &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0][..]).unwrap_err();
        assert!(matches!(e, CaptureError::BadHeader { .. }), "{e}");
        assert!(e.to_string().contains("s.pcap"));
    }

    #[test]
    fn missing_file() {
        let e = CaptureReader::open("/nonexistent/dir/foo.pcap").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /nonexistent/dir/foo.pcap: No such file or directory"
        );
        assert_eq!(e.path(), Path::new("/nonexistent/dir/foo.pcap"));
    }
}
