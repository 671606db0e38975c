//! Small helpers of the mount tests: errnos, extended attributes, test data, names.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::world::World;

pub fn errno_of<T: std::fmt::Debug>(result: std::io::Result<T>) -> i32 {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.raw_os_error().unwrap_or(0),
    }
}

/// `getxattr(2)` with a buffer of `size` bytes: Ok(bytes) or Err(errno).
pub fn getxattr(path: &Path, name: &str, size: usize) -> Result<Vec<u8>, i32> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut buffer = vec![0u8; size];
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            size,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buffer.truncate(if size == 0 { 0 } else { n as usize });
    if size == 0 {
        return Ok(vec![0; n as usize]);
    }
    Ok(buffer)
}

pub fn random_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

pub fn project(world: &World, base: &str) -> String {
    format!("{base}-{}", world.id)
}

/// `setxattr(2)` with no flags: Ok or Err(errno).
pub fn setxattr(path: &Path, name: &str, value: &[u8]) -> Result<(), i32> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let done = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `truncate(2)` of a path, with its errno.
pub fn truncate(path: &Path, size: i64) -> Result<(), i32> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    if unsafe { libc::truncate(path.as_ptr(), size) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `removexattr(2)`: Ok or Err(errno).
pub fn removexattr(path: &Path, name: &str) -> Result<(), i32> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    if unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}
