//! Durability: the real binary on a SQLite file, killed with SIGKILL under
//! concurrent write load, then restarted on the same file. Every response whose
//! creation was acknowledged must be there, complete.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::harness::client;

struct Gateway {
    child: Child,
    url: String,
}

/// A number for naming a scratch directory uniquely among concurrent tests.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Starts the binary on a port of its own choosing (port 0) and reads the address
/// it bound from its log, so that parallel tests can never meet on one port.
async fn launch(backend: &str, database: &std::path::Path) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_antwort"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--backend-url",
            backend,
            "--model",
            "mock-model",
        ])
        .env("ANTWORT_STORAGE", "sqlite")
        .env("ANTWORT_STORAGE_DSN", database)
        .env("ANTWORT_LOG_LEVEL", "antwort=info,warn")
        .env("ANTWORT_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let log = database.with_extension("log");
    let addr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let addr = lines.find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(&line.ok()?).ok()?;
            line["fields"]["addr"].as_str().map(str::to_owned)
        });
        // Keep draining the log (into a file beside the database, for failure
        // reports) so that the process never blocks on a full pipe.
        let log_path = log;
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .unwrap();
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        addr
    })
    .await
    .unwrap()
    .expect("the gateway logged the address it serves on");
    let url = format!("http://{addr}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client().get(format!("{url}/healthz")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Gateway { child, url }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_response_survives_a_kill() {
    let (backend, _) = antwort_mock::spawn(antwort_mock::Latency::default())
        .await
        .unwrap();
    let dir =
        std::env::temp_dir().join(format!("antwort-crash-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = dir.join("antwort.db");
    let mut gateway = launch(&backend, &database).await;

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let url = gateway.url.clone();
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let streamed = i % 2 == 0;
                    let body = json!({"input": format!("worker {worker} request {i}"), "stream": streamed});
                    let Ok(response) = client().post(format!("{url}/v1/responses")).json(&body).send().await else {
                        return;
                    };
                    let Ok(text) = response.text().await else { return };
                    // Acknowledged: a JSON body with the response, or a stream that
                    // delivered response.completed (the id is in its first event).
                    let id = if streamed {
                        if !text.contains("event: response.completed") {
                            return;
                        }
                        text.split("\"id\":\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_owned)
                    } else {
                        serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v["id"].as_str().map(str::to_owned))
                    };
                    match id {
                        Some(id) => acknowledged.lock().unwrap().push(id),
                        None => return,
                    }
                }
            })
        })
        .collect();

    // Kill mid-load, once a good number of writes were acknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load did not get going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut restarted = launch(&backend, &database).await;
    let mut missing = Vec::new();
    for id in &acknowledged {
        let response = client()
            .get(format!("{}/v1/responses/{id}", restarted.url))
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            missing.push(id.clone());
            continue;
        }
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "completed", "{id}");
    }
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(acknowledged.len() >= 200);
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged responses lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_stored_work_whose_client_left() {
    let (backend, _) = antwort_mock::spawn(antwort_mock::Latency::default())
        .await
        .unwrap();
    let dir =
        std::env::temp_dir().join(format!("antwort-drain-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = dir.join("antwort.db");
    let gateway = launch(&backend, &database).await;

    let id = crate::harness::stream_then_leave(
        &gateway.url,
        json!({"input": "[[tokens:20]] [[delay_ms:50]]"}),
    )
    .await;

    // SIGTERM while the response is still generating, its client gone.
    let status = Command::new("kill")
        .args(["-TERM", &gateway.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Waited for off the runtime: the mock backend that must finish the work runs on it.
    let mut child = gateway.child;
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "a clean exit after draining");

    let mut restarted = launch(&backend, &database).await;
    let stored: serde_json::Value = client()
        .get(format!("{}/v1/responses/{id}", restarted.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
    let log = std::fs::read_to_string(database.with_extension("log")).unwrap_or_default();
    assert_eq!(
        stored["status"], "completed",
        "{stored}\ngateway log:\n{log}"
    );
    assert_eq!(crate::harness::output_text(&stored), "lorem ".repeat(20));
    let _ = std::fs::remove_dir_all(&dir);
}
