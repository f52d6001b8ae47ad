//! Free text that arrives from outside (reasons, transaction ids, names): parsed once at
//! the boundary so no stored string can carry a character that breaks a line-based
//! format downstream (SSE, logs, markdown) or hides what it says (bidi overrides).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Characters no free-text field may hold: C0/C1 controls (NUL, CR, LF, ESC, DEL, NEL,
/// …) except where a field allows LF, the Unicode line and paragraph separators, and
/// the invisible format characters that make text read other than it is or hide what
/// it holds: bidi marks, embeddings, overrides and isolates (U+061C, U+200E/F,
/// U+202A–E, U+2066–9), zero-width characters and joiners (U+200B–D, U+2060–4,
/// U+FEFF), the soft hyphen, the Mongolian vowel separator, interlinear annotations
/// and tag characters.
pub fn is_forbidden(c: char, allow_newline: bool) -> bool {
    (c.is_control() && !(allow_newline && c == '\n'))
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}')
}

/// Trims `text` and checks it: 1..=`max_chars` characters, none of them forbidden.
/// `field` names the field in the error.
pub fn parse_text(
    field: &str,
    text: &str,
    max_chars: usize,
    allow_newline: bool,
) -> Result<String, String> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(format!("{field} must be 1-{max_chars} characters"));
    }
    if let Some(c) = text.chars().find(|&c| is_forbidden(c, allow_newline)) {
        let allowed = if allow_newline {
            " (line breaks are plain \\n)"
        } else {
            " (it is one line)"
        };
        return Err(format!(
            "{field} must not contain control or invisible characters such as U+{:04X}{allowed}",
            u32::from(c)
        ));
    }
    Ok(text.to_owned())
}

/// Declares a one-line free-text newtype with its parse, serde and display.
macro_rules! one_line_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(text: &str) -> Result<$name, String> {
                parse_text($field, text, Self::MAX_CHARS, false).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

one_line_text!(
    /// Why a payment was declined, an order rejected or cancelled: one line, 1-500 characters.
    Reason,
    "reason",
    500
);

one_line_text!(
    /// A person's display name: one line, 1-100 characters.
    DisplayName,
    "name",
    100
);

/// A payment gateway's transaction id: 1-128 printable ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TransactionId(String);

impl TransactionId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(text: &str) -> Result<TransactionId, String> {
        let ok =
            (1..=Self::MAX_LEN).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(TransactionId(text.to_owned()))
        } else {
            Err(format!(
                "transaction_id must be 1-{} printable ASCII characters without spaces",
                Self::MAX_LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TransactionId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TransactionId::parse(&s)
    }
}

impl From<TransactionId> for String {
    fn from(v: TransactionId) -> String {
        v.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every character a line-based format or a reader could trip over (for tests).
#[cfg(test)]
pub(crate) const HOSTILE: [char; 22] = [
    '\r',
    '\n',
    '\0',
    '\t',
    '\u{7}',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{2028}',
    '\u{2029}',
    '\u{202e}',
    '\u{2066}',
    '\u{b}',
    '\u{c}',
    '\u{200b}',
    '\u{200e}',
    '\u{200f}',
    '\u{061c}',
    '\u{feff}',
    '\u{2060}',
    '\u{00ad}',
    '\u{e0041}',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_clean_line() {
        assert_eq!(
            Reason::parse("  card expired ").unwrap().as_str(),
            "card expired"
        );
        assert!(Reason::parse("Ünïcödé and <b>markup</b> are text").is_ok());
        assert!(Reason::parse(&"ä".repeat(500)).is_ok());
        assert!(Reason::parse(&"a".repeat(501)).is_err());
        assert!(Reason::parse("   ").is_err());
        for c in HOSTILE {
            let text = format!("x{c}y");
            assert!(Reason::parse(&text).is_err(), "{text:?}");
            assert!(DisplayName::parse(&text).is_err(), "{text:?}");
        }
        // The injection that once broke the SSE framing.
        let attack = "x\r\revent: datastar-merge-signals\rdata: signals {a: 1}\r\r.";
        assert!(Reason::parse(attack).is_err());
        assert!(serde_json::from_str::<Reason>("\"a\\rb\"").is_err());
        assert_eq!(
            serde_json::from_str::<Reason>("\"fine\"").unwrap().as_str(),
            "fine"
        );
    }

    #[test]
    fn multi_line_text_allows_only_plain_newlines() {
        assert!(parse_text("address", "a\nb", 10, true).is_ok());
        for c in HOSTILE.into_iter().filter(|&c| c != '\n') {
            assert!(
                parse_text("address", &format!("a{c}b"), 10, true).is_err(),
                "{c:?}"
            );
        }
        let err = parse_text("address", "a\r\nb", 10, true).unwrap_err();
        assert!(err.contains("U+000D"), "{err}");
    }

    #[test]
    fn transaction_ids() {
        assert!(TransactionId::parse("txn-1_A.b:c/d").is_ok());
        assert!(TransactionId::parse(&"a".repeat(128)).is_ok());
        for bad in ["", "a b", "a\rb", "a\0", "ü", &"a".repeat(129)] {
            assert!(TransactionId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
