//! `setxattr(2)` and `removexattr(2)` called directly, with their errno (the tools
//! print messages, the tests assert errnos).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn result_of(code: libc::c_int) -> Result<(), i32> {
    if code == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

pub fn setxattr(path: &Path, name: &str, value: &[u8]) -> Result<(), i32> {
    let name = CString::new(name).unwrap();
    let path = c_path(path);
    result_of(unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

pub fn removexattr(path: &Path, name: &str) -> Result<(), i32> {
    let name = CString::new(name).unwrap();
    let path = c_path(path);
    result_of(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) })
}
