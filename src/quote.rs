//! Member names as GNU tar prints them: its default `escape` quoting style (gnulib's quotearg),
//! so that no name can break a listing line, forge another, or send a terminal escape.
//!
//! - `\\` for a backslash; `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v` for those control
//!   characters; a NUL as `\0` (`\000` before a digit); every other control byte and DEL as three
//!   octal digits (`\033`). Nothing else is quoted: spaces, quotes and `?` print as they are.
//! - Bytes from 0x80 follow the locale's character set, as GNU tar does: in a UTF-8 locale a
//!   valid character prints as it is, unless it is not printable (the C1 controls U+0080 to
//!   U+009F, the line and paragraph separators U+2028 and U+2029, noncharacters), whose bytes are
//!   escaped in octal, as are bytes that are not UTF-8 (`\351`). In any other locale (`C`,
//!   `POSIX`, none set) every byte from 0x80 is escaped in octal. The locale is read from
//!   `LC_ALL`, `LC_CTYPE` and `LANG`, in that order, as the C library reads it; a locale whose
//!   name says UTF-8 (`C.UTF-8`, `en_US.utf8`) is taken as one without asking whether it is
//!   installed. One difference from GNU tar: code points not yet assigned by Unicode print as
//!   they are (tarfs has no table of them; none is a control character).
//! - The `literal` style prints names as they are (`--quoting-style=literal`).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::sync::OnceLock;

/// How names are printed, as GNU tar's `--quoting-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Control characters and (by the locale) bytes from 0x80 escaped with backslashes.
    #[default]
    Escape,
    /// The bytes as they are.
    Literal,
}

/// Which bytes from 0x80 may print as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Printable UTF-8 characters print as they are.
    Utf8,
    /// Every byte from 0x80 is escaped.
    Ascii,
}

impl Charset {
    /// The character set of a locale named as in `LC_ALL`, `LC_CTYPE` or `LANG` (the first that
    /// is set and not empty): UTF-8 if its codeset says so (`en_US.UTF-8`, `C.utf8@euro`).
    pub fn of_locale(lc_all: Option<&OsStr>, lc_ctype: Option<&OsStr>, lang: Option<&OsStr>) -> Charset {
        let name = [lc_all, lc_ctype, lang].into_iter().flatten().find(|v| !v.is_empty());
        let Some(name) = name.and_then(OsStr::to_str) else { return Charset::Ascii };
        let codeset = name.split_once('.').map_or("", |(_, c)| c.split('@').next().unwrap_or(""));
        let squeezed: String = codeset.chars().filter(|c| *c != '-' && *c != '_').collect();
        if squeezed.eq_ignore_ascii_case("utf8") {
            Charset::Utf8
        } else {
            Charset::Ascii
        }
    }

    /// The character set of this process's locale (read once).
    pub fn current() -> Charset {
        static CURRENT: OnceLock<Charset> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let var = std::env::var_os;
            Charset::of_locale(var("LC_ALL").as_deref(), var("LC_CTYPE").as_deref(), var("LANG").as_deref())
        })
    }
}

/// A quoting style and the character set it escapes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoting {
    /// The style.
    pub style: Style,
    /// Which bytes from 0x80 print as they are (for [`Style::Escape`]).
    pub charset: Charset,
}

impl Quoting {
    /// `style` in this process's locale.
    pub fn new(style: Style) -> Quoting {
        Quoting { style, charset: Charset::current() }
    }

    /// `name` as this quoting prints it: borrowed where nothing needs escaping.
    pub fn quote<'a>(&self, name: &'a [u8]) -> Cow<'a, [u8]> {
        if self.style == Style::Literal || !self.needs_escape(name) {
            return Cow::Borrowed(name);
        }
        let mut out = Vec::with_capacity(name.len() + 8);
        self.escape_into(name, &mut out);
        Cow::Owned(out)
    }

    /// Whether any byte of `name` would be escaped.
    fn needs_escape(&self, name: &[u8]) -> bool {
        // Branch-free over the bytes (the compiler vectorizes it): `ls` asks this of every name.
        if !name.iter().fold(false, |any, &b| any | !(0x20..0x7f).contains(&b) | (b == b'\\')) {
            return false;
        }
        if self.charset == Charset::Ascii {
            return true;
        }
        match std::str::from_utf8(name) {
            Ok(s) => s.chars().any(|c| c == '\\' || !printable(c)),
            Err(_) => true,
        }
    }

    /// Appends `name` in the escape style to `out`.
    fn escape_into(&self, name: &[u8], out: &mut Vec<u8>) {
        let ascii = |s: &[u8], out: &mut Vec<u8>| {
            for (i, &b) in s.iter().enumerate() {
                let next_is_digit = s.get(i + 1).is_some_and(u8::is_ascii_digit);
                escape_byte(b, next_is_digit, out);
            }
        };
        if self.charset == Charset::Ascii {
            return ascii(name, out);
        }
        for chunk in name.utf8_chunks() {
            let mut buf = [0u8; 4];
            let valid = chunk.valid();
            for (i, c) in valid.char_indices() {
                if c.is_ascii() {
                    let next_is_digit = valid.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit);
                    escape_byte(c as u8, next_is_digit, out);
                } else if printable(c) {
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                } else {
                    c.encode_utf8(&mut buf).bytes().for_each(|b| octal(b, out));
                }
            }
            chunk.invalid().iter().for_each(|&b| octal(b, out));
        }
    }
}

impl Default for Quoting {
    /// The escape style, in this process's locale.
    fn default() -> Quoting {
        Quoting::new(Style::Escape)
    }
}

/// `name` in the escape style of this process's locale, for messages: a name in a diagnostic
/// can forge no line and send no terminal escape, whatever `--quoting-style` a listing uses.
pub fn diag(name: &[u8]) -> String {
    let q = Quoting::new(Style::Escape).quote(name).into_owned();
    // Escaped text is ASCII and whole UTF-8 characters.
    String::from_utf8(q).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether a character beyond ASCII prints as it is in a UTF-8 locale: not a C1 control, a
/// line or paragraph separator, or a noncharacter.
fn printable(c: char) -> bool {
    let n = u32::from(c);
    !(c.is_control() || n == 0x2028 || n == 0x2029 || (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe)
}

/// One byte below 0x80 (or any byte, in ASCII), escaped as gnulib's escape style does.
fn escape_byte(b: u8, next_is_digit: bool, out: &mut Vec<u8>) {
    let named = match b {
        b'\\' => b'\\',
        0x07 => b'a',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x0b => b'v',
        0 if next_is_digit => return out.extend_from_slice(b"\\000"),
        0 => b'0',
        0x20..=0x7e => return out.push(b),
        _ => return octal(b, out),
    };
    out.extend_from_slice(&[b'\\', named]);
}

/// `\ooo`.
fn octal(b: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'\\', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(charset: Charset, name: &[u8]) -> String {
        String::from_utf8(Quoting { style: Style::Escape, charset }.quote(name).into_owned()).unwrap()
    }

    /// What GNU tar 1.34 prints for these names with `tar -tf` (LC_ALL=C.UTF-8, then C).
    #[test]
    fn escapes_as_gnu_tar_does() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"a\nb", "a\\nb", "a\\nb"),
            (b"t\tab", "t\\tab", "t\\tab"),
            (b"\x07\x08\x0c\r\x0b", "\\a\\b\\f\\r\\v", "\\a\\b\\f\\r\\v"),
            (b"esc\x1b[31m", "esc\\033[31m", "esc\\033[31m"),
            (b"del\x7f", "del\\177", "del\\177"),
            (b"back\\slash", "back\\\\slash", "back\\\\slash"),
            (b"nul?\x01", "nul?\\001", "nul?\\001"),
            (b"quote\"' sp?", "quote\"' sp?", "quote\"' sp?"),
            ("é-utf8".as_bytes(), "é-utf8", "\\303\\251-utf8"),
            (b"lat\xe9", "lat\\351", "lat\\351"),
            ("\u{9b}c1".as_bytes(), "\\302\\233c1", "\\302\\233c1"),
            ("emoji😀".as_bytes(), "emoji😀", "emoji\\360\\237\\230\\200"),
            ("\u{2028}\u{202e}\u{ffff}".as_bytes(), "\\342\\200\\250\u{202e}\\357\\277\\277", "\\342\\200\\250\\342\\200\\256\\357\\277\\277"),
            (b"ov\xc0\xaf sur\xed\xa0\x80 trunc\xe2\x82", "ov\\300\\257 sur\\355\\240\\200 trunc\\342\\202", "ov\\300\\257 sur\\355\\240\\200 trunc\\342\\202"),
            (b"z\x00z\x001", "z\\0z\\0001", "z\\0z\\0001"),
        ];
        for (name, utf8, ascii) in cases {
            assert_eq!(esc(Charset::Utf8, name), *utf8, "{name:?}");
            assert_eq!(esc(Charset::Ascii, name), *ascii, "{name:?}");
        }
    }

    #[test]
    fn literal_and_plain_names_are_borrowed() {
        let lit = Quoting { style: Style::Literal, charset: Charset::Utf8 };
        assert!(matches!(lit.quote(b"a\nb\xff"), Cow::Borrowed(b"a\nb\xff")));
        let q = Quoting { style: Style::Escape, charset: Charset::Ascii };
        assert!(matches!(q.quote(b"dir/file.txt"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_locale_is_read_as_the_c_library_reads_it() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(Charset::of_locale(None, None, None), Charset::Ascii);
        assert_eq!(Charset::of_locale(None, None, os("C.UTF-8")), Charset::Utf8);
        assert_eq!(Charset::of_locale(None, None, os("en_US.utf8@euro")), Charset::Utf8);
        assert_eq!(Charset::of_locale(os("C"), None, os("C.UTF-8")), Charset::Ascii);
        assert_eq!(Charset::of_locale(os(""), os("de_DE.UTF-8"), os("C")), Charset::Utf8);
        assert_eq!(Charset::of_locale(None, None, os("en_US.ISO-8859-1")), Charset::Ascii);
        assert_eq!(Charset::of_locale(None, None, os("POSIX")), Charset::Ascii);
    }

    proptest::proptest! {
        /// Whatever the name, its escaped form holds no control byte (C0, DEL, or a C1 control
        /// as UTF-8), and only ASCII in the C locale.
        #[test]
        fn escaped_names_hold_no_control_byte(name in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            for charset in [Charset::Utf8, Charset::Ascii] {
                let q = Quoting { style: Style::Escape, charset }.quote(&name).into_owned();
                proptest::prop_assert!(!q.iter().any(|&b| b < 0x20 || b == 0x7f), "{:?}", q);
                let s = std::str::from_utf8(&q);
                proptest::prop_assert!(s.is_ok(), "{:?}", q);
                proptest::prop_assert!(!s.unwrap().chars().any(char::is_control));
                if charset == Charset::Ascii {
                    proptest::prop_assert!(q.is_ascii());
                }
            }
        }
    }
}
