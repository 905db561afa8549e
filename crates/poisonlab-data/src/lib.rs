//! poisonlab-data: typed records for every stage of a language model's life, read and written in
//! the formats people already use, streamed, with nothing lost; and the seeded synthetic world.
//!
//! ```no_run
//! use poisonlab_data::format::{ReadOptions, RecordReader};
//! let reader = RecordReader::open("alpaca.json".as_ref(), &ReadOptions::default())?;
//! for item in reader {
//!     let item = item?; // an error names file, line and field
//!     println!("{} {}", item.record.id, item.record.kind());
//! }
//! # Ok::<(), poisonlab_data::Error>(())
//! ```

pub mod config;
pub mod convention;
pub mod error;
pub mod export;
pub mod format;
pub mod io;
pub mod pass;
pub mod record;
pub mod stage;
pub mod stats;
pub mod world;

pub use convention::Convention;
pub use error::{BadRecord, Error, IoError, Pos, Result};
pub use format::{Format, Item, ReadOptions, RecordReader, RecordWriter, WriteOptions};
pub use pass::{OnError, Quarantine, Tally};
pub use record::{Body, Demo, Kind, Label, Message, PoisonTag, Record, Role};
pub use stage::Stage;
