//! The mount's promises, one file per family of calls, each test one behaviour.

mod busy;
mod cache_requests;
mod failover;
mod latest_refusals;
mod readonly;
mod ttl;
mod writers;
mod xattr_changes;
