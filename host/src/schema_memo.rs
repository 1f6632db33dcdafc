//! A value derived from an Arrow schema, kept for the last schema asked:
//! the iterations of a run see one schema over and over, so what derives
//! from it (an encoding, writer settings) is worked out once.

use std::sync::{Arc, Mutex};

use arrow_schema::SchemaRef;

/// The value derived from the last schema asked.
#[derive(Debug)]
pub struct LastSchema<T> {
    last: Mutex<Option<(SchemaRef, Arc<T>)>>,
}

impl<T> Default for LastSchema<T> {
    fn default() -> Self {
        LastSchema { last: Mutex::new(None) }
    }
}

impl<T> LastSchema<T> {
    /// The value for `schema`: the kept one if `schema` equals the last
    /// schema asked, else `make`'s, kept in its place.
    pub fn get_or_try_make<E>(&self, schema: &SchemaRef, make: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let mut last = self.last.lock().expect("the schema memo's lock is not poisoned");
        if let Some((kept, value)) = last.as_ref() {
            if kept == schema {
                return Ok(value.clone());
            }
        }
        let value = Arc::new(make()?);
        *last = Some((schema.clone(), value.clone()));
        Ok(value)
    }
}
