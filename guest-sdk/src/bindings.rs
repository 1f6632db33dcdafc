//! The wit-bindgen bindings of the `transform` world, generated from `wit/`.
//!
//! Transform authors never use these directly: `corral_guest::export!` and the
//! SDK's functions wrap them.

#![allow(missing_docs)]

wit_bindgen::generate!({
    path: "../wit",
    world: "transform",
    pub_export_macro: true,
    export_macro_name: "__export_transform",
    default_bindings_module: "corral_guest::bindings",
});
