//! The filesystem calls through the real kernel, one module per operation (or family
//! of calls). Each test proves one behaviour and runs on moto and on the local store
//! (`on_both_backends!`), unless the behaviour exists on one backend only, which its
//! comment says.

mod busy;
mod cache;
mod cache_requests;
mod close_large;
mod close_majority;
mod close_stages;
mod create_write;
mod daemon;
mod failover;
mod getxattr;
mod in_flight;
mod kernel_cache;
mod latest_refusals;
mod latest_symlink;
mod lookup;
mod majority;
mod mkdir;
mod passthrough;
mod read;
mod readdir;
mod readonly;
mod rename;
mod repair;
mod rmdir;
mod setattr;
mod setxattr;
mod spool;
mod stat;
mod tools;
mod ttl;
mod unlink;
mod writers;
mod xattr_changes;
