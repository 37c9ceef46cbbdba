//! From a producer's parameters to what a consumer receives: mediasoup's
//! `getProducerRtpParametersMapping`, `getConsumableRtpParameters`, `canConsume`,
//! `getConsumerRtpParameters` and `getPipeConsumerRtpParameters`.
//!
//! mediasoup draws SSRCs at random inside these functions; here the caller passes them, so the
//! functions stay deterministic (the caller owns the randomness, as it owns the clock).

use super::matching::{is_rtx_codec, match_codecs, match_codecs_and_modify, CodecLike};
use super::scalability::parse_scalability_mode;
use super::validation::{validate_rtp_capabilities, validate_rtp_codec_capability};
use super::{RtpMapping, RtpMappingCodec, RtpMappingEncoding};
use crate::error::{Error, Result};
use crate::rtp_parameters::{
    uri, CodecParameters, MediaKind, RtcpFeedback, RtcpParameters, RtpCapabilities, RtpCodecCapability,
    RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtensionDirection, RtpHeaderExtensionParameters,
    RtpParameters, RtxParameters,
};

fn caps_codecs(caps: &RtpCapabilities) -> &[RtpCodecCapability] {
    caps.codecs.as_deref().unwrap_or_default()
}

/// Maps a producer's codecs to the router's payload types and gives each encoding a mapped
/// SSRC (`mapped_ssrc_base`, `+1`, ... in encoding order; mediasoup starts from a random
/// number).
///
/// Media codecs must match a router codec strictly (UnsupportedError
/// `unsupported codec [mimeType:..., payloadType:...]`); on an H264 match the producer codec's
/// `profile-level-id` is rewritten to the answer's, which is why `params` is `&mut`. It is only
/// written when the whole mapping succeeds. Each RTX codec needs its media codec in `params`
/// (TypeError) and an RTX codec for the matched router codec (UnsupportedError).
///
/// `mapping.codecs` lists media codecs first, then RTX codecs, each in `params` order.
pub fn get_producer_rtp_parameters_mapping(
    params: &mut RtpParameters,
    caps: &RtpCapabilities,
    mapped_ssrc_base: u32,
) -> Result<RtpMapping> {
    let mut producer = params.clone();
    let cap_codecs = caps_codecs(caps);
    // (index in producer.codecs, index in cap_codecs), in mediasoup's Map insertion order.
    let mut matched: Vec<(usize, usize)> = Vec::with_capacity(producer.codecs.len());

    for (index, codec) in producer.codecs.iter_mut().enumerate() {
        if is_rtx_codec(codec) {
            continue;
        }
        let Some(cap_index) = cap_codecs.iter().position(|cap_codec| match_codecs_and_modify(codec, cap_codec)) else {
            return Err(Error::unsupported(format!(
                "unsupported codec [mimeType:{}, payloadType:{}]",
                codec.mime_type, codec.payload_type
            )));
        };
        matched.push((index, cap_index));
    }

    for (index, codec) in producer.codecs.iter().enumerate() {
        if !is_rtx_codec(codec) {
            continue;
        }
        let media_index =
            producer.codecs.iter().position(|media| Some(u64::from(media.payload_type)) == codec.apt()).ok_or_else(
                || Error::type_error(format!("missing media codec found for RTX PT {}", codec.payload_type)),
            )?;
        // An RTX codec whose apt names another RTX codec has no matched media codec.
        let cap_media = matched
            .iter()
            .find(|(producer_index, _)| *producer_index == media_index)
            .map(|&(_, cap_index)| &cap_codecs[cap_index])
            .ok_or_else(|| Error::type_error(format!("missing media codec found for RTX PT {}", codec.payload_type)))?;
        let cap_media_pt = cap_media.preferred_payload_type.map(u64::from);
        let cap_rtx_index = cap_codecs
            .iter()
            .position(|cap| is_rtx_codec(cap) && cap.apt().is_some() && cap.apt() == cap_media_pt)
            .ok_or_else(|| {
                Error::unsupported(format!(
                    "no RTX codec for capability codec PT {}",
                    cap_media.preferred_payload_type.map_or(-1, i32::from)
                ))
            })?;
        matched.push((index, cap_rtx_index));
    }

    let mut codecs = Vec::with_capacity(matched.len());
    for &(index, cap_index) in &matched {
        let mapped_payload_type = cap_codecs[cap_index]
            .preferred_payload_type
            .ok_or_else(|| Error::type_error("capability codec without preferredPayloadType"))?;
        codecs.push(RtpMappingCodec { payload_type: producer.codecs[index].payload_type, mapped_payload_type });
    }

    let encodings = producer
        .encodings
        .as_deref()
        .unwrap_or_default()
        .iter()
        .zip(0u32..)
        .map(|(encoding, i)| RtpMappingEncoding {
            ssrc: encoding.ssrc.filter(|&ssrc| ssrc != 0),
            rid: encoding.rid.clone().filter(|rid| !rid.is_empty()),
            scalability_mode: encoding.scalability_mode.clone().filter(|mode| !mode.is_empty()),
            mapped_ssrc: mapped_ssrc_base.wrapping_add(i),
        })
        .collect();

    *params = producer;
    Ok(RtpMapping { codecs, encodings })
}

/// The parameters every consumer of a producer starts from: router payload types and codec
/// data with the producer's codec parameters, each media codec followed by the router's RTX
/// codec for it (if any), the router's header extensions of `kind` that can be sent
/// (`sendrecv`/`sendonly`), the producer's encodings with mapped SSRCs (`rid`, `rtx` and
/// `codecPayloadType` dropped), and `rtcp { cname, reducedSize: true }`.
///
/// Errors (TypeError) when `mapping` or `caps` do not belong to `params`.
pub fn get_consumable_rtp_parameters(
    kind: MediaKind,
    params: &RtpParameters,
    caps: &RtpCapabilities,
    mapping: &RtpMapping,
) -> Result<RtpParameters> {
    let cap_codecs = caps_codecs(caps);
    let mut codecs = Vec::new();

    for codec in params.codecs.iter().filter(|codec| !is_rtx_codec(*codec)) {
        let mapped_pt = mapping
            .codecs
            .iter()
            .find(|entry| entry.payload_type == codec.payload_type)
            .map(|entry| entry.mapped_payload_type)
            .ok_or_else(|| Error::type_error(format!("no mapping for codec PT {}", codec.payload_type)))?;
        let cap = cap_codecs
            .iter()
            .find(|cap| cap.preferred_payload_type == Some(mapped_pt))
            .ok_or_else(|| Error::type_error(format!("no capability codec with PT {mapped_pt}")))?;
        codecs.push(RtpCodecParameters {
            mime_type: cap.mime_type.clone(),
            payload_type: mapped_pt,
            clock_rate: cap.clock_rate,
            channels: cap.channels,
            // The producer's codec parameters are kept.
            parameters: codec.parameters.clone(),
            rtcp_feedback: cap.rtcp_feedback.clone(),
        });
        let rtx = cap_codecs.iter().find(|cap| is_rtx_codec(*cap) && cap.apt() == Some(u64::from(mapped_pt)));
        if let Some(rtx) = rtx {
            let payload_type = rtx
                .preferred_payload_type
                .ok_or_else(|| Error::type_error("capability codec without preferredPayloadType"))?;
            codecs.push(RtpCodecParameters {
                mime_type: rtx.mime_type.clone(),
                payload_type,
                clock_rate: rtx.clock_rate,
                channels: None,
                parameters: rtx.parameters.clone(),
                rtcp_feedback: rtx.rtcp_feedback.clone(),
            });
        }
    }

    let header_extensions = caps
        .header_extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|ext| {
            ext.kind == kind
                && matches!(
                    ext.direction,
                    Some(RtpHeaderExtensionDirection::Sendrecv | RtpHeaderExtensionDirection::Sendonly)
                )
        })
        .map(|ext| RtpHeaderExtensionParameters {
            uri: ext.uri.clone(),
            id: ext.preferred_id,
            encrypt: ext.preferred_encrypt,
            parameters: Some(CodecParameters::new()),
        })
        .collect();

    let producer_encodings = params.encodings.as_deref().unwrap_or_default();
    if producer_encodings.len() > mapping.encodings.len() {
        return Err(Error::type_error("mapping has fewer encodings than the parameters"));
    }
    let encodings = producer_encodings
        .iter()
        .zip(&mapping.encodings)
        .map(|(encoding, mapped)| RtpEncodingParameters {
            ssrc: Some(mapped.mapped_ssrc),
            rid: None,
            rtx: None,
            codec_payload_type: None,
            ..encoding.clone()
        })
        .collect();

    let cname = params.rtcp.as_ref().and_then(|rtcp| rtcp.cname.clone());
    Ok(RtpParameters {
        mid: None,
        codecs,
        header_extensions: Some(header_extensions),
        encodings: Some(encodings),
        rtcp: Some(RtcpParameters { cname, reduced_size: Some(true) }),
        msid: None,
    })
}

/// `canConsume`: whether an endpoint with `caps` can receive at least one media codec of
/// `consumable` (strict matching; the first matching codec must not be RTX). Errors
/// (TypeError) when `caps` fail validation.
pub fn can_consume(consumable: &RtpParameters, caps: &RtpCapabilities) -> Result<bool> {
    let mut caps = caps.clone();
    validate_rtp_capabilities(&mut caps)?;
    let cap_codecs = caps_codecs(&caps);
    let first_matching =
        consumable.codecs.iter().find(|codec| cap_codecs.iter().any(|cap| match_codecs(cap, *codec, true)));
    Ok(first_matching.is_some_and(|codec| !is_rtx_codec(codec)))
}

fn has_header_extension(list: &[RtpHeaderExtensionParameters], uri: &str) -> bool {
    list.iter().any(|ext| ext.uri == uri)
}

/// Keeps transport-cc over REMB: drops `goog-remb` when transport-wide-cc is negotiated,
/// `transport-cc` when only abs-send-time is, and both when neither is.
fn reduce_congestion_feedback(codecs: &mut [RtpCodecParameters], exts: &[RtpHeaderExtensionParameters]) {
    let drop: &[&str] = if has_header_extension(exts, uri::TRANSPORT_WIDE_CC) {
        &["goog-remb"]
    } else if has_header_extension(exts, uri::ABS_SEND_TIME) {
        &["transport-cc"]
    } else {
        &["transport-cc", "goog-remb"]
    };
    for codec in codecs {
        if let Some(feedback) = codec.rtcp_feedback.as_mut() {
            feedback.retain(|fb| !drop.contains(&fb.r#type.as_str()));
        }
    }
}

fn has_parameter(fb: &RtcpFeedback) -> bool {
    fb.parameter.as_deref().is_some_and(|p| !p.is_empty())
}

/// `getConsumerRtpParameters`: what a consumer sends to an endpoint with `remote_caps`.
///
/// Codecs are the consumable ones the remote matches strictly (RTX only with `enable_rtx`,
/// and only when its media codec stays), with the remote's rtcpFeedback (plain `nack` only
/// with `enable_rtx`) reduced to one congestion control; UnsupportedError
/// `no compatible media codecs` when no media codec is left first. Header extensions are the
/// consumable ones the remote has with the same id.
///
/// Encodings: not `pipe`: one encoding `{ ssrc, rtx: { ssrc: ssrc + 1 }? , scalabilityMode?,
/// maxBitrate? }` (simulcast becomes `L<encodings>T<temporal layers>`; `rtx_ssrc` is unused,
/// as mediasoup derives it). `pipe`: the consumable encodings with SSRCs `ssrc + i` and RTX
/// SSRCs `rtx_ssrc + i`.
pub fn get_consumer_rtp_parameters(
    consumable: &RtpParameters,
    remote_caps: &RtpCapabilities,
    pipe: bool,
    enable_rtx: bool,
    ssrc: u32,
    rtx_ssrc: u32,
) -> Result<RtpParameters> {
    let mut cap_codecs = caps_codecs(remote_caps).to_vec();
    for cap in &mut cap_codecs {
        validate_rtp_codec_capability(cap)?;
    }
    let mut codecs: Vec<RtpCodecParameters> = Vec::new();
    for codec in &consumable.codecs {
        if !enable_rtx && is_rtx_codec(codec) {
            continue;
        }
        let Some(cap) = cap_codecs.iter().find(|cap| match_codecs(*cap, codec, true)) else {
            continue;
        };
        let feedback = cap
            .rtcp_feedback
            .iter()
            .flatten()
            .filter(|fb| enable_rtx || fb.r#type != "nack" || has_parameter(fb))
            .cloned()
            .collect();
        codecs.push(RtpCodecParameters { rtcp_feedback: Some(feedback), ..codec.clone() });
    }

    // Drop RTX codecs whose media codec did not make it.
    let media_pts: Vec<u64> =
        codecs.iter().filter(|codec| !is_rtx_codec(*codec)).map(|codec| u64::from(codec.payload_type)).collect();
    codecs.retain(|codec| !is_rtx_codec(codec) || codec.apt().is_some_and(|apt| media_pts.contains(&apt)));
    let rtx_supported = codecs.iter().any(is_rtx_codec);

    if codecs.first().is_none_or(is_rtx_codec) {
        return Err(Error::unsupported("no compatible media codecs"));
    }

    let remote_exts = remote_caps.header_extensions.as_deref().unwrap_or_default();
    let header_extensions: Vec<RtpHeaderExtensionParameters> = consumable
        .header_extensions
        .iter()
        .flatten()
        .filter(|ext| remote_exts.iter().any(|cap| cap.preferred_id == ext.id && cap.uri == ext.uri))
        .cloned()
        .collect();
    reduce_congestion_feedback(&mut codecs, &header_extensions);

    let consumable_encodings = consumable.encodings.as_deref().unwrap_or_default();
    let encodings = if pipe {
        pipe_encodings(consumable_encodings, rtx_supported, ssrc, rtx_ssrc)
    } else {
        vec![single_encoding(consumable_encodings, rtx_supported, ssrc)]
    };

    Ok(RtpParameters {
        mid: None,
        codecs,
        header_extensions: Some(header_extensions),
        encodings: Some(encodings),
        rtcp: consumable.rtcp.clone(),
        msid: None,
    })
}

/// The one encoding of a non-pipe consumer.
fn single_encoding(consumable: &[RtpEncodingParameters], rtx_supported: bool, ssrc: u32) -> RtpEncodingParameters {
    let mut scalability_mode =
        consumable.iter().find_map(|encoding| encoding.scalability_mode.clone().filter(|mode| !mode.is_empty()));
    // Simulcast: each stream becomes a spatial layer.
    if consumable.len() > 1 {
        let temporal = parse_scalability_mode(scalability_mode.as_deref()).temporal_layers;
        scalability_mode = Some(format!("L{}T{}", consumable.len(), temporal));
    }
    let max_bitrate = consumable.iter().filter_map(|encoding| encoding.max_bitrate).max();
    RtpEncodingParameters {
        ssrc: Some(ssrc),
        rtx: rtx_supported.then(|| RtxParameters { ssrc: ssrc.wrapping_add(1) }),
        scalability_mode,
        max_bitrate: max_bitrate.filter(|&bitrate| bitrate > 0),
        ..RtpEncodingParameters::default()
    }
}

/// The consumable encodings renumbered from `ssrc` (and `rtx_ssrc` when `with_rtx`).
fn pipe_encodings(
    consumable: &[RtpEncodingParameters],
    with_rtx: bool,
    ssrc: u32,
    rtx_ssrc: u32,
) -> Vec<RtpEncodingParameters> {
    consumable
        .iter()
        .zip(0u32..)
        .map(|(encoding, i)| RtpEncodingParameters {
            ssrc: Some(ssrc.wrapping_add(i)),
            rtx: with_rtx.then(|| RtxParameters { ssrc: rtx_ssrc.wrapping_add(i) }),
            ..encoding.clone()
        })
        .collect()
}

/// `getPipeConsumerRtpParameters`: what a consumer on a pipe transport sends to the other
/// router. All consumable codecs (RTX only with `enable_rtx`) keeping only `nack pli`,
/// `ccm fir` and (with `enable_rtx`) plain `nack`; header extensions without MID,
/// abs-send-time and transport-wide-cc; encodings renumbered from `ssrc` / `rtx_ssrc`.
pub fn get_pipe_consumer_rtp_parameters(
    consumable: &RtpParameters,
    enable_rtx: bool,
    ssrc: u32,
    rtx_ssrc: u32,
) -> RtpParameters {
    let codecs = consumable
        .codecs
        .iter()
        .filter(|codec| enable_rtx || !is_rtx_codec(*codec))
        .map(|codec| {
            let feedback = codec
                .rtcp_feedback
                .iter()
                .flatten()
                .filter(|fb| {
                    let parameter = fb.parameter.as_deref().unwrap_or("");
                    (fb.r#type == "nack" && parameter == "pli")
                        || (fb.r#type == "ccm" && parameter == "fir")
                        || (enable_rtx && fb.r#type == "nack" && parameter.is_empty())
                })
                .cloned()
                .collect();
            RtpCodecParameters { rtcp_feedback: Some(feedback), ..codec.clone() }
        })
        .collect();
    let header_extensions = consumable
        .header_extensions
        .iter()
        .flatten()
        .filter(|ext| ![uri::MID, uri::ABS_SEND_TIME, uri::TRANSPORT_WIDE_CC].contains(&ext.uri.as_str()))
        .cloned()
        .collect();
    let encodings = pipe_encodings(consumable.encodings.as_deref().unwrap_or_default(), enable_rtx, ssrc, rtx_ssrc);
    RtpParameters {
        mid: None,
        codecs,
        header_extensions: Some(header_extensions),
        encodings: Some(encodings),
        rtcp: consumable.rtcp.clone(),
        msid: None,
    }
}
