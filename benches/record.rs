//! Cost of recording a sample on a worker (Buffer::add + shipping batches to a draining
//! aggregator-side thread), and of interning a cached tag set. Prints ns per operation.
//!   cargo bench --bench record

use engine::metrics::{Buffer, Builtins, Registry, TagInterner};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let registry = Registry::default();
    let b = Builtins::register(&registry);
    let interner = Arc::new(TagInterner::default());
    let (tx, rx) = crossbeam_channel::unbounded();
    let drain =
        std::thread::spawn(move || rx.iter().map(|batch: Vec<_>| batch.len()).sum::<usize>());
    let mut buf = Buffer::new(tx, interner, false);
    let tags = buf.tags(vec![
        ("scenario".into(), "default".into()),
        ("type".into(), "heartbeat".into()),
    ]);
    let n = 20_000_000u64;
    let t = Instant::now();
    for i in 0..n {
        buf.add(b.http_req_duration, tags, (i % 1000) as f64);
    }
    let add_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let m = 2_000_000u64;
    let t = Instant::now();
    for _ in 0..m {
        std::hint::black_box(buf.tags(vec![
            ("scenario".into(), "default".into()),
            ("type".into(), "heartbeat".into()),
        ]));
    }
    let tags_ns = t.elapsed().as_nanos() as f64 / m as f64;
    drop(buf);
    let received = drain.join().unwrap();
    assert_eq!(
        received as u64, n,
        "every sample reached the aggregator side"
    );
    println!("record a sample (Buffer::add, batches shipped): {add_ns:.1} ns");
    println!(
        "look up a 2-pair tag set built from strings (custom metric with tags): {tags_ns:.1} ns"
    );
}
