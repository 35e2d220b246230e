//! fake-aws driven over real HTTP: device flow, refresh rotation and reuse detection, PKCE,
//! error shapes, the portal, fault injection and the control API. One test binary.

mod control;
mod device;
mod errors;
mod faults;
mod pkce;
mod portal;
mod refresh;
mod signin;
mod util;
