//! The campaigns source: the console shows messaging campaigns by reading a campaigns HTTP API.
//!
//! The emulator cannot depend on the campaigns crate (campaigns embeds the emulator), so the
//! console is a client of the campaigns HTTP API instead (`docs/campaigns.md`): given its base
//! URL and API key (`--campaigns-url`, `--campaigns-key`, `EmulatorBuilder::console_campaigns`),
//! the campaigns page fetches the newest messages, their newest sendings and each sending's
//! progress on the server and renders them. Any campaigns server works, in-process or not, and
//! the emulator keeps no campaign state of its own.
//!
//! Every fetch is bounded: one exchange takes at most [`FETCH_TIMEOUT`], one answer at most
//! [`MAX_BODY`] bytes, one page at most [`PAGE_TIMEOUT`] and
//! `1 + MAX_MESSAGES × (1 + MAX_SENDINGS)` requests, so a slow or broken campaigns server shows
//! as an error on the page, never as a page that hangs.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP exchange with the campaigns API, connect to last byte.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole campaigns snapshot.
pub(crate) const PAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from the campaigns API, head and body.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Newest messages shown.
const MAX_MESSAGES: u64 = 10;
/// Newest sendings shown per message.
const MAX_SENDINGS: u64 = 5;

/// Why the campaigns source could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignsUrlError {
    /// Not an `http://host:port/path` URL.
    #[error("the campaigns URL must look like http://host:port/ (https is not supported): {0:?}")]
    Url(String),
    /// An empty API key.
    #[error("the campaigns API key must not be empty")]
    EmptyKey,
}

/// Where the console reads campaigns: a campaigns HTTP API and its key.
#[derive(Clone)]
pub(crate) struct Source {
    /// `host:port`, for the connection and the `Host` header.
    authority: String,
    /// The API's path prefix, without a trailing slash (empty for the root).
    base: String,
    key: String,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Source")
            .field("authority", &self.authority)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a fetch failed, as shown on the page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("cannot reach the campaigns API at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("the campaigns API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the campaigns API's answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the campaigns API answered something that is not HTTP: {0}")]
    Malformed(&'static str),
    #[error("the campaigns API answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the campaigns API answered invalid JSON: {0}")]
    Json(serde_json::Error),
}

impl Source {
    /// Checks `url` (`http://host:port[/prefix]`) and `key`.
    pub(crate) fn new(url: &str, key: &str) -> Result<Source, CampaignsUrlError> {
        if key.is_empty() {
            return Err(CampaignsUrlError::EmptyKey);
        }
        let bad = || CampaignsUrlError::Url(url.chars().take(200).collect());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty()
            || port.parse::<u16>().is_err()
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            || path.contains(['?', '#', ' ', '\r', '\n'])
        {
            return Err(bad());
        }
        // The key goes into a header line: a line break in it would forge headers.
        if key.contains(['\r', '\n']) {
            return Err(CampaignsUrlError::Url("API key with a line break".into()));
        }
        Ok(Source {
            authority: authority.to_owned(),
            base: path.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }

    /// The base URL, for the page.
    pub(crate) fn url(&self) -> String {
        format!("http://{}{}/", self.authority, self.base)
    }

    /// `GET base + path`: the JSON answer and its `X-Total-Count`.
    async fn get(&self, path: &str) -> Result<(Value, Option<u64>), FetchError> {
        tokio::time::timeout(FETCH_TIMEOUT, self.exchange(path))
            .await
            .map_err(|_| FetchError::Timeout(FETCH_TIMEOUT))?
    }

    async fn exchange(&self, path: &str) -> Result<(Value, Option<u64>), FetchError> {
        let mut stream = tokio::net::TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| FetchError::Connect(self.authority.clone(), e))?;
        let request = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            self.base, self.authority, self.key
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| FetchError::Connect(self.authority.clone(), e))?;
        let mut raw = Vec::new();
        // One byte over the bound tells "too large" from "exactly at the bound".
        let read = (&mut stream)
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut raw)
            .await;
        if let Err(e) = read {
            return Err(FetchError::Connect(self.authority.clone(), e));
        }
        if raw.len() > MAX_BODY {
            return Err(FetchError::TooLarge);
        }
        parse_response(&raw)
    }
}

/// Splits an HTTP/1.1 answer read to its end into its JSON body and `X-Total-Count`.
fn parse_response(raw: &[u8]) -> Result<(Value, Option<u64>), FetchError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(FetchError::Malformed("no end of head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| FetchError::Malformed("head"))?;
    let mut body = raw[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(FetchError::Malformed("status line"))?;
    let mut total = None;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("x-total-count") {
            total = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(len) = length {
        body.truncate(len);
    }
    let json: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(FetchError::Json)?
    };
    if !(200..300).contains(&status) {
        let message = json["error"]["message"]
            .as_str()
            .or_else(|| json["error"].as_str())
            .unwrap_or("no reason given")
            .to_owned();
        return Err(FetchError::Status { status, message });
    }
    Ok((json, total))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(FetchError::Malformed("chunk size"))?;
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or(FetchError::Malformed("chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data
            .get(..size)
            .ok_or(FetchError::Malformed("short chunk"))?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// A sending and its progress, or why the progress could not be read.
pub(crate) type SendingView = (Value, Result<Value, String>);

/// One message with its newest sendings.
#[derive(Debug)]
pub(crate) struct MessageView {
    pub message: Value,
    /// The sendings, or why they could not be read.
    pub sendings: Result<Vec<SendingView>, String>,
}

/// What the campaigns page shows.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub total_messages: u64,
    pub messages: Vec<MessageView>,
}

/// Reads the newest messages, their newest sendings and their progress, bounded by
/// [`PAGE_TIMEOUT`].
pub(crate) async fn snapshot(source: &Source) -> Result<Snapshot, String> {
    tokio::time::timeout(PAGE_TIMEOUT, read(source))
        .await
        .map_err(|_| format!("the campaigns API did not answer within {PAGE_TIMEOUT:?}"))?
}

/// The last page of `per` items out of `total`: the newest, as the API lists oldest first.
fn last_page(total: u64, per: u64) -> u64 {
    total.div_ceil(per).max(1)
}

async fn read(source: &Source) -> Result<Snapshot, String> {
    let probe = format!("/messages?page=1&per_page={MAX_MESSAGES}");
    let (first, total) = source.get(&probe).await.map_err(|e| e.to_string())?;
    let total = total.unwrap_or_else(|| first.as_array().map_or(0, |a| a.len() as u64));
    let list = if total > MAX_MESSAGES {
        let page = last_page(total, MAX_MESSAGES);
        let path = format!("/messages?page={page}&per_page={MAX_MESSAGES}");
        let (mut newest, _) = source.get(&path).await.map_err(|e| e.to_string())?;
        // The last page may be short: top it up from the one before.
        if let (Some(items), Some(before)) = (newest.as_array().cloned(), page.checked_sub(1))
            && (items.len() as u64) < MAX_MESSAGES
            && before > 0
        {
            let path = format!("/messages?page={before}&per_page={MAX_MESSAGES}");
            if let Ok((older, _)) = source.get(&path).await {
                let mut all: Vec<Value> = older.as_array().cloned().unwrap_or_default();
                all.extend(items);
                let skip = all.len().saturating_sub(MAX_MESSAGES as usize);
                newest = Value::Array(all.split_off(skip));
            }
        }
        newest
    } else {
        first
    };
    let mut messages: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    messages.reverse();
    let views = futures_util::future::join_all(messages.into_iter().map(|m| async move {
        let sendings = match m["id"].as_u64() {
            Some(id) => sendings(source, id).await,
            None => Err("a message without an id".to_owned()),
        };
        MessageView {
            message: m,
            sendings,
        }
    }))
    .await;
    Ok(Snapshot {
        total_messages: total,
        messages: views,
    })
}

async fn sendings(source: &Source, message: u64) -> Result<Vec<SendingView>, String> {
    let path = format!("/messages/{message}/sendings?page=1&per_page={MAX_SENDINGS}");
    let (first, total) = source.get(&path).await.map_err(|e| e.to_string())?;
    let list = match total {
        Some(total) if total > MAX_SENDINGS => {
            let page = last_page(total, MAX_SENDINGS);
            let path = format!("/messages/{message}/sendings?page={page}&per_page={MAX_SENDINGS}");
            source.get(&path).await.map_err(|e| e.to_string())?.0
        }
        _ => first,
    };
    let mut list: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    list.reverse();
    Ok(
        futures_util::future::join_all(list.into_iter().map(|s| async move {
            let progress = match s["id"].as_u64() {
                Some(id) => source
                    .get(&format!("/messages/{message}/sendings/{id}/progress"))
                    .await
                    .map(|(p, _)| p)
                    .map_err(|e| e.to_string()),
                None => Err("a sending without an id".to_owned()),
            };
            (s, progress)
        }))
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let s = Source::new("http://127.0.0.1:8080", "k").unwrap();
        assert_eq!(s.url(), "http://127.0.0.1:8080/");
        let s = Source::new("http://localhost:8080/campaigns/", "k").unwrap();
        assert_eq!(s.base, "/campaigns");
        for bad in [
            "https://x:1/",
            "http://nohost/",
            "http://:80/",
            "http://a b:1/",
            "ftp://x:1",
            "http://x:99999/",
            "http://x:1/?q",
        ] {
            assert!(Source::new(bad, "k").is_err(), "{bad}");
        }
        assert!(matches!(
            Source::new("http://x:1/", ""),
            Err(CampaignsUrlError::EmptyKey)
        ));
        assert!(Source::new("http://x:1/", "a\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn the_key_is_not_debug_printed() {
        let s = Source::new("http://x:1/", "s3cret-key").unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn answers_are_parsed_with_length_or_chunks() {
        let (v, total) = parse_response(
            b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nx-total-count: 12\r\n\r\n[1,2,3]",
        )
        .unwrap();
        assert_eq!(v, serde_json::json!([1, 2, 3]));
        assert_eq!(total, Some(12));
        let (v, _) = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(v, serde_json::json!([1, 2]));
        let err = parse_response(
            b"HTTP/1.1 401 Unauthorized\r\n\r\n{\"error\":{\"code\":\"unauthorized\",\"message\":\"wrong key\"}}",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "the campaigns API answered 401: wrong key");
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nnot json").is_err());
    }

    #[test]
    fn the_newest_page_is_the_last() {
        assert_eq!(last_page(0, 10), 1);
        assert_eq!(last_page(10, 10), 1);
        assert_eq!(last_page(11, 10), 2);
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_huge_answer_is_refused() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(FETCH_TIMEOUT * 2).await;
            drop(socket);
        });
        let source = Source::new(&format!("http://{addr}/"), "k").unwrap();
        let started = std::time::Instant::now();
        let err = source.get("/messages").await.unwrap_err();
        assert!(matches!(err, FetchError::Timeout(_)), "{err}");
        assert!(started.elapsed() < FETCH_TIMEOUT * 2);
        hold.abort();

        let huge = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = huge.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = huge.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
                .await;
            let filler = vec![b' '; 64 * 1024];
            for _ in 0..(MAX_BODY / filler.len() + 2) {
                if socket.write_all(&filler).await.is_err() {
                    return;
                }
            }
        });
        let source = Source::new(&format!("http://{addr}/"), "k").unwrap();
        let err = source.get("/messages").await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge), "{err}");

        let nobody = Source::new("http://127.0.0.1:1/", "k").unwrap();
        let err = snapshot(&nobody).await.unwrap_err();
        assert!(err.contains("cannot reach"), "{err}");
    }
}
