//! Every frame of every well-formed scenario parses with etherparse and every
//! checksum verifies (fragments after reassembly); the `malformed` frames do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check_frame, reassemble, Checked};
use pcapgen::BASE_TS_MICROS;

#[test]
fn every_frame_parses_and_checksums_verify() {
    for s in pcapgen::scenarios().into_iter().filter(|s| s.name != "malformed") {
        let mut frags = Vec::new();
        for (i, f) in s.frames.iter().enumerate() {
            match check_frame(&f.data) {
                Ok(Checked::Complete) => {}
                Ok(Checked::Fragment(fr)) => frags.push(fr),
                Err(e) => panic!("{} frame {i}: {e}", s.name),
            }
        }
        // Overlapping fragments reassemble first-wins to the original datagram.
        reassemble(&frags).unwrap_or_else(|e| panic!("{} reassembly: {e}", s.name));
    }
}

#[test]
fn fragmented_scenarios_reassemble_to_the_expected_sizes() {
    let sizes = |name: &str| -> Vec<usize> {
        let s = common::scenario(name);
        let frags: Vec<_> = s
            .frames
            .iter()
            .filter_map(|f| match check_frame(&f.data).unwrap() {
                Checked::Fragment(fr) => Some(fr),
                Checked::Complete => None,
            })
            .collect();
        reassemble(&frags).unwrap().into_iter().map(|(_, b)| b.len()).collect()
    };
    assert_eq!(sizes("ipv4_fragments"), vec![3008]);
    assert_eq!(sizes("ipv6_fragments"), vec![3008]);
    let mut overlap = sizes("ipv4_fragments_overlap");
    overlap.sort_unstable();
    assert_eq!(overlap, vec![1208, 2008]);
    assert_eq!(sizes("demo"), vec![2008]);
}

#[test]
fn checksum_verifier_rejects_a_flipped_bit() {
    let s = common::scenario("tcp_handshake_close");
    let mut frame = s.frames[3].data.clone();
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    assert!(check_frame(&frame).is_err());
    let mut frame = s.frames[3].data.clone();
    frame[14 + 8] ^= 0x01; // IPv4 TTL
    assert!(check_frame(&frame).is_err());
}

#[test]
fn timestamps_start_at_base_and_never_go_back() {
    for s in pcapgen::scenarios() {
        assert!(!s.frames.is_empty(), "{} is empty", s.name);
        assert_eq!(s.frames[0].ts_micros, BASE_TS_MICROS, "{}", s.name);
        for w in s.frames.windows(2) {
            assert!(w[0].ts_micros < w[1].ts_micros, "{}: time goes back or stalls", s.name);
        }
    }
}

#[test]
fn malformed_frames_are_rejected_except_the_deliberately_parsable_ones() {
    let s = common::scenario("malformed");
    assert_eq!(s.frames.len(), 8);
    let parsed: Vec<bool> =
        s.frames.iter().map(|f| etherparse::SlicedPacket::from_ethernet(&f.data).is_ok()).collect();
    // Frame 4 (SYN+FIN) is well-formed on the wire; frame 7 is a valid ARP request.
    assert_eq!(parsed, vec![false, false, false, false, true, false, false, true]);
    let synfin = common::tcp(&s.frames[4].data).unwrap();
    assert!(synfin.syn && synfin.fin);
    assert!(matches!(check_frame(&s.frames[4].data), Ok(Checked::Complete)));
    let arp = etherparse::SlicedPacket::from_ethernet(&s.frames[7].data).unwrap();
    assert!(matches!(arp.net, Some(etherparse::NetSlice::Arp(_))));
}
