//! RTP/RTCP packet layer: zero-copy RTP views and header rewrite, RTCP compound parse and build,
//! sequence managers, retransmission buffers, loss tracking and RTCP statistics.
//!
//! Everything here is pure functions and small state machines: no I/O, no clock reads (every
//! entry point that needs time takes `now`), no allocation per packet.

pub mod nack;
pub mod packet;
pub mod retransmission;
pub mod seq;
pub mod writer;

pub use nack::{NackGenerator, DEFAULT_RTT, MAX_NACK_PACKETS, MAX_NACK_RETRIES};
pub use packet::{classify, is_rtcp, parse_rtp, ExtIter, PacketKind, RtpError, RtpHeader};
pub use retransmission::{
    InsertOutcome, RetransmissionBuffer, StoredPacket, MAX_PACKET_LEN, MAX_SLOTS,
};
pub use seq::{SeqManager, TsOffset, MAX_SEQ_CHANGES, MAX_SEQ_REORDER};
pub use writer::{
    rewrite_in_place, write_header, write_rtx_header, ExtensionsBuilder, HeaderFields,
    MAX_EXTENSIONS_LEN, MAX_HEADER_LEN,
};
