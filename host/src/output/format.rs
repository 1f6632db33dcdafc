//! The Parquet settings of a run's outputs: streamed (Snappy, with
//! dictionaries, as Spark writes) or small (written whole, plain), and what
//! derives from each output schema, worked out once a schema.

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::SchemaDescriptor;

use super::MAX_ROW_GROUP_BYTES;
use crate::schema_memo::LastSchema;

/// The Parquet settings of a run's outputs, with what derives from an
/// output's schema (the Parquet schema and the `ARROW:schema` hint, a
/// base64 IPC message) worked out once for the run's outputs rather than
/// once for each: for the small outputs of short iterations it was a third
/// of the Parquet writer's cost. The files are the same bytes as without it.
///
/// An output streamed as it is emitted is Snappy-compressed, with
/// dictionaries and page statistics ([`ParquetFormat::streamed`], as Spark
/// writes). One under [`SMALL_OUTPUT_BYTES`], written whole at the end, is
/// plain: no dictionary, no compression, statistics for the column chunk
/// only ([`ParquetFormat::small`]). For a file of a few rows those cost more
/// than they save: a one-row file of four columns took 54 µs to write with
/// the streamed settings and 27 µs with these, and is 1,093 bytes instead of
/// 1,376.
#[derive(Debug)]
pub struct ParquetFormat {
    last: LastSchema<SchemaSettings>,
    /// Buffered bytes at which a streamed output's row group is flushed.
    row_group_bytes: usize,
}

impl Default for ParquetFormat {
    fn default() -> Self {
        ParquetFormat { last: LastSchema::default(), row_group_bytes: MAX_ROW_GROUP_BYTES }
    }
}

/// A Parquet writer's settings for one Arrow schema.
#[derive(Debug)]
struct SchemaSettings {
    streamed: WriterProperties,
    small: WriterProperties,
    parquet_schema: SchemaDescriptor,
}

impl ParquetFormat {
    /// The properties of a streamed output (before the schema's hint).
    pub fn streamed() -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
            .build()
    }

    /// The settings of a run whose iterations have `memory_cap` bytes each:
    /// a streamed output's row group is flushed at a quarter of the cap (at
    /// most [`MAX_ROW_GROUP_BYTES`]), as the writer's buffer counts against
    /// the iteration's memory.
    pub fn for_memory_cap(memory_cap: u64) -> Self {
        let quarter = usize::try_from(memory_cap / 4).unwrap_or(usize::MAX);
        ParquetFormat { row_group_bytes: quarter.clamp(1 << 20, MAX_ROW_GROUP_BYTES), ..ParquetFormat::default() }
    }

    /// The properties of a small output written whole (before the schema's
    /// hint).
    pub fn small() -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build()
    }

    /// A writer's options for `schema`, for a small output written whole
    /// or for a streamed one.
    pub(super) fn options(&self, schema: &SchemaRef, small: bool) -> Result<ArrowWriterOptions, parquet::errors::ParquetError> {
        let settings = self.last.get_or_try_make(schema, || {
            let mut streamed = Self::streamed().into_builder().set_max_row_group_bytes(Some(self.row_group_bytes)).build();
            let mut small = Self::small();
            let parquet_schema = ArrowSchemaConverter::new().with_coerce_types(streamed.coerce_types()).convert(schema)?;
            add_encoded_arrow_schema_to_metadata(schema, &mut streamed);
            add_encoded_arrow_schema_to_metadata(schema, &mut small);
            Ok::<_, parquet::errors::ParquetError>(SchemaSettings { streamed, small, parquet_schema })
        })?;
        let properties = if small { &settings.small } else { &settings.streamed };
        // The hint is in the properties already.
        Ok(ArrowWriterOptions::new()
            .with_properties(properties.clone())
            .with_parquet_schema(settings.parquet_schema.clone())
            .with_skip_arrow_metadata(true))
    }
}

