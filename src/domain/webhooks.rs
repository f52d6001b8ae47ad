//! Outbound webhooks: the events a partner may subscribe to, the Standard Webhooks
//! signature, and which addresses a delivery may reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened, as a subscriber names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.shipped")]
    OrderShipped,
    #[serde(rename = "order.delivered")]
    OrderDelivered,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "return.refunded")]
    ReturnRefunded,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 6] = [
        WebhookEvent::OrderPaid,
        WebhookEvent::OrderShipped,
        WebhookEvent::OrderDelivered,
        WebhookEvent::OrderCancelled,
        WebhookEvent::OrderRefunded,
        WebhookEvent::ReturnRefunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::OrderPaid => "order.paid",
            WebhookEvent::OrderShipped => "order.shipped",
            WebhookEvent::OrderDelivered => "order.delivered",
            WebhookEvent::OrderCancelled => "order.cancelled",
            WebhookEvent::OrderRefunded => "order.refunded",
            WebhookEvent::ReturnRefunded => "return.refunded",
        }
    }

    pub fn parse(text: &str) -> Result<WebhookEvent, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|e| e.as_str()).collect();
                format!("unknown event `{text}`; known: {}", known.join(", "))
            })
    }

    /// The event a customer's notification of `kind` tells partners, if any.
    pub fn of_notification(kind: &str) -> Option<WebhookEvent> {
        Some(match kind {
            "payment_confirmed" => WebhookEvent::OrderPaid,
            "shipment_initiated" => WebhookEvent::OrderShipped,
            "delivered" => WebhookEvent::OrderDelivered,
            "cancelled" | "payment_timed_out" => WebhookEvent::OrderCancelled,
            "refund_payment" | "refund_granted" => WebhookEvent::OrderRefunded,
            "return_refunded" => WebhookEvent::ReturnRefunded,
            _ => return None,
        })
    }
}

/// The events of one subscription: at least one, each once, in the order of `ALL`.
pub fn parse_events(names: &[String]) -> Result<Vec<WebhookEvent>, String> {
    if names.is_empty() {
        return Err("name at least one event".into());
    }
    let chosen = names
        .iter()
        .map(|n| WebhookEvent::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WebhookEvent::ALL
        .into_iter()
        .filter(|e| chosen.contains(e))
        .collect())
}

/// The `webhook-id` of an event: the same for every attempt and every subscriber.
pub fn message_id(event_id: &str) -> String {
    let digest = Sha256::digest(event_id.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// A subscription's signing secret as the subscriber is given it: `whsec_` and the
/// base64 of the key's bytes.
pub fn secret_from_key(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-signature` header of one attempt: `v1,` and the base64 HMAC-SHA256,
/// keyed by the secret's bytes, of `{id}.{timestamp}.{body}`.
pub fn signature(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether a delivery may reach `ip` when private addresses are not allowed: not
/// loopback, private, link-local, shared (CGNAT), unspecified, multicast or broadcast,
/// in either family (an IPv4 address mapped into IPv6 counts as itself).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || ip.to_ipv4().is_some()) // IPv4-compatible ::a.b.c.d
}

/// The address a URL names directly (`http://10.0.0.1/`, `http://[::1]/`), if it does.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_matches(['[', ']']).parse().ok()
}

/// A subscription's URL, checked for what it can be: http or https, a host, no
/// credentials, at most 2,048 bytes. Where the host resolves is checked apart (it can
/// change), before every delivery.
pub fn check_url(text: &str) -> Result<reqwest::Url, String> {
    if text.len() > 2048 {
        return Err("the URL is longer than 2048 bytes".into());
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are allowed, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL may not carry a user name or password".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_keep_one_order() {
        let names = ["return.refunded", "order.paid", "order.paid"].map(String::from);
        assert_eq!(
            parse_events(&names).unwrap(),
            [WebhookEvent::OrderPaid, WebhookEvent::ReturnRefunded]
        );
        assert!(parse_events(&[]).is_err());
        let err = parse_events(&["order.lost".to_owned()]).unwrap_err();
        assert!(err.contains("order.lost"), "{err}");
        for e in WebhookEvent::ALL {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.as_str()));
        }
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn private_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        assert!(check_url("https://example.com/hooks").is_ok());
        assert!(check_url("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://x",
            "example.com",
            "http://user:pw@example.com/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(2100))).is_err());
    }
}
