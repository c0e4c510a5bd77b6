//! Classic libpcap output: magic 0xa1b2c3d4 written little-endian, version 2.4,
//! microsecond timestamps, snaplen 65535, LINKTYPE_ETHERNET (1).
//!
//! Frames longer than the snaplen are truncated in the file with their original
//! length kept, as a real capture would; timestamps past 2106 saturate.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::capture::Frame;

/// Snapshot length written in the file header.
pub const SNAPLEN: u32 = 65535;

fn header() -> PcapHeader {
    PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
    }
}

fn write_frames<W: Write>(out: W, frames: &[Frame]) -> io::Result<()> {
    let mut w = PcapWriter::with_header(out, header()).map_err(io::Error::other)?;
    for f in frames {
        let max_secs = u64::from(u32::MAX);
        let ts = Duration::from_micros(f.ts_micros.min(max_secs * 1_000_000 + 999_999));
        let incl = f.data.len().min(SNAPLEN as usize);
        let orig_len = u32::try_from(f.data.len()).unwrap_or(u32::MAX);
        let packet = PcapPacket::new(ts, orig_len, &f.data[..incl]);
        w.write_packet(&packet).map_err(io::Error::other)?;
    }
    w.into_writer().flush()
}

/// The pcap file for `frames`, as bytes.
pub fn to_pcap_bytes(frames: &[Frame]) -> Vec<u8> {
    let mut buf = Vec::new();
    match write_frames(&mut buf, frames) {
        Ok(()) => buf,
        // Lengths and timestamps are clamped above and a Vec cannot fail to grow
        // short of aborting, so the writer has nothing left to reject.
        Err(e) => unreachable!("writing a pcap to memory failed: {e}"),
    }
}

/// Writes the pcap file for `frames` to `path` (created or truncated).
pub fn write_pcap(path: &Path, frames: &[Frame]) -> io::Result<()> {
    std::fs::write(path, to_pcap_bytes(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let frames = [Frame { ts_micros: 1_767_225_600_000_123, data: vec![0xab; 3] }];
        let b = to_pcap_bytes(&frames);
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        assert_eq!(&b[16..24], &[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&b[24..28], &1_767_225_600u32.to_le_bytes());
        assert_eq!(&b[28..32], &123u32.to_le_bytes());
        assert_eq!(&b[32..40], &[3, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&b[40..], &[0xab; 3]);
    }
}
