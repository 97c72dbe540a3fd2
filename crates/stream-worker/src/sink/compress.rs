//! The byte stream under the JSON-lines and CSV writers: a new file, optionally gzip or
//! zstd compressed, with a count of the bytes that reach the file.
//!
//! ```text
//!  plain:  writer ─▶ Counting ─▶ BufWriter<File>
//!  gzip :  writer ─▶ BufWriter ─▶ GzEncoder (level 6)  ─▶ Counting ─▶ BufWriter<File>
//!  zstd :  writer ─▶ BufWriter ─▶ zstd Encoder (level 3) ─▶ Counting ─▶ BufWriter<File>
//! ```
//!
//! The count sits under the encoder, so [`OutStream::bytes`] is the compressed size so
//! far — what rolling by size compares. It lags the final size by what the encoder still
//! holds (up to a compression block, tens of KiB), never by more.
//!
//! [`OutStream::finish`] writes the gzip trailer / zstd frame end, flushes every buffer,
//! `fsync`s the file and returns its final size. A stream dropped without `finish` leaves
//! an incomplete file that the caller deletes (that is how a file is aborted).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;

use super::{Compression, SinkError};

/// Buffer size of the file writer and of the buffer above an encoder.
const BUF_BYTES: usize = 64 * 1024;
/// zstd level for JSON-lines / CSV streams.
const ZSTD_LEVEL: i32 = 3;

/// Creates `path`, failing if it exists (the caller owns the name; a leftover is never
/// silently overwritten).
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Counts the bytes written through it.
#[derive(Debug)]
pub(crate) struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type FileOut = Counting<BufWriter<File>>;

/// A new output file with the chosen stream compression (see the module docs).
pub(crate) enum OutStream {
    Plain(FileOut),
    Gzip(BufWriter<GzEncoder<FileOut>>),
    Zstd(BufWriter<zstd::stream::write::Encoder<'static, FileOut>>),
}

impl std::fmt::Debug for OutStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            OutStream::Plain(_) => "plain",
            OutStream::Gzip(_) => "gzip",
            OutStream::Zstd(_) => "zstd",
        };
        f.debug_struct("OutStream")
            .field("kind", &kind)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl OutStream {
    /// Creates `path` (it must not exist). Snappy is refused: it has no standard
    /// streaming framing that common readers accept, so it is offered for Parquet only.
    pub(crate) fn create(path: &Path, compression: Compression) -> Result<OutStream, SinkError> {
        check_stream_compression(compression)?;
        let file = create_new(path)?;
        let out = Counting {
            inner: BufWriter::with_capacity(BUF_BYTES, file),
            bytes: 0,
        };
        Ok(match compression {
            Compression::None => OutStream::Plain(out),
            Compression::Gzip => OutStream::Gzip(BufWriter::with_capacity(
                BUF_BYTES,
                GzEncoder::new(out, flate2::Compression::default()),
            )),
            Compression::Zstd => {
                let enc = match zstd::stream::write::Encoder::new(out, ZSTD_LEVEL) {
                    Ok(enc) => enc,
                    Err(e) => {
                        // The file is ours and empty: do not leave it behind.
                        let _ = std::fs::remove_file(path);
                        return Err(e.into());
                    }
                };
                OutStream::Zstd(BufWriter::with_capacity(BUF_BYTES, enc))
            }
            Compression::Snappy => {
                // Refused above; kept total so no path can panic.
                let _ = std::fs::remove_file(path);
                return Err(snappy_unsupported());
            }
        })
    }

    /// Bytes that reached the file layer so far (compressed bytes for gzip/zstd).
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            OutStream::Plain(c) => c.bytes,
            OutStream::Gzip(w) => w.get_ref().get_ref().bytes,
            OutStream::Zstd(w) => w.get_ref().get_ref().bytes,
        }
    }

    /// Ends the compressed stream, flushes, fsyncs; returns the file's final size.
    pub(crate) fn finish(self) -> io::Result<u64> {
        let out = match self {
            OutStream::Plain(c) => c,
            OutStream::Gzip(w) => w.into_inner().map_err(|e| e.into_error())?.finish()?,
            OutStream::Zstd(w) => w.into_inner().map_err(|e| e.into_error())?.finish()?,
        };
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    }
}

/// The one place that says which stream compressions exist.
pub(crate) fn check_stream_compression(compression: Compression) -> Result<(), SinkError> {
    match compression {
        Compression::Snappy => Err(snappy_unsupported()),
        _ => Ok(()),
    }
}

fn snappy_unsupported() -> SinkError {
    SinkError::Unsupported("snappy is only available for parquet".into())
}

impl Write for OutStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OutStream::Plain(w) => w.write(buf),
            OutStream::Gzip(w) => w.write(buf),
            OutStream::Zstd(w) => w.write(buf),
        }
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            OutStream::Plain(w) => w.write_all(buf),
            OutStream::Gzip(w) => w.write_all(buf),
            OutStream::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            OutStream::Plain(w) => w.flush(),
            OutStream::Gzip(w) => w.flush(),
            OutStream::Zstd(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn payload() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("line {i} {}\n", i % 97).into_bytes())
            .collect()
    }

    fn round_trip(compression: Compression, ext: &str) -> (Vec<u8>, u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("f.{ext}"));
        let mut s = OutStream::create(&path, compression).unwrap();
        let data = payload();
        s.write_all(&data).unwrap();
        let before = s.bytes();
        let size = s.finish().unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert_eq!(size, raw.len() as u64);
        let mut out = Vec::new();
        match compression {
            Compression::None => out = raw,
            Compression::Gzip => {
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Zstd => out = zstd::decode_all(&raw[..]).unwrap(),
            Compression::Snappy => unreachable!(),
        }
        assert_eq!(out, data);
        (out, before, size)
    }

    #[test]
    fn plain_counts_every_byte_handed_in() {
        let (data, before, size) = round_trip(Compression::None, "txt");
        assert_eq!(before, data.len() as u64);
        assert_eq!(size, data.len() as u64);
    }

    #[test]
    fn gzip_and_zstd_count_compressed_bytes_and_end_the_stream() {
        for (c, ext) in [(Compression::Gzip, "gz"), (Compression::Zstd, "zst")] {
            let (data, before, size) = round_trip(c, ext);
            assert!(before <= size, "{c:?}: {before} > {size}");
            assert!(
                size < data.len() as u64 / 3,
                "{c:?} did not compress: {size}"
            );
        }
    }

    #[test]
    fn refuses_snappy_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let e = OutStream::create(&path, Compression::Snappy).unwrap_err();
        assert!(matches!(e, SinkError::Unsupported(_)), "{e}");
        assert!(!path.exists(), "snappy must not create the file");
        std::fs::write(&path, b"keep").unwrap();
        let e = OutStream::create(&path, Compression::None).unwrap_err();
        assert!(matches!(e, SinkError::Io(ref io) if io.kind() == io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}
