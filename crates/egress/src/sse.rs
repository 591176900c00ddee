//! Server-sent events read from an upstream answer (a backend's token stream, an
//! MCP server's SSE transport), in linear time and with a size bound.
//!
//! Written here rather than taken from `eventsource-stream`: that parser starts
//! over from the beginning of its buffer whenever a chunk arrives without ending
//! the event, so one event of 8 MiB sent in small pieces cost 16 s of CPU, and it
//! buffers without limit. [`SseDecoder`] scans each byte once, and refuses an
//! event larger than its bound before buffering it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

/// One event: its `event:` name (`message` when none was sent, as the SSE
/// standard says) and its `data:` lines joined with `\n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Why an SSE stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SseError<E> {
    /// One event (or one line) is larger than the bound.
    #[error("an SSE event is larger than {0} bytes")]
    TooLarge(usize),
    /// The body itself failed.
    #[error(transparent)]
    Body(E),
}

/// The incremental decoder: bytes in, events out.
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the line not yet complete (only ever one line).
    line: Vec<u8>,
    /// The last byte seen was a `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
    event: String,
    data: String,
    /// A `data:` field was seen since the last dispatch (it may be empty).
    has_data: bool,
    max_event_bytes: usize,
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
            max_event_bytes,
        }
    }

    /// Decodes `chunk`, pushing every event it completes onto `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), usize> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (line, terminator) = (&chunk[..end], chunk[end]);
            let mut rest = &chunk[end + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.take_line(line, out)?;
            } else {
                self.check_size(line.len())?;
                let mut whole = std::mem::take(&mut self.line);
                whole.extend_from_slice(line);
                self.take_line(&whole, out)?;
            }
            chunk = rest;
        }
        self.check_size(chunk.len())?;
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    /// The end of the body: a last event not followed by a blank line is still
    /// delivered (servers that close right after `data: [DONE]` are common).
    pub fn finish(&mut self, out: &mut VecDeque<SseEvent>) -> Result<(), usize> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.take_line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    /// Bytes held for the event being read, plus `more`, must stay in bounds.
    fn check_size(&self, more: usize) -> Result<(), usize> {
        if self.line.len() + self.data.len() + self.event.len() + more > self.max_event_bytes {
            return Err(self.max_event_bytes);
        }
        Ok(())
    }

    fn take_line(&mut self, line: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), usize> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        self.check_size(line.len())?;
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                // Checked again on the text: replacement characters make
                // invalid UTF-8 up to three times longer.
                self.check_size(value.len() + 1)?;
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => {
                // The name is held until dispatch too, and replacement
                // characters can make it longer than its line: bounded like
                // `data`, so the decoder's state never exceeds the bound
                // however the body is cut.
                if self.line.len() + self.data.len() + value.len() > self.max_event_bytes {
                    return Err(self.max_event_bytes);
                }
                value.clone_into(&mut self.event);
            }
            // `id` and `retry` concern reconnecting, which no caller does.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        if self.has_data {
            let mut event = std::mem::take(&mut self.event);
            if event.is_empty() {
                "message".clone_into(&mut event);
            }
            out.push_back(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
        self.event.clear();
        self.has_data = false;
    }
}

/// The events of a byte stream (an HTTP body), each at most `max_event_bytes`.
pub fn events<S, B, E>(body: S, max_event_bytes: usize) -> SseStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    SseStream {
        body,
        decoder: SseDecoder::new(max_event_bytes),
        pending: VecDeque::new(),
        ended: false,
    }
}

/// The stream [`events`] returns.
pub struct SseStream<S> {
    body: S,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
    ended: bool,
}

impl<S, B, E> Stream for SseStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    type Item = Result<SseEvent, SseError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            let fed = match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.decoder.feed(chunk.as_ref(), &mut this.pending)
                }
                Poll::Ready(Some(Err(error))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(SseError::Body(error))));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.decoder.finish(&mut this.pending)
                }
            };
            if let Err(max) = fed {
                this.ended = true;
                this.pending.clear();
                return Poll::Ready(Some(Err(SseError::TooLarge(max))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn decode(pieces: &[&[u8]], max: usize) -> Result<Vec<SseEvent>, usize> {
        let mut decoder = SseDecoder::new(max);
        let mut out = VecDeque::new();
        for piece in pieces {
            decoder.feed(piece, &mut out)?;
        }
        decoder.finish(&mut out)?;
        Ok(out.into_iter().collect())
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_are_the_same_however_the_bytes_are_cut() {
        let body: &[u8] =
            b": hi\r\ndata: {\"a\":1}\r\n\r\nevent: done\ndata:x\ndata: y\n\ndata: [DONE]";
        let whole = decode(&[body], 1024).unwrap();
        assert_eq!(
            whole,
            vec![
                event("message", "{\"a\":1}"),
                event("done", "x\ny"),
                event("message", "[DONE]")
            ]
        );
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(decode(&[a, b], 1024).unwrap(), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode(&bytes, 1024).unwrap(), whole);
    }

    #[test]
    fn an_empty_piece_between_cr_and_lf_changes_nothing() {
        assert_eq!(
            decode(&[b"data: a\r", b"", b"\ndata: b\n\n"], 64).unwrap(),
            vec![event("message", "a\nb")]
        );
        let invalid = vec![0xFF; 30];
        assert_eq!(decode(&[b"data: ", &invalid, b"\n\n"], 64), Err(64));
    }

    #[test]
    fn a_lone_cr_ends_a_line_and_an_event_without_data_is_none() {
        assert_eq!(
            decode(&[b"data: a\r\rdata: b\r", b"\r"], 64).unwrap(),
            vec![event("message", "a"), event("message", "b")]
        );
        assert_eq!(decode(&[b"event: x\n\n"], 64).unwrap(), vec![]);
    }

    #[test]
    fn an_event_past_the_bound_is_refused_before_it_is_buffered() {
        let big = vec![b'x'; 100];
        assert_eq!(decode(&[b"data: ", &big], 64), Err(64));
        let pieces: Vec<&[u8]> = std::iter::repeat_n(&b"data: 0123456789\n"[..], 10).collect();
        assert_eq!(
            decode(&pieces, 64),
            Err(64),
            "many lines add up to one event"
        );
    }

    #[test]
    fn an_event_name_that_grows_past_the_bound_is_refused_however_it_is_cut() {
        // Found by the backend_sse fuzz target: invalid UTF-8 in an `event:`
        // line grows threefold as replacement characters; the name was not
        // bounded, so the body read whole passed and read in pieces failed.
        let mut body = b"event: ".to_vec();
        body.extend(std::iter::repeat_n(0xFF, 40));
        body.extend_from_slice(b"\n\ndata: x\n\n");
        let whole = decode(&[&body], 64);
        let pieces: Vec<&[u8]> = body.chunks(5).collect();
        assert_eq!(whole, Err(64));
        assert_eq!(decode(&pieces, 64), whole);
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "a bound twenty times what linear decoding takes, against the quadratic parser's 26 s"
    )]
    fn a_huge_event_in_small_pieces_is_read_in_linear_time() {
        let piece = vec![b'x'; 1024];
        let mut decoder = SseDecoder::new(64 << 20);
        let mut out = VecDeque::new();
        decoder.feed(b"data: ", &mut out).unwrap();
        let started = std::time::Instant::now();
        for _ in 0..(16 << 10) {
            decoder.feed(&piece, &mut out).unwrap();
        }
        decoder.feed(b"\n\n", &mut out).unwrap();
        assert_eq!(out.pop_front().unwrap().data.len(), 16 << 20);
        // Quadratic parsing took 26 s for this; linear is a few milliseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
