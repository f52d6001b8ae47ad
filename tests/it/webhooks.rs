//! Webhooks against a real ShopFlow and a real receiver on this machine: a receiver
//! that refuses for a while, then recovers, gets every event afterwards, in order, once
//! each, signed as Standard Webhooks sign; subscriptions refuse bad input and private
//! addresses; a delivery can be sent again.

use std::sync::atomic::Ordering;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::common::receiver::{Received, Receiver};
use crate::common::{self, Api, assert_error, eventually};
use crate::returns::start;

const ADMIN: &str = "admin";

async fn subscribe(api: &Api, user: &str, url: &str, events: &[&str]) -> common::Reply {
    let body = json!({"url": url, "events": events});
    api.post("/api/admin/webhooks", Some(user), &body).await
}

async fn delete(api: &Api, path: &str) -> common::Reply {
    let req = api
        .request(reqwest::Method::DELETE, path)
        .bearer_auth(api.token(ADMIN));
    api.send(req).await
}

/// The Standard Webhooks signature, computed here on its own.
fn expected_signature(secret: &str, r: &Received) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    format!("v1,{}", engine.encode(mac.finalize().into_bytes()))
}

/// An order paid, approved and delivered; a second paid and cancelled (its
/// authorization voided: nothing was charged, so no `order.refunded`); a goodwill
/// refund on the first. The receiver is down for all of it, then recovers.
#[tokio::test]
async fn a_receiver_that_was_down_gets_every_event_afterwards_in_order_once_each() {
    let retry = ["300ms"; 12].join(",");
    let app = start(
        "webhooks-down",
        &[
            ("SHOPFLOW_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("SHOPFLOW_WEBHOOK_RETRY", &retry),
        ],
    )
    .await;
    let api = Api::new(&app.config);
    let receiver = Receiver::start(false).await;
    let all = [
        "order.paid",
        "order.shipped",
        "order.delivered",
        "order.cancelled",
        "order.refunded",
        "return.refunded",
    ];
    let (status, made) = subscribe(&api, ADMIN, &receiver.url(), &all).await;
    assert_eq!(status, 201, "subscribe: {made}");
    let (id, secret) = (
        made["id"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
    );
    assert!(secret.starts_with("whsec_"), "{made}");
    let (_, listed) = api.get("/api/admin/webhooks", Some(ADMIN)).await;
    assert_eq!(listed[0]["id"], id, "{listed}");
    assert!(
        listed[0].get("secret").is_none(),
        "the list shows no secret: {listed}"
    );

    let (awakeable, total) = api.place_order("alice", "wh-a", &[("P002", 1)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status("alice", "wh-a", "awaiting_approval").await;
    assert_eq!(api.approve(ADMIN, "wh-a").await.0, 200);
    api.wait_status("alice", "wh-a", "delivered").await;
    let (awakeable, total) = api.place_order("bob", "wh-b", &[("P003", 1)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status("bob", "wh-b", "awaiting_approval").await;
    assert_eq!(
        api.cancel("bob", "wh-b", Some("changed my mind")).await.0,
        200
    );
    api.wait_status("bob", "wh-b", "cancelled").await;
    let body = json!({"amount_cents": 100, "reason": "late parcel"});
    let (status, refund) = api
        .post("/api/admin/orders/wh-a/refunds", Some(ADMIN), &body)
        .await;
    assert_eq!(status, 200, "goodwill: {refund}");

    let log_path = format!("/api/admin/webhooks/{id}/deliveries");
    let expected = [
        ("order.paid", "wh-a"),
        ("order.shipped", "wh-a"),
        ("order.delivered", "wh-a"),
        ("order.paid", "wh-b"),
        ("order.cancelled", "wh-b"),
        ("order.refunded", "wh-a"),
    ];
    // While the receiver is down, the first delivery is tried again and again.
    eventually("the receiver to refuse three tries", || async {
        (receiver.log().len() >= 3).then_some(())
    })
    .await;
    let (_, log) = api.get(&log_path, Some(ADMIN)).await;
    assert_eq!(log[0]["status"], "pending", "{log}");
    assert_eq!(log[0]["last_status_code"], 503, "{log}");
    let refused = receiver.log();
    assert!(
        refused.iter().all(|r| r.id == refused[0].id && !r.accepted),
        "only the oldest delivery is tried while it fails: {refused:?}"
    );

    receiver.up.store(true, Ordering::SeqCst);
    let log = eventually("every delivery to be delivered", || async {
        let (_, log) = api.get(&log_path, Some(ADMIN)).await;
        let log = log.as_array()?.clone();
        (log.len() == expected.len() && log.iter().all(|d| d["status"] == "delivered"))
            .then_some(log)
    })
    .await;
    let got: Vec<Received> = receiver.log().into_iter().filter(|r| r.accepted).collect();
    let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    let logged: Vec<&str> = log
        .iter()
        .map(|d| d["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, logged, "delivered once each, in the log's order");
    assert_eq!(refused[0].id, ids[0], "a retry keeps its webhook-id");
    let mut per_order: Vec<(String, String)> = Vec::new();
    for r in &got {
        assert_eq!(
            r.signature,
            expected_signature(secret, r),
            "signature of {r:?}"
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(body["timestamp"].is_string(), "{body}");
        let order = body["data"]["order_id"].as_str().unwrap().to_owned();
        per_order.push((body["type"].as_str().unwrap().to_owned(), order));
    }
    for order in ["wh-a", "wh-b"] {
        let of = |list: Vec<(&str, &str)>| -> Vec<String> {
            let list = list.into_iter().filter(|(_, o)| *o == order);
            list.map(|(t, _)| t.to_owned()).collect()
        };
        let got = of(per_order
            .iter()
            .map(|(t, o)| (t.as_str(), o.as_str()))
            .collect());
        assert_eq!(
            got,
            of(expected.to_vec()),
            "the events of {order}, in order"
        );
    }
    let refund = per_order
        .iter()
        .position(|(t, o)| t == "order.refunded" && o == "wh-a");
    let body: Value = serde_json::from_str(&got[refund.unwrap()].body).unwrap();
    assert_eq!(body["data"]["amount_cents"], 100, "{body}");

    // Sent again on request, with the same webhook-id.
    let first = log[0]["delivery_id"].as_str().unwrap();
    let path = format!("/api/admin/webhooks/{id}/deliveries/{first}/redeliver");
    let (status, again) = api.post(&path, Some(ADMIN), &json!({})).await;
    assert_eq!(status, 202, "redeliver: {again}");
    eventually("the redelivery", || async {
        let log = receiver.log();
        (log.iter().filter(|r| r.id == ids[0] && r.accepted).count() == 2).then_some(())
    })
    .await;
    let (status, err) = api
        .post(
            &format!("/api/admin/webhooks/{id}/deliveries/dlv_nope/redeliver"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_error(&(status, err), 404, "unknown_delivery");
}

#[tokio::test]
async fn subscriptions_refuse_bad_input_and_private_addresses() {
    let (_app, api) = crate::returns::shared_app().await;
    let public = "http://93.184.216.34/hooks";
    assert_error(
        &subscribe(&api, "alice", public, &["order.paid"]).await,
        403,
        "forbidden",
    );
    for url in [
        "ftp://example.com/hooks",
        "not a url",
        "http://127.0.0.1:9/hooks",
        "http://10.1.2.3/hooks",
        "http://[::1]/hooks",
        "http://169.254.169.254/latest",
        "http://localhost/hooks",
    ] {
        let reply = subscribe(&api, ADMIN, url, &["order.paid"]).await;
        assert_error(&reply, 400, "invalid_url");
    }
    for events in [&[][..], &["order.lost"][..]] {
        let reply = subscribe(&api, ADMIN, public, events).await;
        assert_error(&reply, 400, "invalid_events");
    }
    let extra = json!({"url": public, "events": ["order.paid"], "secret": "mine"});
    let reply = api.post("/api/admin/webhooks", Some(ADMIN), &extra).await;
    assert_eq!(reply.0, 400, "an unknown field: {}", reply.1);
    let (_, before) = api.get("/api/admin/webhooks", Some(ADMIN)).await;

    let (status, made) = subscribe(&api, ADMIN, public, &["return.refunded", "order.paid"]).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["events"],
        json!(["order.paid", "return.refunded"]),
        "{made}"
    );
    let id = made["id"].as_str().unwrap();
    let (status, one) = api
        .get(&format!("/api/admin/webhooks/{id}"), Some(ADMIN))
        .await;
    assert_eq!(
        (status.as_u16(), &one["url"]),
        (200, &json!(public)),
        "{one}"
    );
    let (status, _) = delete(&api, &format!("/api/admin/webhooks/{id}")).await;
    assert_eq!(status, 204);
    assert_error(
        &delete(&api, &format!("/api/admin/webhooks/{id}")).await,
        404,
        "unknown_webhook",
    );
    let path = format!("/api/admin/webhooks/{id}/deliveries");
    assert_error(&api.get(&path, Some(ADMIN)).await, 404, "unknown_webhook");
    let (_, after) = api.get("/api/admin/webhooks", Some(ADMIN)).await;
    assert_eq!(
        before, after,
        "refusals and the deleted one leave the list as it was"
    );
}
