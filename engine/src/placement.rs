//! Where new routers and transports go: pure functions of measured shard load.
//!
//! Two watermarks: the consumer watermark (`consumers_watermark`) is a hard capacity cap, the
//! busy watermark (`busy_watermark`, on the measured busy fraction) steers. A shard over either
//! takes no new routers or transports while another shard is under both; a shard at its
//! consumer cap takes none at all.
//!
//! Routers (documented in README):
//! 1. Shards over a watermark are skipped while any shard is under both.
//! 2. Among eligible shards, pick the lowest score, where
//!    `score = busy_fraction + consumers / consumers_per_core_nominal`, so that both the measured
//!    CPU share and the objects already placed count (a freshly created room has no traffic yet,
//!    so busy alone would send every new room to the same idle shard).
//! 3. Ties go to the lowest shard index (deterministic).
//!
//!
//! Transports of a router: a room stays on its router's home shard while it fits, i.e. while
//! the room has fewer than `spread_transports` transports there and the home shard is under the
//! watermarks. The room's own size decides, not the shard's: a shard full of small rooms keeps
//! each of them whole (spreading one would only add inter-shard forwarding), while a big room
//! spreads its new transports once it is big enough to need more than one core.
//! Past that, a new transport goes to the shard with the lowest score among those under both
//! watermarks, or, when every shard is busy, among those under the consumer cap. Existing
//! transports keep working on a shard over its watermark. When every shard is at its consumer
//! cap, the transport is refused.
//!
//! The inputs and the decision are logged by the caller and shown in `Engine::dump()`.
//!
//! Inputs: each shard measures its own load and sends it, once per 100 ms window, as a report on
//! its load ring (`shardsfu_net::ShardHandle::load`): busy fraction, packets in and out per
//! second, its object counts, and how many creation commands (routers, transports, consumers) it
//! has received. [`LoadBoard`] adds the creations sent to the shard that its newest report does
//! not include yet, so that back-to-back placements see each other between reports.

use serde::Serialize;

/// What placement knows of one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardLoadView {
    pub shard: usize,
    /// Share of wall time the shard loop spent working over the last window, 0..=1.
    pub busy_fraction: f32,
    /// Datagrams in and out per second over the last window (shown; the score uses busy).
    pub rx_pps: u64,
    pub tx_pps: u64,
    pub routers: u32,
    pub transports: u32,
    pub consumers: u32,
    /// Number of the load report these figures come from (0: none yet).
    pub report: u64,
}

/// Knobs of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementPolicy {
    pub busy_watermark: f32,
    pub consumers_watermark: u32,
    /// Consumers a core is expected to carry at full load; weighs object counts against busy.
    pub consumers_per_core_nominal: u32,
    /// Weight of the measured busy fraction in the score (1 = a fully busy core counts as much as
    /// `consumers_per_core_nominal` consumers; 0 = balance by object counts alone).
    pub busy_weight: f32,
    /// Transports of a router on its home shard past which its new transports go to other
    /// shards. 0 spreads every room over all shards from its first transport.
    pub spread_transports: u32,
}

impl Default for PlacementPolicy {
    fn default() -> Self {
        PlacementPolicy {
            busy_watermark: 0.85,
            consumers_watermark: 5_000,
            consumers_per_core_nominal: 2_000,
            busy_weight: 1.0,
            spread_transports: 500,
        }
    }
}

/// The decision, with its reason, for logs and dumps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub shard: usize,
    pub score: f32,
    /// True when every shard was over a watermark and the least loaded was taken anyway.
    pub overloaded: bool,
}

fn score(load: &ShardLoadView, policy: &PlacementPolicy) -> f32 {
    let objects = load.consumers as f32 / policy.consumers_per_core_nominal.max(1) as f32
        + load.transports as f32 * 1e-5
        + load.routers as f32 * 1e-4;
    policy.busy_weight * load.busy_fraction.clamp(0.0, 1.0) + objects
}

fn at_capacity(load: &ShardLoadView, policy: &PlacementPolicy) -> bool {
    load.consumers >= policy.consumers_watermark
}

fn over_watermark(load: &ShardLoadView, policy: &PlacementPolicy) -> bool {
    load.busy_fraction >= policy.busy_watermark || at_capacity(load, policy)
}

/// The lowest score among `loads` passing `eligible`.
fn least_loaded<'l>(
    loads: impl Iterator<Item = &'l ShardLoadView>,
    policy: &PlacementPolicy,
    overloaded: bool,
) -> Option<Placement> {
    let mut best: Option<Placement> = None;
    for load in loads {
        let s = score(load, policy);
        if best.is_none_or(|b| s < b.score) {
            best = Some(Placement { shard: load.shard, score: s, overloaded });
        }
    }
    best
}

/// Choose the shard for a new router. `loads` must not be empty.
pub fn place_router(loads: &[ShardLoadView], policy: &PlacementPolicy) -> Placement {
    assert!(!loads.is_empty(), "placement needs at least one shard");
    let any_eligible = loads.iter().any(|l| !over_watermark(l, policy));
    let mut best: Option<Placement> = None;
    for load in loads {
        if any_eligible && over_watermark(load, policy) {
            continue;
        }
        let s = score(load, policy);
        if best.is_none_or(|b| s < b.score) {
            best = Some(Placement { shard: load.shard, score: s, overloaded: !any_eligible });
        }
    }
    best.expect("at least one shard considered")
}

/// Choose the shard for a new transport of a router whose home shard is `home` and which has
/// `room_at_home` open transports there. `None` when every shard is at its consumer cap.
pub fn place_transport(
    home: usize,
    room_at_home: u32,
    loads: &[ShardLoadView],
    policy: &PlacementPolicy,
) -> Option<Placement> {
    let home_load = loads.iter().find(|l| l.shard == home)?;
    if room_at_home < policy.spread_transports && !over_watermark(home_load, policy) {
        return Some(Placement { shard: home, score: score(home_load, policy), overloaded: false });
    }
    least_loaded(loads.iter().filter(|l| !over_watermark(l, policy)), policy, false)
        .or_else(|| least_loaded(loads.iter().filter(|l| !at_capacity(l, policy)), policy, true))
}

/// Kinds of object placement counts on their way to a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creates {
    Router = 0,
    Transport = 1,
    Consumer = 2,
}

/// What a shard adds to each load report for placement; net carries it as `ShardLoad::service`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedObjects {
    pub routers: u32,
    pub transports: u32,
    pub consumers: u32,
    pub producers: u32,
    /// Creation commands the shard has taken off its ring, by [`Creates`] kind (wrapping).
    pub received: [u32; 3],
}

impl ReportedObjects {
    pub fn to_figures(self) -> [u32; 8] {
        let [r, t, c] = self.received;
        [self.routers, self.transports, self.consumers, self.producers, r, t, c, 0]
    }

    pub fn from_figures(f: [u32; 8]) -> Self {
        let [routers, transports, consumers, producers, r, t, c, _] = f;
        ReportedObjects { routers, transports, consumers, producers, received: [r, t, c] }
    }
}

/// The creation commands sent to each shard, against which a shard's report (the creation
/// commands it had received when it reported) tells which are still on their way. Counts wrap;
/// only differences matter. Exact, with no timing assumption: a command is counted here before
/// it is pushed on the shard's ring, and by the shard when it takes it off.
#[derive(Debug, Clone)]
pub struct LoadBoard {
    sent: Vec<[u32; 3]>,
}

impl LoadBoard {
    pub fn new(shards: usize) -> Self {
        LoadBoard { sent: vec![[0; 3]; shards] }
    }

    /// A creation command is about to go to `shard`.
    pub fn sent(&mut self, shard: usize, kind: Creates) {
        self.add(shard, kind, 1);
    }

    /// A command counted by [`LoadBoard::sent`] could not go after all.
    pub fn taken_back(&mut self, shard: usize, kind: Creates) {
        self.add(shard, kind, u32::MAX);
    }

    fn add(&mut self, shard: usize, kind: Creates, n: u32) {
        if let Some(counts) = self.sent.get_mut(shard) {
            counts[kind as usize] = counts[kind as usize].wrapping_add(n);
        }
    }

    /// The shard's reported figures plus the creations sent that the report does not include
    /// (`received`: the creation commands the shard had received, by [`Creates`] kind). A
    /// creation that failed on the shard is received and not counted, as it should be.
    pub fn view(&self, reported: ShardLoadView, received: [u32; 3]) -> ShardLoadView {
        let Some(sent) = self.sent.get(reported.shard) else { return reported };
        let pending = |kind: Creates| {
            let ahead = sent[kind as usize].wrapping_sub(received[kind as usize]);
            // A report is never ahead of what was sent; a value this large would mean it is.
            if ahead > u32::MAX / 2 {
                0
            } else {
                ahead
            }
        };
        ShardLoadView {
            routers: reported.routers + pending(Creates::Router),
            transports: reported.transports + pending(Creates::Transport),
            consumers: reported.consumers + pending(Creates::Consumer),
            ..reported
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_adds_what_the_report_has_not_seen() {
        let mut board = LoadBoard::new(2);
        let reported = ShardLoadView { shard: 1, routers: 1, transports: 4, consumers: 10, ..Default::default() };
        // Nothing sent yet beyond what the shard received: the report as it is.
        assert_eq!(board.view(reported, [0; 3]), reported);
        for _ in 0..3 {
            board.sent(1, Creates::Transport);
        }
        board.sent(1, Creates::Consumer);
        board.sent(0, Creates::Router);
        let v = board.view(reported, [0; 3]);
        assert_eq!((v.routers, v.transports, v.consumers), (1, 7, 11));
        // The shard took two transports and the consumer off its ring: its counts include them.
        let newer = ShardLoadView { transports: 6, consumers: 11, ..reported };
        let v = board.view(newer, [0, 2, 1]);
        assert_eq!((v.routers, v.transports, v.consumers), (1, 7, 11));
        // A command that could not be queued is taken back.
        board.taken_back(1, Creates::Transport);
        let v = board.view(newer, [0, 2, 1]);
        assert_eq!(v.transports, 6);
        // Shard 0's router is its own business.
        assert_eq!(board.view(ShardLoadView::default(), [0; 3]).routers, 1);
        assert_eq!(board.view(ShardLoadView::default(), [1, 0, 0]).routers, 0);
    }

    #[test]
    fn reported_objects_cross_net_unchanged() {
        let o = ReportedObjects { routers: 1, transports: 2, consumers: 3, producers: 4, received: [5, 6, 7] };
        assert_eq!(o.to_figures(), [1, 2, 3, 4, 5, 6, 7, 0]);
        assert_eq!(ReportedObjects::from_figures(o.to_figures()), o);
    }

    #[test]
    fn the_board_counts_across_wrapping() {
        let mut board = LoadBoard { sent: vec![[u32::MAX, 1, 0]] };
        board.sent(0, Creates::Router);
        // Sent wrapped to 0; the shard received u32::MAX - 1 of them: two on their way.
        let v = board.view(ShardLoadView::default(), [u32::MAX - 1, 1, 0]);
        assert_eq!((v.routers, v.transports), (2, 0));
        // A report that claims more than was sent (never expected) adds nothing.
        let v = board.view(ShardLoadView::default(), [0, 5, 0]);
        assert_eq!(v.transports, 0);
    }

    fn load(shard: usize, busy: f32, consumers: u32) -> ShardLoadView {
        ShardLoadView { shard, busy_fraction: busy, consumers, ..Default::default() }
    }

    #[test]
    fn idle_shards_tie_to_lowest_index() {
        let p = place_router(&[load(0, 0.0, 0), load(1, 0.0, 0)], &PlacementPolicy::default());
        assert_eq!(p.shard, 0);
        assert!(!p.overloaded);
    }

    #[test]
    fn least_busy_wins() {
        let p = place_router(&[load(0, 0.5, 0), load(1, 0.1, 0)], &PlacementPolicy::default());
        assert_eq!(p.shard, 1);
    }

    #[test]
    fn placed_objects_count_before_traffic_flows() {
        // Two rooms just created on shard 0 with no traffic yet: the next goes to shard 1.
        let mut a = load(0, 0.0, 8);
        a.routers = 2;
        let p = place_router(&[a, load(1, 0.0, 0)], &PlacementPolicy::default());
        assert_eq!(p.shard, 1);
    }

    #[test]
    fn shard_over_watermark_is_skipped_even_if_score_is_lower() {
        let policy = PlacementPolicy { consumers_watermark: 10, ..Default::default() };
        // Shard 0 has low busy but is over the consumer watermark.
        let p = place_router(&[load(0, 0.0, 10), load(1, 0.6, 0)], &policy);
        assert_eq!(p.shard, 1);
        assert!(!p.overloaded);
    }

    #[test]
    fn room_stays_home_while_it_fits() {
        let policy = PlacementPolicy { spread_transports: 10, ..Default::default() };
        let p = place_transport(1, 9, &[load(0, 0.0, 0), load(1, 0.3, 9)], &policy).unwrap();
        assert_eq!(p.shard, 1);
    }

    #[test]
    fn a_small_room_stays_whole_on_a_shard_full_of_other_rooms() {
        // Home carries 900 consumers of other rooms, the other shard none: a 4-peer room's next
        // transport still goes home (no inter-shard forwarding for a room that fits).
        let p = place_transport(0, 3, &[load(0, 0.5, 900), load(1, 0.0, 0)], &PlacementPolicy::default()).unwrap();
        assert_eq!(p.shard, 0);
    }

    #[test]
    fn room_spreads_past_the_threshold_to_the_least_loaded() {
        let policy = PlacementPolicy { spread_transports: 10, ..Default::default() };
        let loads = [load(0, 0.2, 3), load(1, 0.3, 10), load(2, 0.1, 1)];
        assert_eq!(place_transport(1, 10, &loads, &policy).unwrap().shard, 2);
    }

    #[test]
    fn spread_zero_balances_every_transport() {
        let policy = PlacementPolicy { spread_transports: 0, ..Default::default() };
        let loads = [load(0, 0.0, 4), load(1, 0.0, 3)];
        assert_eq!(place_transport(0, 0, &loads, &policy).unwrap().shard, 1);
    }

    #[test]
    fn shard_over_watermark_takes_no_transports() {
        let policy = PlacementPolicy { consumers_watermark: 10, ..Default::default() };
        // Home is over the watermark: the other shard takes the transport.
        assert_eq!(place_transport(0, 0, &[load(0, 0.0, 10), load(1, 0.5, 0)], &policy).unwrap().shard, 1);
        // Every shard busy: the least loaded still takes it, flagged.
        let p = place_transport(0, 0, &[load(0, 0.95, 0), load(1, 0.9, 0)], &policy).unwrap();
        assert_eq!((p.shard, p.overloaded), (1, true));
        // Every shard at its consumer cap: refused.
        assert_eq!(place_transport(0, 0, &[load(0, 0.0, 10), load(1, 0.0, 12)], &policy), None);
    }

    #[test]
    fn all_over_watermark_takes_least_loaded_and_says_so() {
        let p = place_router(&[load(0, 0.95, 0), load(1, 0.9, 0)], &PlacementPolicy::default());
        assert_eq!(p.shard, 1);
        assert!(p.overloaded);
    }
}
