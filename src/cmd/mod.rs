//! The commands, one file each: glue between the lowered [`crate::config::Config`] and the
//! library. `batch.rs` and `report.rs` run and report the batch commands (`merge.rs` is the
//! `report` command, which merges the report files of a sharded run); `notes.rs` words what
//! the library reports; `reading.rs` opens archives for `ls`, `cat` and `extract`.

pub mod batch;
pub mod cat;
pub mod create;
pub mod csv;
pub mod daemon;
pub mod embed;
pub mod erofs;
pub mod extract;
pub mod index;
pub mod index_remote;
pub mod ls;
pub mod ls_digest;
pub mod merge;
pub mod mount;
pub mod mount_kernel;
pub mod mount_union;
pub mod notes;
pub mod pinned;
pub mod reading;
pub mod recompress;
pub mod recover;
pub mod report;
pub mod scrub;
pub mod umount;
pub mod verify;
