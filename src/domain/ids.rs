//! Identifiers that arrive from outside: product ids and SKUs, user names.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// FNV-1a, a hash that stays the same across builds and releases (std's may not): for
/// ids and numbers derived from other ids.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A product's numeric id (the catalog's primary key), always positive.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ProductId(i64);

impl ProductId {
    pub fn new(id: i64) -> Option<ProductId> {
        (id > 0).then_some(ProductId(id))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a client names a product: by numeric id (`3`) or by SKU (`P003`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProductRef {
    Id(ProductId),
    Sku(String),
}

impl ProductRef {
    pub const MAX_SKU_LEN: usize = 32;

    pub fn parse(text: &str) -> Result<ProductRef, String> {
        let malformed = || {
            format!(
                "product id must be a positive number or a SKU: a letter, then letters, digits and dashes (at most {} characters)",
                Self::MAX_SKU_LEN
            )
        };
        if text.is_empty() || text.len() > Self::MAX_SKU_LEN {
            return Err(malformed());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<i64>()
                .ok()
                .and_then(ProductId::new)
                .map(ProductRef::Id)
                .ok_or_else(malformed);
        }
        if text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(ProductRef::Sku(text.to_ascii_uppercase()));
        }
        Err(malformed())
    }
}

impl fmt::Display for ProductRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProductRef::Id(id) => id.fmt(f),
            ProductRef::Sku(sku) => sku.fmt(f),
        }
    }
}

/// JSON may carry a product reference as a number (`3`) or a string (`"3"`, `"P003"`).
impl<'de> Deserialize<'de> for ProductRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("product_id must be a number or a SKU string"))?
        {
            Raw::Number(n) => ProductId::new(n)
                .map(ProductRef::Id)
                .ok_or_else(|| serde::de::Error::custom("product_id must be positive")),
            Raw::Text(text) => ProductRef::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// A user's login name, as carried by `X-User-ID` and used as the cart's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 64;

    /// 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit (so no
    /// name is `.` or `..`, which would mean something else in a URL path). Letters are
    /// folded to lower case: `Admin`, `ADMIN` and `admin` are one user.
    pub fn parse(text: &str) -> Result<Username, String> {
        let ok = text.len() <= Self::MAX_LEN
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Username(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "user name must be 1-{} letters, digits, '.', '_' or '-', starting with a letter or digit",
                Self::MAX_LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Username {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Username {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Username {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Username> for String {
    fn eq(&self, other: &Username) -> bool {
        *self == other.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_refs_by_id_or_sku() {
        assert_eq!(
            ProductRef::parse("3"),
            Ok(ProductRef::Id(ProductId::new(3).unwrap()))
        );
        assert_eq!(
            ProductRef::parse("p001"),
            Ok(ProductRef::Sku("P001".into()))
        );
        for bad in [
            "",
            "0",
            "-1",
            "P 1",
            "a/b",
            "<script>",
            &"A".repeat(33),
            "99999999999999999999",
        ] {
            assert!(ProductRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn product_refs_from_json() {
        let parse = |s: &str| serde_json::from_str::<ProductRef>(s);
        assert_eq!(
            parse("2").unwrap(),
            ProductRef::Id(ProductId::new(2).unwrap())
        );
        assert_eq!(
            parse("\"2\"").unwrap(),
            ProductRef::Id(ProductId::new(2).unwrap())
        );
        assert_eq!(parse("\"P002\"").unwrap(), ProductRef::Sku("P002".into()));
        assert!(parse("0").is_err());
        assert!(parse("1.5").is_err());
        assert!(parse("null").is_err());
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("alice").unwrap().as_str(), "alice");
        assert!(Username::parse("a.b-c_9").is_ok());
        for bad in [
            "",
            "al ice",
            "bob/..",
            "ü",
            &"x".repeat(65),
            ".",
            "..",
            ".x",
            "-x",
            "a\rb",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
