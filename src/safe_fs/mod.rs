//! Safe file access: the one place that opens files and directories the daemon does not own
//! outright (the socket's directory, the AWS CLI cache, the config files). Links are never
//! followed where an attacker could plant one, modes are only set on what we create, and
//! nothing is read that could stall or exhaust the daemon.
//! Must not: parse what it reads or decide what a file means (callers do).

pub mod dir;
pub mod read;
