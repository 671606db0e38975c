//! The filesystem calls through the real kernel, one module per operation. Each test
//! proves one behaviour and runs on moto and on the local store (`on_both_backends!`),
//! unless the behaviour exists on one backend only, which its comment says.

mod cache;
mod close_large;
mod close_majority;
mod close_stages;
mod create_write;
mod daemon;
mod getxattr;
mod latest_symlink;
mod lookup;
mod mkdir;
mod read;
mod readdir;
mod rename;
mod rmdir;
mod setattr;
mod setxattr;
mod spool;
mod stat;
mod tools;
mod unlink;
