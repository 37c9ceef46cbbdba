//! scalabilityMode parsing, as mediasoup's parseScalabilityMode.

use shardsfu_engine::ortc::{parse_scalability_mode, ScalabilityMode};

fn mode(spatial_layers: u8, temporal_layers: u8, ksvc: bool) -> ScalabilityMode {
    ScalabilityMode { spatial_layers, temporal_layers, ksvc }
}

#[test]
fn parses_valid_modes() {
    let cases = [
        ("L1T3", mode(1, 3, false)),
        ("L3T3", mode(3, 3, false)),
        ("S2T3", mode(2, 3, false)),
        ("L3T3_KEY", mode(3, 3, true)),
        ("L2T2_KEY_SHIFT", mode(2, 2, true)),
        ("L12T10", mode(12, 10, false)),
        // A prefix match, as mediasoup's regular expression is not anchored at the end.
        ("L1T3h", mode(1, 3, false)),
        ("L1T123", mode(1, 12, false)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_scalability_mode(Some(text)), expected, "{text}");
    }
}

#[test]
fn invalid_modes_are_one_layer() {
    for text in ["", "T3", "L0T1", "L1T0", "LxT3", "L123T3", "l1t3", "X1T3", "L1"] {
        assert_eq!(parse_scalability_mode(Some(text)), mode(1, 1, false), "{text}");
    }
    assert_eq!(parse_scalability_mode(None), ScalabilityMode::default());
}
