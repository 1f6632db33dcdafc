//! A hostile transform for corral's tests. Params `{"evil": {"N": "behaviour"}}`
//! make iteration N misbehave; every other iteration copies its config rows
//! (`id, some_column, value` where `some_column == N`), so the tests can
//! check that good iterations are unharmed. `delay_ms` slows every
//! iteration; `spin` gives chosen iterations CPU work.

use std::collections::HashMap;
use std::sync::Arc;

use corral_guest::arrow_array::{Int64Array, RecordBatch, StringArray};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, bail, col, emit, info, scan};
use serde::Deserialize;

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    evil: HashMap<String, String>,
    /// Every iteration first sleeps this long (for tests that need a run
    /// to be in flight when they act on it).
    #[serde(default)]
    delay_ms: u64,
    /// `{"N" = units}`: iteration N first computes for this many units of
    /// 100,000 steps of a random-number generator (CPU work, for the
    /// fairness benchmark), then copies its rows.
    #[serde(default)]
    spin: HashMap<String, u64>,
}

fn run(ctx: &Context) -> Result<()> {
    let params: Params = ctx.params()?;
    if params.delay_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(params.delay_ms));
    }
    if let Some(&units) = params.spin.get(&ctx.iteration().to_string()) {
        let mut x: u64 = 1;
        for _ in 0..units * 100_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
        }
        info!("spun {units} units ({x:x})");
    }
    let Some(behaviour) = params.evil.get(&ctx.iteration().to_string()) else {
        return passthrough(ctx);
    };
    match behaviour.as_str() {
        "error" => bail!("model diverged at iteration {}", ctx.iteration()),
        "panic" => panic!("evil transform panics at iteration {}", ctx.iteration()),
        "emit-then-error" => {
            emit(&small_batch(1))?;
            bail!("failed after emitting")
        }
        "abort" => std::process::abort(),
        "loop" => {
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "log-loop" => loop {
            info!("spinning");
        },
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "stack-overflow" => {
            fn recurse(n: u64) -> u64 {
                let pad = std::hint::black_box([n; 64]);
                if n == u64::MAX { 0 } else { recurse(n + 1) + pad[3] }
            }
            let _ = recurse(0);
            unreachable!()
        }
        "read-passwd" => {
            let passwd = std::fs::read_to_string("/etc/passwd");
            let dot = std::fs::read_dir(".");
            if passwd.is_ok() || dot.is_ok() {
                bail!("file access is open: passwd {:?}, . {:?}", passwd.is_ok(), dot.is_ok());
            }
            emit(&small_batch(1))?;
            Ok(())
        }
        "network" => {
            let connect = std::net::TcpStream::connect("127.0.0.1:9");
            let lookup = std::net::ToSocketAddrs::to_socket_addrs("localhost:80");
            if connect.is_ok() || lookup.is_ok() {
                bail!("network is open: connect {:?}, lookup {:?}", connect.is_ok(), lookup.is_ok());
            }
            emit(&small_batch(1))?;
            Ok(())
        }
        "env" => {
            let vars: Vec<_> = std::env::vars().collect();
            let args: Vec<_> = std::env::args().collect();
            if !vars.is_empty() || !args.is_empty() {
                bail!("environment is visible: {vars:?} {args:?}");
            }
            emit(&small_batch(1))?;
            Ok(())
        }
        "stdout-flood" => {
            let line = "x".repeat(1023);
            for _ in 0..100 * 1024 {
                println!("{line}");
            }
            emit(&small_batch(1))?;
            Ok(())
        }
        "emit-flood" => {
            let big = small_batch(1 << 20);
            loop {
                emit(&big)?;
            }
        }
        "malformed-ipc" => {
            // Go around the SDK to hand the host bytes that are not IPC.
            corral_guest::bindings::corral::transform::host::emit(b"definitely not arrow ipc")
                .map_err(corral_guest::anyhow::Error::msg)?;
            Ok(())
        }
        "schema-change" => {
            emit(&small_batch(3))?;
            let other = Arc::new(Schema::new(vec![Field::new("y", DataType::Utf8, true)]));
            emit(&RecordBatch::try_new(other, vec![Arc::new(StringArray::from(vec!["a"]))])?)?;
            Ok(())
        }
        "plant" => {
            // Fill 4 MiB of heap with words tagged with this iteration, for
            // a later `snoop` to look for.
            let words = vec![PLANT_TAG | ctx.iteration() as u64 & 0xffff_ffff; (4 << 20) / 8];
            std::hint::black_box(&words);
            drop(words);
            emit(&small_batch(1))?;
            Ok(())
        }
        "snoop" => {
            // Grow linear memory (without touching it) to cover where a
            // `plant` wrote, then count the tagged words anywhere in it,
            // before and after planting 1 MiB of our own (which shows the
            // scan works).
            #[cfg(target_arch = "wasm32")]
            {
                let pages = core::arch::wasm32::memory_size(0);
                if pages < SNOOP_PAGES {
                    core::arch::wasm32::memory_grow(0, SNOOP_PAGES - pages);
                }
            }
            let before = count_planted_words();
            let words = vec![PLANT_TAG | ctx.iteration() as u64 & 0xffff_ffff; (1 << 20) / 8];
            std::hint::black_box(&words);
            let after = count_planted_words();
            drop(words);
            let schema = Arc::new(Schema::new(vec![
                Field::new("before", DataType::Int64, false),
                Field::new("after", DataType::Int64, false),
            ]));
            emit(&RecordBatch::try_new(
                schema,
                vec![Arc::new(Int64Array::from(vec![before as i64])), Arc::new(Int64Array::from(vec![after as i64]))],
            )?)?;
            Ok(())
        }
        "random" => {
            // Random numbers and clocks, as a model might use them.
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_i64(ctx.iteration());
            let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as i64;
            let start = std::time::Instant::now();
            let elapsed = start.elapsed().as_nanos() as i64;
            let values = vec![hasher.finish() as i64, since_epoch, elapsed];
            let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
            emit(&RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))])?)?;
            Ok(())
        }
        other => bail!("unknown evil behaviour `{other}`"),
    }
}

/// The high half of the words `plant` writes; the low half is the iteration.
const PLANT_TAG: u64 = 0x5ec2_e7a5 << 32;

/// The 64 KiB pages of memory `snoop` reads: more than `plant` touches.
#[cfg(target_arch = "wasm32")]
const SNOOP_PAGES: usize = 256;

/// Words of the whole linear memory whose high half is [`PLANT_TAG`]'s.
fn count_planted_words() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        let bytes = core::arch::wasm32::memory_size(0) * 65536;
        (8..bytes)
            .step_by(8)
            // SAFETY: every address below the memory's size is readable in
            // Wasm; this guest reads all of its memory on purpose.
            .filter(|&address| unsafe { std::ptr::with_exposed_provenance::<u64>(address).read_volatile() } >> 32 == PLANT_TAG >> 32)
            .count()
    }
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!("the evil transform runs in Wasm only")
}

/// The good path: the iteration's rows, three columns, as they are.
fn passthrough(ctx: &Context) -> Result<()> {
    let batches = scan().select(["id", "some_column", "value"]).filter(col("some_column").eq(ctx.iteration())).open()?;
    let schema = batches.schema();
    let mut emitted = false;
    for batch in batches {
        emit(&batch?)?;
        emitted = true;
    }
    if !emitted {
        emit(&RecordBatch::new_empty(schema))?;
    }
    Ok(())
}

fn small_batch(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..rows as i64))]).expect("valid batch")
}

corral_guest::export!(run);
