//! The alert webhook: notifications POSTed as JSON to `monitoring.alerts.webhook`.
//!
//! [`Notifier::send`] never blocks: it puts the body on a bounded queue ([`QUEUE`]) and
//! returns; with the queue full the notification is dropped (counted `dropped`, logged).
//! One task delivers the queue in order, one POST at a time. A POST is retried — up to
//! [`Delivery::attempts`] in all, with exponential back-off and jitter — after a
//! connection error, a timeout, or an answer 408, 429 or 5xx; any other answer that is not
//! 2xx (a wrong path or token) is not retried. Results are counted by `result` =
//! `sent` | `retried` (a failed attempt that is tried again) | `failed` (given up) |
//! `dropped`.
//!
//! The URL may carry a token (in its path, query or user info): it is held as a
//! [`Webhook`] whose `Debug` and [`Webhook::redacted`] show only `scheme://host:port`, and
//! nothing here logs more than that. Bodies carry alert names and numbers only.
//!
//! Plain `http://` goes over hyper's HTTP/1.1 client (hyper is already in the tree for
//! the health server); `https://` adds TLS through OpenSSL (already linked for Kafka),
//! verifying the server's certificate and host name against the system's CA
//! certificates (`/etc/ssl/certs`; `SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere). A
//! certificate that does not verify is not retried.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use prometheus::IntCounterVec;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::retry::RetryPolicy;

/// Notifications waiting for delivery at most; more are dropped.
pub const QUEUE: usize = 64;

/// Where alerts go. Holds the full URL; shows only `scheme://host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    tls: bool,
    /// Host to connect to (IPv6 without brackets).
    host: String,
    port: u16,
    /// `Host` header: host[:port] as written, without user info.
    host_header: String,
    /// Path and query ("/" when empty).
    path: String,
    /// `Authorization: Basic …` from user info in the URL.
    basic_auth: Option<String>,
    redacted: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({})", self.redacted)
    }
}

impl Webhook {
    /// Parses `monitoring.alerts.webhook`: empty (or blank) = no webhook. Errors say what
    /// is wrong without repeating the URL (it may carry a token).
    pub fn parse(url: &str) -> Result<Option<Webhook>, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else {
            return Err("must be an http:// or https:// URL".into());
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = path.split('#').next().unwrap_or("");
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        if path.parse::<hyper::http::uri::PathAndQuery>().is_err() {
            return Err("has characters that are not allowed in a URL path or query".into());
        }
        if HeaderValue::from_str(hostport).is_err() {
            return Err("has a host that is not valid".into());
        }
        let basic_auth = userinfo.map(|u| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u.as_bytes())
            )
        });
        let scheme = if tls { "https" } else { "http" };
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        Ok(Some(Webhook {
            tls,
            redacted: format!("{scheme}://{shown}:{port}"),
            host,
            port,
            host_header: hostport.to_owned(),
            path,
            basic_auth,
        }))
    }

    /// `scheme://host:port`: what logs may show.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Whether the URL is `https://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("has an IPv6 host without its closing ]")?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or("has text after the IPv6 host")?),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err("has a port that is not a number in 1..=65535".into()),
        },
    };
    Ok((host.to_owned(), port))
}

/// How patiently a notification is delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// POSTs per notification at most, the first included.
    pub attempts: u32,
    /// Time allowed for one POST (connect, TLS, request, answer head).
    pub timeout: Duration,
    /// Back-off between attempts.
    pub backoff: RetryPolicy,
    /// PEM certificates trusted for `https://` besides the system's (tests; in
    /// production use `SSL_CERT_FILE`).
    pub extra_roots_pem: Option<Vec<u8>>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            attempts: 5,
            timeout: Duration::from_secs(10),
            backoff: RetryPolicy {
                max_attempts: 5,
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
                multiplier: 2.0,
                jitter: 0.2,
            },
            extra_roots_pem: None,
        }
    }
}

/// Why one POST did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("TLS: the server's certificate does not verify: {0}")]
    Certificate(String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered {0}")]
    Status(u16),
}

impl PostError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        match self {
            PostError::Connect(_) | PostError::Http(_) | PostError::Timeout(_) => true,
            PostError::Tls(_) => true,
            PostError::Certificate(_) => false,
            PostError::Status(code) => matches!(code, 408 | 429 | 500..=599),
        }
    }
}

struct Item {
    alert: String,
    body: Bytes,
}

/// The sending end of the webhook queue. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Item>,
    counters: IntCounterVec,
    redacted: String,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier({})", self.redacted)
    }
}

impl Notifier {
    /// Starts the delivery task on `rt`. `counters` has the label `result`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        webhook: Webhook,
        counters: IntCounterVec,
        delivery: Delivery,
    ) -> Notifier {
        let (tx, mut rx) = mpsc::channel::<Item>(QUEUE);
        let redacted = webhook.redacted().to_owned();
        let c = counters.clone();
        rt.spawn(async move {
            while let Some(item) = rx.recv().await {
                deliver(&webhook, &item, &c, &delivery).await;
            }
        });
        Notifier {
            tx,
            counters,
            redacted,
        }
    }

    /// Queues `body` for delivery; `alert` names it in logs. Returns false when it was
    /// dropped (queue full, or the delivery task is gone).
    pub fn send(&self, alert: &str, body: &Value) -> bool {
        let item = Item {
            alert: alert.to_owned(),
            body: Bytes::from(body.to_string()),
        };
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(_) => {
                self.counters.with_label_values(&["dropped"]).inc();
                tracing::warn!(
                    webhook = %self.redacted,
                    alert,
                    queued = QUEUE,
                    "alert notification dropped: the webhook queue is full"
                );
                false
            }
        }
    }
}

async fn deliver(w: &Webhook, item: &Item, counters: &IntCounterVec, d: &Delivery) {
    let mut attempt = 1;
    loop {
        let err = match post(w, &item.body, d).await {
            Ok(()) => {
                counters.with_label_values(&["sent"]).inc();
                tracing::debug!(webhook = %w.redacted, alert = %item.alert, attempt, "alert notification sent");
                return;
            }
            Err(e) => e,
        };
        if !err.is_transient() || attempt >= d.attempts.max(1) {
            counters.with_label_values(&["failed"]).inc();
            tracing::error!(
                webhook = %w.redacted,
                alert = %item.alert,
                attempt,
                error = %err,
                "alert notification failed; giving up on it"
            );
            return;
        }
        counters.with_label_values(&["retried"]).inc();
        let delay = d.backoff.delay(attempt, &mut rand::rng());
        tracing::warn!(
            webhook = %w.redacted,
            alert = %item.alert,
            attempt,
            error = %err,
            retry_in_ms = delay.as_millis() as u64,
            "alert notification failed; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// One POST of `body` to `w` within `d.timeout`: Ok on a 2xx answer.
pub async fn post(w: &Webhook, body: &Bytes, d: &Delivery) -> Result<(), PostError> {
    let timeout = d.timeout;
    let status = tokio::time::timeout(timeout, async {
        let tcp = tokio::net::TcpStream::connect((w.host.as_str(), w.port))
            .await
            .map_err(PostError::Connect)?;
        let _ = tcp.set_nodelay(true);
        if w.tls {
            let stream = tls(tcp, &w.host, d.extra_roots_pem.as_deref()).await?;
            request(TokioIo::new(stream), w, body).await
        } else {
            request(TokioIo::new(tcp), w, body).await
        }
    })
    .await
    .map_err(|_| PostError::Timeout(timeout))??;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(PostError::Status(status))
    }
}

async fn request<T>(io: T, w: &Webhook, body: &Bytes) -> Result<u16, PostError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let conn = tokio::spawn(conn);
    let mut req = Request::post(w.path.as_str())
        .header(HOST, w.host_header.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("rtdp/", env!("CARGO_PKG_VERSION")))
        .header(CONNECTION, "close");
    if let Some(auth) = &w.basic_auth {
        if let Ok(mut v) = HeaderValue::from_str(auth) {
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
    }
    // The parts were checked by Webhook::parse; a failure here would be a bug there.
    let req = match req.body(Full::new(body.clone())) {
        Ok(r) => r,
        Err(_) => {
            conn.abort();
            return Err(PostError::Status(0));
        }
    };
    let res = sender.send_request(req).await;
    conn.abort();
    Ok(res?.status().as_u16())
}

/// The TLS client side of `https://` webhooks: system CAs (plus `extra_roots_pem`),
/// host name (or IP address) verified, SNI for names.
async fn tls(
    tcp: tokio::net::TcpStream,
    host: &str,
    extra_roots_pem: Option<&[u8]>,
) -> Result<tokio_openssl::SslStream<tokio::net::TcpStream>, PostError> {
    use openssl::ssl::{SslConnector, SslMethod};
    use openssl::x509::X509VerifyResult;
    let setup = |e: openssl::error::ErrorStack| PostError::Tls(e.to_string());
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(setup)?;
    if let Some(pem) = extra_roots_pem {
        for cert in openssl::x509::X509::stack_from_pem(pem).map_err(setup)? {
            builder.cert_store_mut().add_cert(cert).map_err(setup)?;
        }
    }
    let ssl = builder
        .build()
        .configure()
        .and_then(|c| c.into_ssl(host))
        .map_err(setup)?;
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(setup)?;
    if let Err(e) = std::pin::Pin::new(&mut stream).connect().await {
        let verify = stream.ssl().verify_result();
        return Err(if verify != X509VerifyResult::OK {
            PostError::Certificate(verify.error_string().to_owned())
        } else {
            PostError::Tls(e.to_string())
        });
    }
    Ok(stream)
}

#[cfg(test)]
mod tests;
