//! A SQLite VFS that writes a transaction's WAL frames in one system call
//! (ADR 0018). The only module of the workspace with `unsafe` code: it is
//! SQLite's C interface for a VFS, and nothing else.
//!
//! SQLite appends every page a transaction changes to the WAL as two writes,
//! the frame's 24-byte header and then the page. On a kernel where a system
//! call is expensive that is most of a commit's cost (≈ 228 `pwrite`s per
//! complete Apple registration). This VFS wraps the platform's default VFS
//! and changes only how the WAL file is written:
//!
//! - A write that continues the bytes held is added to them; a write
//!   anywhere else first writes out what is held.
//! - A frame header whose commit field (bytes 4..8) is non-zero ends a
//!   transaction: it is held with the rest, and the write of its page (which
//!   SQLite makes next, always) writes everything out in one call. Every
//!   write after that goes straight through until the header of a frame that
//!   is not a commit starts the next transaction. So, before `walFrames`
//!   publishes a commit in the WAL index, every byte of it is in the file,
//!   and another connection (or process) that reads a committed frame reads
//!   it from the file.
//! - Every other operation on the WAL file (read, sync, truncate, size,
//!   file control, close) writes out what is held first, so the file is
//!   always what it would be without the wrapper when anyone looks at it.
//! - What a transaction wrote and did not commit (a rolled-back transaction
//!   whose pages spilled, or one abandoned by an error) must not reach the
//!   file later, after another writer has used the same offsets: the main
//!   database file's wrapper writes out the WAL's held bytes when its
//!   connection releases the WAL write lock (`xShmLock` on lock 0), while it
//!   still holds it.
//!
//! The bytes that reach the file are the same bytes at the same offsets as
//! without the wrapper; only the number of `pwrite`s changes.
#![allow(unsafe_code)]

use rusqlite::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The name connections open the database with.
pub(crate) const NAME: &str = "mdm-wal";
const NAME_C: &CStr = c"mdm-wal";

/// Bytes held at most before they are written anyway: the unix VFS writes
/// at most 128 KiB less one byte in one call (it masks the length with
/// `0x1ffff`), about 31 frames of 4 KiB pages.
const HOLD_LIMIT: usize = 0x1ffff;
/// A WAL frame header.
const FRAME_HEADER: c_int = 24;
/// The WAL write lock's slot in the shared-memory locks.
const WAL_WRITE_LOCK: c_int = 0;

/// Calls a method of a default-VFS file, or gives `missing` when the file
/// has no such method.
macro_rules! call {
    ($file:expr, $method:ident, $missing:expr $(, $arg:expr)*) => {{
        let file: *mut ffi::sqlite3_file = $file;
        match (*(*file).pMethods).$method {
            Some(method) => method(file $(, $arg)*),
            None => $missing,
        }
    }};
}

/// What a WAL file holds back, shared with [`OPEN_WALS`] so that its
/// database file can write it out.
struct Held {
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    start: i64,
    mode: Mode,
    /// The default VFS's file; null once closed.
    real: *mut ffi::sqlite3_file,
    /// Writes made on the default VFS's file, for the tests.
    writes: usize,
}

/// Where a WAL file is in SQLite's sequence of writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inside a transaction: frames are held.
    Hold,
    /// A commit header is held; its page ends the transaction.
    CommitPage,
    /// After a commit (or before the first frame): writes go through.
    Through,
}

// SAFETY: `real` is only used under the mutex, and SQLite's files may be
// used from any thread (one at a time, which the mutex also ensures).
unsafe impl Send for Held {}

impl Held {
    /// Writes what is held, in one call of the default VFS.
    fn write_out(&mut self) -> c_int {
        if self.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        HOLDING.fetch_sub(1, Ordering::AcqRel);
        self.writes += 1;
        let rc = if self.real.is_null() {
            ffi::SQLITE_IOERR_WRITE
        } else {
            // The limit keeps it far below `c_int::MAX`.
            let amt = self.bytes.len() as c_int;
            // SAFETY: `real` is an open file of the default VFS.
            unsafe {
                call!(
                    self.real,
                    xWrite,
                    ffi::SQLITE_IOERR_WRITE,
                    self.bytes.as_ptr().cast::<c_void>(),
                    amt,
                    self.start
                )
            }
        };
        self.bytes.clear();
        rc
    }
}

/// One open WAL file, by the path of its database.
struct OpenWal {
    db: Box<[u8]>,
    held: Arc<Mutex<Held>>,
}

/// Every WAL file open through this VFS.
static OPEN_WALS: Mutex<Vec<OpenWal>> = Mutex::new(Vec::new());
/// How many of them hold bytes now (a release of the write lock looks at
/// [`OPEN_WALS`] only when some do).
static HOLDING: AtomicUsize = AtomicUsize::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these; a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wrapper of a WAL file; the default VFS's file follows at
/// [`REAL_OFFSET`].
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    held: ManuallyDrop<Arc<Mutex<Held>>>,
}

/// The wrapper of a main database file.
#[repr(C)]
struct DbFile {
    base: ffi::sqlite3_file,
    name: ManuallyDrop<Box<[u8]>>,
}

const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Where the default VFS's file starts in the memory SQLite gives us.
const REAL_OFFSET: usize = round_up(
    if size_of::<WalFile>() > size_of::<DbFile>() {
        size_of::<WalFile>()
    } else {
        size_of::<DbFile>()
    },
    16,
);

/// The default VFS's file inside one of ours.
///
/// # Safety
/// `file` was opened by [`open`] as a WAL or main database file.
unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the allocation is `REAL_OFFSET + szOsFile` bytes long.
    unsafe { file.cast::<u8>().add(REAL_OFFSET).cast() }
}

/// The default VFS, once this one is registered.
struct DefaultVfs(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are immutable once registered and used from
// every thread.
unsafe impl Send for DefaultVfs {}
unsafe impl Sync for DefaultVfs {}

static REGISTERED: OnceLock<Result<DefaultVfs, String>> = OnceLock::new();

/// Registers the VFS (once per process) and gives its name.
pub(crate) fn register() -> Result<&'static str, String> {
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: SQLite's documented VFS registration; the copy lives for
        // the rest of the process.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() {
                return Err("SQLite has no default VFS".into());
            }
            let mut ours = *default;
            ours.szOsFile = (REAL_OFFSET + (*default).szOsFile as usize) as c_int;
            ours.zName = NAME_C.as_ptr();
            ours.pNext = ptr::null_mut();
            ours.xOpen = Some(open);
            let rc = ffi::sqlite3_vfs_register(Box::leak(Box::new(ours)), 0);
            if rc != ffi::SQLITE_OK {
                return Err(format!("registering the {NAME} VFS: SQLite error {rc}"));
            }
            Ok(DefaultVfs(default))
        }
    });
    match registered {
        Ok(_) => Ok(NAME),
        Err(e) => Err(e.clone()),
    }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Ok(DefaultVfs(default))) = REGISTERED.get() else {
        return ffi::SQLITE_ERROR;
    };
    let default = *default;
    // SAFETY: SQLite's xOpen contract: `file` has `szOsFile` bytes.
    unsafe {
        let Some(default_open) = (*default).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let wal = flags & ffi::SQLITE_OPEN_WAL != 0;
        let main = flags & ffi::SQLITE_OPEN_MAIN_DB != 0;
        if name.is_null() || !(wal || main) {
            // Journals, temporary files: the default VFS's own file, as is.
            return default_open(default, name, file, flags, out_flags);
        }
        (*file).pMethods = ptr::null();
        let inner = real(file);
        let rc = default_open(default, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let path = CStr::from_ptr(name).to_bytes();
        if wal {
            let held = Arc::new(Mutex::new(Held {
                bytes: Vec::new(),
                start: 0,
                mode: Mode::Through,
                real: inner,
                writes: 0,
            }));
            lock(&OPEN_WALS).push(OpenWal {
                db: path.strip_suffix(b"-wal").unwrap_or(path).into(),
                held: Arc::clone(&held),
            });
            ptr::write(
                file.cast::<WalFile>(),
                WalFile {
                    base: ffi::sqlite3_file {
                        pMethods: &WAL_METHODS,
                    },
                    held: ManuallyDrop::new(held),
                },
            );
        } else {
            ptr::write(
                file.cast::<DbFile>(),
                DbFile {
                    base: ffi::sqlite3_file {
                        pMethods: &DB_METHODS,
                    },
                    name: ManuallyDrop::new(path.into()),
                },
            );
        }
        ffi::SQLITE_OK
    }
}

/// The held bytes of a WAL file.
///
/// # Safety
/// `file` is one of our WAL files.
unsafe fn held<'a>(file: *mut ffi::sqlite3_file) -> &'a Mutex<Held> {
    // SAFETY: see the function's contract.
    unsafe { &(*file.cast::<WalFile>()).held }
}

/// Writes out what the WAL file holds, then calls the method of the default
/// VFS's file.
macro_rules! flushed {
    ($file:expr, $method:ident, $missing:expr $(, $arg:expr)*) => {{
        let file = $file;
        let rc = lock(held(file)).write_out();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        call!(real(file), $method, $missing $(, $arg)*)
    }};
}

unsafe extern "C" fn wal_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file it opened once.
    unsafe {
        let wal = file.cast::<WalFile>();
        let held = ManuallyDrop::take(&mut (*wal).held);
        let written = {
            let mut h = lock(&held);
            let rc = h.write_out();
            h.real = ptr::null_mut();
            rc
        };
        lock(&OPEN_WALS).retain(|w| !Arc::ptr_eq(&w.held, &held));
        let closed = call!(real(file), xClose, ffi::SQLITE_OK);
        (*file).pMethods = ptr::null();
        if written != ffi::SQLITE_OK {
            written
        } else {
            closed
        }
    }
}

unsafe extern "C" fn wal_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite's xRead contract.
    unsafe { flushed!(file, xRead, ffi::SQLITE_IOERR_READ, buf, amt, offset) }
}

unsafe extern "C" fn wal_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite's xWrite contract: `buf` has `amt` bytes.
    unsafe {
        let Ok(len) = usize::try_from(amt) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
        let mut h = lock(held(file));
        let contiguous = h.start.checked_add(h.bytes.len() as i64) == Some(offset);
        if !h.bytes.is_empty() && (!contiguous || h.bytes.len() + len > HOLD_LIMIT) {
            let rc = h.write_out();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let now = if amt == FRAME_HEADER {
            h.mode = if data[4..8] == [0; 4] {
                Mode::Hold
            } else {
                Mode::CommitPage
            };
            false
        } else if h.mode == Mode::CommitPage {
            h.mode = Mode::Through;
            true
        } else {
            h.mode == Mode::Through
        };
        if now || len >= HOLD_LIMIT {
            if h.bytes.is_empty() {
                // Nothing to join it to: straight through, without a copy.
                h.writes += 1;
                return call!(
                    real(file),
                    xWrite,
                    ffi::SQLITE_IOERR_WRITE,
                    buf,
                    amt,
                    offset
                );
            }
            h.bytes.extend_from_slice(data);
            return h.write_out();
        }
        if h.bytes.is_empty() {
            h.start = offset;
            HOLDING.fetch_add(1, Ordering::AcqRel);
        }
        h.bytes.extend_from_slice(data);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn wal_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: SQLite's xTruncate contract.
    unsafe { flushed!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size) }
}

unsafe extern "C" fn wal_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite's xSync contract.
    unsafe { flushed!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags) }
}

unsafe extern "C" fn wal_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: SQLite's xFileSize contract.
    unsafe { flushed!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size) }
}

unsafe extern "C" fn wal_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite's xLock contract.
    unsafe { flushed!(file, xLock, ffi::SQLITE_IOERR_LOCK, level) }
}

unsafe extern "C" fn wal_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite's xUnlock contract.
    unsafe { flushed!(file, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level) }
}

unsafe extern "C" fn wal_check_reserved(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite's xCheckReservedLock contract.
    unsafe {
        flushed!(
            file,
            xCheckReservedLock,
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            out
        )
    }
}

unsafe extern "C" fn wal_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: SQLite's xFileControl contract.
    unsafe { flushed!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg) }
}

unsafe extern "C" fn wal_fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite's xFetch contract.
    unsafe {
        let rc = lock(held(file)).write_out();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        fetch(real(file), offset, amt, out)
    }
}

/// The same method of the default VFS's file, for both wrappers.
macro_rules! forward {
    ($name:ident, $method:ident, $missing:expr, $ret:ty $(, $arg:ident : $ty:ty)*) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: the method's own contract; `file` is one of ours.
            unsafe { call!(real(file), $method, $missing $(, $arg)*) }
        }
    };
}

forward!(sector_size, xSectorSize, 4096, c_int);
forward!(device_characteristics, xDeviceCharacteristics, 0, c_int);
forward!(shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, c_int,
    page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void);
forward!(shm_barrier, xShmBarrier, (), ());
forward!(shm_unmap, xShmUnmap, ffi::SQLITE_OK, c_int, delete: c_int);
forward!(unfetch, xUnfetch, ffi::SQLITE_OK, c_int, offset: i64, p: *mut c_void);
forward!(db_read, xRead, ffi::SQLITE_IOERR_READ, c_int,
    buf: *mut c_void, amt: c_int, offset: i64);
forward!(db_write, xWrite, ffi::SQLITE_IOERR_WRITE, c_int,
    buf: *const c_void, amt: c_int, offset: i64);
forward!(db_truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, c_int, size: i64);
forward!(db_sync, xSync, ffi::SQLITE_IOERR_FSYNC, c_int, flags: c_int);
forward!(db_file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, c_int, size: *mut i64);
forward!(db_lock, xLock, ffi::SQLITE_IOERR_LOCK, c_int, level: c_int);
forward!(db_unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, c_int, level: c_int);
forward!(db_check_reserved, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, c_int,
    out: *mut c_int);
forward!(db_file_control, xFileControl, ffi::SQLITE_NOTFOUND, c_int,
    op: c_int, arg: *mut c_void);
forward!(db_fetch, xFetch, ffi::SQLITE_OK, c_int,
    offset: i64, amt: c_int, out: *mut *mut c_void);

/// `xFetch` of a default-VFS file; without the method, no mapping.
///
/// # Safety
/// SQLite's xFetch contract.
unsafe fn fetch(
    real: *mut ffi::sqlite3_file,
    offset: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: see the function's contract.
    unsafe {
        *out = ptr::null_mut();
        call!(real, xFetch, ffi::SQLITE_OK, offset, amt, out)
    }
}

unsafe extern "C" fn db_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file it opened once.
    unsafe {
        let db = file.cast::<DbFile>();
        drop(ManuallyDrop::take(&mut (*db).name));
        let rc = call!(real(file), xClose, ffi::SQLITE_OK);
        (*file).pMethods = ptr::null();
        rc
    }
}

unsafe extern "C" fn db_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: SQLite's xShmLock contract; `file` is one of our database files.
    unsafe {
        let releases_writer = flags & ffi::SQLITE_SHM_UNLOCK != 0
            && offset <= WAL_WRITE_LOCK
            && WAL_WRITE_LOCK < offset + n;
        let mut written = ffi::SQLITE_OK;
        if releases_writer && HOLDING.load(Ordering::Acquire) > 0 {
            // What the writer left held (a transaction that did not commit)
            // goes to the file while the lock still keeps others out.
            let name: &[u8] = &(*file.cast::<DbFile>()).name;
            for wal in lock(&OPEN_WALS).iter().filter(|w| *w.db == *name) {
                let rc = lock(&wal.held).write_out();
                if rc != ffi::SQLITE_OK {
                    written = rc;
                }
            }
        }
        let rc = call!(
            real(file),
            xShmLock,
            ffi::SQLITE_IOERR_SHMLOCK,
            offset,
            n,
            flags
        );
        if written != ffi::SQLITE_OK {
            written
        } else {
            rc
        }
    }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(wal_close),
    xRead: Some(wal_read),
    xWrite: Some(wal_write),
    xTruncate: Some(wal_truncate),
    xSync: Some(wal_sync),
    xFileSize: Some(wal_file_size),
    xLock: Some(wal_lock),
    xUnlock: Some(wal_unlock),
    xCheckReservedLock: Some(wal_check_reserved),
    xFileControl: Some(wal_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(db_shm_lock_plain),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(wal_fetch),
    xUnfetch: Some(unfetch),
};

forward!(db_shm_lock_plain, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, c_int,
    offset: c_int, n: c_int, flags: c_int);

static DB_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(db_close),
    xRead: Some(db_read),
    xWrite: Some(db_write),
    xTruncate: Some(db_truncate),
    xSync: Some(db_sync),
    xFileSize: Some(db_file_size),
    xLock: Some(db_lock),
    xUnlock: Some(db_unlock),
    xCheckReservedLock: Some(db_check_reserved),
    xFileControl: Some(db_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(db_shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(db_fetch),
    xUnfetch: Some(unfetch),
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};
    use std::path::{Path, PathBuf};

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    fn open(path: &Path) -> Result<Connection> {
        let c = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), register()?)?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        Ok(c)
    }

    /// What the WAL files of `db` have written, and what they hold now.
    fn wal_state(db: &Path) -> (usize, usize) {
        let name = db.as_os_str().as_encoded_bytes();
        lock(&OPEN_WALS)
            .iter()
            .filter(|w| *w.db == *name)
            .map(|w| {
                let h = lock(&w.held);
                (h.writes, h.bytes.len())
            })
            .fold((0, 0), |(w, b), (w2, b2)| (w + w2, b + b2))
    }

    fn count(c: &Connection) -> Result<i64> {
        Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
    }

    fn check(c: &Connection) -> Result {
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(ok, "ok");
        Ok(())
    }

    fn insert(c: &Connection, rows: i64, bytes: i64) -> Result {
        c.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t (v) SELECT randomblob(?2) FROM n",
            [rows, bytes],
        )?;
        Ok(())
    }

    /// Checks a copy of the database and its WAL as they are in the files
    /// now, as a crash of the process would leave them, opened with the
    /// default VFS: it holds `rows` rows and passes the integrity check.
    fn copy_of_the_files_holds(db: &Path, dir: &Path, rows: i64) -> Result {
        let copy: PathBuf = dir.join("copy.db");
        std::fs::copy(db, &copy)?;
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let mut copy_wal = copy.as_os_str().to_owned();
        copy_wal.push("-wal");
        std::fs::copy(wal, copy_wal)?;
        let copy = Connection::open(copy)?;
        assert_eq!(count(&copy)?, rows);
        check(&copy)
    }

    fn setup() -> Result<(tempfile::TempDir, PathBuf, Connection)> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let a = open(&db)?;
        a.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")?;
        Ok((dir, db, a))
    }

    #[test]
    fn a_commit_is_one_write_and_in_the_file_when_it_returns() -> Result {
        let (dir, db, a) = setup()?;
        let before = wal_state(&db).0;
        a.execute_batch("BEGIN")?;
        insert(&a, 100, 1000)?;
        a.execute_batch("COMMIT")?;
        let frames = std::fs::metadata(dir.path().join("a.db-wal"))?.len() / (4096 + 24);
        assert!(frames >= 25, "{frames} frames");
        assert_eq!(wal_state(&db), (before + 1, 0), "one write for the commit");

        // Another connection, and the files alone, see the commit.
        assert_eq!(count(&open(&db)?)?, 100);
        copy_of_the_files_holds(&db, dir.path(), 100)?;
        Ok(())
    }

    #[test]
    fn a_rolled_back_spill_never_lands_on_another_writers_frames() -> Result {
        let (dir, db, a) = setup()?;
        let b = open(&db)?;
        insert(&a, 10, 100)?;
        // With the WAL empty, the rollback reads nothing from it (a read
        // would write out what is held).
        a.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA cache_size = 10; BEGIN")?;
        insert(&a, 1500, 1000)?;
        let wal = std::fs::metadata(dir.path().join("a.db-wal"))?.len();
        assert!(wal > 1 << 20, "the cache spilled: {wal} bytes");
        assert!(wal_state(&db).1 > 0, "some of the spill is held");
        a.execute_batch("ROLLBACK")?;
        assert_eq!(wal_state(&db).1, 0, "written out with the write lock");

        // B writes over where A's spill was; A then reads (which writes out
        // anything A still held) and writes again.
        insert(&b, 1600, 1000)?;
        assert_eq!(count(&a)?, 1610);
        check(&a)?;
        insert(&a, 5, 10)?;
        assert_eq!(count(&b)?, 1615);
        check(&b)?;
        copy_of_the_files_holds(&db, dir.path(), 1615)?;
        b.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        assert_eq!(count(&a)?, 1615);
        check(&a)?;
        Ok(())
    }

    #[test]
    fn spills_savepoints_and_restarts_keep_every_commit() -> Result {
        let (dir, db, a) = setup()?;
        let b = open(&db)?;
        a.execute_batch("PRAGMA cache_size = 10; BEGIN")?;
        insert(&a, 1500, 1000)?;
        a.execute_batch("SAVEPOINT s")?;
        insert(&a, 200, 1000)?;
        a.execute_batch("ROLLBACK TO s; RELEASE s")?;
        // Pages written twice in one transaction are rewritten in place.
        a.execute("UPDATE t SET v = zeroblob(900) WHERE id % 7 = 0", [])?;
        a.execute_batch("COMMIT")?;
        assert_eq!(count(&b)?, 1500);
        check(&b)?;
        // The WAL starts again from its header after a full checkpoint.
        b.execute_batch("PRAGMA wal_checkpoint(RESTART)")?;
        insert(&a, 20, 100)?;
        insert(&b, 20, 100)?;
        copy_of_the_files_holds(&db, dir.path(), 1540)?;
        drop((a, b));
        assert_eq!(wal_state(&db), (0, 0), "closed WALs leave the registry");
        Ok(())
    }

    #[test]
    fn unsafe_code_is_allowed_in_this_module_only() -> Result {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut pending = vec![crates];
        let mut allowing = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() && !path.ends_with("target") {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && std::fs::read_to_string(&path)?.contains(concat!("allow(", "unsafe_code)"))
                {
                    allowing.push(path);
                }
            }
        }
        assert_eq!(allowing.len(), 1, "{allowing:?}");
        assert!(allowing[0].ends_with("mdm-store/src/walvfs.rs"));
        Ok(())
    }
}
