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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn launch(backend: &str, database: &std::path::Path, port: u16) -> Gateway {
    let child = Command::new(env!("CARGO_BIN_EXE_antwort"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--backend-url",
            backend,
            "--model",
            "mock-model",
        ])
        .env("ANTWORT_STORAGE", "sqlite")
        .env("ANTWORT_STORAGE_DSN", database)
        .env("ANTWORT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
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
    let dir = std::env::temp_dir().join(format!(
        "antwort-crash-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let database = dir.join("antwort.db");
    let port = free_port();
    let mut gateway = launch(&backend, &database, port).await;

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

    let mut restarted = launch(&backend, &database, port).await;
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
