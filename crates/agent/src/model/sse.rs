//! A small incremental Server-Sent Events parser.
//!
//! Bytes arrive in arbitrary chunks (mid-line, mid-UTF-8 character); the
//! parser buffers bytes up to a line end and only decodes complete lines, so
//! no split can corrupt text. Implements the parts of the WHATWG
//! event-stream format the model APIs use: `event:` and `data:` fields
//! (multi-line data joined with `\n`), comment lines (`: keep-alive`),
//! `\n`, `\r\n` and `\r` line ends; `id:` and `retry:` are ignored.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The joined `data:` lines.
    pub data: String,
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

/// Longest line accepted; a longer one means a broken or hostile stream.
pub(crate) const MAX_LINE: usize = 8 * 1024 * 1024;

/// A line exceeded [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineTooLong;

impl SseParser {
    /// Feeds a chunk, appending every completed event to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        for &b in bytes {
            match b {
                b'\n' if self.skip_lf => self.skip_lf = false,
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.skip_lf = true;
                    self.end_line(out);
                }
                _ => {
                    self.skip_lf = false;
                    if self.line.len() >= MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// Ends the input: a last line without a line end is processed and a
    /// pending event is dispatched (lenient towards servers that omit the
    /// final blank line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        p.finish(&mut out);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    const SAMPLE: &str = "event: a\ndata: {\"x\": \"h\u{e9}llo \u{1f600}\"}\n\n: keep-alive\n\ndata:[DONE]\r\n\r\nevent: b\r\ndata: 1\rdata: 2\r\r";

    #[test]
    fn parses_whole() {
        let out = parse_chunks(&[SAMPLE.as_bytes()]);
        assert_eq!(
            out,
            vec![
                ev(Some("a"), "{\"x\": \"h\u{e9}llo \u{1f600}\"}"),
                ev(None, "[DONE]"),
                ev(Some("b"), "1\n2"),
            ]
        );
    }

    #[test]
    fn every_split_position_gives_the_same_events() {
        let bytes = SAMPLE.as_bytes();
        let whole = parse_chunks(&[bytes]);
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let got = parse_chunks(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let bytes = SAMPLE.as_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&chunks), parse_chunks(&[bytes]));
    }

    #[test]
    fn trailing_event_without_blank_line_is_dispatched() {
        assert_eq!(parse_chunks(&[b"data: [DONE]"]), vec![ev(None, "[DONE]")]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert_eq!(parse_chunks(&[b"event: ping\n\n"]), vec![]);
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let out = parse_chunks(&[b"data: \xff\xfe\n\n"]);
        assert_eq!(out.len(), 1);
    }
}
