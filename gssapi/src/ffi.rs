//! The few GSS-API calls a SASL GSSAPI client needs, from the system library opened at run
//! time. Every buffer the library returns is copied out and released at once; names and
//! contexts are released when dropped.

use std::ffi::c_void;
use std::sync::OnceLock;

use libloading::Library;

type OmUint32 = u32;

#[repr(C)]
struct OidDesc {
    length: OmUint32,
    elements: *const c_void,
}

#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

impl BufferDesc {
    fn empty() -> BufferDesc {
        BufferDesc {
            length: 0,
            value: std::ptr::null_mut(),
        }
    }

    /// A descriptor of `bytes`, for input the library only reads.
    fn of(bytes: &[u8]) -> BufferDesc {
        BufferDesc {
            length: bytes.len(),
            value: bytes.as_ptr() as *mut c_void,
        }
    }
}

type ImportName = unsafe extern "C" fn(
    *mut OmUint32,
    *const BufferDesc,
    *const OidDesc,
    *mut *mut c_void,
) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *mut *mut c_void,
    *mut c_void,
    *const OidDesc,
    OmUint32,
    OmUint32,
    *mut c_void,
    *const BufferDesc,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type Wrap = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    i32,
    OmUint32,
    *const BufferDesc,
    *mut i32,
    *mut BufferDesc,
) -> OmUint32;
type Unwrap = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *const BufferDesc,
    *mut BufferDesc,
    *mut i32,
    *mut OmUint32,
) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void) -> OmUint32;
type DeleteSecContext =
    unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void, *mut BufferDesc) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    i32,
    *const OidDesc,
    *mut OmUint32,
    *mut BufferDesc,
) -> OmUint32;

const LIBRARY: &str = "libgssapi_krb5.so.2";
/// 1.2.840.113554.1.2.1.4: `service@host` names.
const NT_HOSTBASED_SERVICE: [u8; 10] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
/// 1.2.840.113554.1.2.2: Kerberos V5.
const MECH_KRB5: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
const CONTINUE_NEEDED: OmUint32 = 1;
const MUTUAL_FLAG: OmUint32 = 2;
const CONF_FLAG: OmUint32 = 16;
const INTEG_FLAG: OmUint32 = 32;
const GSS_CODE: i32 = 1;
const MECH_CODE: i32 = 2;

fn oid(bytes: &'static [u8]) -> OidDesc {
    OidDesc {
        length: bytes.len() as OmUint32,
        elements: bytes.as_ptr() as *const c_void,
    }
}

/// A routine or calling error (the supplementary bits below say nothing fatal).
fn failed(major: OmUint32) -> bool {
    major & 0xffff_0000 != 0
}

/// The library and its entry points, loaded once per process.
pub struct Gss {
    _lib: Library,
    import_name: ImportName,
    init_sec_context: InitSecContext,
    wrap: Wrap,
    unwrap: Unwrap,
    release_buffer: ReleaseBuffer,
    release_name: ReleaseName,
    delete_sec_context: DeleteSecContext,
    display_status: DisplayStatus,
}

impl Gss {
    /// The loaded library, or why it cannot be used.
    pub fn load() -> Result<&'static Gss, String> {
        static GSS: OnceLock<Result<Gss, String>> = OnceLock::new();
        GSS.get_or_init(Gss::open).as_ref().map_err(Clone::clone)
    }

    fn open() -> Result<Gss, String> {
        // SAFETY: loading MIT's GSS-API library runs its initialisers, which have no
        // preconditions.
        let lib = unsafe { Library::new(LIBRARY) }.map_err(|e| {
            format!(
                "the system's Kerberos library cannot be loaded ({e}); install it (Debian: \
                 libgssapi-krb5-2)"
            )
        })?;
        // Each symbol has the C signature its type states (RFC 2744, MIT's gssapi.h).
        fn get<T: Copy>(lib: &Library, name: &[u8]) -> Result<T, String> {
            // SAFETY: every caller below names a function of type T.
            unsafe { lib.get::<T>(name) }.map(|s| *s).map_err(|e| {
                format!(
                    "the Kerberos library lacks {}: {e}",
                    String::from_utf8_lossy(name)
                )
            })
        }
        Ok(Gss {
            import_name: get(&lib, b"gss_import_name\0")?,
            init_sec_context: get(&lib, b"gss_init_sec_context\0")?,
            wrap: get(&lib, b"gss_wrap\0")?,
            unwrap: get(&lib, b"gss_unwrap\0")?,
            release_buffer: get(&lib, b"gss_release_buffer\0")?,
            release_name: get(&lib, b"gss_release_name\0")?,
            delete_sec_context: get(&lib, b"gss_delete_sec_context\0")?,
            display_status: get(&lib, b"gss_display_status\0")?,
            _lib: lib,
        })
    }

    /// Copies a buffer the library returned, then releases it.
    fn take(&self, mut buf: BufferDesc) -> Vec<u8> {
        if buf.value.is_null() || buf.length == 0 {
            return Vec::new();
        }
        // SAFETY: the library returned `length` bytes at `value`.
        let bytes =
            unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec();
        let mut minor = 0;
        // SAFETY: the buffer came from this library and is released once.
        unsafe { (self.release_buffer)(&mut minor, &mut buf) };
        bytes
    }

    /// The library's words for a failed call.
    fn describe(&self, major: OmUint32, minor: OmUint32) -> String {
        let mut words = Vec::new();
        let krb5 = oid(&MECH_KRB5);
        for (code, kind) in [(major, GSS_CODE), (minor, MECH_CODE)] {
            if code == 0 {
                continue;
            }
            let mut context = 0;
            loop {
                let mut m = 0;
                let mut out = BufferDesc::empty();
                // SAFETY: all pointers are valid for the call; `out` is released by take.
                let status = unsafe {
                    (self.display_status)(&mut m, code, kind, &krb5, &mut context, &mut out)
                };
                if failed(status) {
                    break;
                }
                let text = String::from_utf8_lossy(&self.take(out)).into_owned();
                if !text.is_empty() {
                    words.push(text);
                }
                if context == 0 {
                    break;
                }
            }
        }
        if words.is_empty() {
            format!("GSS-API error {major:#x}/{minor}")
        } else {
            words.join(": ")
        }
    }

    /// Imports `service@host` as a host-based service name.
    pub fn import_service_name(&'static self, name: &str) -> Result<Name, String> {
        let mut minor = 0;
        let mut out = std::ptr::null_mut();
        let kind = oid(&NT_HOSTBASED_SERVICE);
        let buf = BufferDesc::of(name.as_bytes());
        // SAFETY: `buf` points at `name`, alive for the call; `out` receives a name we own.
        let major = unsafe { (self.import_name)(&mut minor, &buf, &kind, &mut out) };
        if failed(major) {
            return Err(format!(
                "`{name}` is not a service name: {}",
                self.describe(major, minor)
            ));
        }
        Ok(Name {
            gss: self,
            raw: out,
        })
    }

    /// One step of building the context: the token to send and whether it is complete.
    pub fn init_sec_context(
        &self,
        context: &mut Context,
        target: &Name,
        input: Option<&[u8]>,
    ) -> Result<(Vec<u8>, bool), String> {
        let mut minor = 0;
        let mech = oid(&MECH_KRB5);
        let input_buf = input.map(BufferDesc::of);
        let mut out = BufferDesc::empty();
        let (mut flags, mut time) = (0, 0);
        // SAFETY: every pointer is valid for the call; the context handle is ours, created
        // by the library on the first call and deleted by `Context`'s drop.
        let major = unsafe {
            (self.init_sec_context)(
                &mut minor,
                std::ptr::null_mut(),
                &mut context.raw,
                target.raw,
                &mech,
                MUTUAL_FLAG | CONF_FLAG | INTEG_FLAG,
                0,
                std::ptr::null_mut(),
                input_buf
                    .as_ref()
                    .map_or(std::ptr::null(), |b| b as *const BufferDesc),
                std::ptr::null_mut(),
                &mut out,
                &mut flags,
                &mut time,
            )
        };
        context.gss = Some(Gss::load()?);
        let token = self.take(out);
        if failed(major) {
            return Err(self.describe(major, minor));
        }
        Ok((token, major & CONTINUE_NEEDED == 0))
    }

    /// Seals `data` for integrity only (no confidentiality).
    pub fn wrap(&self, context: &Context, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut minor = 0;
        let input = BufferDesc::of(data);
        let mut out = BufferDesc::empty();
        let mut conf = 0;
        // SAFETY: the context is established; pointers are valid for the call.
        let major =
            unsafe { (self.wrap)(&mut minor, context.raw, 0, 0, &input, &mut conf, &mut out) };
        let token = self.take(out);
        if failed(major) {
            return Err(format!(
                "cannot seal the answer: {}",
                self.describe(major, minor)
            ));
        }
        Ok(token)
    }

    /// Opens a token the server sealed.
    pub fn unwrap(&self, context: &Context, token: &[u8]) -> Result<Vec<u8>, String> {
        let mut minor = 0;
        let input = BufferDesc::of(token);
        let mut out = BufferDesc::empty();
        let (mut conf, mut qop) = (0, 0);
        // SAFETY: the context is established; pointers are valid for the call.
        let major = unsafe {
            (self.unwrap)(
                &mut minor,
                context.raw,
                &input,
                &mut out,
                &mut conf,
                &mut qop,
            )
        };
        let data = self.take(out);
        if failed(major) {
            return Err(format!(
                "the server's security-layer offer cannot be opened: {}",
                self.describe(major, minor)
            ));
        }
        Ok(data)
    }
}

/// An imported name, released when dropped.
pub struct Name {
    gss: &'static Gss,
    raw: *mut c_void,
}

// SAFETY: MIT's GSS-API objects may move between threads; each is used by one at a time.
unsafe impl Send for Name {}

impl Drop for Name {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: the name came from gss_import_name and is released once.
        unsafe { (self.gss.release_name)(&mut minor, &mut self.raw) };
    }
}

/// A security context, deleted when dropped.
pub struct Context {
    gss: Option<&'static Gss>,
    raw: *mut c_void,
}

// SAFETY: as for `Name`.
unsafe impl Send for Context {}

impl Context {
    /// No context yet (`GSS_C_NO_CONTEXT`).
    pub fn none() -> Context {
        Context {
            gss: None,
            raw: std::ptr::null_mut(),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Some(gss) = self.gss
            && !self.raw.is_null()
        {
            let mut minor = 0;
            // SAFETY: the context came from gss_init_sec_context and is deleted once.
            unsafe { (gss.delete_sec_context)(&mut minor, &mut self.raw, std::ptr::null_mut()) };
        }
    }
}
