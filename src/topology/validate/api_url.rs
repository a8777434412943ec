//! `provider.api_url`: the PowerDNS webserver's base URL, checked by a small parser of our own
//! (the topology layer does no HTTP). It accepts and refuses exactly what `http::Uri` does for
//! an `http://` or `https://` URL, with the same words, so messages did not change when it
//! replaced that crate here.

use std::fmt;

use super::Problems;

/// The PowerDNS webserver's base URL: http or https, a host, no credentials (the key goes in
/// a header, from `api_key_env` / `api_key_file`), no query; a trailing `/` or `/api/v1` is
/// dropped because the provider appends `/api/v1/...` itself.
///
/// Credentials are looked for first, before anything echoes the URL: any `@` is refused
/// without showing the text. Only looking in the authority part would miss a password holding
/// `/`, `?` or `#` (`http://admin:pa/ss@h` parses as host `admin`), and a base URL has no use
/// for `@` elsewhere (`%40` still works in a path).
pub(super) fn parse_api_url(problems: &mut Problems, at: &str, text: &str) -> Option<String> {
    let text = text.trim();
    if text.contains('@') {
        // Not echoed, not even in part: whatever precedes the `@` may be a password.
        problems.add(
            at,
            "the URL holds `@`: credentials (`user@` or `user:password@`) are not allowed; give the API key with `api_key_env` or `api_key_file` instead (an `@` in a path must be written %40)",
        );
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        problems.add(
            at,
            format!("`{text}` is not an http:// or https:// URL (e.g. http://192.0.2.53:8081)"),
        );
        return None;
    }
    let after_scheme = &text[text.find("://").map_or(0, |i| i + 3)..];
    if after_scheme.is_empty() || after_scheme.starts_with('/') {
        problems.add(at, format!("`{text}` has no host"));
        return None;
    }
    let url = match HttpUrl::parse(text.len(), after_scheme) {
        Ok(url) => url,
        Err(e) => {
            problems.add(at, format!("`{text}` is not a URL: {e}"));
            return None;
        }
    };
    let mut problem_found = false;
    if url.host().is_empty() {
        problems.add(at, format!("`{text}` has no host"));
        problem_found = true;
    }
    let authority = url.authority;
    let has_port = authority.contains(':') && !authority.ends_with(']');
    if has_port && url.port().is_none_or(|p| p == 0) {
        problems.add(
            at,
            format!("`{text}`: the port is not a number from 1 to 65535"),
        );
        problem_found = true;
    }
    if url.has_query || text.contains('#') {
        problems.add(
            at,
            format!("`{text}`: give the webserver's base URL, without `?` or `#` parts"),
        );
        problem_found = true;
    }
    if problem_found {
        return None;
    }
    let mut base = text.trim_end_matches('/').to_string();
    if base.to_ascii_lowercase().ends_with("/api/v1") {
        base.truncate(base.len() - "/api/v1".len());
    }
    Some(base.trim_end_matches('/').to_string())
}

/// Why a URL does not parse, in `http::uri::InvalidUri`'s words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlError {
    TooLong,
    InvalidUriChar,
    InvalidAuthority,
    InvalidFormat,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::TooLong => "uri too long",
            UrlError::InvalidUriChar => "invalid uri character",
            UrlError::InvalidAuthority => "invalid authority",
            UrlError::InvalidFormat => "invalid format",
        })
    }
}

/// The parts of an `http(s)://` URL the checks need.
struct HttpUrl<'a> {
    /// `host[:port]` (no `user@`: an `@` was refused before parsing).
    authority: &'a str,
    /// A `?` before any `#`.
    has_query: bool,
}

/// `http::Uri`'s longest URI.
const MAX_URI_LEN: usize = u16::MAX as usize - 1;

impl<'a> HttpUrl<'a> {
    /// `rest` is what follows `http://` or `https://` in a URL of `total_len` bytes.
    fn parse(total_len: usize, rest: &'a str) -> Result<HttpUrl<'a>, UrlError> {
        if total_len > MAX_URI_LEN {
            return Err(UrlError::TooLong);
        }
        let end = authority_end(rest.as_bytes())?;
        if end == 0 {
            return Err(UrlError::InvalidFormat);
        }
        Ok(HttpUrl {
            authority: &rest[..end],
            has_query: path_has_query(&rest.as_bytes()[end..])?,
        })
    }

    /// An IPv6 literal with its brackets, else everything before the first `:`.
    fn host(&self) -> &'a str {
        match self.authority.find(']') {
            Some(close) if self.authority.starts_with('[') => &self.authority[..=close],
            _ => self.authority.split(':').next().unwrap_or_default(),
        }
    }

    /// The number after the last `:`, when it is one (`+80` counts, as in `http`).
    fn port(&self) -> Option<u16> {
        let colon = self.authority.rfind(':')?;
        self.authority[colon + 1..].parse().ok()
    }
}

/// Characters allowed in the authority besides letters and digits (`%` is handled apart).
fn authority_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&'()*+,-./:;=?@[]_~".contains(&b)
}

/// Where the authority ends (at the first `/`, `?` or `#`), once it is checked: URI
/// characters only, balanced brackets, at most one port colon outside them, and `%` only
/// inside an IPv6 literal.
fn authority_end(s: &[u8]) -> Result<usize, UrlError> {
    const MAX_COLONS: u32 = 8;
    let mut colons = 0;
    let (mut open, mut close, mut percent) = (false, false, false);
    let mut at_sign = s.len();
    let mut end = s.len();
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            b'%' => percent = true,
            _ if !authority_char(b) => return Err(UrlError::InvalidUriChar),
            b':' if colons >= MAX_COLONS => return Err(UrlError::InvalidAuthority),
            b':' => colons += 1,
            b'[' if percent || open => return Err(UrlError::InvalidAuthority),
            b'[' => open = true,
            b']' if !open || close => return Err(UrlError::InvalidAuthority),
            b']' => {
                // Those were part of an IPv6 literal.
                close = true;
                colons = 0;
                percent = false;
            }
            b'@' => {
                at_sign = i;
                colons = 0;
                percent = false;
            }
            _ => {}
        }
    }
    let empty_after_at = end > 0 && at_sign == end - 1;
    if open != close || colons > 1 || empty_after_at || percent {
        return Err(UrlError::InvalidAuthority);
    }
    Ok(end)
}

/// Checks the path and query (`s` is empty or starts with `/`, `?` or `#`; nothing after `#`
/// is checked); says whether there is a query.
fn path_has_query(s: &[u8]) -> Result<bool, UrlError> {
    let in_path = |b: u8| {
        matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E | 0x80..)
            // Should be percent-encoded, but `http` lets them through.
            || matches!(b, b'"' | b'{' | b'}')
    };
    let in_query = |b: u8| matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E | 0x80..);
    let mut bytes = s.iter();
    let mut query = false;
    for &b in bytes.by_ref() {
        match b {
            b'#' => return Ok(false),
            b'?' => {
                query = true;
                break;
            }
            _ if in_path(b) => {}
            _ => return Err(UrlError::InvalidUriChar),
        }
    }
    if query {
        for &b in bytes {
            match b {
                b'#' => break,
                _ if in_query(b) => {}
                _ => return Err(UrlError::InvalidUriChar),
            }
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check as it was with `http::Uri` (through ureq), kept to compare against.
    fn with_http_crate(problems: &mut Problems, at: &str, text: &str) -> Option<String> {
        let text = text.trim();
        if text.contains('@') {
            return parse_api_url(problems, at, text);
        }
        let lower = text.to_ascii_lowercase();
        let after_scheme = &text[text.find("://").map_or(0, |i| i + 3)..];
        if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || after_scheme.is_empty()
            || after_scheme.starts_with('/')
        {
            return parse_api_url(problems, at, text);
        }
        let uri = match text.parse::<ureq::http::Uri>() {
            Ok(uri) => uri,
            Err(e) => {
                problems.add(at, format!("`{text}` is not a URL: {e}"));
                return None;
            }
        };
        let Some(authority) = uri.authority() else {
            problems.add(at, format!("`{text}` has no host"));
            return None;
        };
        let mut problem_found = false;
        if authority.host().is_empty() {
            problems.add(at, format!("`{text}` has no host"));
            problem_found = true;
        }
        let has_port = authority.as_str().contains(':') && !authority.as_str().ends_with(']');
        if has_port && authority.port_u16().is_none_or(|p| p == 0) {
            problems.add(
                at,
                format!("`{text}`: the port is not a number from 1 to 65535"),
            );
            problem_found = true;
        }
        if uri.query().is_some() || text.contains('#') {
            problems.add(
                at,
                format!("`{text}`: give the webserver's base URL, without `?` or `#` parts"),
            );
            problem_found = true;
        }
        if problem_found {
            return None;
        }
        let mut base = text.trim_end_matches('/').to_string();
        if base.to_ascii_lowercase().ends_with("/api/v1") {
            base.truncate(base.len() - "/api/v1".len());
        }
        Some(base.trim_end_matches('/').to_string())
    }

    fn verdict(
        check: fn(&mut Problems, &str, &str) -> Option<String>,
        text: &str,
    ) -> (Option<String>, Vec<String>) {
        let mut problems = Problems::default();
        let url = check(&mut problems, "a", text);
        (url, problems.0.iter().map(ToString::to_string).collect())
    }

    /// Random URLs from the characters that matter to the grammar: both parsers agree on
    /// every one, word for word.
    #[test]
    fn agrees_with_the_http_crate() {
        const PIECES: &[&str] = &[
            "h", "H", "1", ":", "[", "]", "/", "?", "#", "%", "%41", " ", "<", ">", "\"", "{", "}",
            "\\", "^", "`", "|", "~", "é", "+", "-", ".", "!", "$", "&", "'", "(", "*", ";", "=",
            "_", "\t", "::1", "8081", "99999", "0", "api/v1", "\u{7f}",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let mut url = String::from(["http://", "HTTPS://", "https://"][(next() % 3) as usize]);
            for _ in 0..(next() % 10) {
                url.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            assert_eq!(
                verdict(parse_api_url, &url),
                verdict(with_http_crate, &url),
                "{url:?}"
            );
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URI_LEN));
        assert_eq!(
            verdict(parse_api_url, &long),
            verdict(with_http_crate, &long)
        );
        let edge = format!("http://h/{}", "a".repeat(MAX_URI_LEN - 9));
        assert_eq!(
            verdict(parse_api_url, &edge),
            verdict(with_http_crate, &edge)
        );
    }
}
