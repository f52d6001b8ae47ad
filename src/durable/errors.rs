//! How a refusal crosses Restate: a `TerminalError` whose code is the HTTP status and
//! whose message starts with the API's snake_case error code, so the web role can
//! give the client the same error the handler decided on.

use restate_sdk::errors::TerminalError;

/// Builds the terminal error for a refusal the client should see as `status` + `code`.
pub fn refusal(status: u16, code: &str, message: impl std::fmt::Display) -> TerminalError {
    TerminalError::new_with_code(status, format!("{code}: {message}"))
}

/// Splits a terminal error message into `(code, message)` when it carries a code.
pub fn split_code(message: &str) -> (Option<&str>, &str) {
    match message.split_once(": ") {
        Some((code, rest))
            if !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            (Some(code), rest)
        }
        _ => (None, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        let e = refusal(409, "out_of_stock", "only 3 left");
        assert_eq!(e.code(), 409);
        assert_eq!(
            split_code(e.message()),
            (Some("out_of_stock"), "only 3 left")
        );
    }

    #[test]
    fn messages_without_a_code_stay_whole() {
        assert_eq!(split_code("boom"), (None, "boom"));
        assert_eq!(split_code("Not Found: x"), (None, "Not Found: x"));
        assert_eq!(split_code(": x"), (None, ": x"));
    }
}
