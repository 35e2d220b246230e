//! Configuration: the AWS shared config (sessions, profiles, services) and the agent's own
//! settings, each raw → merged → validated (STYLE §6). Problems are reported one per line,
//! naming their source (file:line, environment variable, flag).
//! Must not: watch files (daemon::reload does) or hold runtime state.

mod aws_ini;
pub mod profiles_block;
pub mod profiles_file;
mod settings;
mod shadowed;

use std::fmt;

pub use aws_ini::{
    AwsConfig, Location, Profile, ResolveError, RoleTarget, SsoSession, load_aws_config,
    parse_aws_config,
};
pub use settings::{Flags, RawFile, Settings, StoreKind, load_settings, merge, parse_toml};
pub use shadowed::{ShadowedProcess, shadowed_processes};

/// Every problem found, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}
