//! RTP/RTCP packet layer (filled in by the RTP work).
