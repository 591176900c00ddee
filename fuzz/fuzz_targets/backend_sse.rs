//! Any bytes as a backend's SSE body, cut into pieces anywhere: the decoder
//! gives the same events however the body is cut (against decoding it whole),
//! stays within its bound, and chunk translation never panics.

#![no_main]

use std::collections::VecDeque;

use antwort_backends::chat::{ChunkTranslator, Translated};
use antwort_egress::sse::{SseDecoder, SseEvent};
use libfuzzer_sys::fuzz_target;

/// Small enough that libFuzzer's inputs (4 KiB by default) reach it.
const BOUND: usize = 1024;

fn decode(pieces: &mut dyn Iterator<Item = &[u8]>) -> Result<Vec<SseEvent>, usize> {
    let mut decoder = SseDecoder::new(BOUND);
    let mut events = VecDeque::new();
    for piece in pieces {
        decoder.feed(piece, &mut events)?;
    }
    decoder.finish(&mut events)?;
    Ok(events.into())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut % 32) + 1;
    let whole = decode(&mut std::iter::once(body));
    let cut = decode(&mut body.chunks(piece));
    match (&whole, &cut) {
        (Ok(whole), Ok(cut)) => assert_eq!(whole, cut, "cut into pieces of {piece}"),
        // A body past the bound is refused either way (possibly at another byte).
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} but cut {cut:?}"),
    }
    let Ok(events) = whole else { return };
    for event in &events {
        assert!(event.data.len() <= BOUND);
    }
    let mut translator = ChunkTranslator::default();
    let mut model_events = VecDeque::new();
    for event in events {
        match translator.translate(&event.data, &mut model_events) {
            Ok(Translated::Events) => {}
            Ok(Translated::Done) | Err(_) => break,
        }
    }
});
