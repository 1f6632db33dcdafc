//! The host side of the `transform` world, generated from `wit/`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transform",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "corral:transform/host.scan": crate::sandbox::state::GuestScan,
    },
});
