//! ORTC rules (filled in by the ORTC work).
