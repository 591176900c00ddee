//! `antwort-mock`: runs the scripted backend on a port, for demos and benchmarks.
//!
//! The same port also serves the MCP test servers (see `antwort_mock::mcp`):
//! `/mcp` (Streamable HTTP), `/mcp-auth` (the same behind a bearer token:
//! `static-token`, or one from `POST /oauth/token` for the clients `antwort` or
//! `antwort-short` with secret `s3cret`), and `/sse` with `/sse/message` (the
//! older HTTP+SSE transport). Their counters are in `GET /mock/stats`.
//!
//! Scripts change the running instance's faults and model list with
//! `POST /mock/control` (see `antwort_mock::control`).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(name = "antwort-mock", about = "A scripted OpenAI-compatible backend")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: String,
    /// Default time to first token, in milliseconds.
    #[arg(long, default_value_t = 0)]
    ttft_ms: u64,
    /// Default delay between streamed tokens, in milliseconds.
    #[arg(long, default_value_t = 0)]
    token_delay_ms: u64,
    /// A model `/v1/models` lists (repeatable; default: mock-model and
    /// mock-reasoning).
    #[arg(long = "model")]
    models: Vec<String>,
    /// The context window `/v1/models` and `/tokenize` report.
    #[arg(long, default_value_t = antwort_mock::control::DEFAULT_MAX_MODEL_LEN)]
    max_model_len: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // rmcp logs every session's lifecycle at info, which would drown the mock's own
    // lines in a benchmark or an SDK test run.
    tracing_subscriber::fmt()
        .with_env_filter("info,rmcp=warn")
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "antwort-mock is serving");
    let latency = antwort_mock::Latency {
        ttft: Duration::from_millis(args.ttft_ms),
        token_delay: Duration::from_millis(args.token_delay_ms),
    };
    let models = if args.models.is_empty() {
        antwort_mock::control::default_models()
    } else {
        args.models
    };
    let control = antwort_mock::Control::new(models, args.max_model_len);
    let stats = Arc::new(antwort_mock::Stats::default());
    antwort_mock::serve_with(listener, latency, stats, Arc::new(control)).await?;
    Ok(())
}
