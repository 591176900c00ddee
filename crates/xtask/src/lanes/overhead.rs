//! Lane 1, overhead: a non-streaming create with `store: false` against a mock
//! that answers at once, at concurrency 1 and 16. The difference between the
//! gateway's latency and the mock's own is what the gateway adds per request.

use anyhow::Result;

use super::{Compare, Ctx, SideAcc, Storage, bytes_of, chat_body, measure, responses_body};
use crate::load::{self, Job, closed_loop};

/// The prompt of both sides; no directive, so the mock reflects it (a short answer).
const PROMPT: &str = "Hello from the overhead lane";

pub const CONCURRENCY: [usize; 2] = [1, 16];

pub async fn run(ctx: &Ctx) -> Result<Vec<Compare>> {
    let mock = ctx.start_mock("overhead", 0).await?;
    let gateway = ctx
        .start_gateway("overhead", &mock, Storage::Memory, false)
        .await?;
    let direct_job = json_job(ctx, format!("{}/v1/chat/completions", mock.url), {
        bytes_of(&chat_body(PROMPT, false))
    });
    let gateway_job = json_job(ctx, format!("{}/v1/responses", gateway.url), {
        bytes_of(&responses_body(PROMPT, false, false))
    });
    let plan = &ctx.plan;
    let mut results = Vec::new();
    for concurrency in CONCURRENCY {
        closed_loop(concurrency, plan.warmup, &direct_job).await;
        closed_loop(concurrency, plan.warmup, &gateway_job).await;
        let (mut direct, mut through) = (SideAcc::default(), SideAcc::default());
        for _ in 0..plan.overhead_rounds {
            direct.add(
                measure(
                    &mock,
                    closed_loop(concurrency, plan.overhead_round, &direct_job),
                )
                .await,
            );
            through.add(
                measure(
                    &gateway,
                    closed_loop(concurrency, plan.overhead_round, &gateway_job),
                )
                .await,
            );
        }
        results.push(Compare::new(
            format!("c={concurrency}"),
            direct.finish(&mock, ctx.clock_ticks),
            through.finish(&gateway, ctx.clock_ticks),
        ));
    }
    Ok(results)
}

/// A job that POSTs `body` to `url` and reads the whole answer.
pub fn json_job(ctx: &Ctx, url: String, body: bytes::Bytes) -> Job {
    let client = ctx.client.clone();
    load::job(move |_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move { load::post_json(&client, &url, body).await.map(drop) }
    })
}
