use super::*;
use proptest::prelude::*;

const RESPONSE: u16 = 0x8180; // QR, RD, RA, RCODE 0
const IN: u16 = 1;

/// A name in wire form, uncompressed.
fn enc(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// Labels followed by a compression pointer to `off`.
fn enc_ptr(prefix: &str, off: usize) -> Vec<u8> {
    let mut v = enc(prefix);
    v.pop();
    v.extend_from_slice(&ptr(off));
    v
}

fn ptr(off: usize) -> Vec<u8> {
    vec![0xc0 | (off >> 8) as u8, off as u8]
}

fn rr(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut v = owner.to_vec();
    v.extend_from_slice(&rtype.to_be_bytes());
    v.extend_from_slice(&class.to_be_bytes());
    v.extend_from_slice(&ttl.to_be_bytes());
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend_from_slice(rdata);
    v
}

fn a(owner: &[u8], ip: [u8; 4], ttl: u32) -> Vec<u8> {
    rr(owner, TYPE_A, IN, ttl, &ip)
}

fn aaaa(owner: &[u8], ip: u128, ttl: u32) -> Vec<u8> {
    rr(owner, TYPE_AAAA, IN, ttl, &ip.to_be_bytes())
}

fn cname(owner: &[u8], target: &[u8]) -> Vec<u8> {
    rr(owner, TYPE_CNAME, IN, 60, target)
}

/// A message with one question (`qname` in wire form, type A) and the given answer and
/// additional records.
fn msg_with(flags: u16, qname: &[u8], answers: &[Vec<u8>], additional: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x1234u16.to_be_bytes());
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&(additional.len() as u16).to_be_bytes());
    v.extend_from_slice(qname);
    v.extend_from_slice(&TYPE_A.to_be_bytes());
    v.extend_from_slice(&IN.to_be_bytes());
    for r in answers.iter().chain(additional) {
        v.extend_from_slice(r);
    }
    v
}

fn msg(qname: &str, answers: &[Vec<u8>]) -> Vec<u8> {
    msg_with(RESPONSE, &enc(qname), answers, &[])
}

fn parse(m: &[u8]) -> Result<Answer, Ignored> {
    let mut out = Answer::new();
    parse_response(m, &mut out).map(|()| out)
}

fn v4s(ans: &Answer) -> Vec<[u8; 4]> {
    ans.addrs().iter().filter(|a| !a.v6).map(|a| (a.addr as u32).to_be_bytes()).collect()
}

/// Pointer to the question name.
const Q: usize = 12;

#[test]
fn a_record() {
    let m = msg("Example.COM", &[a(&ptr(Q), [93, 184, 216, 34], 3600)]);
    let ans = parse(&m).unwrap();
    assert_eq!(ans.name(), "example.com");
    assert_eq!(
        ans.addrs(),
        &[DnsAddr { v6: false, addr: addr_from_v4([93, 184, 216, 34]), ttl: 3600 }]
    );
    assert_eq!(ans.cname_hops(), 0);
}

#[test]
fn aaaa_record_and_a_record_together() {
    let v6 = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
    let m = msg("dual.example", &[aaaa(&ptr(Q), v6, 30), a(&ptr(Q), [192, 0, 2, 7], 40)]);
    let ans = parse(&m).unwrap();
    assert_eq!(
        ans.addrs(),
        &[
            DnsAddr { v6: true, addr: v6, ttl: 30 },
            DnsAddr { v6: false, addr: addr_from_v4([192, 0, 2, 7]), ttl: 40 }
        ]
    );
}

#[test]
fn cname_chain_of_three_in_any_order() {
    // www.a.com → b.net → c.org → d.io, which has the addresses. Records are shuffled;
    // an A record of an intermediate name is not part of the answer.
    let answers = [
        a(&enc("d.io"), [10, 0, 0, 1], 5),
        cname(&enc("c.org"), &enc("d.io")),
        a(&enc("b.net"), [10, 9, 9, 9], 5),
        cname(&ptr(Q), &enc("b.net")),
        cname(&enc("B.NET"), &enc("c.org")),
        a(&enc("D.io"), [10, 0, 0, 2], 6),
    ];
    let ans = parse(&msg("www.a.com", &answers)).unwrap();
    assert_eq!(ans.name(), "www.a.com");
    assert_eq!(ans.cname_hops(), 3);
    assert_eq!(v4s(&ans), [[10, 0, 0, 1], [10, 0, 0, 2]]);
}

#[test]
fn compression_pointers_in_owners_and_targets() {
    // Question "www.example.com" at 12; "example.com" starts at 16.
    let q = enc("www.example.com");
    let head_len = 12 + q.len() + 4;
    let cn = cname(&ptr(Q), &enc_ptr("cdn", 16));
    // The CNAME target starts after the owner pointer (2) + fixed fields (10).
    let target_off = head_len + 2 + 10;
    let answers = [cn, a(&ptr(target_off), [198, 51, 100, 1], 20)];
    let m = msg_with(RESPONSE, &q, &answers, &[]);
    let ans = parse(&m).unwrap();
    assert_eq!(ans.name(), "www.example.com");
    assert_eq!(ans.cname_hops(), 1);
    assert_eq!(v4s(&ans), [[198, 51, 100, 1]]);
    // The same owner spelled out in full still matches.
    let answers =
        [cname(&ptr(Q), &enc_ptr("cdn", 16)), a(&enc("CDN.example.com"), [1, 1, 1, 1], 1)];
    assert_eq!(v4s(&parse(&msg_with(RESPONSE, &q, &answers, &[])).unwrap()), [[1, 1, 1, 1]]);
}

#[test]
fn pointer_loops_are_malformed() {
    // The question name points at itself.
    assert_eq!(parse(&msg_with(RESPONSE, &ptr(Q), &[], &[])).unwrap_err(), Ignored::Malformed);
    // An answer owner that ping-pongs between two pointers.
    let q = enc("x.example");
    let head_len = 12 + q.len() + 4;
    let mut owner = ptr(head_len + 2);
    owner.extend_from_slice(&ptr(head_len));
    let mut m = msg_with(RESPONSE, &q, &[], &[]);
    m[7] = 1; // ANCOUNT
    m.extend_from_slice(&owner);
    m.extend_from_slice(&a(&[], [1, 2, 3, 4], 1));
    assert_eq!(parse(&m).unwrap_err(), Ignored::Malformed);
    // A pointer into the header.
    assert_eq!(parse(&msg_with(RESPONSE, &ptr(4), &[], &[])).unwrap_err(), Ignored::Malformed);
    // A chain of pointers to pointers, kept in a TXT record's RDATA, that an owner name
    // enters at its far end: 10 jumps are fine, more than 63 are not.
    let chained = |n: usize| {
        let q = enc("x.example");
        let head_len = 12 + q.len() + 4;
        let rdata_off = head_len + 1 + 10; // root owner + fixed fields
        let mut chain = Vec::new();
        for i in 0..n {
            chain.extend_from_slice(&ptr(if i == 0 { Q } else { rdata_off + 2 * (i - 1) }));
        }
        let txt = rr(&[0], 16, IN, 1, &chain);
        let last = a(&ptr(rdata_off + 2 * (n - 1)), [1, 2, 3, 4], 1);
        msg_with(RESPONSE, &q, &[txt, last], &[])
    };
    assert_eq!(v4s(&parse(&chained(10)).unwrap()), [[1, 2, 3, 4]]);
    assert_eq!(parse(&chained(70)).unwrap_err(), Ignored::Malformed);
}

#[test]
fn truncated_messages_yield_nothing() {
    let answers = [cname(&ptr(Q), &enc("b.example")), a(&enc("b.example"), [10, 0, 0, 1], 5)];
    let m = msg("a.example", &answers);
    assert!(parse(&m).is_ok());
    for n in 0..m.len() {
        assert_eq!(parse(&m[..n]).unwrap_err(), Ignored::Malformed, "prefix of {n} bytes");
    }
}

#[test]
fn error_responses_and_queries_are_ignored() {
    let answers = [a(&ptr(Q), [10, 0, 0, 1], 5)];
    let nxdomain = msg_with(0x8183, &enc("nope.example"), &answers, &[]);
    assert_eq!(parse(&nxdomain).unwrap_err(), Ignored::Rcode);
    let servfail = msg_with(0x8182, &enc("nope.example"), &answers, &[]);
    assert_eq!(parse(&servfail).unwrap_err(), Ignored::Rcode);
    let query = msg_with(0x0100, &enc("q.example"), &answers, &[]);
    assert_eq!(parse(&query).unwrap_err(), Ignored::Query);
    let update = msg_with(0x8000 | (5 << 11), &enc("u.example"), &answers, &[]);
    assert_eq!(parse(&update).unwrap_err(), Ignored::Opcode);
    let mut no_q = msg("x.example", &[]);
    no_q[5] = 0;
    assert_eq!(parse(&no_q).unwrap_err(), Ignored::NoQuestion);
}

#[test]
fn only_the_answer_section_counts() {
    // Glue in the additional section names other hosts' addresses.
    let additional = [a(&enc("ns1.example"), [192, 0, 2, 53], 5), a(&ptr(Q), [6, 6, 6, 6], 5)];
    let m = msg_with(RESPONSE, &enc("www.example"), &[a(&ptr(Q), [192, 0, 2, 80], 5)], &additional);
    assert_eq!(v4s(&parse(&m).unwrap()), [[192, 0, 2, 80]]);
}

#[test]
fn other_classes_and_types_are_skipped() {
    let answers = [
        rr(&ptr(Q), TYPE_A, 3, 5, &[1, 1, 1, 1]),  // class CHAOS
        rr(&ptr(Q), 16, IN, 5, b"\x05hello"),      // TXT
        rr(&ptr(Q), TYPE_A, IN, 5, &[2, 2, 2, 2]), // the one
    ];
    assert_eq!(v4s(&parse(&msg("t.example", &answers)).unwrap()), [[2, 2, 2, 2]]);
    // A NODATA answer (nothing on the chain) is a success with no addresses.
    let ans = parse(&msg("t.example", &[])).unwrap();
    assert!(ans.addrs().is_empty());
    assert_eq!(ans.name(), "t.example");
}

#[test]
fn impossible_rdata_lengths_are_malformed() {
    let short_a = rr(&ptr(Q), TYPE_A, IN, 5, &[1, 2, 3]);
    assert_eq!(parse(&msg("x.example", &[short_a])).unwrap_err(), Ignored::Malformed);
    let long_aaaa = rr(&ptr(Q), TYPE_AAAA, IN, 5, &[0; 17]);
    assert_eq!(parse(&msg("x.example", &[long_aaaa])).unwrap_err(), Ignored::Malformed);
    // A CNAME whose target does not fill its RDATA exactly.
    let mut target = enc("y.example");
    target.push(0);
    let bad_cname = cname(&ptr(Q), &target);
    assert_eq!(parse(&msg("x.example", &[bad_cname])).unwrap_err(), Ignored::Malformed);
    // A reserved label type.
    assert_eq!(parse(&msg_with(RESPONSE, &[0x80, 0], &[], &[])).unwrap_err(), Ignored::Malformed);
}

#[test]
fn cname_loops_and_long_chains_are_rejected() {
    let looped = [cname(&ptr(Q), &enc("b.example")), cname(&enc("b.example"), &enc("a.example"))];
    assert_eq!(parse(&msg("a.example", &looped)).unwrap_err(), Ignored::CnameChain);
    let chain = |n: usize| {
        let mut answers = vec![cname(&ptr(Q), &enc("h1.example"))];
        for i in 1..n {
            answers
                .push(cname(&enc(&format!("h{i}.example")), &enc(&format!("h{}.example", i + 1))));
        }
        answers.push(a(&enc(&format!("h{n}.example")), [10, 0, 0, n as u8], 1));
        msg("start.example", &answers)
    };
    let ok = parse(&chain(MAX_CNAME_HOPS)).unwrap();
    assert_eq!((ok.cname_hops(), v4s(&ok)), (MAX_CNAME_HOPS, vec![[10, 0, 0, 16]]));
    assert_eq!(parse(&chain(MAX_CNAME_HOPS + 1)).unwrap_err(), Ignored::CnameChain);
}

#[test]
fn name_length_limits() {
    // Four 63-byte labels would make 257 wire bytes; 63+63+63+61 makes exactly 255.
    let label = |c: char, n: usize| c.to_string().repeat(n);
    let max = [label('a', 63), label('b', 63), label('c', 63), label('d', 61)].join(".");
    assert_eq!(max.len(), MAX_NAME_LEN);
    let ans = parse(&msg(&max, &[a(&ptr(Q), [10, 1, 1, 1], 1)])).unwrap();
    assert_eq!(ans.name(), max);
    let too_long = [label('a', 63), label('b', 63), label('c', 63), label('d', 62)].join(".");
    assert_eq!(parse(&msg(&too_long, &[])).unwrap_err(), Ignored::Malformed);
}

#[test]
fn names_that_are_not_host_names_are_refused() {
    for bad in
        [&b"\x03a b\x00"[..], b"\x03a\x01b\x00", b"\x03a.b\x00", b"\x02\xc3\xa9\x00", b"\x00"]
    {
        assert_eq!(
            parse(&msg_with(RESPONSE, bad, &[], &[])).unwrap_err(),
            Ignored::UnsupportedName,
            "{bad:?}"
        );
    }
    let ok = parse(&msg_with(RESPONSE, &enc("_sip._tcp.*.example"), &[], &[])).unwrap();
    assert_eq!(ok.name(), "_sip._tcp.*.example");
}

#[test]
fn ttl_with_the_top_bit_set_reads_as_zero() {
    let ans = parse(&msg("t.example", &[a(&ptr(Q), [10, 0, 0, 1], 0x8000_0001)])).unwrap();
    assert_eq!(ans.addrs()[0].ttl, 0);
}

#[test]
fn addresses_beyond_the_cap_are_counted() {
    let answers: Vec<_> = (0..40u8).map(|i| a(&ptr(Q), [10, 0, 0, i], 1)).collect();
    let ans = parse(&msg("many.example", &answers)).unwrap();
    assert_eq!(ans.addrs().len(), MAX_ADDRS);
    assert_eq!(ans.addrs_dropped(), 40 - MAX_ADDRS);
    assert_eq!(v4s(&ans)[MAX_ADDRS - 1], [10, 0, 0, MAX_ADDRS as u8 - 1]);
}

#[test]
fn reusing_an_answer_clears_it() {
    let mut out = Answer::new();
    parse_response(&msg("one.example", &[a(&ptr(Q), [10, 0, 0, 1], 1)]), &mut out).unwrap();
    assert_eq!(parse_response(&msg("two.example", &[]), &mut out), Ok(()));
    assert_eq!(out.name(), "two.example");
    assert!(out.addrs().is_empty());
    assert!(parse_response(b"\x00", &mut out).is_err());
    assert_eq!(out.name(), "");
}

#[test]
fn tcp_framing() {
    let m = msg("t.example", &[a(&ptr(Q), [10, 0, 0, 1], 1)]);
    let mut stream = (m.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(&m);
    stream.extend_from_slice(&[0, 5, 1]); // the start of a next message
    let (first, used) = tcp_message(&stream).unwrap();
    assert_eq!((first, used), (&m[..], m.len() + 2));
    assert_eq!(tcp_message(&stream[used..]), None);
    assert_eq!(tcp_message(&stream[..used - 1]), None);
    assert_eq!(tcp_message(&[0]), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut out = Answer::new();
        if parse_response(&bytes, &mut out).is_ok() {
            prop_assert!(!out.name().is_empty());
            prop_assert!(out.addrs().len() <= MAX_ADDRS);
        }
    }

    #[test]
    fn arbitrary_answers_after_a_valid_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        ancount in 0u16..8,
    ) {
        let mut m = msg("p.example", &[]);
        m[6..8].copy_from_slice(&ancount.to_be_bytes());
        m.extend_from_slice(&tail);
        let mut out = Answer::new();
        let _ = parse_response(&m, &mut out);
    }

    #[test]
    fn corrupting_a_valid_response_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let q = enc("www.example.com");
        let answers = [
            cname(&ptr(Q), &enc_ptr("cdn", 16)),
            a(&enc_ptr("cdn", 16), [198, 51, 100, 1], 20),
            aaaa(&enc_ptr("cdn", 16), 1, 20),
        ];
        let mut m = msg_with(RESPONSE, &q, &answers, &[]);
        for (i, b) in flips {
            let i = i.index(m.len());
            m[i] = b;
        }
        let mut out = Answer::new();
        let _ = parse_response(&m, &mut out);
    }
}
