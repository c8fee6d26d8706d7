//! The funnel state machine, pure: events in, counters out. No I/O, no clock of its own
//! (every call takes `now`), so a replay of the log rebuilds exactly the same state.
//!
//! Per (day, source, page): entries, exits, reexits, reenters, completes, heartbeats and
//! net bounces. An exit or reexit marks a bounce pending for (session, page) and counts it;
//! a reenter on that page reverses it; entering a later page clears it as progress; after
//! the bounce TTL the mark is final and forgotten. A session is live on a page after an
//! enter, reenter or heartbeat until it exits or is silent for the session TTL.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub const PAGES: [&str; 6] = [
    "website",
    "tutorial",
    "webinar",
    "contract",
    "congrats",
    "brand-steps",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Enter,
    Exit,
    Reenter,
    Reexit,
    Complete,
    Heartbeat,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "funnel_enter" => Kind::Enter,
            "funnel_exit" => Kind::Exit,
            "funnel_reenter" => Kind::Reenter,
            "funnel_reexit" => Kind::Reexit,
            "funnel_complete" => Kind::Complete,
            "heartbeat" => Kind::Heartbeat,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Enter => "funnel_enter",
            Kind::Exit => "funnel_exit",
            Kind::Reenter => "funnel_reenter",
            Kind::Reexit => "funnel_reexit",
            Kind::Complete => "funnel_complete",
            Kind::Heartbeat => "heartbeat",
        }
    }
}

pub fn page_index(p: &str) -> Option<usize> {
    PAGES.iter().position(|x| *x == p)
}

/// One accepted beacon. `at_ms` is the server's receive time (ms since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub page: usize,
    pub session: String,
    pub source: String,
    pub time_on_page: Option<f64>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounters {
    pub entries: u64,
    pub exits: u64,
    pub reexits: u64,
    pub reenters: u64,
    pub completes: u64,
    pub heartbeats: u64,
    pub bounces: i64,
}

#[derive(Debug, Clone)]
struct Pending {
    day: String,
    source: String,
    since_ms: u64,
}

#[derive(Debug, Clone)]
struct Live {
    page: usize,
    last_ms: u64,
    /// The `source` of the session's last beacon (reported per source in /stats).
    source: String,
}

/// The whole server state.
#[derive(Debug)]
pub struct Funnel {
    pub bounce_ttl: Duration,
    pub session_ttl: Duration,
    counters: BTreeMap<(String, String), [PageCounters; 6]>,
    pending: HashMap<(String, usize), Pending>,
    live: HashMap<String, Live>,
    pub accepted: u64,
    last_sweep_ms: u64,
}

impl Funnel {
    pub fn new(bounce_ttl: Duration, session_ttl: Duration) -> Funnel {
        Funnel {
            bounce_ttl,
            session_ttl,
            counters: BTreeMap::new(),
            pending: HashMap::new(),
            live: HashMap::new(),
            accepted: 0,
            last_sweep_ms: 0,
        }
    }

    fn page_mut(&mut self, day: &str, source: &str, page: usize) -> &mut PageCounters {
        &mut self
            .counters
            .entry((day.to_string(), source.to_string()))
            .or_default()[page]
    }

    /// Applies one event (already validated).
    pub fn apply(&mut self, e: &Event) {
        // Sweeping walks every mark, so do it at most once a second; marks are also checked
        // for expiry when touched, so the result does not depend on when sweeps happen.
        if e.at_ms >= self.last_sweep_ms + 1000 {
            self.expire(e.at_ms);
        }
        self.accepted += 1;
        let day = day_of(e.at_ms);
        let (page, session) = (e.page, e.session.as_str());
        match e.kind {
            Kind::Enter => {
                self.page_mut(&day, &e.source, page).entries += 1;
                self.clear_progress(session, page, e.at_ms);
                self.set_live(session, page, &e.source, e.at_ms);
            }
            Kind::Exit | Kind::Reexit => {
                let c = self.page_mut(&day, &e.source, page);
                if e.kind == Kind::Exit {
                    c.exits += 1
                } else {
                    c.reexits += 1
                }
                let key = (session.to_string(), page);
                match self.take_live_pending(&key, e.at_ms) {
                    // Already a pending bounce on this page: it is counted once.
                    Some(still) => {
                        self.pending.insert(key, still);
                    }
                    None => {
                        self.page_mut(&day, &e.source, page).bounces += 1;
                        self.pending.insert(
                            key,
                            Pending {
                                day,
                                source: e.source.clone(),
                                since_ms: e.at_ms,
                            },
                        );
                    }
                }
                if self.live.get(session).is_some_and(|l| l.page == page) {
                    self.live.remove(session);
                }
            }
            Kind::Reenter => {
                self.page_mut(&day, &e.source, page).reenters += 1;
                if let Some(p) = self.take_live_pending(&(session.to_string(), page), e.at_ms) {
                    self.page_mut(&p.day, &p.source, page).bounces -= 1;
                }
                self.set_live(session, page, &e.source, e.at_ms);
            }
            Kind::Complete => {
                self.page_mut(&day, &e.source, page).completes += 1;
                self.touch(session, page, e.at_ms);
            }
            Kind::Heartbeat => {
                self.page_mut(&day, &e.source, page).heartbeats += 1;
                self.set_live(session, page, &e.source, e.at_ms);
            }
        }
    }

    /// Entering a later page means the exits before it were progress, not bounces.
    fn clear_progress(&mut self, session: &str, entered: usize, now_ms: u64) {
        for page in 0..entered {
            if let Some(p) = self.take_live_pending(&(session.to_string(), page), now_ms) {
                self.page_mut(&p.day, &p.source, page).bounces -= 1;
            }
        }
    }

    /// Removes and returns a pending mark that has not expired yet (an expired one is final).
    fn take_live_pending(&mut self, key: &(String, usize), now_ms: u64) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        (now_ms.saturating_sub(p.since_ms) < self.bounce_ttl.as_millis() as u64).then_some(p)
    }

    fn set_live(&mut self, session: &str, page: usize, source: &str, at_ms: u64) {
        match self.live.get_mut(session) {
            Some(l) => {
                l.page = page;
                l.last_ms = at_ms;
                if l.source != source {
                    l.source = source.to_string();
                }
            }
            None => {
                self.live.insert(
                    session.to_string(),
                    Live {
                        page,
                        last_ms: at_ms,
                        source: source.to_string(),
                    },
                );
            }
        }
    }

    fn touch(&mut self, session: &str, page: usize, at_ms: u64) {
        if let Some(l) = self.live.get_mut(session) {
            if l.page == page {
                l.last_ms = at_ms;
            }
        }
    }

    /// Makes bounce marks older than the TTL final and drops silent sessions.
    pub fn expire(&mut self, now_ms: u64) {
        self.last_sweep_ms = now_ms;
        let bounce_ttl = self.bounce_ttl.as_millis() as u64;
        let session_ttl = self.session_ttl.as_millis() as u64;
        self.pending
            .retain(|_, p| now_ms.saturating_sub(p.since_ms) < bounce_ttl);
        self.live
            .retain(|_, l| now_ms.saturating_sub(l.last_ms) < session_ttl);
    }

    /// Removes a day's counters (all sources, or one).
    pub fn reset_day(&mut self, day: &str, source: Option<&str>) -> usize {
        let before = self.counters.len();
        self.counters
            .retain(|(d, s), _| !(d == day && source.is_none_or(|x| x == s)));
        self.pending
            .retain(|_, p| !(p.day == day && source.is_none_or(|x| x == p.source)));
        before - self.counters.len()
    }

    /// Per-page counters of a day summed over the sources the filter keeps.
    pub fn day_totals(&self, day: &str, filter: &SourceFilter) -> [PageCounters; 6] {
        let mut out = [PageCounters::default(); 6];
        for ((d, s), pages) in &self.counters {
            if d != day || !filter.keeps(s) {
                continue;
            }
            for (o, p) in out.iter_mut().zip(pages.iter()) {
                o.entries += p.entries;
                o.exits += p.exits;
                o.reexits += p.reexits;
                o.reenters += p.reenters;
                o.completes += p.completes;
                o.heartbeats += p.heartbeats;
                o.bounces += p.bounces;
            }
        }
        out
    }

    pub fn sources(&self, day: &str) -> Vec<String> {
        self.counters
            .keys()
            .filter(|(d, _)| d == day)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Live sessions per page (after expiring the silent ones).
    pub fn live_by_page(&self, now_ms: u64) -> [u64; 6] {
        let ttl = self.session_ttl.as_millis() as u64;
        let mut out = [0u64; 6];
        for l in self.live.values() {
            if now_ms.saturating_sub(l.last_ms) < ttl {
                out[l.page] += 1;
            }
        }
        out
    }

    /// Live sessions per source (after expiring the silent ones).
    pub fn live_by_source(&self, now_ms: u64) -> BTreeMap<String, u64> {
        let ttl = self.session_ttl.as_millis() as u64;
        let mut out = BTreeMap::new();
        for l in self.live.values() {
            if now_ms.saturating_sub(l.last_ms) < ttl {
                *out.entry(l.source.clone()).or_default() += 1;
            }
        }
        out
    }

    pub fn pending_bounces(&self) -> usize {
        self.pending.len()
    }
}

/// Which sources a dashboard query includes.
#[derive(Debug, Default, Clone)]
pub struct SourceFilter {
    pub only: Option<String>,
    pub exclude_prefix: Option<String>,
}

impl SourceFilter {
    pub fn keeps(&self, source: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o == source)
            && self
                .exclude_prefix
                .as_ref()
                .is_none_or(|p| !source.starts_with(p.as_str()))
    }
}

/// The UTC day (YYYY-MM-DD) of a time in ms since the epoch.
pub fn day_of(ms: u64) -> String {
    crate::timefmt::day_of_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_000_000_000;

    fn ev(kind: Kind, page: &str, session: &str, at: u64) -> Event {
        Event {
            kind,
            page: page_index(page).unwrap(),
            session: session.into(),
            source: "k6-test".into(),
            time_on_page: None,
            at_ms: T0 + at,
        }
    }

    fn f() -> Funnel {
        Funnel::new(Duration::from_secs(1800), Duration::from_secs(60))
    }

    fn page(f: &Funnel, p: &str) -> PageCounters {
        f.day_totals(&day_of(T0), &SourceFilter::default())[page_index(p).unwrap()]
    }

    #[test]
    fn bounce_storm_cycle_leaves_one_net_bounce() {
        let mut f = f();
        for (k, at) in [
            (Kind::Enter, 0),
            (Kind::Exit, 2),
            (Kind::Reenter, 3),
            (Kind::Reexit, 5),
            (Kind::Reenter, 6),
            (Kind::Reexit, 8),
        ] {
            f.apply(&ev(k, "webinar", "s1", at * 1000));
        }
        assert_eq!(page(&f, "webinar").bounces, 1);
        assert_eq!(f.pending_bounces(), 1);
        assert_eq!(f.live_by_page(T0 + 9000), [0; 6]);
    }

    #[test]
    fn progress_clears_the_exit_bounce() {
        let mut f = f();
        f.apply(&ev(Kind::Enter, "website", "s", 0));
        f.apply(&ev(Kind::Exit, "website", "s", 10));
        assert_eq!(page(&f, "website").bounces, 1);
        f.apply(&ev(Kind::Enter, "tutorial", "s", 20));
        assert_eq!(page(&f, "website").bounces, 0);
        assert_eq!(f.live_by_page(T0 + 30)[1], 1);
    }

    #[test]
    fn pending_marks_expire_final_and_sessions_time_out() {
        let mut f = Funnel::new(Duration::from_secs(10), Duration::from_secs(5));
        f.apply(&ev(Kind::Enter, "website", "a", 0));
        f.apply(&ev(Kind::Exit, "website", "a", 1000));
        f.apply(&ev(Kind::Heartbeat, "tutorial", "b", 1000));
        f.expire(T0 + 20_000);
        assert_eq!(f.pending_bounces(), 0);
        assert_eq!(
            page(&f, "website").bounces,
            1,
            "an expired mark stays counted"
        );
        assert_eq!(f.live_by_page(T0 + 20_000), [0; 6]);
    }

    #[test]
    fn filters_and_reset() {
        let mut f = f();
        let mut e = ev(Kind::Enter, "website", "a", 0);
        f.apply(&e);
        e.source = "organic".into();
        f.apply(&e);
        let day = day_of(T0);
        let only_real = SourceFilter {
            only: None,
            exclude_prefix: Some("k6-".into()),
        };
        assert_eq!(f.day_totals(&day, &only_real)[0].entries, 1);
        assert_eq!(f.day_totals(&day, &SourceFilter::default())[0].entries, 2);
        f.reset_day(&day, Some("k6-test"));
        assert_eq!(f.day_totals(&day, &SourceFilter::default())[0].entries, 1);
    }

    #[test]
    fn days_are_utc_calendar_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_795_000_000_000), "2026-11-18");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
    }
}
