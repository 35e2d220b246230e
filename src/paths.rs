//! paths (in progress)
