//! Everything about the datastar wire protocol (client 1.0.0-beta.11) in one place:
//! event names, data-line keys, keep-alives and the SSE response headers. A move to
//! datastar 1.0 changes this module only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Query;
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
    for line in sse_lines(html) {
        event.push_str("data: fragments ");
        event.push_str(line);
        event.push('\n');
    }
    event.push('\n');
    event
}

/// Splits text at every line end an SSE parser knows: `\r\n`, `\r` and `\n`. Each
/// part can then go on one `data:` line without ending the event early, whatever the
/// text holds (`str::lines` leaves a lone `\r` inside a line, and a browser reads it
/// as a line end).
pub fn sse_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text).filter(|t| !t.is_empty());
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                // Like `str::lines`, a line end at the very end starts no new line.
                rest = Some(&text[at + skip..]).filter(|r| !r.is_empty());
                Some(&text[..at])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
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

/// The signals a datastar GET action sends, in the `datastar` query parameter (other
/// methods send them as the body). `None` when there is none.
pub fn signals_in_query(uri: &axum::http::Uri) -> Option<String> {
    let Query(mut params) = Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
    params.remove("datastar")
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
    fn no_text_can_end_an_event_early() {
        // Each line end an SSE parser knows, alone and in the attack that once ran
        // script in a page: whatever the text, the event keeps its one `event:` line,
        // every other line is a `data: fragments` line, and only the end is blank.
        let attack = "x\r\revent: datastar-merge-signals\rdata: signals {a: 1}\r\r.";
        for text in [
            "a\rb", "a\nb", "a\r\nb", "a\n\rb", "\r\r", "\n\n", "\r\n\r\n", attack,
        ] {
            let html = format!("<p id=\"x\">{text}</p>");
            let event = merge_fragments(&html, None, MergeMode::Morph, None);
            let body = event
                .strip_suffix("\n\n")
                .expect("one blank line at the end");
            let mut lines = body.split(['\r', '\n']);
            assert_eq!(lines.next(), Some("event: datastar-merge-fragments"));
            for line in lines {
                assert!(
                    line.starts_with("data: fragments "),
                    "{text:?} gave {line:?}"
                );
            }
            assert!(!body.contains('\r'), "{text:?}");
        }
        assert_eq!(
            sse_lines("a\r\nb\rc\n\nd\n").collect::<Vec<_>>(),
            ["a", "b", "c", "", "d"]
        );
        for c in crate::domain::text::HOSTILE {
            let text = format!("<p id=\"x\">1{c}2</p>");
            let event = merge_fragments(&text, None, MergeMode::Morph, None);
            assert_eq!(event.matches("\n\n").count(), 1, "{c:?}");
            assert!(!event.contains('\r'), "{c:?}");
        }
    }

    #[test]
    fn signals_come_from_the_datastar_query_parameter() {
        let uri: axum::http::Uri =
            "/ui/stream?x=1&datastar=%7B%22page%22%3A%22p-1%22%2C%22a%22%3A%22b+c%25%C3%A9%22%7D"
                .parse()
                .unwrap();
        assert_eq!(
            signals_in_query(&uri).unwrap(),
            r#"{"page":"p-1","a":"b c%é"}"#
        );
        assert_eq!(signals_in_query(&"/ui/stream?x=1".parse().unwrap()), None);
        assert_eq!(signals_in_query(&"/ui/stream".parse().unwrap()), None);
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
