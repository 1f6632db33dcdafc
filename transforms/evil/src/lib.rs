//! A hostile transform for corral's tests: a dispatch table from behaviour
//! names to attacks (one file each under `attacks/`).
//!
//! Params `{"evil": {"N": "behaviour"}}` make iteration N misbehave (`"*"`:
//! every iteration not named); every
//! other iteration copies its config rows (`id, some_column, value` where
//! `some_column == N`), so the tests can check that good iterations are
//! unharmed. `delay_ms` slows every iteration; `spin` gives chosen
//! iterations CPU work (see [`params`]).

mod attacks;
mod common;
mod ipc;
mod params;

use corral_guest::{Context, Result, bail};

/// One attack: what a hostile iteration does instead of copying its rows.
type Attack = fn(&Context) -> Result<()>;

/// Every behaviour, by the name the params give it.
const ATTACKS: &[(&str, Attack)] = {
    use attacks::*;
    &[
        // Failing in the guest's own code.
        ("error", error::run),
        ("panic", panic::run),
        ("emit-then-error", emit_then_error::run),
        ("abort", abort::run),
        ("loop", busy_loop::run),
        ("log-loop", log_loop::run),
        ("memory-bomb", memory_bomb::run),
        ("stack-overflow", stack_overflow::run),
        ("sleep", sleep::run),
        // Reaching out of the sandbox.
        ("read-passwd", read_passwd::run),
        ("network", network::run),
        ("env", env::run),
        ("plant", plant::run),
        ("plant-scattered", plant_scattered::run),
        ("snoop", snoop::run),
        ("random", random::run),
        // Scan requests.
        ("scan-dup-columns", scan_dup_columns::run),
        ("scan-many-comparisons", scan_many_comparisons::run),
        ("scan-huge-literal", scan_huge_literal::run),
        ("scan-long-name", scan_long_name::run),
        ("scan-huge-batch-rows", scan_huge_batch_rows::run),
        ("scan-hoard", scan_hoard::run),
        ("scan-row-batches", scan_row_batches::run),
        ("scan-copy-hoard", scan_copy_hoard::run),
        ("filter-heavy", filter_heavy::run),
        // Emitted output.
        ("emit-flood", emit_flood::run),
        ("malformed-ipc", malformed_ipc::run),
        ("schema-change", schema_change::run),
        ("emit-union", emit_union::run),
        ("emit-no-columns", emit_no_columns::run),
        ("emit-metadata-bomb", emit_metadata_bomb::run),
        ("emit-dictionary-bomb", emit_dictionary_bomb::run),
        ("emit-view-bomb", emit_view_bomb::run),
        ("emit-delta-dictionary", emit_delta_dictionary::run),
        ("ipc-lying-lengths", ipc_lying_lengths::buffer_length_2_62),
        ("ipc-negative-length", ipc_lying_lengths::buffer_length_negative),
        ("ipc-lying-offset", ipc_lying_lengths::buffer_offset_2_62),
        ("ipc-lying-body-length", ipc_lying_lengths::body_length_2_62),
        ("ipc-lying-row-count", ipc_lying_lengths::row_count_2_62),
        ("ipc-truncated-body", ipc_truncated_body::run),
        ("emit-wide", emit_wide::run),
        ("emit-huge-honest", emit_huge_honest::run),
        ("emit-raw-oversize", emit_raw_oversize::run),
        // Text: errors, logs, stdout and stderr.
        ("stdout-flood", stdout_flood::run),
        ("huge-error", huge_error::run),
        ("long-failure", long_failure::run),
        ("error-over-call-limit", huge_error::over_call_limit),
        ("log-forge", log_forge::run),
        ("error-escapes", error_escapes::run),
        ("stderr-escapes", stderr_escapes::run),
    ]
};

fn run(ctx: &Context) -> Result<()> {
    let params: params::Params = ctx.params()?;
    params.apply(ctx);
    let behaviour = params.evil.get(&ctx.iteration().to_string()).or_else(|| params.evil.get("*"));
    let Some(behaviour) = behaviour else {
        return common::passthrough(ctx);
    };
    match ATTACKS.iter().find(|(name, _)| name == behaviour) {
        Some((_, attack)) => attack(ctx),
        None => bail!("unknown evil behaviour `{behaviour}`"),
    }
}

corral_guest::export!(run);
