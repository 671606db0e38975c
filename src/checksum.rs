//! What the bytes of a content are checked against when they are read whole, and the
//! running computation of it.
//!
//! The strongest check a copy carries wins (`ObjectInfo::check`): the CRC-64/NVME our
//! stager records in the object's user metadata (`startifact-crc64nvme`, kept by every
//! server); else a whole-object CRC the server itself keeps (S3's CRC-64/NVME, CRC32 or
//! CRC32C, returned by `HeadObject` with the checksum mode on; boto3 sends CRC32 by
//! default); else the MD5 (`startifact-md5`, or a plain ETag); else nothing but the size.
//! A CRC (carry-less multiplication in SIMD) runs many times faster than MD5, which
//! runs at about 700 MB/s on one core and in order: so the check is no longer what
//! bounds a read. CRCs of pieces combine (`Checksum::combine`), so pieces computed
//! apart can be checked as one object.

use base64::Engine;
use crc_fast::CrcAlgorithm;

use crate::digest::Md5;

/// Name of the user-metadata entry (S3 `x-amz-meta-...`) where our stager records the
/// artifact's CRC-64/NVME as 16 lowercase hex digits.
pub const CRC64_METADATA_KEY: &str = "startifact-crc64nvme";

/// One checksum of a whole content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Crc64Nvme(u64),
    Crc32(u32),
    Crc32c(u32),
    Md5([u8; 16]),
}

/// Which checksum, without its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc64Nvme,
    Crc32,
    Crc32c,
    Md5,
}

impl Algorithm {
    /// As S3 and the documentation name it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc64Nvme => "CRC-64/NVME",
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Md5 => "MD5",
        }
    }

    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            Algorithm::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            Algorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            Algorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            Algorithm::Md5 => None,
        }
    }

    /// The text prefix of `Checksum::to_text`.
    fn tag(self) -> &'static str {
        match self {
            Algorithm::Crc64Nvme => "crc64nvme",
            Algorithm::Crc32 => "crc32",
            Algorithm::Crc32c => "crc32c",
            Algorithm::Md5 => "md5",
        }
    }
}

impl Checksum {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Checksum::Crc64Nvme(_) => Algorithm::Crc64Nvme,
            Checksum::Crc32(_) => Algorithm::Crc32,
            Checksum::Crc32c(_) => Algorithm::Crc32c,
            Checksum::Md5(_) => Algorithm::Md5,
        }
    }

    /// The value as lowercase hex (big-endian for the CRCs, as S3 sends them).
    pub fn hex(&self) -> String {
        match self {
            Checksum::Crc64Nvme(crc) => format!("{crc:016x}"),
            Checksum::Crc32(crc) | Checksum::Crc32c(crc) => format!("{crc:08x}"),
            Checksum::Md5(md5) => hex::encode(md5),
        }
    }

    /// `crc64nvme:0123…`: how a record keeps it.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.algorithm().tag(), self.hex())
    }

    /// The inverse of `to_text`; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Checksum> {
        let (tag, value) = text.split_once(':')?;
        let bytes = hex_bytes(value)?;
        let algorithm = [
            Algorithm::Crc64Nvme,
            Algorithm::Crc32,
            Algorithm::Crc32c,
            Algorithm::Md5,
        ]
        .into_iter()
        .find(|a| a.tag() == tag)?;
        Checksum::from_bytes(algorithm, &bytes)
    }

    /// An MD5 given as 32 hex digits (`startifact-md5`, a plain ETag).
    pub fn from_md5_hex(text: &str) -> Option<Checksum> {
        Checksum::from_bytes(Algorithm::Md5, &hex_bytes(text)?)
    }

    /// What our stager recorded in the user metadata: 16 hex digits.
    pub fn from_recorded_crc64(text: &str) -> Option<Checksum> {
        if text.len() != 16 {
            return None;
        }
        Checksum::from_bytes(Algorithm::Crc64Nvme, &hex_bytes(text)?)
    }

    /// What we record: the CRC-64/NVME as 16 lowercase hex digits.
    pub fn recorded_crc64(crc: u64) -> String {
        Checksum::Crc64Nvme(crc).hex()
    }

    /// A checksum as an S3 header carries it: base64 of its big-endian bytes.
    pub fn from_s3(algorithm: Algorithm, base64: &str) -> Option<Checksum> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64.trim())
            .ok()?;
        Checksum::from_bytes(algorithm, &bytes)
    }

    /// The whole-object checksum among a head's `x-amz-checksum-*` values, the first
    /// that parses. S3 sends a checksum of the `COMPOSITE` type (a checksum of the
    /// parts' checksums, `…-N`) for some uploads in parts, which says nothing of the
    /// whole; without a type, a value that does not parse is such a one.
    pub fn of_s3_head(
        checksum_type: Option<&str>,
        values: [(Algorithm, Option<&str>); 3],
    ) -> Option<Checksum> {
        if checksum_type.is_some_and(|t| t != "FULL_OBJECT") {
            return None;
        }
        values
            .into_iter()
            .find_map(|(algorithm, value)| Checksum::from_s3(algorithm, value?))
    }

    /// The value as an S3 header carries it (`x-amz-checksum-crc64nvme`).
    pub fn to_s3(&self) -> String {
        let bytes = match self {
            Checksum::Crc64Nvme(crc) => crc.to_be_bytes().to_vec(),
            Checksum::Crc32(crc) | Checksum::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            Checksum::Md5(md5) => md5.to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Option<Checksum> {
        Some(match algorithm {
            Algorithm::Crc64Nvme => Checksum::Crc64Nvme(u64::from_be_bytes(bytes.try_into().ok()?)),
            Algorithm::Crc32 => Checksum::Crc32(u32::from_be_bytes(bytes.try_into().ok()?)),
            Algorithm::Crc32c => Checksum::Crc32c(u32::from_be_bytes(bytes.try_into().ok()?)),
            Algorithm::Md5 => Checksum::Md5(bytes.try_into().ok()?),
        })
    }

    fn from_value(algorithm: Algorithm, value: u64) -> Checksum {
        match algorithm {
            Algorithm::Crc64Nvme => Checksum::Crc64Nvme(value),
            Algorithm::Crc32 => Checksum::Crc32(value as u32),
            Algorithm::Crc32c => Checksum::Crc32c(value as u32),
            Algorithm::Md5 => Checksum::Md5([0; 16]),
        }
    }

    fn crc_value(&self) -> Option<u64> {
        match self {
            Checksum::Crc64Nvme(crc) => Some(*crc),
            Checksum::Crc32(crc) | Checksum::Crc32c(crc) => Some(u64::from(*crc)),
            Checksum::Md5(_) => None,
        }
    }

    /// The CRC of two pieces one after the other, from theirs and the second's length;
    /// `None` for an MD5 or two different algorithms.
    pub fn combine(first: Checksum, second: Checksum, second_len: u64) -> Option<Checksum> {
        let algorithm = first.algorithm();
        if second.algorithm() != algorithm {
            return None;
        }
        let crc = algorithm.crc()?;
        let value =
            crc_fast::checksum_combine(crc, first.crc_value()?, second.crc_value()?, second_len);
        Some(Checksum::from_value(algorithm, value))
    }

    /// The checksum of `data` by `algorithm`.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Checksum {
        let mut running = Running::new(algorithm);
        running.update(data);
        running.finish()
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.algorithm().name(), self.hex())
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex::decode(text).ok()
}

/// A checksum being computed over bytes given in order.
pub struct Running(State);

enum State {
    Crc(Algorithm, Box<crc_fast::Digest>),
    Md5(Md5),
}

impl Running {
    pub fn new(algorithm: Algorithm) -> Running {
        Running(match algorithm.crc() {
            Some(crc) => State::Crc(algorithm, Box::new(crc_fast::Digest::new(crc))),
            None => State::Md5(Md5::new()),
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Crc(_, digest) => digest.update(data),
            State::Md5(md5) => md5.update(data),
        }
    }

    pub fn finish(self) -> Checksum {
        match self.0 {
            State::Crc(algorithm, digest) => Checksum::from_value(algorithm, digest.finalize()),
            State::Md5(md5) => Checksum::Md5(md5.finalize()),
        }
    }

    /// Whether it is a CRC, fast enough to run in the read path.
    pub fn is_fast(&self) -> bool {
        matches!(self.0, State::Crc(..))
    }

    /// Hands the MD5 over (to be fed on a thread of its own); a CRC stays.
    pub fn into_md5(self) -> Result<Md5, Running> {
        match self.0 {
            State::Md5(md5) => Ok(md5),
            state => Err(Running(state)),
        }
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            State::Crc(algorithm, _) => write!(f, "Running({})", algorithm.name()),
            State::Md5(_) => f.write_str("Running(MD5)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crcs_are_the_ones_s3_names() {
        // The check values of the catalogue of parametrised CRCs, for "123456789".
        let check = b"123456789";
        assert_eq!(
            Checksum::of(Algorithm::Crc64Nvme, check),
            Checksum::Crc64Nvme(0xae8b_1486_0a79_9888)
        );
        assert_eq!(
            Checksum::of(Algorithm::Crc32, check),
            Checksum::Crc32(0xcbf4_3926)
        );
        assert_eq!(
            Checksum::of(Algorithm::Crc32c, check),
            Checksum::Crc32c(0xe306_9283)
        );
        assert_eq!(
            Checksum::of(Algorithm::Md5, check).hex(),
            "25f9e794323b453885f5181f1b624d0b"
        );
    }

    #[test]
    fn pieces_combine_into_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algorithm in [Algorithm::Crc64Nvme, Algorithm::Crc32, Algorithm::Crc32c] {
            let (a, b) = data.split_at(31_337);
            let combined = Checksum::combine(
                Checksum::of(algorithm, a),
                Checksum::of(algorithm, b),
                b.len() as u64,
            );
            assert_eq!(combined, Some(Checksum::of(algorithm, &data)));
        }
        let md5 = Checksum::of(Algorithm::Md5, &data);
        assert_eq!(Checksum::combine(md5, md5, 1), None);
    }

    #[test]
    fn texts_and_s3_values_go_and_come_back() {
        for checksum in [
            Checksum::Crc64Nvme(0x0123_4567_89ab_cdef),
            Checksum::Crc32(0xdead_beef),
            Checksum::Crc32c(7),
            Checksum::Md5([9; 16]),
        ] {
            assert_eq!(Checksum::from_text(&checksum.to_text()), Some(checksum));
            assert_eq!(
                Checksum::from_s3(checksum.algorithm(), &checksum.to_s3()),
                Some(checksum)
            );
        }
        // S3's own example: the CRC32 of an empty body.
        assert_eq!(
            Checksum::from_s3(Algorithm::Crc32, "AAAAAA=="),
            Some(Checksum::Crc32(0))
        );
        assert_eq!(
            Checksum::from_recorded_crc64(&Checksum::recorded_crc64(42)),
            Some(Checksum::Crc64Nvme(42))
        );
        for bad in [
            "",
            "12",
            "0123456789abcdeg",
            "0123456789abcdef0",
            "+123456789abcdef",
        ] {
            assert_eq!(Checksum::from_recorded_crc64(bad), None, "{bad:?}");
        }
        assert_eq!(Checksum::from_s3(Algorithm::Crc32, "abc-3"), None);
        let crc32 = Checksum::Crc32(0xdead_beef).to_s3();
        let head = |t, v: &str| {
            Checksum::of_s3_head(
                t,
                [
                    (Algorithm::Crc64Nvme, None),
                    (Algorithm::Crc32c, None),
                    (Algorithm::Crc32, Some(v)),
                ],
            )
        };
        assert_eq!(head(None, &crc32), Some(Checksum::Crc32(0xdead_beef)));
        assert_eq!(
            head(Some("FULL_OBJECT"), &crc32),
            Some(Checksum::Crc32(0xdead_beef))
        );
        assert_eq!(head(Some("COMPOSITE"), &crc32), None);
        assert_eq!(head(None, &format!("{crc32}-3")), None);
        // A CRC32 labelled CRC-64/NVME (a server without the CRC-64 code) is 4 bytes.
        assert_eq!(
            Checksum::of_s3_head(
                None,
                [
                    (Algorithm::Crc64Nvme, Some(crc32.as_str())),
                    (Algorithm::Crc32c, None),
                    (Algorithm::Crc32, None),
                ],
            ),
            None
        );
        assert_eq!(Checksum::from_s3(Algorithm::Crc64Nvme, "AAAAAA=="), None);
        assert_eq!(Checksum::from_text("sha1:00"), None);
    }
}
