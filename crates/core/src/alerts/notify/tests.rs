use super::*;
use prometheus::Opts;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn counters() -> IntCounterVec {
    IntCounterVec::new(Opts::new("t_notifications_total", "t"), &["result"]).unwrap()
}

fn count(c: &IntCounterVec, result: &str) -> u64 {
    c.with_label_values(&[result]).get()
}

fn quick() -> Delivery {
    Delivery {
        attempts: 3,
        timeout: Duration::from_millis(500),
        backoff: RetryPolicy {
            max_attempts: 3,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
            multiplier: 2.0,
            jitter: 0.0,
        },
        extra_roots_pem: None,
    }
}

#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: String,
}

/// A webhook receiver on a free port answering the `codes` in turn (the last one for
/// every further request); `None` = accept and never answer.
async fn receiver(codes: Vec<Option<u16>>) -> (u16, Arc<Mutex<Vec<Received>>>) {
    receiver_tls(codes, None).await
}

/// [`receiver`] behind TLS when `acceptor` is given.
async fn receiver_tls(
    codes: Vec<Option<u16>>,
    acceptor: Option<openssl::ssl::SslAcceptor>,
) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let code = codes.get(n).or(codes.last()).copied().flatten();
            n += 1;
            let g = g.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => answer(s, code, g).await,
                    Some(a) => {
                        let ssl = openssl::ssl::Ssl::new(a.context()).unwrap();
                        let mut s = tokio_openssl::SslStream::new(ssl, s).unwrap();
                        if std::pin::Pin::new(&mut s).accept().await.is_ok() {
                            answer(s, code, g).await;
                        }
                    }
                }
            });
        }
    });
    (port, got)
}

/// Reads one request, records it, answers `code` (or holds the connection).
async fn answer<S>(mut s: S, code: Option<u16>, g: Arc<Mutex<Vec<Received>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body) = loop {
        let k = s.read(&mut chunk).await.unwrap_or(0);
        if k == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..k]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break (head.to_owned(), body.to_owned());
            }
        }
    };
    g.lock().unwrap().push(Received { head, body });
    match code {
        Some(c) => {
            let _ = s
                .write_all(format!("HTTP/1.1 {c} X\r\ncontent-length: 0\r\n\r\n").as_bytes())
                .await;
            let _ = s.shutdown().await;
        }
        None => {
            // Hold the connection open without answering.
            let _ = s.read(&mut chunk).await;
        }
    }
}

/// A self-signed certificate for `dns` (and 127.0.0.1 when `loopback`): (acceptor,
/// certificate PEM).
fn self_signed(dns: &str, loopback: bool) -> (openssl::ssl::SslAcceptor, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::ssl::{SslAcceptor, SslMethod};
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", dns).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    san.dns(dns);
    if loopback {
        san.ip("127.0.0.1");
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    a.set_private_key(&key).unwrap();
    a.set_certificate(&cert).unwrap();
    (a.build(), cert.to_pem().unwrap())
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn posts_json_with_the_headers_and_basic_auth_from_the_url() {
    let rt = rt();
    rt.block_on(async {
        let (port, got) = receiver(vec![Some(200)]).await;
        let w = Webhook::parse(&format!(
            "http://alice:s3cret@127.0.0.1:{port}/hooks/T01/B02?token=tok-123"
        ))
        .unwrap()
        .unwrap();
        let c = counters();
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), quick());
        assert!(n.send(
            "latency",
            &serde_json::json!({"alert": "latency", "value": 1.5})
        ));
        until("sent", || count(&c, "sent") == 1).await;
        let r = got.lock().unwrap()[0].clone();
        assert!(
            r.head
                .starts_with("POST /hooks/T01/B02?token=tok-123 HTTP/1.1\r\n"),
            "{}",
            r.head
        );
        let head = r.head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains(&format!("host: 127.0.0.1:{port}")), "{head}");
        // alice:s3cret
        assert!(
            head.contains("authorization: basic ywxpy2u6cznjcmv0"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["alert"], "latency");
        assert_eq!(count(&c, "retried"), 0);
        assert!(format!("{n:?}").ends_with(&format!("(http://127.0.0.1:{port})")));
    });
}

#[test]
fn a_failed_post_is_retried_with_back_off_until_it_succeeds() {
    let rt = rt();
    rt.block_on(async {
        let (port, got) = receiver(vec![Some(503), Some(500), Some(204)]).await;
        let w = Webhook::parse(&format!("http://127.0.0.1:{port}/"))
            .unwrap()
            .unwrap();
        let c = counters();
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), quick());
        n.send("load", &serde_json::json!({"n": 1}));
        until("sent", || count(&c, "sent") == 1).await;
        assert_eq!(count(&c, "retried"), 2);
        assert_eq!(count(&c, "failed"), 0);
        assert_eq!(got.lock().unwrap().len(), 3);
    });
}

#[test]
fn gives_up_after_the_attempts_and_goes_on_with_the_next() {
    let rt = rt();
    rt.block_on(async {
        // Three 500s for the first notification (3 attempts), then 200 for the second.
        let (port, got) = receiver(vec![Some(500), Some(500), Some(500), Some(200)]).await;
        let w = Webhook::parse(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .unwrap();
        let c = counters();
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), quick());
        n.send("a", &serde_json::json!({"n": 1}));
        n.send("b", &serde_json::json!({"n": 2}));
        until("second sent", || count(&c, "sent") == 1).await;
        assert_eq!(count(&c, "failed"), 1);
        assert_eq!(count(&c, "retried"), 2);
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 4);
        assert!(got[0].body.contains("\"n\":1") && got[3].body.contains("\"n\":2"));
    });
}

#[test]
fn a_client_error_is_not_retried() {
    let rt = rt();
    rt.block_on(async {
        let (port, got) = receiver(vec![Some(404)]).await;
        let w = Webhook::parse(&format!("http://127.0.0.1:{port}/wrong"))
            .unwrap()
            .unwrap();
        let c = counters();
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), quick());
        n.send("a", &serde_json::json!({}));
        until("failed", || count(&c, "failed") == 1).await;
        assert_eq!(count(&c, "retried"), 0);
        assert_eq!(got.lock().unwrap().len(), 1);
        // 429 and 408 are worth another try.
        assert!(PostError::Status(429).is_transient());
        assert!(PostError::Status(408).is_transient());
        assert!(!PostError::Status(401).is_transient());
    });
}

#[test]
fn nobody_listening_and_no_answer_are_retried_then_failed() {
    let rt = rt();
    rt.block_on(async {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let w = Webhook::parse(&format!("http://127.0.0.1:{closed}/"))
            .unwrap()
            .unwrap();
        let c = counters();
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), quick());
        n.send("a", &serde_json::json!({}));
        until("failed", || count(&c, "failed") == 1).await;
        assert_eq!(count(&c, "retried"), 2);

        let (port, got) = receiver(vec![None]).await;
        let w = Webhook::parse(&format!("http://127.0.0.1:{port}/"))
            .unwrap()
            .unwrap();
        let c = counters();
        let d = Delivery {
            timeout: Duration::from_millis(200),
            ..quick()
        };
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), d);
        n.send("a", &serde_json::json!({}));
        until("failed", || count(&c, "failed") == 1).await;
        assert_eq!(count(&c, "retried"), 2);
        assert_eq!(got.lock().unwrap().len(), 3);
    });
}

#[test]
fn send_never_waits_a_full_queue_drops() {
    // A current-thread runtime that is not driven: the delivery task cannot take
    // anything off the queue, so exactly QUEUE notifications fit.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = Webhook::parse("http://127.0.0.1:9/").unwrap().unwrap();
    let c = counters();
    let n = Notifier::start(rt.handle(), w, c.clone(), quick());
    let started = std::time::Instant::now();
    let accepted = (0..QUEUE + 6)
        .filter(|i| n.send("a", &serde_json::json!({ "i": i })))
        .count();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(accepted, QUEUE);
    assert_eq!(count(&c, "dropped"), 6);
}

#[test]
fn urls_are_parsed_and_never_shown_in_full() {
    let w = Webhook::parse("https://bot:tok@hooks.example.com/services/T0/B1/XYZ?key=abc#frag")
        .unwrap()
        .unwrap();
    assert!(w.is_tls());
    assert_eq!(w.redacted(), "https://hooks.example.com:443");
    assert_eq!(w.path, "/services/T0/B1/XYZ?key=abc");
    assert_eq!(w.host_header, "hooks.example.com");
    let dbg = format!("{w:?}");
    for secret in ["tok", "XYZ", "abc", "bot"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    let w = Webhook::parse("HTTP://[::1]:8081?x=1").unwrap().unwrap();
    assert_eq!((w.host.as_str(), w.port), ("::1", 8081));
    assert_eq!(w.path, "/?x=1");
    assert_eq!(w.redacted(), "http://[::1]:8081");
    let w = Webhook::parse("http://example.com").unwrap().unwrap();
    assert_eq!((w.port, w.path.as_str()), (80, "/"));
    assert_eq!(Webhook::parse("").unwrap(), None);
    assert_eq!(Webhook::parse("   ").unwrap(), None);
}

#[test]
fn bad_urls_are_refused_without_repeating_them() {
    for (url, says) in [
        ("ftp://host/tok-1", "http:// or https://"),
        ("hooks.example.com/tok-1", "http:// or https://"),
        ("http:///tok-1", "no host"),
        ("http://host:99999/tok-1", "port"),
        ("http://host:0/tok-1", "port"),
        ("http://host:x/tok-1", "port"),
        ("http://host/tok-1 x", "spaces"),
        ("http://[::1/tok-1", "IPv6"),
        ("http://host/tok-1\u{7f}", "control"),
        ("http://host/tok-1\"<>", "path"),
    ] {
        let e = Webhook::parse(url).unwrap_err();
        assert!(e.contains(says), "{url}: {e}");
        assert!(!e.contains("tok-1"), "{url}: {e}");
    }
}

#[test]
fn https_verifies_the_certificate_and_the_host() {
    let rt = rt();
    rt.block_on(async {
        let (acceptor, pem) = self_signed("localhost", true);
        let (port, got) = receiver_tls(vec![Some(200)], Some(acceptor)).await;
        let trusted = Delivery {
            extra_roots_pem: Some(pem),
            ..quick()
        };
        for host in ["127.0.0.1", "localhost"] {
            let w = Webhook::parse(&format!("https://{host}:{port}/hook?token=t"))
                .unwrap()
                .unwrap();
            let c = counters();
            let n = Notifier::start(
                &tokio::runtime::Handle::current(),
                w,
                c.clone(),
                trusted.clone(),
            );
            n.send("latency", &serde_json::json!({"alert": "latency"}));
            until("sent over TLS", || count(&c, "sent") == 1).await;
        }
        assert_eq!(got.lock().unwrap().len(), 2);
        assert!(got.lock().unwrap()[0]
            .head
            .starts_with("POST /hook?token=t HTTP/1.1"));

        // Not trusted: refused at once, not retried.
        let w = Webhook::parse(&format!("https://127.0.0.1:{port}/hook"))
            .unwrap()
            .unwrap();
        let err = post(&w, &Bytes::from_static(b"{}"), &quick())
            .await
            .unwrap_err();
        assert!(matches!(err, PostError::Certificate(_)), "{err}");
        assert!(!err.is_transient());
        let c = counters();
        let n = Notifier::start(&tokio::runtime::Handle::current(), w, c.clone(), quick());
        n.send("latency", &serde_json::json!({}));
        until("failed", || count(&c, "failed") == 1).await;
        assert_eq!(count(&c, "retried"), 0);

        // A trusted certificate for another host: refused.
        let (acceptor, pem) = self_signed("hooks.example.com", false);
        let (port, got) = receiver_tls(vec![Some(200)], Some(acceptor)).await;
        let d = Delivery {
            extra_roots_pem: Some(pem),
            ..quick()
        };
        for host in ["127.0.0.1", "localhost"] {
            let w = Webhook::parse(&format!("https://{host}:{port}/"))
                .unwrap()
                .unwrap();
            let e = post(&w, &Bytes::from_static(b"{}"), &d).await.unwrap_err();
            assert!(matches!(e, PostError::Certificate(_)), "{host}: {e}");
        }
        assert!(
            got.lock().unwrap().is_empty(),
            "no request after a failed handshake"
        );
    });
}
