use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_queue::{QueueId, QueueIdGenerator};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn format_matches_sendmail_layout() {
    // 2024-01-02 10:00:00 UTC = 1704189600.
    let mut g = QueueIdGenerator::new(1230);
    let id = g.next(at(1_704_189_600));
    // year 124 % 60 = 4, month 0, day 2, hour 10 = 'A', minute 0, second 0,
    // seq 00, pid 001230.
    assert_eq!(id.as_str(), "402A0000001230");
    assert_eq!(id.to_string(), "402A0000001230");
    let id2 = g.next(at(1_704_189_600));
    assert_eq!(id2.as_str(), "402A0001001230");
}

#[test]
fn last_second_of_a_year_and_large_pid() {
    // 2023-12-31 23:59:59 UTC = 1704067199: year 123 % 60 = 3, month 11 = B,
    // day 31 = V, hour 23 = N, minute 59 = x, second 59 = x.
    let mut g = QueueIdGenerator::new(4_123_456_789);
    assert_eq!(g.next(at(1_704_067_199)).as_str(), "3BVNxx00456789");
}

#[test]
fn ten_thousand_ids_in_one_second_are_unique_and_valid() {
    let mut g = QueueIdGenerator::new(42);
    let now = at(1_704_189_600);
    let ids: Vec<QueueId> = (0..10_000).map(|_| g.next(now)).collect();
    let set: HashSet<_> = ids.iter().collect();
    assert_eq!(set.len(), ids.len());
    for id in &ids {
        assert_eq!(id.as_str().parse::<QueueId>().as_ref(), Ok(id));
    }
    // 3600 per second: the 3601st id moved on to the next second.
    assert_eq!(&ids[3600].as_str()[..8], "402A0100");
    assert_eq!(&ids[3599].as_str()[..8], "402A00xx");
}

#[test]
fn wrap_does_not_collide_when_clock_catches_up() {
    let mut g = QueueIdGenerator::new(7);
    let mut seen = HashSet::new();
    for _ in 0..5000 {
        assert!(seen.insert(g.next(at(1000))));
    }
    for t in [1001, 1001, 1000, 1002] {
        for _ in 0..4000 {
            assert!(seen.insert(g.next(at(t))));
        }
    }
}

#[test]
fn ids_sort_by_time() {
    let mut g = QueueIdGenerator::new(99);
    let times = [
        1_704_067_199u64, // 2023-12-31 23:59:59
        1_704_067_200,    // 2024-01-01 00:00:00
        1_704_189_600,
        1_706_000_000,
        1_709_251_200, // 2024-03-01
        1_735_689_599, // 2024-12-31 23:59:59
    ];
    let ids: Vec<QueueId> = times.iter().map(|t| g.next(at(*t))).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[test]
fn parse_rejects_bad_ids() {
    for bad in [
        "../x",
        "",
        "402A0000001230x",
        "402A000000123",
        "402A00000012/0",
        "402A0000001_30",
        "402A00000012\u{e9}",
        "../../etc/pass",
        "402A0000\n01230",
    ] {
        assert!(bad.parse::<QueueId>().is_err(), "{bad:?} accepted");
    }
    assert!("402A0000001230".parse::<QueueId>().is_ok());
    assert!("zzzzzzzzzzzzzz".parse::<QueueId>().is_ok());
}
