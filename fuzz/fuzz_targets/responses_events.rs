//! Any bytes as a Responses server's SSE body: the event translator never
//! panics, numbers function calls from 0 without gaps, says nothing after the
//! terminal event, and ends with a finish whenever it says the stream is done.

#![no_main]

use std::collections::VecDeque;

use antwort_backends::Translated;
use antwort_backends::responses::ResponsesTranslator;
use antwort_egress::sse::{SseDecoder, SseEvent};
use antwort_engine::ModelEvent;
use libfuzzer_sys::fuzz_target;

/// Small enough that libFuzzer's inputs (4 KiB by default) reach it.
const BOUND: usize = 1024;

fn decode(body: &[u8]) -> Option<Vec<SseEvent>> {
    let mut decoder = SseDecoder::new(BOUND);
    let mut events = VecDeque::new();
    decoder.feed(body, &mut events).ok()?;
    decoder.finish(&mut events).ok()?;
    Some(events.into())
}

fuzz_target!(|data: &[u8]| {
    let Some(events) = decode(data) else { return };
    let mut translator = ResponsesTranslator::default();
    let mut out = VecDeque::new();
    let mut calls = 0u32;
    for event in events {
        let before = out.len();
        let translated = translator.translate(&event.data, &mut out);
        for model_event in out.iter().skip(before) {
            if let ModelEvent::ToolCallDelta { index, .. } = model_event {
                assert!(*index <= calls, "call {index} after {calls} calls");
                calls = calls.max(index + 1);
            }
        }
        match translated {
            Ok(Translated::Events) => assert!(!translator.finished),
            Ok(Translated::Done) => {
                assert!(translator.finished);
                assert!(matches!(out.back(), Some(ModelEvent::Finish(_))) || before == out.len());
                break;
            }
            Err(_) => {
                assert_eq!(out.len(), before, "an error adds no events");
                break;
            }
        }
    }
    // The whole body, read as a non-streamed response, never panics either.
    let _ = antwort_backends::responses::response_events(data);
});
