//! `SHOPFLOW_RESTATE=external`: ShopFlow spawns no restate-server and uses the one it is
//! pointed at — here one this test starts itself.

use crate::common;

use std::process::{Command, Stdio};

use common::{AppConfig, TestApp, free_addr, restate_server_bin, spawner};
use serde_json::json;

#[tokio::test]
async fn external_restate_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (ingress, admin, node) = (free_addr(), free_addr(), free_addr());
    let mut restate = Command::new(restate_server_bin());
    restate
        .arg("--base-dir")
        .arg(dir.path().join("own-restate"))
        .args([
            "--node-name",
            "external",
            "--no-logo",
            "--listen-mode",
            "tcp",
        ])
        .env("RESTATE_INGRESS__BIND_ADDRESS", ingress.to_string())
        .env("RESTATE_ADMIN__BIND_ADDRESS", admin.to_string())
        .env("RESTATE_BIND_ADDRESS", node.to_string())
        .env("RESTATE_ADVERTISED_ADDRESS", format!("http://{node}/"))
        .env("RESTATE_DISABLE_TELEMETRY", "true")
        .env("RESTATE_DEFAULT_NUM_PARTITIONS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut restate = spawner().spawn_std(restate).unwrap();

    let mut config = AppConfig::new(&dir.path().join("app"));
    config.external = true;
    config.ingress = ingress;
    config.admin = admin;
    config.node = node;
    let mut app = TestApp::start(config).await;

    let children = app.children();
    assert_eq!(
        children.len(),
        1,
        "only the endpoint is spawned: {children:?}"
    );
    assert!(children[0].1.ends_with(" services"));
    assert_eq!(app.api.add_to_cart("bob", json!("P002"), 3).await.0, 200);
    assert_eq!(
        app.api.cart_lines("bob").await,
        vec![("P002".to_owned(), 3)]
    );

    // ShopFlow's endpoint is what the external Restate now knows.
    let deployments: serde_json::Value = reqwest::get(format!("http://{admin}/deployments"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = format!("http://{}", app.config.services);
    assert!(deployments.to_string().contains(&uri), "{deployments}");

    // Stopping ShopFlow leaves the external Restate running, with the cart in it.
    app.signal(libc::SIGTERM);
    assert!(app.wait_exit().await.success());
    assert!(
        restate.try_wait().unwrap().is_none(),
        "the external Restate must keep running"
    );
    // The endpoint is gone, so read the state with Restate's admin SQL, not a handler call.
    let rows = app
        .restate_sql(
            "SELECT value_utf8 FROM state WHERE service_name = 'UserSession' \
             AND service_key = 'bob' AND key = 'basket'",
        )
        .await;
    let basket: serde_json::Value =
        serde_json::from_str(rows[0]["value_utf8"].as_str().unwrap()).unwrap();
    assert_eq!(basket["lines"][0]["sku"], "P002");
    let _ = restate.kill();
    let _ = restate.wait();
}
