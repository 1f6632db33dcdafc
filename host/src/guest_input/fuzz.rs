//! Property tests of [`super::ipc::decode_emit`] on mutated and generated
//! streams (being written).
