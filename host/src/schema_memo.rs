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
    ///
    /// The lock is never held while `make` runs, and a poisoned lock is
    /// taken over: the schema is a guest's, and a `make` that panics on it
    /// (a Parquet conversion of a type it does not implement) fails that
    /// iteration only, never every later one of the run.
    pub fn get_or_try_make<E>(&self, schema: &SchemaRef, make: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        {
            let last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some((kept, value)) = last.as_ref() {
                if kept == schema {
                    return Ok(value.clone());
                }
            }
        }
        let value = Arc::new(make()?);
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((schema.clone(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field, Schema};

    fn schema(name: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]))
    }

    #[test]
    fn a_make_that_panics_does_not_break_the_memo_for_later_schemas() {
        let memo = LastSchema::<String>::default();
        assert_eq!(*memo.get_or_try_make(&schema("a"), || Ok::<_, ()>("a".to_owned())).unwrap(), "a");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = memo.get_or_try_make(&schema("bad"), || -> Result<String, ()> { panic!("a guest's schema") });
        }));
        assert!(panicked.is_err());
        // The kept value and new ones are still served.
        assert_eq!(*memo.get_or_try_make(&schema("a"), || Ok::<_, ()>("other".to_owned())).unwrap(), "a");
        assert_eq!(*memo.get_or_try_make(&schema("b"), || Ok::<_, ()>("b".to_owned())).unwrap(), "b");
    }
}
