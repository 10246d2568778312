//! Benchmarks of the fence core, SoftTimeline and wait sources (numbers in BENCHMARKS.md).
//!
//! Run: `cargo bench -p lockstep-sync --all-features --bench fence`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use lockstep_sync::event_loop::{FenceWait, PointWait};
use lockstep_sync::{
    Fence, FenceContext, Point, PointEvent, SeqnoOrder, SoftTimeline, Timeline, TimelinePoint,
    WaitMode,
};

fn fence_benches(c: &mut Criterion) {
    let ctx = FenceContext::new(SeqnoOrder::Linear64);

    let pending = ctx.next_fence();
    c.bench_function("fence/is_signalled", |b| {
        b.iter(|| std::hint::black_box(&pending).is_signalled())
    });

    let mut group = c.benchmark_group("fence/signal");
    for callbacks in [0usize, 1, 16] {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{callbacks}_callbacks")),
            &callbacks,
            |b, &n| {
                b.iter_batched(
                    || {
                        let f = ctx.next_fence();
                        let regs: Vec<_> = (0..n)
                            .map(|_| {
                                f.on_signal(|c| {
                                    std::hint::black_box(c);
                                })
                            })
                            .collect();
                        (f, regs)
                    },
                    |(f, regs)| {
                        f.signal();
                        (f, regs)
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("soft_timeline/signal_wakes");
    for waiters in [1usize, 100, 1000] {
        group.bench_with_input(BenchmarkId::from_parameter(waiters), &waiters, |b, &n| {
            b.iter_batched(
                || {
                    let t = SoftTimeline::new();
                    let waits: Vec<Fence> = (0..n)
                        .filter_map(|_| t.wait(Point(1), WaitMode::SubmittedThenSignalled).ok())
                        .collect();
                    (t, waits)
                },
                |(t, waits)| {
                    t.signal(Point(1));
                    (t, waits)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut event_loop: calloop::EventLoop<'_, ()> = match calloop::EventLoop::try_new() {
        Ok(l) => l,
        Err(_) => return,
    };
    let handle = event_loop.handle();
    c.bench_function("wait_source/fence_register_cancel", |b| {
        b.iter_batched(
            || ctx.next_fence(),
            |f| {
                if let Ok(wait) = FenceWait::new(f.clone()) {
                    if let Ok(token) = handle.insert_source(wait, |_, _, _| {}) {
                        handle.remove(token);
                    }
                }
                f
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("wait_source/soft_point_register_cancel", |b| {
        let t = SoftTimeline::new();
        let point = TimelinePoint::new(Timeline::Soft(t), Point(1));
        b.iter(|| {
            if let Ok(wait) = PointWait::new(&point, PointEvent::Signalled) {
                if let Ok(token) = handle.insert_source(wait, |_, _, _| {}) {
                    handle.remove(token);
                }
            }
        })
    });
    let _ = event_loop.dispatch(Duration::ZERO, &mut ());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fence_benches
}
criterion_main!(benches);
