//! The antwort binary's library half: configuration and wiring, kept out of
//! `main.rs` so that black-box tests start exactly the server the binary runs.

mod backends;
pub mod config;
mod secret;
pub mod security;
mod tokenizer;

use std::sync::Arc;

use antwort_engine::{Engine, EngineConfig, ReasoningEventNames};
use antwort_server::ServerConfig;
use antwort_store::{SqlStore, StoreConfig};
use anyhow::Context;
use tokio::net::TcpListener;

pub use config::Config;
use config::Secret;

/// Opens the configured store, running migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    let store_config = match config.storage.kind {
        config::StorageKind::Memory => StoreConfig::Memory,
        config::StorageKind::Sqlite => StoreConfig::Sqlite {
            path: config.storage.dsn.as_ref().map_or_else(
                || config::DEFAULT_SQLITE_PATH.to_owned(),
                |dsn| dsn.expose().to_owned(),
            ),
        },
        config::StorageKind::Postgres => StoreConfig::Postgres {
            url: config
                .storage
                .dsn
                .as_ref()
                .context("storage.dsn is required for postgres")?
                .expose()
                .to_owned(),
            max_connections: config.storage.max_conns,
        },
    };
    SqlStore::open(&store_config).await.map_err(|e| {
        let target = config
            .storage
            .dsn
            .as_ref()
            .map(config::Dsn::redacted)
            .unwrap_or_default();
        anyhow::anyhow!(
            "cannot open the {:?} store {target}: {e}",
            config.storage.kind
        )
    })
}

/// Builds the engine (backend, MCP client) on `store` from a validated configuration.
pub async fn build_engine(config: &Config, store: Arc<SqlStore>) -> anyhow::Result<Engine> {
    let backends = backends::build(config)?;
    // One egress guard for every URL a request names, whichever tool fetches it.
    let egress = Arc::new(
        antwort_egress::EgressGuard::new(&url_policy(config.url_policy()))
            .context("invalid egress.url_policy")?,
    );
    let mcp = antwort_tools::McpClient::with_guard(mcp_settings(&config.mcp)?, egress)
        .context("cannot set up the MCP client")?;
    let reasoning_seal = match &config.engine.reasoning_key {
        Some(key) => antwort_engine::sealed::ReasoningSeal::from_base64(key.expose())
            .map_err(|e| anyhow::anyhow!("engine.reasoning_key: {e}"))?,
        None => {
            tracing::info!(
                "reasoning kept by clients (encrypted_content) is sealed with a key of this process; set engine.reasoning_key to read it back after a restart or on another replica"
            );
            antwort_engine::sealed::ReasoningSeal::random()
        }
    };
    let engine = Engine::new(
        backends,
        antwort_engine::Stores::all(store),
        EngineConfig {
            default_model: config.engine.default_model.clone(),
            reasoning_event_names: match config.engine.reasoning_events {
                config::ReasoningEvents::Auto | config::ReasoningEvents::Openresponses => {
                    ReasoningEventNames::OpenResponses
                }
                config::ReasoningEvents::Openai => ReasoningEventNames::OpenAi,
            },
            openai_names_for_openai_sdks: config.engine.reasoning_events
                == config::ReasoningEvents::Auto,
            always_summarize_reasoning: config.engine.reasoning_summary
                == config::ReasoningSummaryMode::Always,
            context_window: config.engine.context_window,
            model_context_windows: config
                .engine
                .context_windows
                .iter()
                .map(|(model, window)| (model.clone(), *window))
                .collect(),
            max_turns: config.engine.max_turns,
            tool_concurrency: config.engine.tool_concurrency,
            reasoning_seal: Arc::new(reasoning_seal),
        },
    )
    .with_mcp(Arc::new(mcp));
    Ok(engine)
}

/// The MCP client's settings from `mcp`, with secrets read from their files.
fn mcp_settings(section: &config::McpSection) -> anyhow::Result<antwort_tools::McpSettings> {
    use antwort_tools::{McpAuth, McpServerSettings, McpTransport, OAuthClientCredentials};
    let read = |value: Option<&str>, file: &Option<String>| -> anyhow::Result<String> {
        match (value, file) {
            (Some(value), _) => Ok(value.to_owned()),
            (None, Some(path)) => Ok(std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {path}"))?
                .trim()
                .to_owned()),
            (None, None) => Ok(String::new()),
        }
    };
    let mut servers = Vec::with_capacity(section.servers.len());
    for server in &section.servers {
        let mut headers: std::collections::BTreeMap<String, String> = server
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().to_owned()))
            .collect();
        let auth = match &server.auth {
            None => McpAuth::None,
            Some(auth) => match auth.kind {
                config::McpAuthKind::Static => {
                    let token = auth.token.as_ref().map(Secret::expose).unwrap_or_default();
                    headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
                    McpAuth::None
                }
                config::McpAuthKind::OauthClientCredentials => {
                    McpAuth::OAuthClientCredentials(OAuthClientCredentials {
                        token_url: auth
                            .token_url
                            .as_ref()
                            .map(|url| url.expose().to_owned())
                            .unwrap_or_default(),
                        client_id: read(auth.client_id.as_deref(), &auth.client_id_file)?,
                        client_secret: read(
                            auth.client_secret.as_ref().map(Secret::expose),
                            &auth.client_secret_file,
                        )?,
                        scopes: auth.scopes.clone(),
                    })
                }
            },
        };
        servers.push(McpServerSettings {
            name: server.name.clone(),
            url: server.url.expose().to_owned(),
            transport: match server.transport {
                config::McpTransportKind::StreamableHttp => McpTransport::StreamableHttp,
                config::McpTransportKind::Sse => McpTransport::Sse,
            },
            headers,
            auth,
        });
    }
    Ok(antwort_tools::McpSettings {
        servers,
        connect_timeout: section.connect_timeout,
        list_timeout: section.list_timeout,
        call_timeout: section.call_timeout,
        token_timeout: section.token_timeout,
        max_output_bytes: section.max_output_bytes,
        tools_cache_ttl: section.tools_cache_ttl,
        ..antwort_tools::McpSettings::default()
    })
}

/// The egress guard's policy from its configuration section.
fn url_policy(section: &config::UrlPolicySection) -> antwort_egress::UrlPolicy {
    antwort_egress::UrlPolicy {
        allow_loopback: section.allow_loopback,
        allow_private: section.allow_private,
        allow: section.allow.clone(),
        deny: section.deny.clone(),
    }
}

/// Serves until `shutdown` resolves, then, for at most `server.shutdown_timeout`,
/// drains open requests and the stored responses still generating without a
/// client. What still runs near the end is stopped ([`Engine::stop_all`]): every
/// stream ends with a terminal event and `[DONE]`, and stored work is saved.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = Arc::new(open_store(config).await?);
    let auth = security::build_auth(config, store.clone()).await?;
    let engine = build_engine(config, store).await?;
    let _refresher = backends::spawn_refresh(&engine, config);
    let sockets = antwort_server::ws::Sockets::default();
    let app = antwort_server::app(
        engine.clone(),
        ServerConfig {
            max_body_bytes: config.server.max_body_bytes,
            keepalive_interval: config.server.keepalive_interval,
            body_read_timeout: config.server.body_read_timeout,
            limits: antwort_server::RequestLimits {
                max_input_items: config.server.max_input_items,
                max_tools: config.server.max_tools,
            },
            cors_allowed_origins: config.server.cors_allowed_origins.clone(),
            websocket: config.websocket.settings(),
        },
        Arc::new(auth),
        sockets.clone(),
    );
    let drain = config.server.shutdown_timeout;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = antwort_server::ConnectionLimits {
        header_read_timeout: config.server.header_read_timeout,
        idle_timeout: config.server.idle_timeout,
        // Silent streams get a keepalive every interval: a client that takes
        // none of three has stopped reading.
        stall_timeout: config
            .server
            .idle_timeout
            .max(3 * config.server.keepalive_interval),
    };
    let tls = match &config.server.tls {
        Some(tls) => {
            let read = |path: &str| {
                std::fs::read(path).with_context(|| format!("cannot read server.tls file {path}"))
            };
            let acceptor =
                antwort_server::tls_acceptor(&read(&tls.cert_file)?, &read(&tls.key_file)?)
                    .map_err(|e| anyhow::anyhow!("server.tls: {e}"))?;
            Some(acceptor)
        }
        None => None,
    };
    let server = antwort_server::serve(listener, app, limits, tls, async move {
        shutdown.await;
        let _ = stop_tx.send(());
    });
    let mut server = std::pin::pin!(server);
    // The server can finish in the same instant the signal arrives (nothing was
    // open): whichever comes first, detached work is drained before returning.
    let finished = tokio::select! {
        () = &mut server => Some(()),
        _ = stop_rx => None,
    };
    tracing::info!(timeout = ?drain, "shutting down: draining open requests and stored responses");
    // Open WebSockets take no new turn, end their running ones with their
    // terminal events, and close; hyper's graceful shutdown does not see them.
    sockets.close();
    let finish = async {
        if finished.is_none() {
            server.await;
        }
        sockets.closed().await;
        engine.drain().await;
    };
    let mut finish = std::pin::pin!(finish);
    // Most of the drain time is for work to finish by itself; the rest, for
    // what is still running to end with its terminal event and be saved.
    let grace = (drain / 4).min(STOP_GRACE);
    if tokio::time::timeout(drain - grace, &mut finish)
        .await
        .is_ok()
    {
        return Ok(());
    }
    engine.stop_all();
    if tokio::time::timeout(grace, &mut finish).await.is_err() {
        tracing::warn!("drain timeout reached; closing what is still open");
    }
    Ok(())
}

/// At most this much of the drain time is kept for stopped responses to end
/// and be saved.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod style {
    //! House rules checked as tests, in the manner of rust-analyzer's tidy tests.

    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    rust_files(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn workspace_files() -> Vec<PathBuf> {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        rust_files(&crates, &mut files);
        assert!(
            files.len() > 20,
            "found only {} files under {}",
            files.len(),
            crates.display()
        );
        files
    }

    #[test]
    fn every_rust_file_opens_with_a_module_doc() {
        let missing: Vec<_> = workspace_files()
            .into_iter()
            .filter(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                !text.trim_start().starts_with("//!")
            })
            .collect();
        assert!(missing.is_empty(), "files without a //! doc: {missing:?}");
    }

    #[test]
    fn every_todo_names_an_issue() {
        // Spelled in two halves so that this test does not find itself.
        let marker = concat!("TO", "DO");
        let with_issue = format!("{marker}(#");
        let offenders: Vec<String> = workspace_files()
            .into_iter()
            .flat_map(|path| {
                let text = std::fs::read_to_string(&path).unwrap();
                text.lines()
                    .filter(|line| line.contains(marker) && !line.contains(&with_issue))
                    .map(|line| format!("{}: {}", path.display(), line.trim()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            offenders.is_empty(),
            "TODOs must name an issue, as TODO(#3): {offenders:?}"
        );
    }
}
