//! Safe file access: the one place that opens files the daemon does not own.
//! Must not: parse what it reads or decide what a file means (config/ does).

pub mod read;
