//! JSON-RPC 2.0 framing per PROTOCOL.md: requests in, responses, errors and notifications out.

use serde_json::{json, Value};
use shardsfu_engine::{Error, ErrorKind};

/// Not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON, but not a JSON-RPC request object (arrays, i.e. batches, included).
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Params missing or of the wrong type (`data.name` = `TypeError`).
pub const INVALID_PARAMS: i64 = -32602;
/// The engine refused the call (`data.name` = the mediasoup error class).
pub const ENGINE_ERROR: i64 = -32000;
/// Rate limit or message size exceeded.
pub const LIMIT_EXCEEDED: i64 = -32001;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    /// mediasoup's error class, when there is one.
    pub name: Option<&'static str>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>, name: Option<&'static str>) -> Self {
        RpcError { code, message: message.into(), name }
    }

    /// -32602 TypeError: a param is missing or of the wrong type.
    pub fn params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message, Some("TypeError"))
    }

    /// -32000 UnsupportedError.
    pub fn unsupported(message: impl Into<String>) -> Self {
        RpcError::new(ENGINE_ERROR, message, Some(ErrorKind::UnsupportedError.as_str()))
    }

    /// -32000 InvalidStateError.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        RpcError::new(ENGINE_ERROR, message, Some(ErrorKind::InvalidStateError.as_str()))
    }

    /// -32001 Error.
    pub fn limit(message: impl Into<String>) -> Self {
        RpcError::new(LIMIT_EXCEEDED, message, Some("Error"))
    }

    pub fn to_json(&self, id: &Value) -> String {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(name) = self.name {
            error["data"] = json!({ "name": name });
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error }).to_string()
    }
}

impl From<Error> for RpcError {
    fn from(e: Error) -> Self {
        RpcError::new(ENGINE_ERROR, e.message, Some(e.kind.as_str()))
    }
}

pub fn result_json(id: &Value, result: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string()
}

pub fn notification_json(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string()
}

/// One request taken apart; `id` is `None` for a client notification (answered with nothing).
#[derive(Debug)]
pub struct Request {
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// Parse one text frame. On error, the id to answer with (null when unknown) and the error.
pub fn parse_request(text: &str) -> Result<Request, (Value, RpcError)> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| (Value::Null, RpcError::new(PARSE_ERROR, format!("parse error: {e}"), None)))?;
    let invalid = |id: Value, why: &str| (id, RpcError::new(INVALID_REQUEST, format!("invalid request: {why}"), None));
    let Value::Object(mut obj) = value else {
        let why = if value.is_array() { "batches are not supported" } else { "not an object" };
        return Err(invalid(Value::Null, why));
    };
    let id = obj.remove("id");
    let answer_id = id.clone().unwrap_or(Value::Null);
    if let Some(id) = &id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err(invalid(Value::Null, "id must be a string, a number or null"));
        }
    }
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(answer_id, "jsonrpc must be \"2.0\""));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid(answer_id, "method must be a string")),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err((answer_id, RpcError::params("params must be an object (by-name parameters)"))),
    };
    Ok(Request { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_have_their_codes() {
        assert_eq!(parse_request("{").unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(parse_request("[]").unwrap_err().1.code, INVALID_REQUEST);
        assert_eq!(parse_request(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).unwrap_err().1.code, INVALID_REQUEST);
        let (id, e) = parse_request(r#"{"jsonrpc":"2.0","id":4,"method":"x","params":[1]}"#).unwrap_err();
        assert_eq!((id, e.code), (json!(4), INVALID_PARAMS));
        let r = parse_request(r#"{"jsonrpc":"2.0","id":"a","method":"worker.dump"}"#).unwrap();
        assert_eq!((r.id, r.method.as_str(), r.params), (Some(json!("a")), "worker.dump", json!({})));
    }

    #[test]
    fn engine_errors_keep_their_class() {
        let e: RpcError = Error::invalid_state("Router closed").into();
        let v: Value = serde_json::from_str(&e.to_json(&json!(3))).unwrap();
        assert_eq!(v["error"]["code"], ENGINE_ERROR);
        assert_eq!(v["error"]["data"]["name"], "InvalidStateError");
        assert_eq!(v["id"], 3);
    }
}
