//! mediasoup's ORTC rules over JSON a remote endpoint controls (through the app): a router's
//! `mediaCodecs`, a producer's `rtpParameters` and a consumer's `rtpCapabilities`, taken
//! through what `createRouter`, `produce`, `canConsume`, `consume` and `pipeToRouter` run.
//!
//! Never a panic; every refusal is a typed error. And what one step accepts, the next takes:
//! - a router's generated capabilities are valid capabilities;
//! - a producer the router accepted can be consumed with the router's own capabilities, and
//!   piped to a router with the same codecs (its pipe consumer's parameters are accepted there
//!   as a producer's);
//! - whenever `canConsume` says yes, `consume` builds parameters, and they validate.
//!
//! Input: one JSON object `{ kind, mediaCodecs, rtpParameters, rtpCapabilities }` (seeds in
//! `fuzz/seeds/ortc`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use shardsfu_engine::ortc;
use shardsfu_engine::rtp_parameters::{MediaKind, RtpCapabilities, RtpCodecCapability, RtpParameters};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    kind: MediaKind,
    media_codecs: Vec<RtpCodecCapability>,
    rtp_parameters: RtpParameters,
    #[serde(default)]
    rtp_capabilities: Option<RtpCapabilities>,
}

/// What `produce` runs: validation, mapping onto the router, consumable parameters.
fn produce(kind: MediaKind, params: &RtpParameters, caps: &RtpCapabilities) -> Option<RtpParameters> {
    let mut params = params.clone();
    ortc::validate_rtp_parameters(&mut params).ok()?;
    let mapping = ortc::get_producer_rtp_parameters_mapping(&mut params, caps, 0x1000_0000).ok()?;
    Some(ortc::get_consumable_rtp_parameters(kind, &params, caps, &mapping).expect("a mapping made for these params"))
}

/// What `consume` runs once `canConsume` said yes: it must succeed and validate.
fn consume(consumable: &RtpParameters, caps: &RtpCapabilities, enable_rtx: bool) {
    let mut params = ortc::get_consumer_rtp_parameters(consumable, caps, false, enable_rtx, 0x2000_0000, 0x3000_0000)
        .expect("canConsume said yes");
    params.mid = Some("0".into());
    ortc::validate_rtp_parameters(&mut params).expect("consumer parameters validate");
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Input>(data) else { return };
    let mut media_codecs = input.media_codecs;
    if media_codecs.iter_mut().any(|c| ortc::validate_rtp_codec_capability(c).is_err()) {
        return;
    }
    let Ok(router_caps) = ortc::generate_router_rtp_capabilities(&media_codecs) else { return };
    let mut again = router_caps.clone();
    ortc::validate_rtp_capabilities(&mut again).expect("router capabilities are valid capabilities");

    for encoding in input.rtp_parameters.encodings.iter().flatten() {
        let _ = ortc::parse_scalability_mode(encoding.scalability_mode.as_deref());
    }
    let Some(consumable) = produce(input.kind, &input.rtp_parameters, &router_caps) else { return };

    // The router's own capabilities consume every producer it accepted.
    assert_eq!(ortc::can_consume(&consumable, &router_caps).ok(), Some(true), "router caps consume its producer");
    consume(&consumable, &router_caps, true);

    // pipeToRouter: the pipe consumer's parameters are the pipe producer's in a router with the
    // same codecs.
    for enable_rtx in [false, true] {
        let pipe = ortc::get_pipe_consumer_rtp_parameters(&consumable, enable_rtx, 0x4000_0000, 0x5000_0000);
        assert!(produce(input.kind, &pipe, &router_caps).is_some(), "the pipe producer is accepted");
    }

    // A remote endpoint's capabilities.
    let Some(mut caps) = input.rtp_capabilities else { return };
    if ortc::validate_rtp_capabilities(&mut caps).is_err() {
        return;
    }
    if ortc::can_consume(&consumable, &caps) == Ok(true) {
        consume(&consumable, &caps, true);
        consume(&consumable, &caps, false);
    }
});
