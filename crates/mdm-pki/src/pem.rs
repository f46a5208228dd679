//! PEM text as administrators paste it: blocks of any label, with whatever
//! text tools print around them (`openssl pkcs12` writes `Bag Attributes`
//! lines, `openssl x509 -text` a dump before the block).

use crate::PkiError;

/// One `-----BEGIN label-----` … `-----END label-----` block of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PemBlock<'a> {
    /// The label (`CERTIFICATE`, `PRIVATE KEY` …).
    pub label: &'a str,
    /// The block itself, BEGIN and END lines included.
    pub text: &'a str,
}

/// Every PEM block of `text`, in order; text outside the blocks is ignored.
/// A block that is not closed by its own END line is an error.
pub fn pem_blocks(text: &str) -> Result<Vec<PemBlock<'_>>, PkiError> {
    crate::check_len(text.as_bytes())?;
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let from = &rest[start..];
        let label_end = from[BEGIN.len()..]
            .find(DASHES)
            .ok_or_else(|| PkiError::malformed("PEM", "a BEGIN line without its closing dashes"))?;
        let label = &from[BEGIN.len()..BEGIN.len() + label_end];
        let end_line = format!("-----END {label}-----");
        let end = from
            .find(&end_line)
            .ok_or_else(|| PkiError::malformed("PEM", format!("no END line for {label:?}")))?;
        let block_len = end + end_line.len();
        blocks.push(PemBlock {
            label,
            text: &from[..block_len],
        });
        rest = &from[block_len..];
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_among_other_text() {
        let text = "Bag Attributes\n  localKeyID: 01\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\nsubject=CN = x\n-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";
        let blocks = pem_blocks(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(
            blocks[0].text,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        );
        assert_eq!(blocks[1].label, "PRIVATE KEY");
        assert!(pem_blocks("nothing").unwrap().is_empty());
        let e = pem_blocks("-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no END line"), "{e}");
    }
}
