//! A fault-injecting HTTP/1.1 proxy for storage tests: it stands between
//! corral and the S3 test server and answers a share of requests with
//! 503 SlowDown, or resets the connection in the middle of an upload's body.
//! Hand-written because the faults must land mid-request, which a
//! general-purpose proxy does not do; one thread per connection, one request
//! per upstream connection.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The faults a proxy injects.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Answer every `every`-th request with 503 SlowDown.
    SlowDown {
        /// One request in this many is throttled.
        every: u64,
    },
    /// Reset the connection half-way through the body of every `every`-th
    /// request whose path contains `path_contains` and whose body has at
    /// least `min_body` bytes.
    ResetUploads {
        /// One upload in this many is reset.
        every: u64,
        /// Only requests whose path contains this.
        path_contains: &'static str,
        /// Only bodies at least this long.
        min_body: usize,
    },
    /// Reset, half-way through the body, the first `count` requests whose
    /// path contains `path_contains`; forward the rest.
    ResetFirstUploads {
        /// How many uploads are reset.
        count: u64,
        /// Only requests whose path contains this.
        path_contains: &'static str,
    },
}

/// What a proxy did.
#[derive(Debug, Default)]
pub struct ProxyCounts {
    /// Requests received.
    pub requests: AtomicU64,
    /// Answered 503 SlowDown.
    pub slowdowns: AtomicU64,
    /// Reset mid-body.
    pub resets: AtomicU64,
    /// Uploads seen (requests matching a reset rule).
    uploads: AtomicU64,
}

/// A running proxy.
pub struct FaultProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What it did so far.
    pub counts: Arc<ProxyCounts>,
}

impl FaultProxy {
    /// Starts a proxy in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(ProxyCounts::default());
        let shared = counts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (fault, counts) = (fault.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, &fault, &counts);
                });
            }
        });
        FaultProxy { port, counts }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/// Serves the requests of one client connection.
fn serve(client: TcpStream, upstream: u16, fault: &Fault, counts: &ProxyCounts) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        // The request head.
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let request_line = head[0].clone();
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let header = |name: &str| {
            head.iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        assert!(header("transfer-encoding").is_none(), "the fault proxy handles Content-Length bodies only");
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let n = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;

        match fault {
            Fault::SlowDown { every } if n % every == 0 => {
                std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
                counts.slowdowns.fetch_add(1, Ordering::SeqCst);
                write!(
                    client,
                    "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{SLOW_DOWN}",
                    SLOW_DOWN.len()
                )?;
                continue;
            }
            Fault::ResetFirstUploads { count, path_contains } if path.contains(path_contains) => {
                let upload = counts.uploads.fetch_add(1, Ordering::SeqCst) + 1;
                if upload <= *count {
                    let mut half = vec![0; length / 2];
                    reader.read_exact(&mut half)?;
                    counts.resets.fetch_add(1, Ordering::SeqCst);
                    return Ok(());
                }
            }
            Fault::ResetUploads { every, path_contains, min_body }
                if length >= *min_body && path.contains(path_contains) =>
            {
                let upload = counts.uploads.fetch_add(1, Ordering::SeqCst) + 1;
                if upload % every == 0 {
                    // Take half the body, then close with the rest unread:
                    // the kernel answers with a reset.
                    let mut half = vec![0; length / 2];
                    reader.read_exact(&mut half)?;
                    counts.resets.fetch_add(1, Ordering::SeqCst);
                    drop(reader);
                    drop(client);
                    return Ok(());
                }
            }
            _ => {}
        }

        // Forward on a fresh upstream connection, closed after the answer.
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
        for line in &head[..head.len() - 1] {
            let name = line.split(':').next().unwrap_or_default().trim();
            if !name.eq_ignore_ascii_case("connection") {
                up.write_all(line.as_bytes())?;
            }
        }
        up.write_all(b"Connection: close\r\n\r\n")?;
        up.write_all(&body)?;
        let mut answer = Vec::new();
        up.read_to_end(&mut answer)?;
        client.write_all(&answer)?;
        // The answer says `Connection: close`; the client opens a new one.
        return Ok(());
    }
}
