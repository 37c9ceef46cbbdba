//! `scalabilityMode` strings (`L1T3`, `S2T3`, `L3T3_KEY`): mediasoup's `parseScalabilityMode`.

/// Layers described by a scalability mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalabilityMode {
    pub spatial_layers: u8,
    pub temporal_layers: u8,
    /// K-SVC: spatial layers depend on each other only on key frames (`_KEY`).
    pub ksvc: bool,
}

impl Default for ScalabilityMode {
    fn default() -> Self {
        ScalabilityMode { spatial_layers: 1, temporal_layers: 1, ksvc: false }
    }
}

/// Reads a layer count of one or two digits, the first not zero. Returns the value and the rest.
/// Like mediasoup's regular expression, a third digit makes the whole mode invalid: the
/// count must be followed by the next expected character.
fn layer_count(s: &str) -> Option<(u8, &str)> {
    let bytes = s.as_bytes();
    let first = *bytes.first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    match bytes.get(1) {
        Some(second) if second.is_ascii_digit() => Some(((first - b'0') * 10 + (second - b'0'), &s[2..])),
        _ => Some((first - b'0', &s[1..])),
    }
}

/// Parses `^[LS](\d{1,2})T(\d{1,2})(_KEY)?` (a prefix match, as mediasoup's). Anything else,
/// including `None`, gives one spatial and one temporal layer.
pub fn parse_scalability_mode(mode: Option<&str>) -> ScalabilityMode {
    parse(mode.unwrap_or("")).unwrap_or_default()
}

fn parse(mode: &str) -> Option<ScalabilityMode> {
    let rest = mode.strip_prefix('L').or_else(|| mode.strip_prefix('S'))?;
    let (spatial, rest) = layer_count(rest)?;
    // Backtracking to a one digit count cannot help: its next character would be a digit, not 'T'.
    let rest = rest.strip_prefix('T')?;
    let (temporal, rest) = layer_count(rest)?;
    Some(ScalabilityMode { spatial_layers: spatial, temporal_layers: temporal, ksvc: rest.starts_with("_KEY") })
}
