//! DirectTransport packets travel in JSON as standard base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(text).map_err(|e| e.to_string())
}
