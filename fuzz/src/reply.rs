//! An HTTP reply as a platform could send it: a status, a few headers from the set the
//! library reads, and a body.

use crate::input::{Reader, Writer};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use integrations_core::http::CappedResponse;

/// The header names a reply may carry: those the library reads (rate limits, content
/// type, authentication challenges) and the platforms' trace ids. Framing headers
/// (`Content-Length`, `Transfer-Encoding`) are the server's, never the fuzzer's.
pub const HEADER_NAMES: [&str; 8] = [
    "content-type",
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "www-authenticate",
    "x-fb-trace-id",
    "x-tt-logid",
];

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 200 to 599 (without 204 and 304, whose bodies HTTP forbids).
    pub status: u16,
    /// `(name, value)`; values are header-safe bytes.
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The status a raw `u16` stands for.
fn status_of(raw: u16) -> u16 {
    match 200 + raw % 400 {
        204 | 304 => 200,
        s => s,
    }
}

/// A header value the fuzzer chose, made safe for the wire: no control characters but
/// tab, no leading or trailing blanks (which HTTP strips anyway).
fn header_safe(raw: &[u8]) -> Vec<u8> {
    let kept: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
        .collect();
    let start = kept.iter().position(|b| !b" \t".contains(b));
    let end = kept.iter().rposition(|b| !b" \t".contains(b));
    match (start, end) {
        (Some(s), Some(e)) => kept[s..=e].to_vec(),
        _ => Vec::new(),
    }
}

impl Reply {
    /// A reply with a JSON content type.
    pub fn json(status: u16, body: &[u8]) -> Self {
        Self {
            status,
            headers: vec![("content-type", b"application/json".to_vec())],
            body: body.to_vec(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.as_bytes().to_vec()));
        self
    }

    /// Reads a reply: status `u16`, header count byte (at most 4), each header's name
    /// byte and value chunk, the body chunk.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let status = status_of(r.u16());
        let count = r.byte() % 5;
        let headers = (0..count)
            .map(|_| {
                let name = HEADER_NAMES[usize::from(r.byte()) % HEADER_NAMES.len()];
                (name, header_safe(r.chunk()))
            })
            .collect();
        let body = r.chunk().to_vec();
        Self {
            status,
            headers,
            body,
        }
    }

    /// Writes the reply in the format [`read`](Self::read) reads.
    ///
    /// # Panics
    ///
    /// With a status outside 200–599 or a header name not in [`HEADER_NAMES`].
    pub fn write(&self, w: Writer) -> Writer {
        assert!((200..600).contains(&self.status), "a status in 200..600");
        let mut w = w.u16(self.status - 200).byte(
            u8::try_from(self.headers.len())
                .ok()
                .filter(|n| *n <= 4)
                .expect("at most 4 headers"),
        );
        for (name, value) in &self.headers {
            let index = HEADER_NAMES
                .iter()
                .position(|n| n == name)
                .expect("a known header name");
            w = w.byte(u8::try_from(index).unwrap_or_default()).chunk(value);
        }
        w.chunk(&self.body)
    }

    /// The headers as a map (values HTTP would refuse are left out).
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        map
    }

    /// The reply as the library holds it once read.
    pub fn capped(&self) -> CappedResponse {
        CappedResponse {
            status: StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK),
            headers: self.header_map(),
            body: self.body.clone(),
        }
    }

    /// The reply on the wire (HTTP/1.1, kept alive).
    pub fn to_http(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} Fuzz\r\n", self.status).into_bytes();
        for (name, value) in self.header_map().iter() {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let reply = Reply::json(429, br#"{"error":"slow_down"}"#).header("retry-after", "7");
        let data = reply.write(Writer::new()).finish();
        assert_eq!(Reply::read(&mut Reader::new(&data)), reply);
    }

    #[test]
    fn header_values_are_made_safe() {
        assert_eq!(header_safe(b" a\r\nb\x00c\t "), b"abc".to_vec());
        assert_eq!(header_safe(b"  "), Vec::<u8>::new());
        assert_eq!(status_of(229), 429);
        assert_eq!(
            status_of(4),
            200,
            "no 204: its body would break the connection"
        );
        assert_eq!(status_of(400), 200);
    }
}
