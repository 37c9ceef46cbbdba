//! Where a new router goes: a pure function of measured shard load.
//!
//! Policy (documented in README):
//! 1. Shards at or over the busy watermark (`busy_watermark`, default 0.85) or the consumer
//!    watermark take no new routers while any shard is under both.
//! 2. Among eligible shards, pick the lowest score, where
//!    `score = busy_fraction + consumers / consumers_per_core_nominal`, so that both the measured
//!    CPU share and the objects already placed count (a freshly created room has no traffic yet,
//!    so busy alone would send every new room to the same idle shard).
//! 3. Ties go to the lowest shard index (deterministic).
//!
//! The inputs and the decision are logged by the caller and shown in `Engine::dump()`.

use serde::Serialize;

/// What placement knows of one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardLoadView {
    pub shard: usize,
    /// Share of wall time the shard loop spent working over the last window, 0..=1.
    pub busy_fraction: f32,
    pub routers: u32,
    pub transports: u32,
    pub consumers: u32,
}

/// Knobs of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementPolicy {
    pub busy_watermark: f32,
    pub consumers_watermark: u32,
    /// Consumers a core is expected to carry at full load; weighs object counts against busy.
    pub consumers_per_core_nominal: u32,
}

impl Default for PlacementPolicy {
    fn default() -> Self {
        PlacementPolicy { busy_watermark: 0.85, consumers_watermark: 5_000, consumers_per_core_nominal: 2_000 }
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
    let objects = load.consumers as f32 / policy.consumers_per_core_nominal.max(1) as f32 + load.routers as f32 * 1e-4;
    load.busy_fraction.clamp(0.0, 1.0) + objects
}

fn over_watermark(load: &ShardLoadView, policy: &PlacementPolicy) -> bool {
    load.busy_fraction >= policy.busy_watermark || load.consumers >= policy.consumers_watermark
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn all_over_watermark_takes_least_loaded_and_says_so() {
        let p = place_router(&[load(0, 0.95, 0), load(1, 0.9, 0)], &PlacementPolicy::default());
        assert_eq!(p.shard, 1);
        assert!(p.overloaded);
    }
}
