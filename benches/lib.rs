//! Nothing to link: this package holds provgate's criterion benches
//! (`verdict.rs`) and the load script (`load/serve_load.py`). Run the
//! bench with `cargo bench -p provgate-benches --features regorus`;
//! docs/benchmarks.md has the commands and the figures.
