//! Fuzz target: `switchyard_protocol::fuzzing::error_bodies` must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchyard_protocol::fuzzing::error_bodies(data);
});
