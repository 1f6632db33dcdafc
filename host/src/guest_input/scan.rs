//! A guest's scan request, checked against [`GuestLimits`] before the host
//! binds or evaluates it: the projection's width, the filter's
//! comparisons, the bytes of every name and text literal. The batch size
//! is not refused but clamped, later, by [`clamp_batch_rows`].

use super::GuestLimits;
use crate::filter::{Literal, ScanRequest};

/// Bytes of a scan's batch, estimated from the table's average row, past
/// which a guest's `batch-rows` above the job's own batch size is clamped.
pub const MAX_SCAN_BATCH_BYTES: usize = 16 << 20;

/// Why a scan request is refused; the guest gets the message from
/// `open-scan`.
fn refused(what: String) -> String {
    format!("scan request refused: {what}")
}

/// Validates a raw scan request (already converted from its WIT form):
/// every count and size from the guest within `limits`.
pub fn validate(request: ScanRequest, limits: &GuestLimits) -> Result<ScanRequest, String> {
    if let Some(columns) = &request.columns {
        if columns.len() > limits.max_scan_columns {
            return Err(refused(format!(
                "the projection names {} columns, over the limit of {}",
                columns.len(),
                limits.max_scan_columns
            )));
        }
        if let Some(name) = columns.iter().find(|c| c.len() > limits.max_scan_text_bytes) {
            return Err(refused(format!(
                "a column name of {} bytes, over the limit of {}",
                name.len(),
                limits.max_scan_text_bytes
            )));
        }
        // A column named twice would be handed over (and encoded) twice
        // per batch: 4,096 times one text column is gigabytes a batch.
        let mut seen = std::collections::HashSet::with_capacity(columns.len());
        if let Some(name) = columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(refused(format!("the projection names `{}` more than once", super::text::line(name, 200))));
        }
    }
    if request.filter.len() > limits.max_scan_comparisons {
        return Err(refused(format!(
            "the filter has {} comparisons, over the limit of {}",
            request.filter.len(),
            limits.max_scan_comparisons
        )));
    }
    for comparison in &request.filter {
        if comparison.column.len() > limits.max_scan_text_bytes {
            return Err(refused(format!(
                "a column name of {} bytes, over the limit of {}",
                comparison.column.len(),
                limits.max_scan_text_bytes
            )));
        }
        if let Literal::Text(text) = &comparison.value {
            if text.len() > limits.max_scan_text_bytes {
                return Err(refused(format!(
                    "a text literal of {} bytes, over the limit of {}",
                    text.len(),
                    limits.max_scan_text_bytes
                )));
            }
        }
    }
    Ok(request)
}

/// The rows per batch a scan yields: the guest's `batch-rows` (at least 1)
/// or the job's `default_rows`. Above the job's own batch size, a guest's
/// value is clamped to `limits.max_scan_batch_rows` and to about
/// [`MAX_SCAN_BATCH_BYTES`] (16 MiB) of the table's average row (`row_bytes`), since
/// the host buffers a batch before it hands it over.
pub fn clamp_batch_rows(requested: Option<u32>, default_rows: usize, row_bytes: usize, limits: &GuestLimits) -> usize {
    let Some(requested) = requested else { return default_rows };
    let requested = usize::try_from(requested).unwrap_or(usize::MAX).max(1);
    if requested <= default_rows {
        return requested;
    }
    let by_bytes = MAX_SCAN_BATCH_BYTES / row_bytes.max(1);
    requested.min(limits.max_scan_batch_rows).min(by_bytes).max(default_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{CmpOp, Comparison};

    fn request(columns: usize, comparisons: usize) -> ScanRequest {
        ScanRequest {
            columns: Some((0..columns).map(|i| format!("c{i}")).collect()),
            filter: (0..comparisons)
                .map(|i| Comparison { column: "k".into(), op: CmpOp::Eq, value: Literal::Int(i as i64) })
                .collect(),
            batch_rows: None,
        }
    }

    #[test]
    fn requests_within_the_limits_pass_unchanged() {
        let limits = GuestLimits::default();
        let ok = request(limits.max_scan_columns, limits.max_scan_comparisons);
        assert_eq!(validate(ok.clone(), &limits).unwrap(), ok);
    }

    #[test]
    fn each_count_and_size_over_its_limit_is_refused_naming_it() {
        let limits = GuestLimits::default();
        let cases = [
            (request(1_000_000, 0), "the projection names 1000000 columns, over the limit of 4096"),
            (request(1, 1_000_000), "the filter has 1000000 comparisons, over the limit of 256"),
            (
                ScanRequest {
                    filter: vec![Comparison { column: "k".into(), op: CmpOp::Eq, value: Literal::Text("x".repeat(1 << 20)) }],
                    ..Default::default()
                },
                "a text literal of 1048576 bytes, over the limit of 65536",
            ),
            (ScanRequest { columns: Some(vec!["c".repeat(70_000)]), ..Default::default() }, "a column name of 70000 bytes"),
            (ScanRequest { columns: Some(vec!["id".into(); 4096]), ..Default::default() }, "the projection names `id` more than once"),
            (
                ScanRequest {
                    filter: vec![Comparison { column: "c".repeat(70_000), op: CmpOp::Eq, value: Literal::Null }],
                    ..Default::default()
                },
                "a column name of 70000 bytes",
            ),
        ];
        for (request, needle) in cases {
            let message = validate(request, &limits).unwrap_err();
            assert!(message.starts_with("scan request refused: ") && message.contains(needle), "{message}");
            assert!(message.len() < 200, "the message is short: {message}");
        }
    }

    #[test]
    fn batch_rows_above_the_jobs_are_clamped_to_the_limits() {
        let limits = GuestLimits::default();
        // None: the job's; smaller than the job's: as asked (0 means 1).
        assert_eq!(clamp_batch_rows(None, 65_536, 40, &limits), 65_536);
        assert_eq!(clamp_batch_rows(Some(100), 65_536, 40, &limits), 100);
        assert_eq!(clamp_batch_rows(Some(0), 65_536, 40, &limits), 1);
        // u32::MAX: at most the row limit, and about 16 MiB of rows.
        assert_eq!(clamp_batch_rows(Some(u32::MAX), 65_536, 8, &limits), limits.max_scan_batch_rows);
        assert_eq!(clamp_batch_rows(Some(u32::MAX), 65_536, 100, &limits), MAX_SCAN_BATCH_BYTES / 100);
        // Never below the job's own batch size.
        assert_eq!(clamp_batch_rows(Some(u32::MAX), 65_536, 1 << 20, &limits), 65_536);
        assert_eq!(clamp_batch_rows(Some(2_000_001), 2_000_000, 8, &limits), 2_000_000);
    }
}

/// Property test of the scan path on generated guest requests: validated,
/// then opened and drained on a real table, never a panic, every batch
/// within its clamped size. `CORRAL_FUZZ_CASES` sets the number of cases
/// (default 256, deterministic); a long run:
/// `CORRAL_FUZZ_CASES=100000 cargo test -p corral --lib guest_input::scan --release`.
#[cfg(test)]
mod fuzz {
    use std::sync::Arc;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use super::*;
    use crate::config_table::ConfigTable;
    use crate::deadline::Deadline;
    use crate::filter::{CmpOp, Comparison};
    use crate::job::{ConfigFormat, ConfigSpec};
    use crate::location::Location;

    fn table(partition_by: Option<&str>) -> Arc<ConfigTable> {
        let mut csv = String::from("id,k,v,s,b\n");
        for i in 0..2_000 {
            csv.push_str(&format!("{i},{},{}.5,name_{},{}\n", i % 17, i % 5, i % 3, i % 2 == 0));
        }
        let spec = ConfigSpec {
            location: Location::parse("c.csv", std::path::Path::new("/")).unwrap(),
            format: ConfigFormat::Csv,
            partition_by: partition_by.map(String::from),
            schema: None,
            header: true,
            delimiter: b',',
            batch_rows: 256,
        };
        Arc::new(ConfigTable::parse(&spec, csv.into_bytes().into()).unwrap())
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["id", "k", "v", "s", "b"]).prop_map(String::from),
            1 => "[a-z\\x00-\\x1f\u{202e}]{0,12}",
            1 => (60_000usize..70_000).prop_map(|n| "k".repeat(n)),
        ]
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            Just(Literal::Null),
            any::<bool>().prop_map(Literal::Boolean),
            prop_oneof![any::<i64>(), -3i64..20].prop_map(Literal::Int),
            any::<u64>().prop_map(Literal::Uint),
            prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), -3.0f64..20.0].prop_map(Literal::Float),
            prop_oneof!["name_[0-3]", "\\PC{0,8}", (60_000usize..70_000).prop_map(|n| "x".repeat(n))].prop_map(Literal::Text),
        ]
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge])
    }

    fn request() -> impl Strategy<Value = ScanRequest> {
        let comparison = || (name(), op(), literal()).prop_map(|(column, op, value)| Comparison { column, op, value });
        let columns = prop_oneof![
            3 => prop::collection::vec(name(), 0..8).prop_map(Some),
            1 => Just(None),
            1 => (4_000usize..5_000).prop_map(|n| Some(vec!["id".to_owned(); n])),
        ];
        let filter = prop_oneof![
            4 => prop::collection::vec(comparison(), 0..6),
            1 => prop::collection::vec(comparison(), 250..270),
        ];
        let batch_rows = prop_oneof![Just(None), Just(Some(0)), Just(Some(u32::MAX)), any::<u32>().prop_map(Some), (1u32..600).prop_map(Some)];
        (columns, filter, batch_rows).prop_map(|(columns, filter, batch_rows)| ScanRequest { columns, filter, batch_rows })
    }

    #[test]
    fn generated_scan_requests_are_refused_or_served_within_their_limits() {
        let cases = std::env::var("CORRAL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256);
        let limits = GuestLimits::default();
        let tables = [table(None), table(Some("k"))];
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
        let mut runner = TestRunner::new_with_rng(Config { cases, failure_persistence: None, ..Config::default() }, rng);
        runner
            .run(&request(), |request| {
                for table in &tables {
                    let Ok(valid) = validate(request.clone(), &limits) else { continue };
                    let rows = clamp_batch_rows(valid.batch_rows, 256, table.row_bytes(), &limits);
                    let Ok(mut scan) = table.scan(&valid, &limits, Deadline::never()) else { continue };
                    // What an open scan holds of its own between calls: one
                    // filtered source batch (256 rows here) and what it has
                    // coalesced towards the next batch, whatever was asked.
                    let held_bound = 4 * (256 + rows) * table.row_bytes().max(64) + (64 << 10);
                    let mut total = 0;
                    while let Some(batch) = scan.next_batch().map_err(|e| TestCaseError::fail(e.to_string()))? {
                        prop_assert!(batch.num_rows() > 0, "never an empty batch");
                        prop_assert!(batch.num_rows() <= rows, "a batch of {} rows, asked {:?}", batch.num_rows(), valid.batch_rows);
                        let held = scan.memory_bytes();
                        prop_assert!(held <= held_bound, "the scan holds {held} bytes (bound {held_bound}), asked {:?}", valid.batch_rows);
                        total += batch.num_rows();
                    }
                    prop_assert!(total <= table.num_rows());
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_scan_stops_at_its_deadline() {
        let limits = GuestLimits::default();
        let request = ScanRequest {
            filter: vec![Comparison { column: "id".into(), op: CmpOp::Lt, value: Literal::Int(-1) }],
            ..Default::default()
        };
        let passed = Deadline::new(std::time::Instant::now(), Arc::default());
        let mut scan = table(None).scan(&request, &limits, passed).unwrap();
        let error = scan.next_batch().unwrap_err();
        assert!(matches!(error, crate::filter::ScanError::Stopped(crate::deadline::Stop::Timeout)), "{error}");
    }
}
