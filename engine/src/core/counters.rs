//! Drop counters by reason. A dropped packet is never an error: it is counted here and the shard
//! moves on. Exposed per shard in `dump()` and metrics.

use serde::Serialize;

/// Why a datagram or packet did not go further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Datagram on a socket no transport owns (closed meanwhile).
    UnknownSocket,
    /// First byte matches no protocol we handle on this transport (STUN/DTLS on plain, garbage).
    UnknownProtocol,
    /// Source address is not the connected remote of the transport.
    UnknownSource,
    /// RTP header does not parse.
    MalformedRtp,
    /// RTCP compound does not parse (items before the bad one were processed).
    MalformedRtcp,
    /// No producer for the SSRC / MID / RID.
    ProducerNotFound,
    /// Payload type not in the producer's codecs.
    UnknownPayloadType,
    /// Producer is paused.
    ProducerPaused,
    /// Consumer paused, producer paused or transport not connected.
    ConsumerInactive,
    /// Video consumer waiting for a key frame after (re)start.
    NotAKeyFrame,
    /// Consumer output sequence manager rejected the packet (too old / duplicate).
    SequenceRejected,
    /// Transport has no remote address yet.
    NoRemote,
    /// RTX packet without a usable original sequence number.
    MalformedRtx,
}

/// Counters for each [`DropReason`], snake_case in JSON.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DropCounters {
    pub unknown_socket: u64,
    pub unknown_protocol: u64,
    pub unknown_source: u64,
    pub malformed_rtp: u64,
    pub malformed_rtcp: u64,
    pub producer_not_found: u64,
    pub unknown_payload_type: u64,
    pub producer_paused: u64,
    pub consumer_inactive: u64,
    pub not_a_key_frame: u64,
    pub sequence_rejected: u64,
    pub no_remote: u64,
    pub malformed_rtx: u64,
}

impl DropCounters {
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::UnknownSocket => &mut self.unknown_socket,
            DropReason::UnknownProtocol => &mut self.unknown_protocol,
            DropReason::UnknownSource => &mut self.unknown_source,
            DropReason::MalformedRtp => &mut self.malformed_rtp,
            DropReason::MalformedRtcp => &mut self.malformed_rtcp,
            DropReason::ProducerNotFound => &mut self.producer_not_found,
            DropReason::UnknownPayloadType => &mut self.unknown_payload_type,
            DropReason::ProducerPaused => &mut self.producer_paused,
            DropReason::ConsumerInactive => &mut self.consumer_inactive,
            DropReason::NotAKeyFrame => &mut self.not_a_key_frame,
            DropReason::SequenceRejected => &mut self.sequence_rejected,
            DropReason::NoRemote => &mut self.no_remote,
            DropReason::MalformedRtx => &mut self.malformed_rtx,
        };
        *c += 1;
    }

    pub fn total(&self) -> u64 {
        self.unknown_socket
            + self.unknown_protocol
            + self.unknown_source
            + self.malformed_rtp
            + self.malformed_rtcp
            + self.producer_not_found
            + self.unknown_payload_type
            + self.producer_paused
            + self.consumer_inactive
            + self.not_a_key_frame
            + self.sequence_rejected
            + self.no_remote
            + self.malformed_rtx
    }
}
