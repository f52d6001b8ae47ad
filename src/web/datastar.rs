//! Everything about the datastar wire protocol (client 1.0.0-beta.11) in one place:
//! event names, data-line keys, keep-alives and the SSE response headers. A move to
//! datastar 1.0 changes this module only.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_core::Stream;
use tokio::sync::mpsc;

pub const MERGE_FRAGMENTS: &str = "datastar-merge-fragments";
pub const MERGE_SIGNALS: &str = "datastar-merge-signals";

/// A comment line: keeps proxies and the browser from timing the stream out.
pub const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// How a fragment is merged into the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Replace the element with the same id, keeping what did not change (the default).
    Morph,
    /// Insert as the first child of the selected element.
    Prepend,
}

/// One `datastar-merge-fragments` event. `html` must already be escaped (it comes from
/// a template); `id` becomes the SSE event id a reconnecting client sends back.
pub fn merge_fragments(
    html: &str,
    selector: Option<&str>,
    mode: MergeMode,
    id: Option<i64>,
) -> String {
    let mut event = format!("event: {MERGE_FRAGMENTS}\n");
    if let Some(id) = id {
        event.push_str(&format!("id: {id}\n"));
    }
    if let Some(selector) = selector {
        event.push_str(&format!("data: selector {selector}\n"));
    }
    if mode == MergeMode::Prepend {
        event.push_str("data: mergeMode prepend\n");
    }
    for line in html.lines() {
        event.push_str("data: fragments ");
        event.push_str(line);
        event.push('\n');
    }
    event.push('\n');
    event
}

/// One `datastar-merge-signals` event. The client evaluates signals as JavaScript and
/// reads only one line, so they are always compact JSON from serde.
pub fn merge_signals(signals: &serde_json::Value) -> String {
    format!("event: {MERGE_SIGNALS}\ndata: signals {signals}\n\n")
}

/// A short SSE response carrying `events` (an action's answer: the panes it changed).
pub fn sse_response(events: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        events,
    )
        .into_response()
}

/// The signals a datastar action sends: the `datastar` query parameter on GET, the
/// body on other methods. `None` when there is none.
pub fn signals_in_query(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "datastar")
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'+' => Some(b' '),
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1])
                .zip(hex(bytes[i + 2]))
                .map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match decoded {
            Some(b) if bytes[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            Some(b) => {
                out.push(b);
                i += 1;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An SSE response fed by the returned sender. The stream ends when the sender is
/// dropped; when the client goes away the next `send` fails, so the producing task
/// notices and stops.
pub fn sse_channel() -> (mpsc::Sender<String>, Response) {
    let (tx, rx) = mpsc::channel(64);
    let response = (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(Events(rx)),
    )
        .into_response();
    (tx, response)
}

struct Events(mpsc::Receiver<String>);

impl Stream for Events {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|e| Ok(Bytes::from(e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_follow_the_beta_wire_format() {
        let event = merge_fragments(
            "<li id=\"n-1\">\n  hi\n</li>",
            Some("#list"),
            MergeMode::Prepend,
            Some(7),
        );
        assert_eq!(
            event,
            "event: datastar-merge-fragments\nid: 7\ndata: selector #list\ndata: mergeMode prepend\n\
             data: fragments <li id=\"n-1\">\ndata: fragments   hi\ndata: fragments </li>\n\n"
        );
        let plain = merge_fragments("<div id=\"a\"></div>", None, MergeMode::Morph, None);
        assert_eq!(
            plain,
            "event: datastar-merge-fragments\ndata: fragments <div id=\"a\"></div>\n\n"
        );
    }

    #[test]
    fn signals_come_from_the_datastar_query_parameter() {
        let query = "x=1&datastar=%7B%22page%22%3A%22p-1%22%2C%22a%22%3A%22b+c%25%22%7D";
        assert_eq!(
            signals_in_query(Some(query)).unwrap(),
            r#"{"page":"p-1","a":"b c%"}"#
        );
        assert_eq!(signals_in_query(Some("x=1")), None);
        assert_eq!(signals_in_query(None), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn signals_are_one_line_of_json() {
        let event = merge_signals(&serde_json::json!({"a": "x\ny", "b": [1, 2]}));
        assert_eq!(
            event,
            "event: datastar-merge-signals\ndata: signals {\"a\":\"x\\ny\",\"b\":[1,2]}\n\n"
        );
        assert_eq!(event.matches('\n').count(), 3);
    }
}
