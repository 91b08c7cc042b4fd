//! How members are shown: `tar -tv`-style lines and JSON records. Presentation only.

use std::fmt::Write as _;

use chrono::{Local, TimeZone};
use serde::Serialize;
use tarfs::quote::Quoting;
use tarfs::Entry;

/// Escapes bytes that are not UTF-8 as `\xNN`, so any name prints on one line.
pub fn display_bytes(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(s, "\\x{byte:02x}");
        }
    }
    s
}

/// The mode column of `tar -tv`: a type letter and nine permission letters.
pub fn mode_string(e: &Entry<'_>) -> String {
    let kind = match e.typeflag {
        b'1' => 'h',
        b'2' => 'l',
        b'3' => 'c',
        b'4' => 'b',
        b'5' | b'D' => 'd',
        b'6' => 'p',
        b'7' => 'C',
        b'V' => 'V',
        b'M' => 'M',
        _ => '-',
    };
    let m = e.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |x: char, set: bool, lower: char, upper: char| match (x != '-', set) {
        (true, true) => lower,
        (false, true) => upper,
        (_, false) => x,
    };
    let ux = special(bit(0o100, 'x'), m & 0o4000 != 0, 's', 'S');
    let gx = special(bit(0o010, 'x'), m & 0o2000 != 0, 's', 'S');
    let ox = special(bit(0o001, 'x'), m & 0o1000 != 0, 't', 'T');
    [kind, bit(0o400, 'r'), bit(0o200, 'w'), ux, bit(0o040, 'r'), bit(0o020, 'w'), gx, bit(0o004, 'r'), bit(0o002, 'w'), ox]
        .iter()
        .collect()
}

/// Formats `tar -tv` lines, keeping GNU tar's growing column width for owner and size. Names,
/// link targets, and owner and group names are printed through the quoting (GNU tar quotes the
/// names, and prints owner names as they are: tarfs quotes them too, so that no field of a
/// hostile archive can forge a line).
pub struct LongFormat {
    width: usize,
    quoting: Quoting,
}

impl LongFormat {
    /// Lines with names quoted by `quoting`.
    pub fn new(quoting: Quoting) -> LongFormat {
        LongFormat { width: 0, quoting }
    }

    /// One line, without the newline.
    pub fn line(&mut self, e: &Entry<'_>) -> Vec<u8> {
        let q = |b: &[u8]| self.quoting.quote(b).into_owned();
        let owner = |name: &[u8], id: u64| if name.is_empty() { id.to_string().into_bytes() } else { q(name) };
        let (user, group) = (owner(e.uname(), e.uid), owner(e.gname(), e.gid));
        let size = match e.typeflag {
            b'3' | b'4' => format!("{},{}", e.device.0, e.device.1),
            _ => e.size.to_string(),
        };
        // GNU tar's list.c: the field "user/group size" is at least `ugswidth` (19) wide, and
        // `ugswidth` grows to the widest seen so far.
        self.width = self.width.max(19).max(user.len() + group.len() + size.len() + 2);
        let pad = self.width - user.len() - group.len() - 2;
        let time = Local
            .timestamp_opt(e.mtime, 0)
            .single()
            .map_or_else(|| e.mtime.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string());
        let mut line = format!("{} ", mode_string(e)).into_bytes();
        line.extend_from_slice(&user);
        line.push(b'/');
        line.extend_from_slice(&group);
        line.extend_from_slice(format!(" {size:>pad$} {time} ").as_bytes());
        line.extend_from_slice(&q(&e.path()));
        match e.typeflag {
            b'2' => line.extend_from_slice(b" -> "),
            b'1' => line.extend_from_slice(b" link to "),
            _ => return line,
        }
        line.extend_from_slice(&q(e.link()));
        line
    }
}

/// One member as `ls --json` prints it.
#[derive(Serialize)]
pub struct JsonMember {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_hex: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    stored_size: u64,
    mode: u32,
    mtime: i64,
    uid: u64,
    gid: u64,
    uname: String,
    gname: String,
    link: String,
    header_offset: u64,
    main_header_offset: u64,
    data_offset: u64,
}

impl JsonMember {
    /// The record of one entry.
    pub fn new(e: &Entry<'_>) -> JsonMember {
        let path = e.path();
        let hex = std::str::from_utf8(&path).is_err().then(|| path.iter().map(|b| format!("{b:02x}")).collect());
        JsonMember {
            name: display_bytes(&path),
            name_hex: hex,
            kind: if e.typeflag == 0 { "0".into() } else { (e.typeflag as char).to_string() },
            size: e.size,
            stored_size: e.stored_size,
            mode: e.mode & 0o7777,
            mtime: e.mtime,
            uid: e.uid,
            gid: e.gid,
            uname: display_bytes(e.uname()),
            gname: display_bytes(e.gname()),
            link: display_bytes(e.link()),
            header_offset: e.position,
            main_header_offset: e.header_offset,
            data_offset: e.data_offset,
        }
    }
}
