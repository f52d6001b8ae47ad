//! Everything about the datastar wire protocol (client 1.0.0-beta.11) in one place:
//! event names, data-line keys and the signals a request carries. Events are axum's
//! SSE events, so the transport (framing, keep-alives, headers) is axum's; a move to
//! datastar 1.0 changes this module only.

use std::collections::HashMap;

use axum::extract::Query;
use axum::response::sse::Event;

pub const MERGE_FRAGMENTS: &str = "datastar-merge-fragments";
pub const MERGE_SIGNALS: &str = "datastar-merge-signals";

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
) -> Event {
    let mut data = String::with_capacity(html.len() + 64);
    if let Some(selector) = selector {
        data.push_str("selector ");
        data.push_str(selector);
        data.push('\n');
    }
    if mode == MergeMode::Prepend {
        data.push_str("mergeMode prepend\n");
    }
    for (i, line) in sse_lines(html).enumerate() {
        if i > 0 {
            data.push('\n');
        }
        data.push_str("fragments ");
        data.push_str(line);
    }
    let event = Event::default().event(MERGE_FRAGMENTS);
    let event = match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    };
    event.data(data)
}

/// A fragment that replaces the element with its id (the common case).
pub fn morph(html: &str) -> Event {
    merge_fragments(html, None, MergeMode::Morph, None)
}

/// Splits text at every line end an SSE parser knows: `\r\n`, `\r` and `\n`. Each
/// part then goes on its own `data:` line with its key, whatever the text holds
/// (`str::lines` leaves a lone `\r` inside a line, and a browser reads it as a line
/// end: the rest of the line would lose its key).
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
/// reads only one line, so they are always compact JSON from serde (which escapes
/// every line end).
pub fn merge_signals(signals: &serde_json::Value) -> Event {
    Event::default()
        .event(MERGE_SIGNALS)
        .data(format!("signals {signals}"))
}

/// The signals a datastar GET action sends, in the `datastar` query parameter (other
/// methods send them as the body). `None` when there is none.
pub fn signals_in_query(uri: &axum::http::Uri) -> Option<String> {
    let Query(mut params) = Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
    params.remove("datastar")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::live::wire;

    #[tokio::test]
    async fn fragments_follow_the_beta_wire_format() {
        let event = merge_fragments(
            "<li id=\"n-1\">\n  hi\n</li>",
            Some("#list"),
            MergeMode::Prepend,
            Some(7),
        );
        let plain = merge_fragments("<div id=\"a\"></div>", None, MergeMode::Morph, None);
        assert_eq!(
            wire(vec![event, plain]).await,
            "event: datastar-merge-fragments\nid: 7\ndata: selector #list\ndata: mergeMode prepend\n\
             data: fragments <li id=\"n-1\">\ndata: fragments   hi\ndata: fragments </li>\n\n\
             event: datastar-merge-fragments\ndata: fragments <div id=\"a\"></div>\n\n"
        );
    }

    #[tokio::test]
    async fn no_text_can_end_an_event_early() {
        // Each line end an SSE parser knows, alone and in the attack that once ran
        // script in a page: whatever the text, the event keeps its one `event:` line,
        // every other line is a `data: fragments` line, and only the end is blank.
        let attack = "x\r\revent: datastar-merge-signals\rdata: signals {a: 1}\r\r.";
        let mut texts: Vec<String> = [
            "a\rb", "a\nb", "a\r\nb", "a\n\rb", "\r\r", "\n\n", "\r\n\r\n", attack,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        texts.extend(
            crate::domain::text::HOSTILE
                .iter()
                .map(|c| format!("1{c}2")),
        );
        for text in texts {
            let html = format!("<p id=\"x\">{text}</p>");
            let wire = wire(vec![merge_fragments(&html, None, MergeMode::Morph, None)]).await;
            let body = wire
                .strip_suffix("\n\n")
                .expect("one blank line at the end");
            assert!(!body.contains('\r'), "{text:?}");
            let mut lines = body.split('\n');
            assert_eq!(lines.next(), Some("event: datastar-merge-fragments"));
            for line in lines {
                assert!(
                    line.starts_with("data: fragments "),
                    "{text:?} gave {line:?}"
                );
            }
        }
        assert_eq!(
            sse_lines("a\r\nb\rc\n\nd\n").collect::<Vec<_>>(),
            ["a", "b", "c", "", "d"]
        );
    }

    #[tokio::test]
    async fn signals_are_one_line_of_json() {
        let event = merge_signals(&serde_json::json!({"a": "x\ny\r", "b": [1, 2]}));
        assert_eq!(
            wire(vec![event]).await,
            "event: datastar-merge-signals\ndata: signals {\"a\":\"x\\ny\\r\",\"b\":[1,2]}\n\n"
        );
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
}
