//! A real S3-compatible server for the tests: moto's, started once per test
//! process on 127.0.0.1 by `tests/support/s3_server.py` (it exits when this
//! process does), with buckets made per test and objects read and written
//! through object_store.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

/// The access key id the tests use (moto accepts any).
pub const ACCESS_KEY_ID: &str = "AKIACORRALTEST";
/// The secret the tests use: a distinctive string, so that a test can show
/// it never appears in logs or outputs.
pub const SECRET_ACCESS_KEY: &str = "corral-test-secret-Zq8vX2";

/// The running server.
pub struct S3Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _child: Mutex<(Child, ChildStdin)>,
}

static SERVER: OnceLock<S3Server> = OnceLock::new();
static BUCKETS: Mutex<u32> = Mutex::new(0);

impl S3Server {
    /// The server of this test process, started on first use.
    pub fn shared() -> &'static S3Server {
        SERVER.get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/s3_server.py");
            let mut child = Command::new("python3")
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("starting python3 for the S3 test server");
            let stdin = child.stdin.take().unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            let port = line.trim().parse().unwrap_or_else(|_| {
                panic!("the S3 test server did not start (is moto installed? `pip install 'moto[server]'`): {line:?}")
            });
            S3Server { port, _child: Mutex::new((child, stdin)) }
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a corral process needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        env_for(&self.endpoint())
    }

    /// Creates a new, empty bucket with a unique name.
    pub fn new_bucket(&self, stem: &str) -> Bucket {
        let name = {
            let mut n = BUCKETS.lock().unwrap();
            *n += 1;
            format!("{stem}-{}-{}", std::process::id(), *n)
        };
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(stream, "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "creating bucket {name}: {answer}");
        let store = AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .with_bucket_name(&name)
            .build()
            .unwrap();
        Bucket { name, store: Arc::new(store) }
    }
}

/// The environment for a corral process to reach an S3 endpoint.
pub fn env_for(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A bucket of the test server.
pub struct Bucket {
    /// Its name.
    pub name: String,
    store: Arc<dyn ObjectStore>,
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

impl Bucket {
    /// `s3://BUCKET/key`.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// Writes an object.
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        block_on(self.store.put(&ObjectPath::from(key), PutPayload::from(bytes))).unwrap();
    }

    /// Reads an object, if it exists.
    pub fn get(&self, key: &str) -> Option<bytes::Bytes> {
        block_on(async {
            match self.store.get(&ObjectPath::from(key)).await {
                Ok(get) => Some(get.bytes().await.unwrap()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("reading {key}: {e}"),
            }
        })
    }

    /// The keys under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt as _;
        let mut keys: Vec<String> = block_on(
            self.store.list(Some(&ObjectPath::from(prefix))).map_ok(|m| m.location.to_string()).try_collect(),
        )
        .unwrap();
        keys.sort();
        keys
    }
}
