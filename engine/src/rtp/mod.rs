//! RTP/RTCP packet layer: zero-copy RTP views and header rewrite, RTCP compound parse and build,
//! sequence managers, retransmission buffers, loss tracking and RTCP statistics.
//!
//! Everything here is pure functions and small state machines: no I/O, no clock reads (every
//! entry point that needs time takes `now`), no allocation per packet.

pub mod nack;
pub mod packet;
pub mod retransmission;
pub mod rtcp;
pub mod rtcp_build;
pub mod score;
pub mod seq;
pub mod stats;
pub mod writer;

pub use nack::{NackGenerator, DEFAULT_RTT, MAX_NACK_PACKETS, MAX_NACK_RETRIES};
pub use packet::{classify, is_rtcp, parse_rtp, ExtIter, PacketKind, RtpError, RtpHeader};
pub use retransmission::{InsertOutcome, RetransmissionBuffer, StoredPacket, MAX_PACKET_LEN, MAX_SLOTS};
pub use rtcp::{
    parse_compound, sdes_cname, FirEntries, NackPairs, ReportBlock, ReportBlocks, RtcpError, RtcpItem, SenderInfo,
    Ssrcs,
};
pub use rtcp_build::{write_bye, write_fir, write_nack, write_pli, write_remb, write_rr, write_sdes_cname, write_sr};
pub use score::{interval_score, Score, MAX_SCORE, SCORE_HISTORY};
pub use seq::{SeqManager, TsOffset, MAX_SEQ_CHANGES, MAX_SEQ_REORDER};
pub use stats::{rtt_from_report, NtpTime, ReceiveStats, SendStats};
pub use writer::{
    rewrite_in_place, write_header, write_rtx_header, ExtensionsBuilder, HeaderFields, MAX_EXTENSIONS_LEN,
    MAX_HEADER_LEN,
};
