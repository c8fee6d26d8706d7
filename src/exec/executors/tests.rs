//! Executors in-process, without Lua and without waiting: a fake VU that logs when each
//! iteration starts, tokio's paused clock (time jumps to the next timer, so every start time
//! is exact), and the real executor code.

use super::*;
use crate::exec::{Input, Next, Outcome, RunState, ScenarioRun, Segment, Stop, Vu, VuFactory};
use crate::metrics::VuGauges;
use std::cell::Cell;
use std::sync::atomic::Ordering;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every iteration start: (VU id, time since the scenario started).
#[derive(Default)]
struct Log {
    starts: RefCell<Vec<(u64, Duration)>>,
    /// VUs created so far, and how many existed when each VU's first iteration started.
    created: Cell<u64>,
    created_at_first_start: RefCell<Vec<(u64, u64)>>,
}

/// A VU whose iteration takes a fixed time: odd VUs wait for it as for a request (a task
/// while they wait), even ones sleep it (parked in the sleep queue, no task).
struct FakeVu {
    id: u64,
    iteration: Duration,
    log: Rc<Log>,
    t0: Instant,
    sleeps: Rc<crate::exec::SleepQueue>,
}

impl Vu for FakeVu {
    type Reply = ();

    fn advance(&mut self, input: Input<'_, ()>) -> Next<()> {
        if !matches!(input, Input::Start(_)) {
            return Next::Done(Outcome::Completed);
        }
        let at = Instant::now() - self.t0;
        let first = !self.log.starts.borrow().iter().any(|s| s.0 == self.id);
        if first {
            let created = self.log.created.get();
            self.log
                .created_at_first_start
                .borrow_mut()
                .push((self.id, created));
        }
        self.log.starts.borrow_mut().push((self.id, at));
        if self.id.is_multiple_of(2) {
            Next::Sleep(Instant::now() + self.iteration)
        } else {
            Next::Wait(Box::pin(tokio::time::sleep(self.iteration)))
        }
    }

    fn sleeps(&self) -> &Rc<crate::exec::SleepQueue> {
        &self.sleeps
    }
}

struct FakeFactory {
    iteration: Duration,
    log: Rc<Log>,
    t0: Instant,
    dropped: Cell<u64>,
    sleeps: Rc<crate::exec::SleepQueue>,
}

impl VuFactory for FakeFactory {
    type V = FakeVu;

    fn create(&self, id_in_test: u64, _sc: &ScenarioRun) -> Result<FakeVu, String> {
        self.log.created.set(self.log.created.get() + 1);
        Ok(FakeVu {
            id: id_in_test,
            iteration: self.iteration,
            log: self.log.clone(),
            t0: self.t0,
            sleeps: self.sleeps.clone(),
        })
    }

    fn dropped(&self, _sc: &ScenarioRun, count: u64) {
        self.dropped.set(self.dropped.get() + count);
    }
}

/// What a scenario did on one worker.
#[derive(Debug)]
struct Outcomes {
    /// (VU, start in ms), sorted by time then VU.
    starts: Vec<(u64, u64)>,
    completed: u64,
    interrupted: u64,
    dropped: u64,
    /// When the executor returned, from its start.
    ended: Duration,
    /// (VU, VUs created when its first iteration started), in start order.
    created_at_first_start: Vec<(u64, u64)>,
}

struct Case {
    executor: ExecutorConfig,
    iteration: Duration,
    graceful_stop: Duration,
    segment: Segment,
    /// A first (graceful) stop signal at this time.
    signal_at: Option<Duration>,
}

impl Case {
    fn new(executor: ExecutorConfig, iteration: Duration) -> Case {
        Case {
            executor,
            iteration,
            graceful_stop: DEFAULT_GRACE,
            segment: Segment::WHOLE,
            signal_at: None,
        }
    }

    /// Runs the scenario under a paused clock on a LocalSet, as a worker would.
    fn run(self) -> Outcomes {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let run = RunState::new(Arc::new(VuGauges::default()));
            let t0 = Instant::now();
            let factory = FakeFactory {
                iteration: self.iteration,
                log: Rc::default(),
                t0,
                dropped: Cell::new(0),
                sleeps: Rc::default(),
            };
            let sc = Rc::new(ScenarioRun {
                index: 0,
                name: "s".into(),
                executor: self.executor.name(),
                exec: "default".into(),
                tags: Vec::new(),
                env: Vec::new(),
                iterations_in_test: Arc::default(),
                warned_short_of_vus: Arc::default(),
                vu_offset: 0,
                started: Cell::new(None),
            });
            if let Some(at) = self.signal_at {
                let run = run.clone();
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(at).await;
                    run.request_stop(Stop::Graceful);
                });
            }
            let env = ExecEnv {
                factory: &factory,
                segment: self.segment,
                run: run.clone(),
                graceful_stop: self.graceful_stop,
            };
            self.executor.run(sc, env).await.expect("executor runs");
            let ended = Instant::now() - t0;
            let mut starts: Vec<(u64, u64)> = factory
                .log
                .starts
                .borrow()
                .iter()
                .map(|&(vu, at)| (vu, at.as_millis() as u64))
                .collect();
            starts.sort_by_key(|&(vu, at)| (at, vu));
            assert_eq!(
                run.gauges.active.load(Ordering::Relaxed),
                0,
                "VUs left active"
            );
            Outcomes {
                starts,
                completed: run.complete.load(Ordering::Relaxed),
                interrupted: run.interrupted.load(Ordering::Relaxed),
                dropped: factory.dropped.get(),
                ended,
                created_at_first_start: factory.log.created_at_first_start.take(),
            }
        })
    }
}

/// Every VU in `vus` starting at each of `times` (ms).
fn grid(vus: &[u64], times: &[u64]) -> Vec<(u64, u64)> {
    times
        .iter()
        .flat_map(|&t| vus.iter().map(move |&v| (v, t)))
        .collect()
}

#[test]
fn constant_vus_loop_back_to_back_until_the_duration() {
    let cfg = ExecutorConfig::ConstantVus(ConstantVus {
        vus: 2,
        duration: ms(1000),
    });
    let out = Case::new(cfg, ms(300)).run();
    assert_eq!(out.starts, grid(&[1, 2], &[0, 300, 600, 900]));
    assert_eq!((out.completed, out.interrupted, out.dropped), (8, 0, 0));
    // The iterations that started at 900 ms end at 1200 ms, within gracefulStop.
    assert_eq!(out.ended, ms(1200));
}

/// 100 VUs started at once: each runs up to its first wait as it is created, not after the
/// last one is (see `pace_start`), for every executor that starts a batch.
#[test]
fn vus_started_together_begin_iterating_while_the_rest_are_created() {
    let cases = [
        ExecutorConfig::ConstantVus(ConstantVus {
            vus: 100,
            duration: ms(1000),
        }),
        ExecutorConfig::PerVuIterations(PerVuIterations {
            vus: 100,
            iterations: 1,
            max_duration: ms(1000),
        }),
        ExecutorConfig::SharedIterations(SharedIterations {
            vus: 100,
            iterations: 100,
            max_duration: ms(1000),
        }),
        ExecutorConfig::RampingVus(RampingVus {
            start_vus: 100,
            stages: vec![Stage {
                duration: ms(1000),
                target: 100,
            }],
            graceful_ramp_down: DEFAULT_GRACE,
        }),
    ];
    for cfg in cases {
        let name = cfg.name();
        let out = Case::new(cfg, ms(300)).run();
        let firsts = &out.created_at_first_start;
        assert_eq!(firsts.len(), 100, "{name}: every VU iterated");
        let expected: Vec<(u64, u64)> = (1..=100).map(|vu| (vu, vu)).collect();
        assert_eq!(firsts, &expected, "{name}: VU n starts when n VUs exist");
    }
}

#[test]
fn graceful_stop_interrupts_what_outlives_it() {
    // VU 1 waits in a task, VU 2 is parked in the sleep queue: both are interrupted.
    let cfg = ExecutorConfig::ConstantVus(ConstantVus {
        vus: 2,
        duration: ms(1000),
    });
    let mut case = Case::new(cfg, ms(700));
    case.graceful_stop = ms(100);
    let out = case.run();
    assert_eq!(out.starts, grid(&[1, 2], &[0, 700]));
    assert_eq!((out.completed, out.interrupted), (2, 2));
    assert_eq!(out.ended, ms(1100));
}

#[test]
fn shared_iterations_are_claimed_by_whichever_vu_is_free() {
    let cfg = ExecutorConfig::SharedIterations(SharedIterations {
        vus: 3,
        iterations: 7,
        max_duration: ms(10_000),
    });
    let out = Case::new(cfg, ms(100)).run();
    let mut expected = grid(&[1, 2, 3], &[0, 100]);
    expected.push((1, 200));
    assert_eq!(out.starts, expected);
    assert_eq!((out.completed, out.dropped), (7, 0));
    assert_eq!(out.ended, ms(300));
}

#[test]
fn shared_iterations_left_at_max_duration_are_dropped() {
    let cfg = ExecutorConfig::SharedIterations(SharedIterations {
        vus: 2,
        iterations: 10,
        max_duration: ms(250),
    });
    let mut case = Case::new(cfg, ms(100));
    case.graceful_stop = ms(0);
    let out = case.run();
    assert_eq!(out.starts, grid(&[1, 2], &[0, 100, 200]));
    // The two started at 200 ms are cut at 250 ms; four never started.
    assert_eq!((out.completed, out.interrupted, out.dropped), (4, 2, 4));
}

#[test]
fn per_vu_iterations_run_each_vus_own_count() {
    let cfg = ExecutorConfig::PerVuIterations(PerVuIterations {
        vus: 2,
        iterations: 3,
        max_duration: ms(10_000),
    });
    let out = Case::new(cfg, ms(100)).run();
    assert_eq!(out.starts, grid(&[1, 2], &[0, 100, 200]));
    assert_eq!((out.completed, out.interrupted, out.dropped), (6, 0, 0));
}

#[test]
fn ramping_vus_start_when_the_line_crosses_each_count_and_ramp_down_gracefully() {
    // 0 -> 2 VUs over 1 s, then 2 -> 0 over 1 s. The newest VU goes first on a ramp-down,
    // as in k6: VU 1 is wanted from 500 ms to the end (2000 ms), VU 2 from 1000 ms to
    // 1500 ms. Iterations of 400 ms; gracefulRampDown 0 cuts a VU's running iteration the
    // moment it is no longer wanted.
    let cfg = ExecutorConfig::RampingVus(RampingVus {
        start_vus: 0,
        stages: vec![
            Stage {
                duration: ms(1000),
                target: 2,
            },
            Stage {
                duration: ms(1000),
                target: 0,
            },
        ],
        graceful_ramp_down: ms(0),
    });
    let mut case = Case::new(cfg, ms(400));
    case.graceful_stop = ms(0);
    let out = case.run();
    assert_eq!(
        out.starts,
        vec![
            (1, 500),
            (1, 900),
            (2, 1000),
            (1, 1300),
            (2, 1400),
            (1, 1700)
        ]
    );
    // VU 2's iteration from 1400 ms is cut at 1500 ms, VU 1's from 1700 ms at 2000 ms.
    assert_eq!((out.completed, out.interrupted), (4, 2));
    assert_eq!(out.ended, ms(2000));
}

#[test]
fn ramping_vus_removed_vus_finish_within_graceful_ramp_down() {
    // 2 VUs until 500 ms, 0 from the first tick after (510 ms); gracefulRampDown 300 ms lets
    // their running iterations go on until 810 ms. A 700 ms iteration completes; a 900 ms
    // one is interrupted at 810 ms (in its task, or parked). Either way no VU starts another.
    let ramp = || {
        ExecutorConfig::RampingVus(RampingVus {
            start_vus: 2,
            stages: vec![
                Stage {
                    duration: ms(500),
                    target: 2,
                },
                Stage {
                    duration: ms(10),
                    target: 0,
                },
                Stage {
                    duration: ms(1000),
                    target: 0,
                },
            ],
            graceful_ramp_down: ms(300),
        })
    };
    let out = Case::new(ramp(), ms(700)).run();
    assert_eq!(out.starts, grid(&[1, 2], &[0]));
    assert_eq!((out.completed, out.interrupted), (2, 0));
    let out = Case::new(ramp(), ms(900)).run();
    assert_eq!(out.starts, grid(&[1, 2], &[0]));
    assert_eq!((out.completed, out.interrupted), (0, 2));
}

#[test]
fn constant_arrival_rate_starts_on_schedule_whatever_the_iterations_take() {
    let cfg = ExecutorConfig::ConstantArrivalRate(ConstantArrivalRate {
        rate: 10,
        time_unit: ms(1000),
        duration: ms(1000),
        pre_allocated_vus: 2,
        max_vus: 5,
    });
    // 250 ms iterations at a 100 ms interval need 3 VUs at once: the pool grows to 3.
    let out = Case::new(cfg, ms(250)).run();
    let times: Vec<u64> = out.starts.iter().map(|s| s.1).collect();
    assert_eq!(times, (0..10).map(|i| i * 100).collect::<Vec<_>>());
    let vus: std::collections::BTreeSet<u64> = out.starts.iter().map(|s| s.0).collect();
    assert_eq!(vus.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!((out.completed, out.dropped), (10, 0));
    assert_eq!(out.ended, ms(1150));
}

#[test]
fn constant_arrival_rate_drops_what_no_free_vu_can_start() {
    let cfg = ExecutorConfig::ConstantArrivalRate(ConstantArrivalRate {
        rate: 10,
        time_unit: ms(1000),
        duration: ms(1000),
        pre_allocated_vus: 1,
        max_vus: 1,
    });
    let out = Case::new(cfg, ms(250)).run();
    // The one VU is busy at 100 and 200 ms (dropped), free again at 300 ms, and so on.
    assert_eq!(out.starts, vec![(1, 0), (1, 300), (1, 600), (1, 900)]);
    assert_eq!((out.completed, out.dropped), (4, 6));
}

#[test]
fn ramping_arrival_rate_starts_iteration_i_when_the_integral_reaches_i_plus_1() {
    // 0 -> 10/s over 1 s: arrivals(t) = 5 t^2, so iteration i starts at sqrt((i+1)/5) s:
    // 447.2, 632.5, 774.6 and 894.4 ms (the timer wheel fires on the next millisecond); the
    // fifth would start at 1 s, the end, and does not.
    let cfg = ExecutorConfig::RampingArrivalRate(RampingArrivalRate {
        start_rate: 0,
        time_unit: ms(1000),
        stages: vec![Stage {
            duration: ms(1000),
            target: 10,
        }],
        pre_allocated_vus: 1,
        max_vus: 1,
    });
    let out = Case::new(cfg, ms(10)).run();
    assert_eq!(out.starts, vec![(1, 448), (1, 633), (1, 775), (1, 895)]);
    assert_eq!(out.completed, 4);
}

#[test]
fn segments_split_vus_and_arrivals_without_overlap() {
    let vus = |seg| {
        let cfg = ExecutorConfig::ConstantVus(ConstantVus {
            vus: 3,
            duration: ms(100),
        });
        let mut case = Case::new(cfg, ms(100));
        case.segment = seg;
        case.run().starts
    };
    let (a, b) = (vus(Segment::nth(0, 2)), vus(Segment::nth(1, 2)));
    let mut ids: Vec<u64> = a.iter().chain(&b).map(|s| s.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3], "each VU runs in exactly one segment");
    let arrivals = |seg| {
        let cfg = ExecutorConfig::ConstantArrivalRate(ConstantArrivalRate {
            rate: 10,
            time_unit: ms(1000),
            duration: ms(1000),
            pre_allocated_vus: 4,
            max_vus: 4,
        });
        let mut case = Case::new(cfg, ms(10));
        case.segment = seg;
        case.run().starts
    };
    let (a, b) = (arrivals(Segment::nth(0, 2)), arrivals(Segment::nth(1, 2)));
    let mut all: Vec<u64> = a.iter().chain(&b).map(|s| s.1).collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).map(|i| i * 100).collect::<Vec<_>>());
    assert!(
        a.iter().all(|s| !b.iter().any(|t| t.0 == s.0)),
        "no VU in both halves"
    );
}

#[test]
fn a_signal_gives_running_iterations_their_graceful_stop_then_interrupts_them() {
    let cfg = ExecutorConfig::ConstantVus(ConstantVus {
        vus: 2,
        duration: ms(60_000),
    });
    let mut case = Case::new(cfg, ms(10_000));
    case.graceful_stop = ms(2000);
    case.signal_at = Some(ms(500));
    let out = case.run();
    assert_eq!(out.starts, grid(&[1, 2], &[0]));
    assert_eq!((out.completed, out.interrupted), (0, 2));
    assert_eq!(out.ended, ms(2500));
}
