//! The guest SDK of corral: write a transform in ordinary arrow-rs code and
//! export it as a WebAssembly component of the corral world.
//!
//! A transform is a function `fn(&Context) -> Result<()>`. It reads the
//! config table with [`scan`] (columns and filter are applied by the host,
//! so only matching rows enter the sandbox), computes with arrow-rs, and
//! writes output with [`emit`]. [`export!`] makes it the component's `run`.
//!
//! ```
//! use std::sync::Arc;
//! use corral_guest::arrow_array::{Float64Array, RecordBatch, cast::AsArray, types::Float64Type};
//! use corral_guest::arrow_schema::{DataType, Field, Schema};
//! use corral_guest::{Context, Result, col, emit, info, scan};
//!
//! #[derive(serde::Deserialize)]
//! struct Params {
//!     factor: f64,
//! }
//!
//! fn run(ctx: &Context) -> Result<()> {
//!     let params: Params = ctx.params()?;
//!     let batches = scan()
//!         .select(["value"])
//!         .filter(col("group").eq(ctx.iteration()))
//!         .open()?;
//!     let schema = Arc::new(Schema::new(vec![Field::new("scaled", DataType::Float64, true)]));
//!     for batch in batches {
//!         let batch = batch?;
//!         let value = batch.column(0).as_primitive::<Float64Type>();
//!         let scaled: Float64Array = value.unary(|v| v * params.factor);
//!         emit(&RecordBatch::try_new(schema.clone(), vec![Arc::new(scaled)])?)?;
//!     }
//!     info!("iteration {} done", ctx.iteration());
//!     Ok(())
//! }
//!
//! corral_guest::export!(run);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the
//! `.wasm` file in `target/wasm32-wasip2/release/` is the module a job names.

mod context;
mod emit;
mod ipc;
mod log;
mod scan;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod bindings;

pub use ::anyhow::{Error, Result, anyhow, bail, ensure};
/// Re-exported so transforms can name `anyhow::Context` without a dependency.
pub use ::anyhow;
pub use arrow_array;
pub use arrow_buffer;
pub use arrow_schema;
pub use context::Context;
pub use emit::emit;
pub use log::{Level, log};
pub use scan::{Batches, Column, Comparison, Literal, Op, ScanRequest, col, scan};
#[cfg(not(target_arch = "wasm32"))]
pub use sys::run_native;
pub use sys::NativeHost;

/// Exports a transform function `fn(&Context) -> Result<()>` as the
/// component's `run`.
///
/// An `Err` fails the iteration with its message (and its chain of causes);
/// a panic fails it as a trap, with the panic message in the captured
/// stderr. See the crate's documentation for a whole transform.
#[macro_export]
macro_rules! export {
    ($run:path) => {
        const _: () = {
            struct CorralTransform;
            impl $crate::bindings::Guest for CorralTransform {
                fn run(
                    ctx: $crate::bindings::corral::transform::types::Context,
                ) -> ::core::result::Result<(), $crate::bindings::corral::transform::types::GuestError>
                {
                    $crate::__private::call(ctx, $run)
                }
            }
            $crate::bindings::__export_transform!(CorralTransform with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::bindings::corral::transform::types as wit;

    /// Adapts the WIT call to the author's function.
    pub fn call(
        ctx: wit::Context,
        run: fn(&crate::Context) -> crate::Result<()>,
    ) -> Result<(), wit::GuestError> {
        let ctx = crate::Context::new(ctx.iteration, ctx.params, ctx.job_name);
        run(&ctx).map_err(|e| wit::GuestError { message: format!("{e:#}") })
    }
}
