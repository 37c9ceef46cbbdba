//! Drop counters by reason. A dropped packet is never an error: it is counted here and the shard
//! moves on. Exposed per shard in `dump()` and metrics.

use serde::Serialize;

/// One list of reasons: the enum, its counters (snake_case in JSON) and `count` come from it.
macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $field:ident, )*) => {
        /// Why a datagram or packet did not go further.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        /// Counters for each [`DropReason`], snake_case in JSON.
        #[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
        pub struct DropCounters {
            $( pub $field: u64, )*
        }

        impl DropCounters {
            #[inline]
            pub fn count(&mut self, reason: DropReason) {
                let c = match reason {
                    $( DropReason::$variant => &mut self.$field, )*
                };
                *c += 1;
            }

            pub fn total(&self) -> u64 {
                0 $( + self.$field )*
            }

            /// (snake_case name, count) of every reason, for metrics.
            pub fn by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( (stringify!($field), self.$field), )*].into_iter()
            }
        }
    };
}

drop_reasons! {
    /// Datagram on a socket no transport owns (closed meanwhile).
    UnknownSocket => unknown_socket,
    /// First byte matches no protocol we handle on this transport (STUN/DTLS on plain, garbage).
    UnknownProtocol => unknown_protocol,
    /// Source address is not the connected remote of the transport (or, for a WebRtcTransport,
    /// not a tuple ICE validated).
    UnknownSource => unknown_source,
    /// RTP header does not parse.
    MalformedRtp => malformed_rtp,
    /// RTCP compound does not parse (items before the bad one were processed).
    MalformedRtcp => malformed_rtcp,
    /// No producer for the SSRC / MID / RID.
    ProducerNotFound => producer_not_found,
    /// Payload type not in the producer's codecs.
    UnknownPayloadType => unknown_payload_type,
    /// Producer is paused.
    ProducerPaused => producer_paused,
    /// Consumer paused, producer paused or transport not connected.
    ConsumerInactive => consumer_inactive,
    /// Video consumer waiting for a key frame after (re)start.
    NotAKeyFrame => not_a_key_frame,
    /// Consumer output sequence manager rejected the packet (too old / duplicate).
    SequenceRejected => sequence_rejected,
    /// Transport has no remote address yet.
    NoRemote => no_remote,
    /// RTX packet without a usable original sequence number.
    MalformedRtx => malformed_rtx,
    /// RTX packet with no payload at all: padding a sender uses for bandwidth probing (mediasoup
    /// ignores these too).
    RtxPaddingOnly => rtx_padding_only,
    /// STUN that is malformed, for no transport here, or refused by ICE (wrong credentials:
    /// answered with an error response where STUN says so).
    StunRejected => stun_rejected,
    /// DTLS before `connect()`, after the association ended, or refused by the DTLS layer.
    DtlsRejected => dtls_rejected,
    /// SRTP/SRTCP before DTLS gave keys.
    SrtpNotReady => srtp_not_ready,
    /// SRTP/SRTCP authentication failed (wrong key, tampered, truncated).
    SrtpAuthFailed => srtp_auth_failed,
    /// SRTP/SRTCP replayed or too old for the replay window.
    SrtpReplay => srtp_replay,
    /// SRTP/SRTCP refused for another reason (malformed, too many SSRCs).
    SrtpOther => srtp_other,
    /// A key frame request or score update for another shard, while `MAX_LOSSY_BACKLOG` such
    /// messages already waited for that shard (it does not drain its ring). Pause, resume and
    /// close are never dropped.
    ShardCommandBacklog => shard_command_backlog,
}
