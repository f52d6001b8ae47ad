//! `shopflow backup` of a running ShopFlow, and `shopflow restore` into a new data dir:
//! orders in flight at the backup finish after the restore.

use crate::common::{AppConfig, TestApp};

/// Orders awaiting approval and in the delivery timer at the backup; an order placed
/// after it. The original is then killed outright; the backup restored into a new data
/// dir starts with the same addresses, the two orders go on to be delivered, and the
/// later order is not there (it was not in the backup).
#[tokio::test(flavor = "multi_thread")]
async fn orders_in_flight_at_a_backup_finish_after_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(&dir.path().join("data"));
    // The backup copies a SQLite database (PostgreSQL is dumped with its own tools).
    config.database_url = format!("sqlite://{}", config.data_dir.join("shopflow.db").display());
    config.demo();
    config
        .extra_env
        .push(("SHOPFLOW_DELIVERY_DELAY".into(), "6s".into()));
    let app = TestApp::start(config.clone()).await;
    let api = app.api.clone();
    let (awk, total) = api.place_order("alice", "bk-approve", &[("P001", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("alice", "bk-approve", "awaiting_approval")
        .await;
    let (awk, total) = api.place_order("bob", "bk-timer", &[("P002", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    api.wait_status("bob", "bk-timer", "awaiting_approval")
        .await;
    assert_eq!(api.approve("admin", "bk-timer").await.0, 200);
    api.wait_status("bob", "bk-timer", "in_transit").await;

    let backup = dir.path().join("backup");
    let backup_arg = backup.display().to_string();
    let (ok, out, err) = app.cli(&["backup", &backup_arg], "");
    assert!(ok, "backup: {out}{err}");
    assert!(out.contains("Restate did not answer for"), "{out}");
    // Still serving after the backup: Restate came back.
    api.wait_status("alice", "bk-approve", "awaiting_approval")
        .await;
    let (awk, total) = api.place_order("carol", "bk-later", &[("P003", 1)]).await;
    assert_eq!(api.pay(&awk, total).await.0, 200);
    app.kill_group();
    app.wait_ports_free().await;

    let mut restored = config.clone();
    restored.data_dir = dir.path().join("restored");
    restored.database_url = format!(
        "sqlite://{}",
        restored.data_dir.join("shopflow.db").display()
    );
    let mut cmd = restored.command();
    cmd.args(["restore", &backup_arg]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "restore: {out:?}");
    let app = TestApp::start(restored).await;
    let api = app.api.clone();
    assert_eq!(api.approve("admin", "bk-approve").await.0, 200);
    api.wait_status("alice", "bk-approve", "delivered").await;
    api.wait_status("bob", "bk-timer", "delivered").await;
    let (code, body) = api.order("carol", "bk-later").await;
    assert_eq!(
        code, 404,
        "the order placed after the backup is not in it: {body}"
    );
}
