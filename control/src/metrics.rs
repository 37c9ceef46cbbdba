//! `/metrics`: Prometheus text exposition of the engine's per-shard counters and the API's own.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde_json::Value;
use shardsfu_engine::block_on;

use crate::server::Shared;

/// One metric family: name, type, help, and its samples (labels, value).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family { name, kind, help, samples: Vec::new() }
    }
}

pub fn render(shared: &Shared) -> Result<String, String> {
    let dump = block_on(shared.engine.dump()).map_err(|e| e.to_string())?;
    let mut fams = vec![
        Family::new("shardsfu_routers", "gauge", "Routers (or router parts, for spanning routers) on the shard."),
        Family::new("shardsfu_transports", "gauge", "Transports on the shard."),
        Family::new("shardsfu_producers", "gauge", "Producers (mirrors included) on the shard."),
        Family::new("shardsfu_consumers", "gauge", "Consumers on the shard."),
        Family::new("shardsfu_rx_packets_total", "counter", "Datagrams received by the shard."),
        Family::new("shardsfu_tx_packets_total", "counter", "Datagrams the kernel accepted from the shard."),
        Family::new("shardsfu_tx_dropped_total", "counter", "Datagrams the kernel refused, or discarded by a close."),
        Family::new("shardsfu_rx_truncated_total", "counter", "Datagrams larger than the receive buffer, dropped."),
        Family::new("shardsfu_records_to_shards_total", "counter", "Packets sent to other shards of spanning routers."),
        Family::new("shardsfu_drops_total", "counter", "Packets the shard's SFU dropped, by reason."),
        Family::new("shardsfu_busy_fraction", "gauge", "Share of the shard loop's time spent on data work (0..1)."),
        Family::new("shardsfu_rx_packets_per_second", "gauge", "Datagrams received per second (last window)."),
        Family::new("shardsfu_tx_packets_per_second", "gauge", "Datagrams sent per second (last window)."),
        Family::new("shardsfu_rx_bytes_total", "counter", "Bytes received by the shard (UDP payloads, TCP frames)."),
        Family::new("shardsfu_tx_bytes_total", "counter", "Bytes the kernel accepted from the shard."),
        Family::new(
            "shardsfu_rx_gro_trains_total",
            "counter",
            "Received messages that held several datagrams (UDP GRO trains, split by the shard).",
        ),
        Family::new("shardsfu_tx_gso_messages_total", "counter", "Sent messages that carried a UDP GSO train."),
        Family::new(
            "shardsfu_tx_seal_failed_total",
            "counter",
            "Datagrams dropped because SRTP protection failed when they were sealed at the flush.",
        ),
    ];
    let shards = dump["shards"].as_array().cloned().unwrap_or_default();
    for s in &shards {
        let i = s["shard"].as_u64().unwrap_or(0);
        let l = format!("shard=\"{i}\"");
        let num = |v: &Value| v.as_f64().unwrap_or(0.0);
        let objects = &s["objects"];
        let values = [
            num(&objects["routers"]),
            num(&objects["transports"]),
            num(&objects["producers"]),
            num(&objects["consumers"]),
            num(&s["rxPackets"]),
            num(&s["txPackets"]),
            num(&s["txDropped"]),
            num(&s["rxTruncated"]),
            num(&s["recordsToShards"]),
        ];
        for (fam, v) in fams.iter_mut().zip(values) {
            fam.samples.push((l.clone(), v));
        }
        // Every reason the engine counts (core::DropReason), in its own order.
        for (reason, count) in s["drops"].as_object().into_iter().flatten() {
            fams[9].samples.push((format!("{l},reason=\"{reason}\""), num(count)));
        }
        let net = shared.engine.net_load(i as usize);
        fams[10].samples.push((l.clone(), f64::from(net.busy_fraction)));
        fams[11].samples.push((l.clone(), net.rx_pps as f64));
        fams[12].samples.push((l.clone(), net.tx_pps as f64));
        fams[13].samples.push((l.clone(), num(&s["rxBytes"])));
        fams[14].samples.push((l.clone(), num(&s["txBytes"])));
        fams[15].samples.push((l.clone(), num(&s["rxGroTrains"])));
        fams[16].samples.push((l.clone(), num(&s["txGsoMessages"])));
        fams[17].samples.push((l, num(&s["txSealFailed"])));
    }
    let mut api = vec![
        Family::new("shardsfu_shards", "gauge", "Shards the engine runs."),
        Family::new("shardsfu_api_connections", "gauge", "Open API connections."),
        Family::new("shardsfu_workers", "gauge", "Workers created through the API and not closed."),
        Family::new(
            "shardsfu_orphaned_workers",
            "gauge",
            "Workers whose connection went away (closing after the grace period, or kept).",
        ),
        Family::new(
            "shardsfu_direct_packets_dropped_total",
            "counter",
            "DirectTransport packets dropped because callbacks fell behind.",
        ),
    ];
    let (workers, orphans) = {
        let objects = shared.registry.lock();
        (objects.workers.len(), objects.workers.values().filter(|w| w.owner.is_none()).count())
    };
    api[0].samples.push((String::new(), shards.len() as f64));
    api[1].samples.push((String::new(), shared.connections.load(Ordering::Relaxed) as f64));
    api[2].samples.push((String::new(), workers as f64));
    api[3].samples.push((String::new(), orphans as f64));
    api[4].samples.push((String::new(), dump["directPacketsDropped"].as_f64().unwrap_or(0.0)));
    fams.extend(api);

    let mut out = String::new();
    for f in &fams {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, v) in &f.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {}", f.name, v);
            } else {
                let _ = writeln!(out, "{}{{{}}} {}", f.name, labels, v);
            }
        }
    }
    Ok(out)
}
