//! Kerberos through the system's GSS-API (MIT `libgssapi_krb5.so.2`), loaded at run time.
//!
//! Loaded with `libloading` rather than linked: the crate then builds with only the Rust
//! toolchain (no libkrb5-dev, no clang for bindgen), and only `auth: gss-tsig` needs the
//! library on the machine that runs it. The few functions used are declared by hand below,
//! with the C types of RFC 2744 and MIT's `gssapi_ext.h` (`gss_acquire_cred_from`).

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock};

type Minor = u32;
type Major = u32;

#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

#[repr(C)]
struct Oid {
    length: u32,
    elements: *const c_void,
}

#[repr(C)]
struct KeyValue {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: u32,
    elements: *const KeyValue,
}

type Name = *mut c_void;
type Ctx = *mut c_void;
type Cred = *mut c_void;

type ImportName = unsafe extern "C" fn(*mut Minor, *const Buffer, *const Oid, *mut Name) -> Major;
type ReleaseName = unsafe extern "C" fn(*mut Minor, *mut Name) -> Major;
type DisplayName = unsafe extern "C" fn(*mut Minor, Name, *mut Buffer, *mut *const Oid) -> Major;
type InitSecContext = unsafe extern "C" fn(
    *mut Minor,
    Cred,
    *mut Ctx,
    Name,
    *const Oid,
    u32,
    u32,
    *const c_void,
    *const Buffer,
    *mut *const Oid,
    *mut Buffer,
    *mut u32,
    *mut u32,
) -> Major;
type GetMic = unsafe extern "C" fn(*mut Minor, Ctx, u32, *const Buffer, *mut Buffer) -> Major;
type VerifyMic =
    unsafe extern "C" fn(*mut Minor, Ctx, *const Buffer, *const Buffer, *mut u32) -> Major;
type ReleaseBuffer = unsafe extern "C" fn(*mut Minor, *mut Buffer) -> Major;
type DeleteSecContext = unsafe extern "C" fn(*mut Minor, *mut Ctx, *mut Buffer) -> Major;
type ReleaseCred = unsafe extern "C" fn(*mut Minor, *mut Cred) -> Major;
type DisplayStatus =
    unsafe extern "C" fn(*mut Minor, u32, c_int, *const Oid, *mut u32, *mut Buffer) -> Major;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut Minor,
    Name,
    u32,
    *const c_void,
    c_int,
    *const KeyValueSet,
    *mut Cred,
    *mut *mut c_void,
    *mut u32,
) -> Major;
type InquireCred = unsafe extern "C" fn(
    *mut Minor,
    Cred,
    *mut Name,
    *mut u32,
    *mut c_int,
    *mut *mut c_void,
) -> Major;

/// The library's file name (the soname, which the runtime package ships without -dev).
pub const LIBRARY: &str = "libgssapi_krb5.so.2";

/// The functions we call, resolved once per process.
struct Api {
    import_name: ImportName,
    release_name: ReleaseName,
    display_name: DisplayName,
    init_sec_context: InitSecContext,
    get_mic: GetMic,
    verify_mic: VerifyMic,
    release_buffer: ReleaseBuffer,
    delete_sec_context: DeleteSecContext,
    release_cred: ReleaseCred,
    display_status: DisplayStatus,
    acquire_cred_from: AcquireCredFrom,
    inquire_cred: InquireCred,
    /// Keeps the functions above mapped.
    _library: libloading::Library,
}

// RFC 2744 / RFC 4121 object identifiers.
const KRB5_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
const SPNEGO: &[u8] = b"\x2b\x06\x01\x05\x05\x02";

const MUTUAL: u32 = 2;
const REPLAY: u32 = 4;
const INTEG: u32 = 32;
const CONTINUE_NEEDED: u32 = 1;
const INITIATE: c_int = 1;
const GSS_CODE: c_int = 1;
const MECH_CODE: c_int = 2;

// Routine errors (RFC 2744 §3.9.1), shifted into place.
const NO_CRED: u32 = 7 << 16;
const CREDENTIALS_EXPIRED: u32 = 11 << 16;
const CONTEXT_EXPIRED: u32 = 12 << 16;
const BAD_MIC: u32 = 6 << 16;

// MIT krb5 error codes as GSS minor statuses (com_err table base 0x96c73a00).
const KRB5_S_PRINCIPAL_UNKNOWN: u32 = 0x96c7_3a07;
const KRB5_C_PRINCIPAL_UNKNOWN: u32 = 0x96c7_3a06;
const KRB5_TKT_EXPIRED: u32 = 0x96c7_3a20;
const KRB5_SKEW: u32 = 0x96c7_3a25;
const KRB5_PREAUTH_FAILED: u32 = 0x96c7_3a18;

fn is_error(major: Major) -> bool {
    major & 0xffff_0000 != 0
}

fn oid(bytes: &'static [u8]) -> Oid {
    Oid {
        length: bytes.len() as u32,
        elements: bytes.as_ptr().cast(),
    }
}

fn borrowed(bytes: &[u8]) -> Buffer {
    Buffer {
        length: bytes.len(),
        value: bytes.as_ptr() as *mut c_void,
    }
}

fn empty_buffer() -> Buffer {
    Buffer {
        length: 0,
        value: ptr::null_mut(),
    }
}

/// What went wrong, in words a Kerberos user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GssError {
    #[error("GSS-TSIG needs the MIT Kerberos GSS-API library {LIBRARY}, which could not be loaded ({reason}); install it (Debian/Ubuntu: apt install libgssapi-krb5-2; RHEL: dnf install krb5-libs)")]
    Library { reason: String },
    #[error("no Kerberos ticket{}: run `kinit {}` (or set `keytab` and `principal` in the topology for unattended runs) ({detail})", cache_hint(), principal.as_deref().unwrap_or("PRINCIPAL"))]
    NoTicket {
        principal: Option<String>,
        detail: String,
    },
    #[error("the Kerberos ticket{} has expired: run `kinit {}` again ({detail})", principal.as_deref().map(|p| format!(" of {p}")).unwrap_or_default(), principal.as_deref().unwrap_or("PRINCIPAL"))]
    Expired {
        principal: Option<String>,
        detail: String,
    },
    #[error("the KDC does not know the server principal {principal}: it is DNS/<the zone's SOA MNAME> unless `server_principal` names another; check the SOA MNAME and the DNS server's account ({detail})")]
    UnknownServer { principal: String, detail: String },
    #[error("the KDC does not know the client principal {principal} ({detail})")]
    UnknownClient { principal: String, detail: String },
    #[error("clock skew between this machine and the KDC or DNS server is too great for Kerberos (5 minutes by default): check NTP ({detail})")]
    ClockSkew { detail: String },
    #[error("cannot get a Kerberos ticket for {principal} from keytab {}: {detail}", path.display())]
    Keytab {
        path: PathBuf,
        principal: String,
        detail: String,
    },
    #[error("the GSS-API security context has expired ({detail})")]
    ContextExpired { detail: String },
    #[error("the MIC does not verify ({detail})")]
    BadMic { detail: String },
    #[error("GSS-API {during} failed: {detail}")]
    Failed {
        during: &'static str,
        detail: String,
    },
}

fn cache_hint() -> String {
    std::env::var("KRB5CCNAME")
        .map(|c| format!(" in {c}"))
        .unwrap_or_default()
}

/// The process-wide library, loaded on first use.
fn api() -> Result<Arc<Api>, GssError> {
    static API: OnceLock<Result<Arc<Api>, String>> = OnceLock::new();
    API.get_or_init(|| load().map(Arc::new))
        .clone()
        .map_err(|reason| GssError::Library { reason })
}

fn load() -> Result<Api, String> {
    // SAFETY: loading MIT's GSS-API library runs only its own initialisers; the symbols are
    // resolved with the prototypes RFC 2744 and gssapi_ext.h give them.
    unsafe {
        let library = libloading::Library::new(LIBRARY).map_err(|e| e.to_string())?;
        macro_rules! sym {
            ($name:literal) => {
                *library.get($name).map_err(|e| e.to_string())?
            };
        }
        Ok(Api {
            import_name: sym!(b"gss_import_name\0"),
            release_name: sym!(b"gss_release_name\0"),
            display_name: sym!(b"gss_display_name\0"),
            init_sec_context: sym!(b"gss_init_sec_context\0"),
            get_mic: sym!(b"gss_get_mic\0"),
            verify_mic: sym!(b"gss_verify_mic\0"),
            release_buffer: sym!(b"gss_release_buffer\0"),
            delete_sec_context: sym!(b"gss_delete_sec_context\0"),
            release_cred: sym!(b"gss_release_cred\0"),
            display_status: sym!(b"gss_display_status\0"),
            acquire_cred_from: sym!(b"gss_acquire_cred_from\0"),
            inquire_cred: sym!(b"gss_inquire_cred\0"),
            _library: library,
        })
    }
}

impl Api {
    /// Copies a library-owned buffer out and releases it.
    fn take(&self, buffer: &mut Buffer) -> Vec<u8> {
        let bytes = if buffer.value.is_null() || buffer.length == 0 {
            Vec::new()
        } else {
            // SAFETY: the library filled `buffer` with `length` readable bytes.
            unsafe { std::slice::from_raw_parts(buffer.value as *const u8, buffer.length) }.to_vec()
        };
        let mut minor = 0;
        // SAFETY: the buffer was allocated by this library.
        unsafe { (self.release_buffer)(&mut minor, buffer) };
        bytes
    }

    /// Both status codes in the library's words.
    fn describe(&self, major: Major, minor: Minor) -> String {
        let mut parts = Vec::new();
        for (code, kind) in [(major, GSS_CODE), (minor, MECH_CODE)] {
            if code == 0 || (kind == GSS_CODE && !is_error(code)) {
                continue;
            }
            let mut context = 0u32;
            for _ in 0..8 {
                let mut buffer = empty_buffer();
                let mut ignored = 0;
                // SAFETY: out-pointers are valid; a null mech means "the default".
                let status = unsafe {
                    (self.display_status)(
                        &mut ignored,
                        code,
                        kind,
                        ptr::null(),
                        &mut context,
                        &mut buffer,
                    )
                };
                if is_error(status) {
                    break;
                }
                let text = String::from_utf8_lossy(&self.take(&mut buffer)).into_owned();
                // A mechanism with nothing to add says "Success"; that only confuses.
                if text != "Success" && !text.is_empty() {
                    parts.push(text);
                }
                if context == 0 {
                    break;
                }
            }
        }
        parts.join("; ")
    }

    fn import_principal(&self, principal: &str) -> Result<Name, GssError> {
        let name_type = oid(KRB5_PRINCIPAL_NAME);
        let buffer = borrowed(principal.as_bytes());
        let mut name: Name = ptr::null_mut();
        let mut minor = 0;
        // SAFETY: the buffer and OID outlive the call; `name` is an out-pointer.
        let major = unsafe { (self.import_name)(&mut minor, &buffer, &name_type, &mut name) };
        if is_error(major) {
            return Err(GssError::Failed {
                during: "importing a principal name",
                detail: format!("{principal}: {}", self.describe(major, minor)),
            });
        }
        Ok(name)
    }

    fn release_name(&self, mut name: Name) {
        let mut minor = 0;
        if !name.is_null() {
            // SAFETY: `name` came from gss_import_name or gss_inquire_cred.
            unsafe { (self.release_name)(&mut minor, &mut name) };
        }
    }

    fn display(&self, name: Name) -> Option<String> {
        let mut buffer = empty_buffer();
        let mut minor = 0;
        // SAFETY: `name` is a valid name handle; the OID out-pointer may be null.
        let major = unsafe { (self.display_name)(&mut minor, name, &mut buffer, ptr::null_mut()) };
        (!is_error(major)).then(|| String::from_utf8_lossy(&self.take(&mut buffer)).into_owned())
    }
}

/// Where the client's Kerberos credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The user's ticket cache (`kinit`, `KRB5CCNAME`); `principal` only names it in advice.
    TicketCache { principal: Option<String> },
    /// A keytab, for unattended runs: tickets go to a private in-memory cache.
    Keytab { path: PathBuf, principal: String },
}

/// A credential handle (null: the default ticket cache).
struct CredHandle {
    api: Arc<Api>,
    handle: Cred,
}

impl Drop for CredHandle {
    fn drop(&mut self) {
        let mut minor = 0;
        if !self.handle.is_null() {
            // SAFETY: the handle came from gss_acquire_cred_from.
            unsafe { (self.api.release_cred)(&mut minor, &mut self.handle) };
        }
    }
}

fn acquire(
    api: &Arc<Api>,
    credentials: &Credentials,
) -> Result<(CredHandle, Option<String>), GssError> {
    let (desired, store): (Name, Vec<(CString, CString)>) = match credentials {
        Credentials::TicketCache { .. } => (ptr::null_mut(), Vec::new()),
        Credentials::Keytab { path, principal } => {
            let c = |s: &str| {
                CString::new(s).map_err(|_| keytab_error(path, principal, "contains a NUL byte"))
            };
            let unique = format!("MEMORY:xmppdns-{}-{:p}", std::process::id(), path);
            (
                api.import_principal(principal)?,
                vec![
                    (c("client_keytab")?, c(&path.to_string_lossy())?),
                    (c("ccache")?, c(&unique)?),
                ],
            )
        }
    };
    let elements: Vec<KeyValue> = store
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = KeyValueSet {
        count: elements.len() as u32,
        elements: elements.as_ptr(),
    };
    let mut handle: Cred = ptr::null_mut();
    let mut minor = 0;
    // SAFETY: every pointer outlives the call; out-pointers are valid or null.
    let major = unsafe {
        (api.acquire_cred_from)(
            &mut minor,
            desired,
            0,
            ptr::null(),
            INITIATE,
            &set,
            &mut handle,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    api.release_name(desired);
    let cred = CredHandle {
        api: api.clone(),
        handle,
    };
    if is_error(major) {
        return Err(credential_error(api, credentials, major, minor));
    }
    let client = check_lifetime(api, &cred, credentials)?;
    Ok((cred, client))
}

fn keytab_error(path: &Path, principal: &str, detail: &str) -> GssError {
    GssError::Keytab {
        path: path.to_path_buf(),
        principal: principal.to_string(),
        detail: detail.to_string(),
    }
}

/// A ticket cache whose tickets have all expired still yields a handle: ask its lifetime.
/// Returns the client principal.
fn check_lifetime(
    api: &Api,
    cred: &CredHandle,
    credentials: &Credentials,
) -> Result<Option<String>, GssError> {
    let mut name: Name = ptr::null_mut();
    let mut lifetime = 0u32;
    let mut minor = 0;
    // SAFETY: out-pointers are valid; the mechs out-pointer may be null.
    let major = unsafe {
        (api.inquire_cred)(
            &mut minor,
            cred.handle,
            &mut name,
            &mut lifetime,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let principal = api.display(name);
    api.release_name(name);
    if is_error(major) {
        return Err(credential_error(api, credentials, major, minor));
    }
    if lifetime == 0 {
        return Err(GssError::Expired {
            principal: principal.or_else(|| named(credentials)),
            detail: "no valid ticket left in the cache".into(),
        });
    }
    Ok(principal)
}

fn named(credentials: &Credentials) -> Option<String> {
    match credentials {
        Credentials::TicketCache { principal } => principal.clone(),
        Credentials::Keytab { principal, .. } => Some(principal.clone()),
    }
}

fn credential_error(api: &Api, credentials: &Credentials, major: Major, minor: Minor) -> GssError {
    let detail = api.describe(major, minor);
    match credentials {
        Credentials::Keytab { path, principal } => keytab_error(path, principal, &detail),
        Credentials::TicketCache { principal } => {
            if major & 0x00ff_0000 == CREDENTIALS_EXPIRED || minor == KRB5_TKT_EXPIRED {
                GssError::Expired {
                    principal: principal.clone(),
                    detail,
                }
            } else {
                GssError::NoTicket {
                    principal: principal.clone(),
                    detail,
                }
            }
        }
    }
}

/// One side of a security context being established: feed it the server's tokens until
/// `step` says it is complete.
pub struct Initiator {
    api: Arc<Api>,
    cred: CredHandle,
    /// Whose ticket is used, as the library names it.
    client: Option<String>,
    target: Name,
    server_principal: String,
    credentials: Credentials,
    context: Ctx,
}

/// What one step of establishment produced.
pub struct Step {
    /// The token to send to the server (empty: nothing to send).
    pub token: Vec<u8>,
    /// True when our side of the context is established.
    pub complete: bool,
}

impl Initiator {
    /// Starts a context with `server_principal` (`DNS/ns1.example.com`, realm optional).
    pub fn new(credentials: &Credentials, server_principal: &str) -> Result<Self, GssError> {
        let api = api()?;
        let (cred, client) = acquire(&api, credentials)?;
        let target = api.import_principal(server_principal)?;
        Ok(Initiator {
            api,
            cred,
            client,
            target,
            server_principal: server_principal.to_string(),
            credentials: credentials.clone(),
            context: ptr::null_mut(),
        })
    }

    /// The client principal whose ticket is used (`admin@EXAMPLE.COM`).
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// Takes the server's last token (none at first) and gives the next one to send.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Step, GssError> {
        let mech = oid(SPNEGO);
        let input_buffer = input.map(borrowed);
        let input_ptr = input_buffer
            .as_ref()
            .map_or(ptr::null(), |b| b as *const Buffer);
        let mut output = empty_buffer();
        let mut minor = 0;
        // SAFETY: all pointers are valid for the call; the context handle is ours.
        let major = unsafe {
            (self.api.init_sec_context)(
                &mut minor,
                self.cred.handle,
                &mut self.context,
                self.target,
                &mech,
                MUTUAL | REPLAY | INTEG,
                0,
                ptr::null(),
                input_ptr,
                ptr::null_mut(),
                &mut output,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let token = self.api.take(&mut output);
        if is_error(major) {
            return Err(self.init_error(major, minor));
        }
        Ok(Step {
            token,
            complete: major & CONTINUE_NEEDED == 0,
        })
    }

    fn init_error(&self, major: Major, minor: Minor) -> GssError {
        let detail = self.api.describe(major, minor);
        let principal = named(&self.credentials).or_else(|| self.client.clone());
        // MIT's mechglue renumbers minor codes that come through SPNEGO, so the krb5 codes
        // are matched by their fixed messages too.
        let says = |text: &str| detail.contains(text);
        match (major & 0x00ff_0000, minor) {
            (_, KRB5_S_PRINCIPAL_UNKNOWN) => GssError::UnknownServer {
                principal: self.server_principal.clone(),
                detail,
            },
            _ if says("Server") && says("not found in Kerberos database") => {
                GssError::UnknownServer {
                    principal: self.server_principal.clone(),
                    detail,
                }
            }
            (_, KRB5_C_PRINCIPAL_UNKNOWN | KRB5_PREAUTH_FAILED) => GssError::UnknownClient {
                principal: principal.unwrap_or_default(),
                detail,
            },
            (_, KRB5_SKEW) => GssError::ClockSkew { detail },
            _ if says("Clock skew too great") => GssError::ClockSkew { detail },
            (CREDENTIALS_EXPIRED, _) | (_, KRB5_TKT_EXPIRED) => {
                GssError::Expired { principal, detail }
            }
            _ if says("Ticket expired") => GssError::Expired { principal, detail },
            (NO_CRED, _) => GssError::NoTicket { principal, detail },
            _ => GssError::Failed {
                during: "security context establishment",
                detail,
            },
        }
    }

    /// The established context (call once `step` said complete).
    pub fn finish(mut self) -> SecurityContext {
        let handle = std::mem::replace(&mut self.context, ptr::null_mut());
        SecurityContext {
            api: self.api.clone(),
            handle: Mutex::new(ContextHandle(handle)),
        }
    }
}

impl Drop for Initiator {
    fn drop(&mut self) {
        self.api.release_name(self.target);
        delete_context(&self.api, self.context);
    }
}

fn delete_context(api: &Api, mut context: Ctx) {
    if !context.is_null() {
        let mut minor = 0;
        // SAFETY: the handle came from gss_init_sec_context and is deleted once.
        unsafe { (api.delete_sec_context)(&mut minor, &mut context, ptr::null_mut()) };
    }
}

struct ContextHandle(Ctx);

// SAFETY: the handle is only used under the Mutex around it; MIT's contexts may move between
// threads as long as calls on one context do not overlap.
unsafe impl Send for ContextHandle {}

/// An established security context: signs and checks MICs (the TSIG MACs of GSS-TSIG).
pub struct SecurityContext {
    api: Arc<Api>,
    handle: Mutex<ContextHandle>,
}

// SAFETY: the raw handles inside are only touched under the Mutex; `Api` holds function
// pointers and the library, which are shareable.
unsafe impl Send for SecurityContext {}
unsafe impl Sync for SecurityContext {}
unsafe impl Send for Api {}
unsafe impl Sync for Api {}
unsafe impl Send for Initiator {}

impl SecurityContext {
    /// The MIC of `message`.
    pub fn get_mic(&self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        let input = borrowed(message);
        let mut token = empty_buffer();
        let mut minor = 0;
        // SAFETY: the context is established and used by one thread at a time.
        let major = unsafe { (self.api.get_mic)(&mut minor, handle.0, 0, &input, &mut token) };
        let mic = self.api.take(&mut token);
        if is_error(major) {
            return Err(self.mic_error(major, minor, "signing"));
        }
        Ok(mic)
    }

    /// Checks `mic` over `message`.
    pub fn verify_mic(&self, message: &[u8], mic: &[u8]) -> Result<(), GssError> {
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        let (input, token) = (borrowed(message), borrowed(mic));
        let mut minor = 0;
        // SAFETY: as for get_mic; the qop out-pointer may be null.
        let major =
            unsafe { (self.api.verify_mic)(&mut minor, handle.0, &input, &token, ptr::null_mut()) };
        if is_error(major) {
            return Err(self.mic_error(major, minor, "verifying"));
        }
        Ok(())
    }

    fn mic_error(&self, major: Major, minor: Minor, during: &'static str) -> GssError {
        let detail = self.api.describe(major, minor);
        match major & 0x00ff_0000 {
            CONTEXT_EXPIRED => GssError::ContextExpired { detail },
            BAD_MIC => GssError::BadMic { detail },
            _ => GssError::Failed {
                during: if during == "signing" {
                    "signing (gss_get_mic)"
                } else {
                    "verifying (gss_verify_mic)"
                },
                detail,
            },
        }
    }
}

impl Drop for SecurityContext {
    fn drop(&mut self) {
        let handle = self.handle.get_mut().unwrap_or_else(|e| e.into_inner());
        delete_context(&self.api, handle.0);
    }
}

impl std::fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityContext(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_run_and_name_the_principals() {
        let no_ticket = GssError::NoTicket {
            principal: Some("svc@CONTOSO.COM".into()),
            detail: "No Kerberos credentials available".into(),
        }
        .to_string();
        assert!(
            no_ticket.contains("run `kinit svc@CONTOSO.COM`"),
            "{no_ticket}"
        );
        let expired = GssError::Expired {
            principal: None,
            detail: String::new(),
        }
        .to_string();
        assert!(
            expired.contains("expired") && expired.contains("kinit PRINCIPAL"),
            "{expired}"
        );
        let server = GssError::UnknownServer {
            principal: "DNS/dc9.contoso.com".into(),
            detail: String::new(),
        }
        .to_string();
        assert!(
            server.contains("DNS/dc9.contoso.com") && server.contains("server_principal"),
            "{server}"
        );
        let library = GssError::Library {
            reason: "not found".into(),
        }
        .to_string();
        assert!(
            library.contains(LIBRARY) && library.contains("libgssapi-krb5-2"),
            "{library}"
        );
    }

    #[test]
    fn routine_errors_are_told_from_supplementary_bits() {
        assert!(!is_error(CONTINUE_NEEDED));
        assert!(is_error(NO_CRED) && is_error(BAD_MIC) && is_error(CONTEXT_EXPIRED));
    }
}
