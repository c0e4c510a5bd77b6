use super::*;
use crate::packet::addr_from_v4;
use proptest::prelude::*;

fn t(s: u64) -> Time {
    Time::from_secs(s)
}

fn v4(last: u8) -> Addr {
    addr_from_v4([10, 0, 0, last])
}

fn names(m: &FqdnMap, v6: bool, addr: Addr, now: Time) -> Vec<String> {
    m.names(v6, addr, now).map(str::to_owned).collect()
}

/// Check the internal invariants: index, slabs, list and reference counts agree.
fn check(m: &FqdnMap) {
    assert!(m.len() <= m.cfg.max_addrs);
    assert!(m.name_count() <= m.cfg.max_names);
    assert_eq!(m.addr_index.len(), m.live);
    let mut seen = 0;
    let mut i = m.head;
    let mut prev = NIL;
    let mut refs = vec![0u32; m.names.len()];
    while i != NIL {
        let e = &m.entries[i as usize];
        assert_eq!(e.prev, prev);
        assert!(usize::from(e.len) <= m.cfg.names_per_addr);
        assert!(e.len > 0, "an entry without names");
        for r in e.names() {
            refs[r.id as usize] += 1;
            assert!(r.expires <= e.expires);
        }
        assert_eq!(m.find_addr(e.v6, e.addr), Some(i));
        seen += 1;
        prev = i;
        i = e.next;
    }
    assert_eq!(prev, m.tail);
    assert_eq!(seen, m.live);
    let live_names = refs.iter().filter(|&&r| r > 0).count();
    assert_eq!(live_names, m.name_count());
    for (id, slot) in m.names.iter().enumerate() {
        assert_eq!(slot.refs, refs[id], "name {:?}", slot.text);
    }
}

#[test]
fn record_sizes() {
    assert!(core::mem::size_of::<AddrEntry>() <= 192, "{}", core::mem::size_of::<AddrEntry>());
    assert!(core::mem::size_of::<NameSlot>() <= 272, "{}", core::mem::size_of::<NameSlot>());
}

#[test]
fn learn_and_look_up() {
    let mut m = FqdnMap::new(16, 1800);
    assert!(m.learn("API.Example.com.", false, v4(1), t(100)));
    assert!(m.learn("www.example.com", false, v4(1), t(101)));
    let v6 = 0x2001_0db8_u128 << 96 | 1;
    assert!(m.learn("api.example.com", true, v6, t(101)));
    assert_eq!(names(&m, false, v4(1), t(102)), ["api.example.com", "www.example.com"]);
    assert_eq!(names(&m, true, v6, t(102)), ["api.example.com"]);
    // The family is part of the key.
    assert!(names(&m, true, v4(1), t(102)).is_empty());
    assert!(names(&m, false, v4(2), t(102)).is_empty());
    assert_eq!((m.len(), m.name_count()), (2, 2));
    let mut out = [""; 1];
    assert_eq!(m.names_into(false, v4(1), t(102), &mut out), 1);
    assert_eq!(out, ["api.example.com"]);
    assert!(!m.learn("", false, v4(3), t(1)));
    assert!(!m.learn(&"a".repeat(254), false, v4(3), t(1)));
    assert_eq!(m.counters().learned, 3);
    check(&m);
}

#[test]
fn wildcard_and_exact_rules_match_learned_names() {
    let mut m = FqdnMap::new(16, 1800);
    m.learn("b.a.example.com", false, v4(1), t(0));
    assert!(m.matches(false, v4(1), "*.example.com", t(1)));
    assert!(m.matches(false, v4(1), "*.a.example.com", t(1)));
    assert!(m.matches(false, v4(1), "b.a.example.com", t(1)));
    assert!(!m.matches(false, v4(1), "a.example.com", t(1)));
    assert!(!m.matches(false, v4(1), "*.b.a.example.com", t(1)));
    assert!(!m.matches(false, v4(2), "*.example.com", t(1)));
    assert!(!m.matches(false, v4(1), "*.example.com", t(1801)), "expired");
}

#[test]
fn sightings_refresh_and_names_expire() {
    let mut m = FqdnMap::new(16, 100);
    m.learn("old.example", false, v4(1), t(0));
    m.learn("other.example", false, v4(2), t(10));
    m.learn("new.example", false, v4(1), t(50));
    assert_eq!(names(&m, false, v4(1), t(99)), ["old.example", "new.example"]);
    // At 100 the first pair has expired; the address lives on with the other.
    assert_eq!(names(&m, false, v4(1), t(100)), ["new.example"]);
    assert_eq!(m.expire(t(100)), 0);
    assert_eq!(m.expire(t(110)), 1, "10.0.0.2 expired");
    assert_eq!(m.len(), 1);
    // A new sighting refreshes.
    m.learn("new.example", false, v4(1), t(140));
    assert_eq!(m.expire(t(200)), 0);
    assert_eq!(names(&m, false, v4(1), t(239)), ["new.example"]);
    assert_eq!(m.expire(t(240)), 1);
    assert!(m.is_empty());
    assert_eq!(m.name_count(), 0, "names are freed with their last address");
    assert_eq!(m.counters().expired, 2);
    check(&m);
}

#[test]
fn more_than_eight_names_per_address() {
    let mut m = FqdnMap::new(16, 1000);
    for i in 0..8 {
        m.learn(&format!("n{i}.example"), false, v4(1), t(i));
    }
    assert_eq!(names(&m, false, v4(1), t(10)).len(), 8);
    // n3 is refreshed, so n0 is the pair closest to expiry, then n1.
    m.learn("n3.example", false, v4(1), t(20));
    m.learn("n8.example", false, v4(1), t(21));
    m.learn("n9.example", false, v4(1), t(22));
    let got = names(&m, false, v4(1), t(30));
    assert_eq!(got.len(), 8);
    assert!(!got.contains(&"n0.example".to_owned()) && !got.contains(&"n1.example".to_owned()));
    assert!(got.contains(&"n3.example".to_owned()) && got.contains(&"n9.example".to_owned()));
    assert_eq!(m.counters().name_evictions, 2);
    assert_eq!(m.name_count(), 8);
    check(&m);
}

#[test]
fn names_per_address_is_configurable() {
    let mut m = FqdnMap::with_config(FqdnConfig { names_per_addr: 2, ..FqdnConfig::default() });
    for i in 0..5 {
        m.learn(&format!("n{i}.example"), false, v4(1), t(i));
    }
    assert_eq!(names(&m, false, v4(1), t(10)), ["n4.example", "n3.example"]);
    check(&m);
}

#[test]
fn eviction_when_full_takes_the_least_recently_seen() {
    let mut m = FqdnMap::new(3, 1000);
    m.learn("a.example", false, v4(1), t(1));
    m.learn("b.example", false, v4(2), t(2));
    m.learn("c.example", false, v4(3), t(3));
    m.learn("a.example", false, v4(1), t(4)); // 10.0.0.1 is now the most recent
    m.learn("d.example", false, v4(4), t(5));
    assert_eq!(m.len(), 3);
    assert!(names(&m, false, v4(2), t(6)).is_empty(), "10.0.0.2 was evicted");
    assert_eq!(names(&m, false, v4(1), t(6)), ["a.example"]);
    assert_eq!(m.counters().addr_evictions, 1);
    // An expired head is reused and counted as expired, not evicted.
    m.learn("e.example", false, v4(5), t(2000));
    assert_eq!((m.counters().addr_evictions, m.counters().expired), (1, 1));
    check(&m);
}

#[test]
fn full_name_table_evicts_addresses_to_free_a_name() {
    let cfg = FqdnConfig { max_addrs: 100, max_names: 2, ..FqdnConfig::default() };
    let mut m = FqdnMap::with_config(cfg);
    m.learn("a.example", false, v4(1), t(1));
    m.learn("a.example", false, v4(2), t(2));
    m.learn("b.example", false, v4(3), t(3));
    // A third name needs a slot: 10.0.0.1 and 10.0.0.2 go, freeing "a.example".
    m.learn("c.example", false, v4(4), t(4));
    assert_eq!(m.name_count(), 2);
    assert_eq!(m.len(), 2);
    assert_eq!(names(&m, false, v4(3), t(5)), ["b.example"]);
    assert_eq!(names(&m, false, v4(4), t(5)), ["c.example"]);
    assert_eq!(m.counters().addr_evictions, 2);
    check(&m);
}

#[test]
fn a_name_held_only_by_the_evicted_entry_survives_relearning() {
    // The name being learned is referred to only by the entry evicted to make room.
    let mut m = FqdnMap::new(1, 1000);
    m.learn("a.example", false, v4(1), t(1));
    m.learn("a.example", false, v4(2), t(2));
    assert_eq!(names(&m, false, v4(2), t(3)), ["a.example"]);
    assert_eq!(m.name_count(), 1);
    check(&m);
}

#[test]
fn learn_from_dns_links_the_question_name() {
    // www.example.com CNAME cdn.example.net, A 192.0.2.1 and AAAA 2001:db8::1.
    let mut msg = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
    msg.extend_from_slice(b"\x03WWW\x07example\x03com\x00\x00\x01\x00\x01");
    msg.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x11");
    let target = msg.len();
    msg.extend_from_slice(b"\x03cdn\x07example\x03net\x00");
    msg.extend_from_slice(&[0xc0, target as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    msg.extend_from_slice(&[0xc0, target as u8, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
    msg.extend_from_slice(&(0x2001_0db8_u128 << 96 | 1).to_be_bytes());
    let mut m = FqdnMap::new(16, 1800);
    assert_eq!(m.learn_from_dns(&msg, t(10)), 2);
    assert_eq!(names(&m, false, addr_from_v4([192, 0, 2, 1]), t(11)), ["www.example.com"]);
    assert_eq!(names(&m, true, 0x2001_0db8_u128 << 96 | 1, t(11)), ["www.example.com"]);
    assert_eq!(m.counters().dns_responses, 1);
    // The query itself, an error and garbage teach nothing.
    let mut query = msg.clone();
    query[2] = 0x01;
    let mut nx = msg.clone();
    nx[3] = 0x83;
    assert_eq!(m.learn_from_dns(&query, t(12)) + m.learn_from_dns(&nx, t(12)), 0);
    assert_eq!(m.learn_from_dns(&msg[..msg.len() - 1], t(12)), 0);
    assert_eq!((m.counters().dns_ignored, m.counters().dns_malformed), (2, 1));
    check(&m);
}

#[derive(Clone, Debug)]
enum Op {
    Learn { name: u8, addr: u8, dt: u8 },
    Expire { dt: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..24, 0u8..40, 0u8..30).prop_map(|(name, addr, dt)| Op::Learn { name, addr, dt }),
        1 => (0u8..200).prop_map(|dt| Op::Expire { dt }),
    ]
}

proptest! {
    /// Whatever is learned, the bounds hold, the structures agree, a just-learned pair
    /// is visible, and an expired pair never is.
    #[test]
    fn bounds_and_invariants_hold(ops in proptest::collection::vec(op(), 1..300),
                                  max_addrs in 1usize..12, max_names in 1usize..10,
                                  per in 1usize..=8) {
        let cfg = FqdnConfig { max_addrs, max_names, names_per_addr: per, retention_secs: 100 };
        let mut m = FqdnMap::with_config(cfg);
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Learn { name, addr, dt } => {
                    now += u64::from(dt);
                    let name = format!("n{name}.example");
                    prop_assert!(m.learn(&name, addr % 2 == 0, Addr::from(addr), t(now)));
                    let got = names(&m, addr % 2 == 0, Addr::from(addr), t(now));
                    prop_assert!(got.contains(&name));
                }
                Op::Expire { dt } => {
                    now += u64::from(dt);
                    m.expire(t(now));
                    prop_assert!(m.head == NIL || m.entries[m.head as usize].expires > t(now));
                }
            }
            check(&m);
            for a in 0..40u8 {
                let got = m.names(a % 2 == 0, Addr::from(a), t(now + 100)).count();
                prop_assert_eq!(got, 0, "nothing outlives the retention");
            }
        }
    }
}
