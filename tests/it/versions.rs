//! Builds and versions: what a build calls itself.

use std::path::Path;
use std::process::Command;

/// `shopflow --version` of the executable at `exe`.
fn version(exe: &Path) -> String {
    for _ in 0..100 {
        match Command::new(exe).arg("--version").output() {
            Ok(out) => {
                assert!(out.status.success(), "{exe:?} --version: {out:?}");
                return String::from_utf8(out.stdout).unwrap();
            }
            // Written just now: another thread's child may briefly hold it open.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{exe:?}: {e}"),
        }
    }
    panic!("{exe:?} stayed busy");
}

/// `--version` names the version and the build, the executable's hash: the same
/// executable is the same build, another one (here the same bytes and one more line)
/// another build.
#[test]
fn the_version_names_the_build() {
    let exe = Path::new(env!("CARGO_BIN_EXE_shopflow"));
    let first = version(exe);
    let prefix = format!("shopflow {} (build ", env!("CARGO_PKG_VERSION"));
    let id = first
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{first:?} is not `{prefix}<id>)`"));
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    assert!(id.len() == 12 && id.bytes().all(hex), "build id {id:?}");
    assert_eq!(version(exe), first, "the same executable, the same build");

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("shopflow");
    let mut bytes = std::fs::read(exe).unwrap();
    bytes.extend_from_slice(b"\nanother build\n");
    std::fs::write(&copy, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let other = version(&copy);
    assert!(other.starts_with(&prefix), "{other:?}");
    assert_ne!(other, first, "another executable is another build");
}

/// The `next_journal` example: `shopflow` with one more durable step in the workflow.
fn next_release() -> std::path::PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_shopflow"));
    exe.parent().unwrap().join("examples/next_journal")
}

/// Restate's deployments as the admin API lists them: (build, state, in_flight).
async fn deployments(api: &crate::common::Api) -> Vec<(String, String, i64)> {
    let (status, body) = api.get("/api/admin/deployments", Some("admin")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let rows = body.as_array().unwrap_or_else(|| panic!("{body}"));
    rows.iter()
        .map(|d| {
            (
                d["build"].as_str().unwrap_or("").to_owned(),
                d["state"].as_str().unwrap().to_owned(),
                d["in_flight"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The journal entries of the workflow run of `order`, with the deployment it is
/// pinned to.
async fn workflow_steps(app: &crate::common::TestApp, order: &str) -> Vec<serde_json::Value> {
    let sql = format!(
        "SELECT j.name AS name, i.pinned_deployment_id AS dp FROM sys_journal j \
         JOIN sys_invocation i ON j.id = i.id WHERE i.target_service_name = \
         'OrderFulfillmentWorkflow' AND i.target_service_key = '{order}' \
         AND i.target_handler_name = 'Run'"
    );
    app.restate_sql(&sql).await
}

/// The build id `--version` gives for `exe`.
fn build_of(exe: &Path) -> String {
    let v = version(exe);
    v.trim_end()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned()
}

/// An upgrade while orders wait. Build A (`shopflow`) takes three orders: one awaiting
/// payment, one awaiting approval, one in its delivery timer. Build B (the next
/// release, whose workflow journals one step more) replaces it on the same data dir.
/// The orders A started finish on A's code, with no journal mismatch (replayed on B
/// they would fail: B's extra step sits where A journaled something else), while the
/// new order runs on B. Then A drains: its deployment is removed from Restate and its
/// copy from the data dir.
#[tokio::test(flavor = "multi_thread")]
async fn orders_in_flight_finish_on_the_build_they_started_on() {
    use crate::common::{AppConfig, TestApp, eventually};
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.demo();
    config
        .extra_env
        .push(("SHOPFLOW_DELIVERY_DELAY".into(), "12s".into()));
    let (a, b) = (
        build_of(Path::new(&config.binary)),
        build_of(&next_release()),
    );
    assert_ne!(a, b, "two builds");

    let mut app = TestApp::start(config.clone()).await;
    let api = app.api.clone();
    let (to_pay, to_pay_total) = api.place_order("alice", "up-pay", &[("P001", 1)]).await;
    let (awk, total) = api.place_order("bob", "up-approve", &[("P002", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("bob", "up-approve", "awaiting_approval")
        .await;
    let (awk, total) = api.place_order("carol", "up-timer", &[("P003", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("carol", "up-timer", "awaiting_approval")
        .await;
    assert_eq!(api.approve("admin", "up-timer").await.0, 200);
    api.wait_status("carol", "up-timer", "in_transit").await;
    // State A writes that B reads: a cart (the user's virtual object).
    let (code, cart) = api
        .add_to_cart("erin", serde_json::Value::from("P002"), 2)
        .await;
    assert_eq!(code, 200, "{cart}");
    // Both workflows under way on A (an invocation is pinned once it has journaled).
    for order in ["up-approve", "up-timer"] {
        let app = &app;
        eventually(&format!("{order}'s workflow to get going"), || async move {
            (workflow_steps(app, order).await.len() > 3).then_some(())
        })
        .await;
    }
    let before = deployments(&api).await;
    assert!(
        matches!(&before[..], [(build, state, n)] if *build == a && state == "active" && *n >= 3),
        "before the upgrade, build {a} alone and active with the three orders: {before:?}"
    );

    app.signal(libc::SIGTERM);
    app.wait_exit().await;
    app.wait_ports_free().await;
    config.binary = next_release();
    let app = TestApp::start(config.clone()).await;
    let api = app.api.clone();
    let during = deployments(&api).await;
    assert_eq!(during.len(), 2, "both builds: {during:?}");
    assert_eq!(
        (&during[0].0[..], &during[0].1[..]),
        (&b[..], "active"),
        "{during:?}"
    );
    assert_eq!(
        (&during[1].0[..], &during[1].1[..]),
        (&a[..], "draining"),
        "{during:?}"
    );
    assert_eq!(
        api.cart_lines("erin").await,
        [("P002".to_owned(), 2)],
        "the cart build {a} kept, read by build {b}"
    );
    let kept = dir.path().join("builds").join(&a).join("shopflow");
    assert!(
        kept.exists(),
        "build {a} is kept at {kept:?} while it drains"
    );

    // The old orders go on; a new one starts on B.
    assert_eq!(api.pay(&to_pay, to_pay_total).await.0, 200);
    assert_eq!(api.approve("admin", "up-approve").await.0, 200);
    let (awk, total) = api.place_order("dave", "up-new", &[("P001", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("dave", "up-new", "awaiting_approval").await;
    let steps = |order: &'static str| workflow_steps(&app, order);
    let named = |rows: &[serde_json::Value]| rows.iter().any(|r| r["name"] == "next_release_step");
    for old in ["up-approve", "up-timer"] {
        let rows = steps(old).await;
        assert!(
            !rows.is_empty() && !named(&rows),
            "{old} runs on build {a}: {rows:?}"
        );
    }
    // The order that was awaiting payment had checked out on A; its workflow (started
    // after the payment) is new, and new work runs on B.
    for new in ["up-new", "up-pay"] {
        let rows = eventually(
            &format!("{new}'s workflow to have started"),
            || async move {
                let rows = steps(new).await;
                named(&rows).then_some(rows)
            },
        )
        .await;
        assert!(named(&rows), "{new} runs on build {b}");
    }
    assert_eq!(api.approve("admin", "up-pay").await.0, 200);
    assert_eq!(api.approve("admin", "up-new").await.0, 200);
    for (user, order) in [
        ("alice", "up-pay"),
        ("bob", "up-approve"),
        ("carol", "up-timer"),
        ("dave", "up-new"),
    ] {
        api.wait_status(user, order, "delivered").await;
    }
    let (_, timeline) = api
        .get("/api/orders/up-approve/timeline", Some("bob"))
        .await;
    let approved = timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "approved");
    assert_eq!(
        approved.map(|e| &e["actor"]),
        Some(&serde_json::Value::from("admin")),
        "the timeline names who approved: {timeline}"
    );

    let after = eventually("build A to drain and go", || {
        let api = api.clone();
        async move {
            let all = deployments(&api).await;
            (all.len() == 1).then_some(all)
        }
    })
    .await;
    assert_eq!(after[0].0, b, "only the new build is left: {after:?}");
    eventually("build A's copy to be deleted", || async {
        (!kept.exists()).then_some(())
    })
    .await;
}

/// A database the previous release wrote (`tests/fixtures/previous-release.sqlite`, and
/// `previous-release.pgsql` for the PostgreSQL pass, each made by running that release:
/// orders delivered, awaiting approval, awaiting payment, rejected, cancelled and
/// refunded, declined; a user with a password) is migrated forward when this build
/// starts on it, and everything in it reads as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_the_previous_release_is_migrated_forward() {
    use crate::common::{AppConfig, TestApp};
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    if crate::common::postgres::wanted() {
        // AppConfig made an empty database; the dump fills it.
        let dump = std::fs::read_to_string(format!("{fixtures}/previous-release.pgsql")).unwrap();
        let pool = crate::common::connect(&config.database_url).await;
        sqlx::raw_sql(&dump).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let db = dir.path().join("shopflow.db");
        std::fs::copy(format!("{fixtures}/previous-release.sqlite"), &db).unwrap();
        config.database_url = format!("sqlite://{}", db.display());
    }
    config.demo();
    let app = TestApp::start(config).await;
    let api = &app.api;

    let expected = [
        ("alice", "fx-delivered", "delivered"),
        ("bob", "fx-waiting", "awaiting_approval"),
        ("carol", "fx-unpaid", "awaiting_payment"),
        ("dave", "fx-rejected", "rejected"),
        ("erin", "fx-cancelled", "cancelled"),
        ("frank", "fx-declined", "payment_failed"),
    ];
    for (user, order, status) in expected {
        let (code, body) = api.order(user, order).await;
        assert_eq!(code, 200, "{order}: {body}");
        assert_eq!(body["status"], status, "{order}: {body}");
    }
    let (_, waiting) = api.admin_orders("admin", "?status=awaiting_approval").await;
    assert_eq!(waiting[0]["order_id"], "fx-waiting", "{waiting}");

    let events = |body: &serde_json::Value| -> Vec<String> {
        let all = body.as_array().unwrap_or_else(|| panic!("{body}"));
        all.iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect()
    };
    let (code, delivered) = api
        .get("/api/orders/fx-delivered/timeline", Some("alice"))
        .await;
    assert_eq!(code, 200, "{delivered}");
    assert_eq!(
        events(&delivered),
        ["placed", "paid", "approved", "shipped", "delivered"],
        "{delivered}"
    );
    assert_eq!(
        delivered[2]["actor"], "system",
        "who approved was not kept then: {delivered}"
    );
    let (_, cancelled) = api
        .get("/api/orders/fx-cancelled/timeline", Some("erin"))
        .await;
    assert_eq!(
        events(&cancelled),
        ["placed", "paid", "cancelled", "refunded"],
        "{cancelled}"
    );
    assert_eq!(
        cancelled[3]["amount_cents"], cancelled[1]["amount_cents"],
        "{cancelled}"
    );
    let (_, declined) = api
        .get("/api/orders/fx-declined/timeline", Some("frank"))
        .await;
    assert_eq!(
        events(&declined),
        ["placed", "payment_failed"],
        "{declined}"
    );
    assert_eq!(declined[1]["note"], "card expired", "{declined}");

    let body = serde_json::json!({"username": "gina", "password": "correct horse battery"});
    let (code, session) = api.post("/api/session", None, &body).await;
    assert_eq!(code, 200, "gina's password still holds: {session}");
}

/// Going back to an older build while a newer one still has orders pinned to it (a
/// rollback): the older build takes new orders again, and what started on the newer
/// one finishes there.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_started_again_after_a_newer_one_takes_new_orders() {
    use crate::common::{AppConfig, TestApp, eventually};
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.demo();
    let older = config.binary.clone();
    let (a, b) = (build_of(&older), build_of(&next_release()));

    let mut app = TestApp::start(config.clone()).await;
    app.signal(libc::SIGTERM);
    app.wait_exit().await;
    app.wait_ports_free().await;
    config.binary = next_release();
    let mut app = TestApp::start(config.clone()).await;
    let api = app.api.clone();
    let (awk, total) = api.place_order("bob", "rb-on-b", &[("P002", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("bob", "rb-on-b", "awaiting_approval").await;
    // Its workflow under way on B (an invocation is pinned once it has journaled).
    let named = |rows: &[serde_json::Value]| rows.iter().any(|r| r["name"] == "next_release_step");
    let on_b = &app;
    eventually(
        "the workflow of the order on B to get going",
        || async move { named(&workflow_steps(on_b, "rb-on-b").await).then_some(()) },
    )
    .await;
    app.signal(libc::SIGTERM);
    app.wait_exit().await;
    app.wait_ports_free().await;

    config.binary = older;
    let app = TestApp::start(config.clone()).await;
    let api = app.api.clone();
    let all = deployments(&api).await;
    assert_eq!(all[0].0, a, "build {a} is current again: {all:?}");
    assert_eq!(all[0].1, "active", "{all:?}");
    assert!(
        all.iter().any(|d| d.0 == b && d.1 == "draining"),
        "build {b} drains its order: {all:?}"
    );
    let (awk, total) = api.place_order("carol", "rb-on-a", &[("P003", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("carol", "rb-on-a", "awaiting_approval")
        .await;
    // The order is recorded as awaiting approval just before its workflow starts: its
    // journal is looked at once it is under way.
    let app = &app;
    let on_a = eventually("the new order's workflow to get going", || async move {
        let rows = workflow_steps(app, "rb-on-a").await;
        (rows.len() > 3).then_some(rows)
    })
    .await;
    assert!(!named(&on_a), "the new order runs on {a}: {on_a:?}");
    eventually("the order build B started to go on on B", || async move {
        named(&workflow_steps(app, "rb-on-b").await).then_some(())
    })
    .await;
    for (user, order) in [("bob", "rb-on-b"), ("carol", "rb-on-a")] {
        assert_eq!(api.approve("admin", order).await.0, 200);
        api.wait_status(user, order, "delivered").await;
    }
    eventually("build B to drain and go", || {
        let api = api.clone();
        async move { (deployments(&api).await.len() == 1).then_some(()) }
    })
    .await;
}
